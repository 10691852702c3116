"""Small synthetic tidy ratings tables for the statistics tests."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from glidemed.analysis.tidy import TIDY_COLUMNS, normalise

STYLES = {"histo": "histo", "xray": "radiology", "ct": "radiology"}


def make_tidy(scores=None, *, raters=("r1", "r2", "r3"), styles=STYLES,
              topics=("lungs", "heart", "brain", "liver"), details=("short", "detailed"),
              conditions=("a",), aspects=("style", "content"), seed: int = 0,
              shift: dict | None = None) -> pd.DataFrame:
    """One row per rater x style x topic x detail x condition x aspect.

    ``scores``: a callable (rng, row dict) -> int, default a noisy 0-4 score that rises by
    ``shift[style]`` (default 0). Every combination is rated once; no repeats.
    """
    rng = np.random.default_rng(seed)
    shift = shift or {}
    rows = []
    for rater, (style, group), topic, detail, condition, aspect in itertools.product(
            raters, styles.items(), topics, details, conditions, aspects):
        prompt = f"{style}.{topic}.{detail}"
        row = {"rater": rater, "panel": f"{prompt}/{condition}", "prompt_id": prompt,
               "style": style, "style_group": group, "topic": topic, "detail": detail,
               "condition": condition, "aspect": aspect, "exclusion": "", "seconds": np.nan,
               "repeat": False, "comment": "", "nonsensical": False}
        if scores is None:
            value = 2 + shift.get(style, 0) + rng.integers(-1, 2)
        else:
            value = scores(rng, row)
        row["score"] = int(min(4, max(0, value)))
        rows.append(row)
    return normalise(pd.DataFrame(rows, columns=TIDY_COLUMNS + ["nonsensical"]), ["nonsensical"])
