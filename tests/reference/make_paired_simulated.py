"""Write tests/reference/paired_simulated.csv, the pairwise answers of paired_simulated.R:
python tests/reference/make_paired_simulated.py (from the project root).

:func:`simulate_answers` draws answers of the pairwise task from the ordinal paired-comparison
model of glidemed.analysis.paired: every rater answers every prompt for each pair of
conditions, sides at random; latent = ability(right) - ability(left) + position bias +
rater effect + prompt effect + logistic noise, cut at symmetric thresholds (the middle level
a tie). bench/bench_pairwise.py uses it too."""

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ABILITY = {"sd15": 0.0, "sdxl": 0.5, "glide": -0.7}
STYLES = ["xray", "ct", "photo", "poster"]  # xray and ct: radiology
CUTS = {3: [-0.6, 0.6], 5: [-2.2, -0.5, 0.5, 2.2]}  # symmetric thresholds of the latent scale


def simulate_answers(n_raters: int, n_prompts: int, aspects: tuple[str, ...] = ("style",),
                     n_levels: int = 3, bias: float = 0.35, sd_rater: float = 0.5,
                     sd_prompt: float = 0.3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = list(ABILITY)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    frames = []
    for aspect in aspects:
        rater, prompt, pair = (a.ravel() for a in np.meshgrid(
            np.arange(n_raters), np.arange(n_prompts), np.arange(len(pairs)), indexing="ij"))
        swap = rng.random(len(pair)) < 0.5
        first = np.array([p[0] for p in pairs])[pair]
        second = np.array([p[1] for p in pairs])[pair]
        left, right = np.where(swap, second, first), np.where(swap, first, second)
        ability = pd.Series(ABILITY)
        latent = (ability[right].to_numpy() - ability[left].to_numpy() + bias
                  + rng.normal(0, sd_rater, n_raters)[rater]
                  + rng.normal(0, sd_prompt, n_prompts)[prompt] + rng.logistic(size=len(pair)))
        choice = (latent[:, None] > np.array(CUTS[n_levels])[None, :]).sum(axis=1)
        middle = n_levels // 2
        winner = np.where(choice < middle, left, np.where(choice > middle, right, ""))
        frames.append(pd.DataFrame({
            "rater": [f"r{r:02d}" for r in rater], "prompt_id": [f"p{p:03d}" for p in prompt],
            "style": np.array(STYLES)[prompt % len(STYLES)], "aspect": aspect,
            "left": left, "right": right, "choice": choice, "winner": winner}))
    return pd.concat(frames, ignore_index=True)


if __name__ == "__main__":
    simulate_answers(12, 40, n_levels=5, seed=7).to_csv(
        ROOT / "tests/reference/paired_simulated.csv", index=False)
