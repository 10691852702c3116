"""The result of fitting an ordinal model, fixed or mixed: one shape for tables and report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

# Columns of ModelResult.table (ordinal.csv adds 'role', 'model', 'aspect' and 'formula').
# kind: 'effect' (log cumulative odds ratio vs the reference level), 'cutpoint'
# (threshold theta_k in P(Y <= k) = F(theta_k - x'beta)) or 'random_sd'.
TABLE_COLUMNS = ["term", "kind", "estimate", "se", "ci_low", "ci_high", "p",
                 "odds_ratio", "or_ci_low", "or_ci_high"]
Z95 = stats.norm.ppf(0.975)


def wald_row(term: str, kind: str, estimate: float, se: float) -> dict:
    """A row of ModelResult.table: 95% Wald CI and two-sided p (NaN unless se > 0); for an
    effect also the odds ratio and its CI (an overflow gives inf, e.g. under separation)."""
    low, high = estimate - Z95 * se, estimate + Z95 * se
    p = 2 * stats.norm.sf(abs(estimate / se)) if se > 0 else np.nan
    row = {"term": term, "kind": kind, "estimate": estimate, "se": se, "ci_low": low,
           "ci_high": high, "p": p}
    if kind == "effect":
        with np.errstate(over="ignore"):
            row.update(odds_ratio=np.exp(estimate), or_ci_low=np.exp(low), or_ci_high=np.exp(high))
    else:
        row.update(odds_ratio=np.nan, or_ci_low=np.nan, or_ci_high=np.nan)
    return row


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
