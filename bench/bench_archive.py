"""Archive benchmark: archive and verify the paper-size study (images included).

272 prompts x 8 images at 256 px (placeholder generator, one condition), the survey
as a single file, 3 simulated response files and their analysis. Target: archive +
verify under 30 s on 2 cores. The archive matches the responses against the ledger and
writes the RO-Crate; verify streams every member, checks SHA256SUMS, the RO-Crate, the
images against the manifest and the survey against build.json, re-runs the whole
analysis and compares its numbers and report. Also timed: verify --hashes-only.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_survey import paper_study  # noqa: E402

from glidemed import paths  # noqa: E402
from glidemed.analysis.pipeline import run_analysis  # noqa: E402
from glidemed.archive import archive_study, verify_archive  # noqa: E402
from glidemed.generate.runner import run_generation  # noqa: E402
from glidemed.simulate import simulate_responses  # noqa: E402
from glidemed.study import load_study  # noqa: E402
from glidemed.survey.build import build_survey  # noqa: E402
from glidemed.survey.key import load_key  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["GLIDEMED_BUILD_DIR"] = str(root / "build")
        study = load_study(paper_study(root))
        run_generation(study, paths.images_dir(study), progress=False)
        build_survey(study)
        key = load_key(paths.key_dir(study) / "key.json")
        simulate_responses(study, key, 3, paths.responses_dir(study), seed=1)
        run_analysis(study, seed=1)
        start = time.perf_counter()
        zip_path = archive_study(study)
        archived = time.perf_counter() - start
        start = time.perf_counter()
        report = verify_archive(zip_path)
        verified = time.perf_counter() - start
        start = time.perf_counter()
        hashes = verify_archive(zip_path, rerun=False)
        hashes_only = time.perf_counter() - start
        size = zip_path.stat().st_size / 1e6
    print(f"archive (ledger match + RO-Crate): {archived:.1f} s, {size:.1f} MB, "
          f"{report.checked_files} files, {report.facts.get('images_checked', 0)} images")
    print(f"verify --hashes-only (SHA256SUMS, RO-Crate, manifest, build.json): {hashes_only:.1f} s, "
          f"ok={hashes.ok}")
    print(f"verify (all checks + analysis re-run + report): {verified:.1f} s, ok={report.ok}")
    print(f"archive + verify: {archived + verified:.1f} s (target < 30 s)")


if __name__ == "__main__":
    main()
