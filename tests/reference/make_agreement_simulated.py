"""Write tests/reference/agreement_simulated.csv, the data of agreement_simulated.R:
python tests/reference/make_agreement_simulated.py (from the project root)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from agreement_sim import simulate_agreement

df = simulate_agreement(seed=2024, n_raters=5, n_topics=8, sd_prompt=0.8)
sd = df["good"].std(ddof=1)
df["automated"] = (df["good"] - df["good"].mean()) / sd
df[["rater", "prompt_id", "style", "score", "good", "automated"]].to_csv(
    ROOT / "tests/reference/agreement_simulated.csv", index=False, float_format="%.10g")
