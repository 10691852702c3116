"""Foundation speed: loading the paper's study, and the runner's own overhead per image.

Targets: load + validate + expand kather2022 under 0.2 s; runner overhead with the
placeholder generator under 5 ms per image over 2,176 images (272 prompts x 8).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from glidemed.generate import placeholder  # noqa: E402
from glidemed.generate.runner import run_generation  # noqa: E402
from glidemed.study import Condition, load_study  # noqa: E402


def time_study_load(repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        study = load_study(ROOT / "surveys" / "kather2022")
        study.prompts()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_runner_overhead() -> tuple[int, float, float]:
    """Total run time minus the time spent inside the generator's drawing."""
    study = load_study(ROOT / "surveys" / "kather2022")
    study = dataclasses.replace(study, conditions=[Condition("one", "placeholder", {"size": 256})])
    drawing = {"seconds": 0.0}
    original = placeholder.PlaceholderGenerator.draw

    def timed_draw(self, seed):
        start = time.perf_counter()
        image = original(self, seed)
        drawing["seconds"] += time.perf_counter() - start
        return image

    placeholder.PlaceholderGenerator.draw = timed_draw
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        report = run_generation(study, Path(folder), progress=False)
        total = time.perf_counter() - start
        start = time.perf_counter()
        resumed = run_generation(study, Path(folder), progress=False)
        resume = time.perf_counter() - start
    placeholder.PlaceholderGenerator.draw = original
    assert report.made == 2176 and resumed.skipped == 2176
    return report.made, (total - drawing["seconds"]) / report.made, resume


if __name__ == "__main__":
    load = time_study_load()
    print(f"load+validate+expand kather2022 (272 prompts): {load * 1000:.1f} ms (target < 200 ms)")
    n, overhead, resume = time_runner_overhead()
    print(f"runner overhead, placeholder 256 px, {n} images: {overhead * 1000:.2f} ms/image "
          "(target < 5 ms; includes PNG encoding, hashing, fsync and manifest)")
    print(f"re-run with everything present (verify {n} hashes): {resume:.2f} s")
