"""fit_model picks the mixed model for formulas with random terms, else the fixed one."""

from __future__ import annotations

import pytest
from clmm_sim import simulate_clmm

from glidemed.analysis.models import fit_model
from glidemed.errors import AnalysisError


def ratings():
    return simulate_clmm(seed=9, n_raters=4, n_topics=6).assign(repeat=False)


def test_random_terms_select_the_mixed_model():
    result = fit_model(ratings(), "score ~ style + (1|rater) + (1|prompt_id)", "style")
    assert result.model == "mixed"
    assert "sd(rater)" in set(result.table["term"])


def test_no_random_terms_select_the_fixed_model():
    result = fit_model(ratings(), "score ~ style + detail", "style")
    assert result.model == "fixed"
    assert set(result.table["kind"]) == {"effect", "cutpoint"}


def test_formula_errors_are_reported_once():
    with pytest.raises(AnalysisError, match="colour name no column"):
        fit_model(ratings(), "score ~ colour + (1|rater)", "style")
