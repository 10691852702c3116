"""A small simulator of crossed rating data from a cumulative logit mixed model (tests, bench).

Independent of glidemed's own simulator on purpose: the model checks need data whose
generating parameters they know exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STYLE_EFFECTS = {"a": 0.0, "b": 1.0, "c": -0.8}
DETAIL_EFFECTS = {"detailed": 0.0, "short": -0.4}
CUTPOINTS = (-1.5, -0.3, 0.8, 2.0)


def simulate_clmm(seed: int, n_raters: int = 8, n_topics: int = 15, sd_rater: float = 0.6,
                  sd_prompt: float = 1.0, sd_topic: float = 0.0, missing: float = 0.0,
                  style_effects: dict | None = None, cutpoints=CUTPOINTS) -> pd.DataFrame:
    """Tidy ratings (rater, prompt_id, style, topic, detail, aspect, score, exclusion): every
    rater rates every prompt (styles x topics x details); ``missing`` is the share dropped.
    P(score <= k) = logistic(cut_k - style - detail - rater - prompt - topic)."""
    rng = np.random.default_rng(seed)
    styles = style_effects or STYLE_EFFECTS
    prompts = pd.DataFrame([(s, f"t{t:02d}", d) for s in styles for t in range(n_topics)
                            for d in DETAIL_EFFECTS], columns=["style", "topic", "detail"])
    prompts["prompt_id"] = [f"{s}.{t}.{d}" for s, t, d in prompts.itertuples(index=False)]
    topic_effect = dict(zip(sorted(prompts["topic"].unique()),
                            rng.normal(0, sd_topic, n_topics) if sd_topic else np.zeros(n_topics)))
    prompts["eta"] = (prompts["style"].map(styles) + prompts["detail"].map(DETAIL_EFFECTS)
                      + rng.normal(0, sd_prompt, len(prompts)) + prompts["topic"].map(topic_effect))
    raters = pd.DataFrame({"rater": [f"r{j:02d}" for j in range(n_raters)],
                           "severity": rng.normal(0, sd_rater, n_raters)})
    df = raters.merge(prompts, how="cross")
    eta = (df["eta"] + df["severity"]).to_numpy()
    cum = 1 / (1 + np.exp(-(np.asarray(cutpoints)[None, :] - eta[:, None])))
    df["score"] = (rng.random(len(df))[:, None] > cum).sum(axis=1)
    df = df[rng.random(len(df)) >= missing]
    df = df.assign(aspect="style", exclusion="")
    return df[["rater", "prompt_id", "style", "topic", "detail", "aspect", "score", "exclusion"]
              ].reset_index(drop=True)
