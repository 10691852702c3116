"""Pre-screen benchmark: the paper's 8 styles x 17 topics x 2 details x 3 variants x 4
images (surveys/kather2022-prompts with a placeholder condition of 256 px images), scored
with a tiny random-weight open_clip model on the CPU.

Prints the generation time apart, then the scoring-and-ranking time (target < 60 s on 2
cores) and a re-ranking by another metric with the embeddings cached (target < 5 s).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from tiny_clip import save_tiny_open_clip  # noqa: E402

from glidemed.generate.runner import run_generation  # noqa: E402
from glidemed.prescreen import prescreen_dir, run_prescreen  # noqa: E402
from glidemed.study import load_study  # noqa: E402

PLACEHOLDER = '[[conditions]]\nname = "placeholder"\ngenerator = "placeholder"\nparams = { size = 256 }\n'


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["GLIDEMED_BUILD_DIR"] = str(tmp / "build")
        text = (ROOT / "surveys" / "kather2022-prompts" / "study.toml").read_text(encoding="utf-8")
        text = re.sub(r"(?ms)^(# [^\n]*\n)*\[\[conditions\]\].*?(?=^\[\[styles\]\])", PLACEHOLDER + "\n", text)
        (tmp / "study").mkdir()
        (tmp / "study" / "study.toml").write_text(text, encoding="utf-8")
        study = load_study(tmp / "study" / "study.toml")
        clip = f"tiny=local-dir:{save_tiny_open_clip(tmp / 'clip')}"
        screen_images = 4
        import dataclasses

        screen = dataclasses.replace(study, images_per_prompt=screen_images)
        started = time.perf_counter()
        made = run_generation(screen, prescreen_dir(study) / "images", progress=False).made
        print(f"generation (placeholder, not a target): {made} images in "
              f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        report = run_prescreen(study, [clip], images=screen_images, keep=1, progress=False)
        print(f"scoring and ranking {len(study.prompts()) * screen_images} images with a tiny "
              f"CLIP: {time.perf_counter() - started:.1f} s on {os.cpu_count()} core(s) "
              f"(target < 60 s); {report.made} rendered in that run")
        started = time.perf_counter()
        again = run_prescreen(study, [clip], images=screen_images, keep=1, metric="clipscore",
                              progress=False)
        print(f"re-ranking by {again.metric}, embeddings cached: "
              f"{time.perf_counter() - started:.1f} s (target < 5 s)")


if __name__ == "__main__":
    main()
