"""Simulated raters: a cumulative-logit model of expert ratings, for tests, demos and power.

The model, per rating of panel (prompt p, condition c) by rater r on aspect a::

    eta = style[a, style of p] + detail[a, detail of p] + condition[a, c] + u[r, a] + v[p, a]
    P(score <= k) = logistic(theta[a, k] - eta)

with random rater severity ``u ~ N(0, rater_sd^2)`` and random prompt difficulty
``v ~ N(0, prompt_sd^2)`` (correlated across aspects). Larger ``eta`` means higher
scores; all effects are on this latent logit scale (R ``ordinal`` sign convention).

Defaults are a fit of this model (R ``ordinal::clmm``) to the published ratings of
Kather et al. (2022), nonsensical counted as 0; see ``tests/reference/simulate_defaults.R``.
Styles of other studies take the paper's value by key; otherwise a style in the group
``radiology`` takes the paper's radiology mean ("low") and any other style the mean of the
paper's other styles ("medium"). Aspects other than ``style`` take the paper's ``content``
values. Conditions have no effect unless set.

Two outputs: :func:`simulate_ratings` (the tidy table, fast, for power analysis) and
:func:`simulate_responses` (response files for a real survey build, which pass ingest).
"""

from glidemed.simulate.model import (
    Model,
    Session,
    build_model,
    design_prompts,
    ratings_from_sessions,
    simulate_ratings,
    simulate_sessions,
    style_effect,
)
from glidemed.simulate.params import (
    PAPER_DEFAULTS,
    SimParams,
    load_params,
    make_params,
    parse_effect,
)
from glidemed.simulate.responses import (
    other_simulated_files,
    simulate_responses,
    simulate_study,
)

__all__ = [
    "PAPER_DEFAULTS",
    "Model",
    "Session",
    "SimParams",
    "build_model",
    "design_prompts",
    "load_params",
    "make_params",
    "other_simulated_files",
    "parse_effect",
    "ratings_from_sessions",
    "simulate_ratings",
    "simulate_responses",
    "simulate_sessions",
    "simulate_study",
    "style_effect",
]
