"""Check glidemed's MRMC analysis on the Franken et al. (1992) data against the published
OR-DBM MRMC 2.51 output (cov2 < cov3 there, so the FRRC constraint binds):

    python tests/reference/check_franken.py franken.csv

franken.csv: MRMCaov's ``Franken`` data set (columns reader, treatment, case, truth,
rating), e.g. from R: ``write.csv(MRMCaov::Franken, "franken.csv", row.names = FALSE)``.
Prints "matches" or the first difference, and exits 1 on a difference.
"""

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
sys.modules["tests"] = types.ModuleType("tests")  # this folder, not an installed 'tests'
sys.modules["tests"].__path__ = [str(ROOT / "tests")]

from test_mrmc import check_franken  # noqa: E402

if __name__ == "__main__":
    try:
        check_franken(Path(sys.argv[1]))
    except AssertionError as exc:
        print(f"differs from OR-DBM MRMC 2.51: {exc}")
        sys.exit(1)
    print("matches OR-DBM MRMC 2.51 on the Franken data")
