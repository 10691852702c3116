"""The crossed (pigeonhole) bootstrap: draws, resamples, the exact bootstrap variance of a
mean, and the vectorised medians against a plain pandas computation on the same draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clmm_sim import simulate_clmm

from glidemed.analysis.bootstrap import (
    BOOTSTRAP_COLUMNS,
    MEDIAN_COLUMNS,
    CrossedDraws,
    bootstrap_medians,
    bootstrap_model,
    crossed_bootstrap,
    crossed_draws,
    resample,
)
from glidemed.errors import AnalysisError


def ratings(seed: int = 1, n_raters: int = 5, n_topics: int = 6, missing: float = 0.1) -> pd.DataFrame:
    df = simulate_clmm(seed=seed, n_raters=n_raters, n_topics=n_topics, missing=missing)
    other = df.assign(aspect="content", score=(df["score"] + 1).clip(upper=4))
    out = pd.concat([df, other], ignore_index=True)
    out["condition"] = "clip"
    out["repeat"] = False
    return out


def test_draws_are_reproducible_and_count_every_unit():
    df = ratings()
    a, b = crossed_draws(df, 50, seed=7), crossed_draws(df, 50, seed=7)
    assert np.array_equal(a.rater_counts, b.rater_counts)
    assert np.array_equal(a.prompt_counts, b.prompt_counts)
    assert (a.rater_counts.sum(axis=1) == 5).all() and (a.prompt_counts.sum(axis=1) == 36).all()
    assert not np.array_equal(a.prompt_counts, crossed_draws(df, 50, seed=8).prompt_counts)


def test_resample_repeats_ratings_and_separates_copies():
    df = pd.DataFrame({"rater": ["A", "A", "B", "B"], "prompt_id": ["p", "q", "p", "q"],
                       "panel": ["p1", "q1", "p1", "q1"], "score": [1, 2, 3, 4]})
    draws = CrossedDraws(np.array(["A", "B"]), np.array(["p", "q"]), np.array([[2, 0]]),
                         np.array([[0, 2]]), seed=0)
    out = resample(df, draws, 0)
    # rater A twice x prompt q twice: A's rating of q, four times, as 2 raters x 2 prompts
    assert out["score"].tolist() == [2, 2, 2, 2]
    assert out.groupby(["rater", "prompt_id"]).size().tolist() == [1, 1, 1, 1]
    assert out["rater"].nunique() == 2 and out["prompt_id"].nunique() == 2
    assert out["panel"].nunique() == 2
    # a rating without a rater id is never drawn
    df.loc[1, "rater"] = None
    assert resample(df, draws, 0).empty


def test_bootstrap_variance_of_a_mean_is_the_pigeonhole_formula():
    """For a complete R x P table, Var*(mean) = sum(a^2)/R^2 + sum(b^2)/P^2 + sum(e^2)/(RP)^2
    with a, b, e the row, column and residual effects (Owen 2007): exact, not asymptotic."""
    df = simulate_clmm(seed=3, n_raters=6, n_topics=5, missing=0.0)
    y = df.pivot(index="rater", columns="prompt_id", values="score").to_numpy(float)
    R, P = y.shape
    a = y.mean(axis=1) - y.mean()
    b = y.mean(axis=0) - y.mean()
    e = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    exact = (a ** 2).sum() / R ** 2 + (b ** 2).sum() / P ** 2 + (e ** 2).sum() / (R * P) ** 2
    out = crossed_bootstrap(df, lambda d: d["score"].mean(), n_boot=1500, seed=1)
    assert list(out.columns) == BOOTSTRAP_COLUMNS
    row = out.iloc[0]
    assert row["estimate"] == pytest.approx(y.mean())
    # the SD of 1500 resampled means estimates sqrt(exact) within a few percent
    assert row["se"] == pytest.approx(np.sqrt(exact), rel=0.08)
    assert row["n_boot"] == 1500 and row["n_valid"] == 1500 and row["seed"] == 1
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def pandas_prompt_median_medians(d: pd.DataFrame) -> pd.Series:
    """The paper's statistic the slow way: per-prompt medians, then per style, per aspect."""
    per_prompt = d.groupby(["aspect", "prompt_id", "condition", "style"])["score"].median()
    per_style = per_prompt.groupby(["aspect", "style"]).median()
    return pd.Series({f"{a}:{s}": v for (a, s), v in per_style.items()})


