"""Compare an analysis of the published ratings with what the paper reports.

    python surveys/kather2022/compare_with_paper.py build/kather2022/analysis

Prints, per style and aspect, the paper's median beside the one re-computed from
``prompt_medians.csv``, then whether every radiology style differs from every other
style (Mann-Whitney, two-sided, unadjusted, from ``pairwise.csv``) at the paper's level.
Exits 1 when anything differs from the paper.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

PUBLISHED = Path(__file__).resolve().parent / "published" / "paper_results.json"


def compare(analysis: Path, published: dict) -> tuple[list[str], bool]:
    """Lines to print, and whether every figure agrees with the paper."""
    medians = pd.read_csv(analysis / "prompt_medians.csv")
    pairs = pd.read_csv(analysis / "pairwise.csv")
    lines = [f"{'style':<14} {'aspect':<8} {'paper':>5} {'here':>5}"]
    agree = True
    for aspect, values in published["medians"].items():
        got = medians[medians["aspect"] == aspect].groupby("style")["score"].median()
        for style, paper in zip(published["styles"], values):
            here = got.get(style, float("nan"))
            same = here == paper
            agree &= bool(same)
            lines.append(f"{style:<14} {aspect:<8} {paper:>5g} {here:>5g}"
                         + ("" if same else "  DIFFERS"))
    radiology = set(published["radiology"])
    level = published["radiology_vs_other_p_below"]
    pairs = pairs[pairs["unit"] == "prompt_median"]
    across = pairs[pairs["a"].isin(radiology) != pairs["b"].isin(radiology)]
    for aspect, part in across.groupby("aspect"):
        worst = part["p_mw"].max()
        below = bool(worst < level) and len(part) == len(radiology) * (
            len(published["styles"]) - len(radiology))
        agree &= below
        lines.append(f"radiology vs each other style, {aspect}: {len(part)} comparisons, "
                     f"largest p = {worst:.2g} ({'all' if below else 'NOT all'} < {level})")
    lines.append("Agrees with the paper." if agree else "Differs from the paper.")
    return lines, agree


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    lines, agree = compare(Path(argv[0]), json.loads(PUBLISHED.read_text(encoding="utf-8")))
    print("\n".join(lines))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
