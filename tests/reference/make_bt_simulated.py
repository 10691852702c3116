"""Write tests/reference/bt_simulated.csv, the paired comparisons of bt_simulated.R:
python tests/reference/make_bt_simulated.py (from the project root).

Four conditions with abilities 0, 0.6, -0.4, 1.1 (log-odds), 900 comparisons of random
pairs, sides at random; a tie (winner empty) when the two are within a small margin."""

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
rng = np.random.default_rng(2024)
names = ["sd15", "sdxl", "glide", "flux"]
ability = dict(zip(names, [0.0, 0.6, -0.4, 1.1]))
rows = []
for _ in range(900):
    left, right = rng.choice(names, size=2, replace=False)
    p_left = 1 / (1 + np.exp(ability[right] - ability[left]))
    u = rng.random()
    winner = "" if abs(u - p_left) < 0.05 else (left if u < p_left else right)
    rows.append({"left": left, "right": right, "winner": winner})
pd.DataFrame(rows).to_csv(ROOT / "tests/reference/bt_simulated.csv", index=False)
