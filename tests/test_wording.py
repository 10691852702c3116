"""Messages that name what the user gave: a --out that is a file, an archive's member."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from glidemed.archive import verify_archive
from glidemed.cli import main
from glidemed.study import load_study
from response_factory import make_key, make_response

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "surveys" / "demo" / "study.toml"


@pytest.mark.parametrize("below", ["", "/sub"])
def test_out_that_is_a_file_is_named_as_such(tmp_path, below):
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(main, ["generate", str(DEMO), "--out", f"{tmp_path}/afile{below}"],
                                env={"GLIDEMED_BUILD_DIR": str(tmp_path / "build")})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{tmp_path / 'afile'} is a file, not a folder" in result.output
    assert "File exists" not in result.output and "Not a directory" not in result.output


def test_verify_names_the_member_not_a_temporary_path(tmp_path):
    study = load_study(DEMO)
    key = make_key(study)
    members = {"study/study.toml": DEMO.read_bytes(),
               "analysis/summary.json": json.dumps({"options": {}}).encode(),
               "responses/r.json": json.dumps(make_response(study, key, "r")).encode(),
               "key/key.json": b"{ not json"}
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("SHA256SUMS", "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                                               for n, d in members.items()))
    report = verify_archive(path)  # a broken member is a finding, not an abort
    assert not report.ok
    [message] = [d for d in report.differences if "key/key.json" in d]
    assert message.startswith("re-run failed: key/key.json: cannot read the key")
    assert "/tmp" not in message