def pandas_rating_medians(d: pd.DataFrame) -> pd.Series:
    per_style = d.assign(score=d["score"].astype(float)).groupby(["aspect", "style"])["score"].median()
    return pd.Series({f"{a}:{s}": v for (a, s), v in per_style.items()})


@pytest.mark.parametrize("unit, slow", [("prompt_median", pandas_prompt_median_medians),
                                        ("rating", pandas_rating_medians)])
def test_vectorised_medians_equal_pandas_on_the_same_draws(unit, slow):
    df = ratings(missing=0.15)
    fast = bootstrap_medians(df, by="style", unit=unit, n_boot=150, seed=11)
    assert list(fast.columns) == MEDIAN_COLUMNS
    medians = fast[fast["kind"] == "median"].assign(key=lambda t: t["aspect"] + ":" + t["term"])
    reference = crossed_bootstrap(df, slow, n_boot=150, seed=11).set_index("term")
    for _, row in medians.iterrows():
        want = reference.loc[row["key"]]
        assert row["estimate"] == want["estimate"]
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((want["ci_low"], want["ci_high"]))
        assert row["se"] == pytest.approx(want["se"])
    assert (fast["n_boot"] == 150).all() and (fast["seed"] == 11).all()


def test_differences_between_styles():
    df = ratings()
    out = bootstrap_medians(df, n_boot=200, seed=3)
    style = out[out["aspect"] == "style"].set_index("term")
    assert list(style.index[:3]) == ["a", "b", "c"]
    diff = style.loc["b - a"]
    assert diff["kind"] == "difference"
    assert diff["estimate"] == style.loc["b", "estimate"] - style.loc["a", "estimate"]
    assert diff["ci_low"] <= diff["estimate"] <= diff["ci_high"]
    assert set(style.index[3:]) == {"b - a", "c - a", "c - b"}


def test_repeats_and_exclusions_are_left_out():
    df = ratings()
    noisy = pd.concat([df, df.head(30).assign(repeat=True, score=4),
                       df.head(30).assign(exclusion="nonsensical", score=0)], ignore_index=True)
    a = bootstrap_medians(df, n_boot=100, seed=5)
    b = bootstrap_medians(noisy, n_boot=100, seed=5)
    pd.testing.assert_frame_equal(a, b)


def test_failed_resamples_are_counted_not_hidden():
    df = ratings()
    calls = {"n": 0}

    def statistic(d):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise AnalysisError("no fit")
        return {"mean": d["score"].mean()}

    out = crossed_bootstrap(df, statistic, n_boot=40, seed=2)
    assert out.iloc[0]["n_boot"] == 40 and out.iloc[0]["n_valid"] == 30


def test_bad_arguments():
    df = ratings()
    with pytest.raises(AnalysisError, match="at least 1"):
        bootstrap_medians(df, n_boot=0)
    with pytest.raises(AnalysisError, match="unit must be"):
        bootstrap_medians(df, unit="prompt")
    with pytest.raises(AnalysisError, match="lacks column.*colour"):
        bootstrap_medians(df, by="colour")
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        crossed_bootstrap(df, lambda d: 1.0, level=95)


def test_model_effects_of_the_mixed_model():
    df = ratings(n_raters=6, n_topics=8, missing=0.0)
    out = bootstrap_model(df, "score ~ style + (1|rater) + (1|prompt_id)", "style", n_boot=8, seed=4)
    assert list(out["term"]) == ["style[T.b]", "style[T.c]"]
    assert (out["kind"] == "effect").all() and (out["n_valid"] == 8).all()
    assert (out["ci_low"] < out["ci_high"]).all()
