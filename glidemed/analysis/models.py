"""One entry point for the ordinal models: mixed when the formula has random terms."""

from __future__ import annotations

import pandas as pd

from glidemed.analysis.formula import parse_formula
from glidemed.analysis.results import ModelResult


def fit_model(df: pd.DataFrame, formula: str, aspect: str) -> ModelResult:
    """Fit ``formula`` to the ratings of ``aspect``: the cumulative link mixed model
    (mixed.fit_clmm) when it has terms like ``(1|rater)``, else the fixed-effect model
    (ordinal.fit_ordinal). Errors in the formula raise AnalysisError."""
    if parse_formula(formula, [str(c) for c in df.columns]).is_mixed:
        from glidemed.analysis.mixed import fit_clmm

        return fit_clmm(df, formula, aspect)
    from glidemed.analysis.ordinal import fit_ordinal

    return fit_ordinal(df, formula, aspect)
