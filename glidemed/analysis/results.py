"""The result of fitting an ordinal model, fixed or mixed: one shape for tables and report."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# Columns of ModelResult.table (and of ordinal.csv, which adds 'model' and 'aspect').
# kind: 'effect' (log cumulative odds ratio vs the reference level), 'cutpoint'
# (threshold theta_k in P(Y <= k) = F(theta_k - x'beta)) or 'random_sd'.
TABLE_COLUMNS = ["term", "kind", "estimate", "se", "ci_low", "ci_high", "p",
                 "odds_ratio", "or_ci_low", "or_ci_high"]


@dataclass
class ModelResult:
    model: str  # 'fixed' (clm) or 'mixed' (clmm)
    formula: str  # the formula actually fitted, after dropping single-level terms
    aspect: str
    n: int  # ratings used
    loglik: float
    converged: bool
    table: pd.DataFrame  # TABLE_COLUMNS
    notes: list[str] = field(default_factory=list)  # dropped terms, separation, convergence
    seconds: float = float("nan")

    def summary(self) -> dict:
        """A JSON-ready dict for summary.json."""
        return {
            "model": self.model, "formula": self.formula, "aspect": self.aspect, "n": self.n,
            "loglik": self.loglik, "converged": self.converged, "notes": self.notes,
            "coefficients": self.table.to_dict(orient="records"),
        }
