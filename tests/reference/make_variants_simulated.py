"""Write tests/reference/variants_simulated.csv, the simulated data of variants_simulated.R:
python tests/reference/make_variants_simulated.py (from the project root).

Prompt variants nested in styles: styles a and b in three variants, c in one (its v2 and
v3 interactions do not exist, and R reports them aliased); crossed raters and prompts.
"""

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
STYLES = {"a": 0.0, "b": 0.8, "c": -0.6}
VARIANTS = {"a": {"v1": 0.0, "v2": 0.7, "v3": -0.3}, "b": {"v1": 0.0, "v2": 0.0, "v3": 0.5},
            "c": {"v1": 0.0}}
DETAILS = {"short": 0.0, "detailed": 0.4}
CUTPOINTS = np.array([-1.5, -0.3, 0.8, 2.0])

rng = np.random.default_rng(2026)
rows = []
for style, effect in STYLES.items():
    for variant, shift in VARIANTS[style].items():
        for topic in range(12):
            for detail, d in DETAILS.items():
                rows.append({"style": style, "variant": variant, "topic": f"t{topic:02d}",
                             "detail": detail, "prompt_id": f"{style}.t{topic:02d}.{detail}.{variant}",
                             "eta": effect + shift + d + rng.normal(0, 0.8)})
prompts = pd.DataFrame(rows)
raters = pd.DataFrame({"rater": [f"r{j}" for j in range(6)], "severity": rng.normal(0, 0.6, 6)})
df = raters.merge(prompts, how="cross")
cum = 1 / (1 + np.exp(-(CUTPOINTS[None, :] - (df["eta"] + df["severity"]).to_numpy()[:, None])))
df["score"] = (rng.random(len(df))[:, None] > cum).sum(axis=1)
df[["rater", "prompt_id", "style", "variant", "topic", "detail", "score"]].to_csv(
    ROOT / "tests" / "reference" / "variants_simulated.csv", index=False)
