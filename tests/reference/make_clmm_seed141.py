"""Writes clmm_seed141.csv: the style ratings of a study simulated with the demo study's
defaults (10 raters, 18 prompts, seed 141), on which the mixed model's Cholesky step once
failed. From the project root: python tests/reference/make_clmm_seed141.py"""

from pathlib import Path

from glidemed.analysis.tidy import usable
from glidemed.simulate import simulate_ratings
from glidemed.study import load_study

HERE = Path(__file__).resolve().parent
df = usable(simulate_ratings(load_study(HERE.parents[1] / "surveys" / "demo" / "study.toml"),
                             10, 18, seed=141))
df = df[(df["aspect"] == "style") & ~df["repeat"].astype(bool)]
df[["rater", "prompt_id", "style", "detail", "condition", "aspect", "score", "exclusion"]].to_csv(
    HERE / "clmm_seed141.csv", index=False)
