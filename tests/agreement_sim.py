"""Ratings driven by a known automated score, for the agreement tests and benchmark.

Each rater sees a panel of a prompt whose images have a mean score x (prompt quality plus
what the shown images add); the rating follows a cumulative logit model in which x has
effect ``beta`` per unit, with rater and prompt random intercepts. ``noise`` is a score
unrelated to the ratings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CUTPOINTS = (-1.5, -0.4, 0.6, 1.7)
STYLES = {"histo": 0.0, "xray": -0.5, "derm": 0.4}


def simulate_agreement(seed: int, n_raters: int = 6, n_topics: int = 12, beta: float = 1.2,
                       sd_rater: float = 0.5, sd_prompt: float = 0.4,
                       aspects: tuple[str, ...] = ("style",)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prompts = pd.DataFrame([(s, f"t{t:02d}", d) for s in STYLES for t in range(n_topics)
                            for d in ("short", "detailed")], columns=["style", "topic", "detail"])
    prompts["prompt_id"] = [f"{s}.{t}.{d}" for s, t, d in prompts.itertuples(index=False)]
    prompts["quality"] = rng.normal(0, 1, len(prompts))
    prompts["u"] = rng.normal(0, sd_prompt, len(prompts))
    raters = pd.DataFrame({"rater": [f"r{j:02d}" for j in range(n_raters)],
                           "severity": rng.normal(0, sd_rater, n_raters)})
    frames = []
    for aspect in aspects:
        df = raters.merge(prompts, how="cross")
        df["good"] = df["quality"] + rng.normal(0, 0.3, len(df))  # the images this rater saw
        df["noise"] = rng.normal(0, 1, len(df))
        eta = (beta * df["good"] + df["style"].map(STYLES) + df["u"] + df["severity"]).to_numpy()
        cum = 1 / (1 + np.exp(-(np.asarray(CUTPOINTS)[None, :] - eta[:, None])))
        df["score"] = (rng.random(len(df))[:, None] > cum).sum(axis=1).astype(float)
        frames.append(df.assign(aspect=aspect, panel=df["prompt_id"], condition="model"))
    out = pd.concat(frames, ignore_index=True)
    return out[["rater", "panel", "prompt_id", "style", "topic", "detail", "condition", "aspect",
                "score", "good", "noise"]]
