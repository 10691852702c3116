"""Write tests/reference/clmm_simulated.csv, the simulated data of clmm_simulated.R:
python tests/reference/make_clmm_simulated.py (from the project root)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from clmm_sim import simulate_clmm

df = simulate_clmm(seed=20221, n_raters=8, n_topics=15, sd_rater=0.6, sd_prompt=1.0,
                   sd_topic=0.5, missing=0.05)
df.drop(columns=["aspect", "exclusion"]).to_csv(ROOT / "tests/reference/clmm_simulated.csv",
                                                index=False)
