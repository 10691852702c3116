"""50 raters posting partial and final saves to one `glidemed serve` at once (bounded in
count and time); afterwards `analyze` accounts for every rater and nothing is lost."""

from __future__ import annotations

import csv
import json
import threading

import httpx
import pytest
from click.testing import CliRunner
from conftest import SMALL_STUDY
from server_factory import ServedSurvey, partial_save
from survey_factory import generated

from glidemed.cli import main
from glidemed.fileio import sha256_bytes
from glidemed.paths import analysis_dir, received_dir
from glidemed.simulate import simulate_study
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key

pytestmark = pytest.mark.slow

RATERS = 50
SAVES = 4  # per rater: partial saves after 0, 1/4, 2/4, 3/4 of the answers (+1), then the complete file


def test_fifty_raters_at_once_lose_nothing(tmp_path, monkeypatch):
    study_path = tmp_path / "study" / "study.toml"
    study_path.parent.mkdir()
    study_path.write_text(SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2))
    study = generated(study_path, tmp_path / "build", monkeypatch)
    key = load_key(build_survey(study, single_file=False, workers=1).key_path)
    # complete responses with rater effects (as analyze's models expect of real raters)
    finals = [json.loads(p.read_text(encoding="utf-8"))
              for p in simulate_study(study, RATERS, tmp_path / "simulated", seed=5)]
    bodies = {}
    for final in finals:
        n = len(final["events"])
        saves = [partial_save(final, 1 + n * i // SAVES, i) for i in range(SAVES - 1)] + [final]
        bodies[final["rater"]["id"]] = [json.dumps(r).encode() for r in saves]
    replies: dict[str, list[int]] = {rater: [] for rater in bodies}
    failures: list[str] = []
    start = threading.Barrier(RATERS)

    def rater_session(index: int, rater: str) -> None:
        # each rater behind the (trusted, loopback) proxy has its own address
        headers = {"content-type": "application/json", "x-forwarded-for": f"10.0.1.{index}"}
        with httpx.Client(timeout=30) as client:
            start.wait()
            for body in bodies[rater]:  # each post ends with the server's reply (or an error)
                try:
                    reply = client.post(server.url + "api/responses", content=body, headers=headers)
                    replies[rater].append(reply.status_code)
                except httpx.HTTPError as exc:
                    failures.append(f"{rater}: {exc!r}")

    with ServedSurvey(study_path, tmp_path / "build") as server:
        threads = [threading.Thread(target=rater_session, args=(i, rater))
                   for i, rater in enumerate(bodies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert all(codes == [201] * SAVES for codes in replies.values()), replies
    files = sorted(received_dir(study).rglob("*.json"))
    assert len(files) == RATERS * SAVES
    assert {f.read_bytes() for f in files} == {b for saves in bodies.values() for b in saves}

    result = CliRunner().invoke(main, ["analyze", str(study_path), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert f"{RATERS} rater(s)" in result.output
    with open(analysis_dir(study) / "ledger.csv", newline="", encoding="utf-8") as handle:
        ledger = list(csv.DictReader(handle))
    assert len(ledger) == RATERS * SAVES
    used = {row["rater"]: row["sha256"] for row in ledger if row["status"] != "duplicate"}
    assert used == {rater: sha256_bytes(saves[-1]) for rater, saves in bodies.items()}
