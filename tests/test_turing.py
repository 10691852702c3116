"""The visual Turing test: study settings, survey build and blinding, analysis."""

from __future__ import annotations

import base64
import collections
import dataclasses
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from glidemed.analysis import mrmc as orh
from glidemed.analysis.pipeline import run_analysis
from glidemed.analysis.turing import compare_conditions, roc_points, wilson_interval
from glidemed.archive import archive_study, verify_archive
from glidemed.errors import StudyError, SurveyError
from glidemed.paths import analysis_dir
from glidemed.simulate import make_params
from glidemed.simulate.responses import simulate_study
from glidemed.study import load_study, parse_study
from glidemed.survey.audit import audit_survey
from glidemed.survey.build import build_survey
from glidemed.survey.images import encode_image
from glidemed.survey.encoding import encoding_problems
from tests.conftest import ROOT
from tests.survey_factory import generated

DEMO = ROOT / "surveys" / "turing-demo" / "study.toml"
WILSON = json.loads((ROOT / "tests" / "reference" / "turing_wilson.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("turing")
    with pytest.MonkeyPatch.context() as mp:
        study = generated(DEMO, root / "build", mp)
        report = build_survey(study, workers=1)
        key = json.loads(report.key_path.read_text())
        html = (report.survey_dir / "index.html").read_text()
        data = json.loads(html.split('id="survey-data">', 1)[1].split("</script>", 1)[0])
        # a strong effect: the build draws new tokens, so the simulated data differ per run
        params = make_params(None, ["condition:model-a=5", "condition:model-b=0.5"])
        simulate_study(study, 6, seed=1, params=params)  # into build/<study>/responses
        summary = run_analysis(study, n_boot=300)  # dispatches to the turing analysis
        yield {"study": study, "report": report, "key": key, "data": data, "root": root,
               "summary": summary, "analysis": analysis_dir(study)}


def test_study_settings_are_checked():
    text = DEMO.read_text()
    with pytest.raises(StudyError, match="real_share: expected a share between 0 and 1"):
        parse_study(text.replace("real_share = 0.5", "real_share = 1.5"), DEMO)
    with pytest.raises(StudyError, match="survey.controls: a turing task needs a condition of real images"):
        parse_study(text.replace('controls = ["reference"]', "controls = []"), DEMO)
    with pytest.raises(StudyError, match="survey.task: unknown task 'quiz'"):
        parse_study(text.replace('task = "turing"', 'task = "quiz"'), DEMO)
    study = load_study(DEMO)
    turing = study.survey.blocks[0].settings
    assert turing.levels[0] == "definitely real" and turing.first_value == 1


def test_build_mixes_conditions_as_the_study_says(demo):
    key, data = demo["key"], demo["data"]
    counts = collections.Counter(p["condition"] for p in key["panels"].values())
    assert counts == {"model-a": 12, "model-b": 12, "reference": 24}  # real_share 0.5
    assert [b["task"] for b in key["blocks"]] == ["turing"]
    assert all(len(p["images"]) == 1 for p in key["panels"].values())
    assert all(p["control"] == (p["condition"] == "reference") for p in key["panels"].values())
    assert {p["text"] for p in data["panels"]} == {"Is this image real or generated?"}
    (block,) = data["blocks"]
    assert block["images_per_panel"] == 1 and block["first_value"] == 1
    assert [a["key"] for a in block["aspects"]] == ["realness"]
    assert block["aspects"][0]["levels"][-1] == "definitely generated"
    assert block["heading"] == "Real or generated?"
    assert demo["report"].audit.ok


def test_rebuild_keeps_tokens_and_choice(demo, monkeypatch):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(demo["root"] / "build"))
    again = build_survey(demo["study"], workers=1)
    key = json.loads(again.key_path.read_text())
    assert key["panels"] == demo["key"]["panels"] and again.build_hash == demo["report"].build_hash


def test_not_enough_real_images(demo, monkeypatch):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(demo["root"] / "build"))
    (block,) = demo["study"].survey.blocks
    block = dataclasses.replace(block, settings=dataclasses.replace(block.settings, real_share=0.8))
    study = dataclasses.replace(demo["study"], survey=dataclasses.replace(demo["study"].survey, blocks=[block]))
    with pytest.raises(SurveyError, match=r"have 24 real image\(s\), 96 wanted for real_share 0.8"):
        build_survey(study, workers=1, out_dir=demo["root"] / "other", key_folder=demo["root"] / "other-key")


def _panel_bytes(data: dict) -> dict[str, bytes]:
    return {t: base64.b64decode(src.split(",", 1)[1]) for t, src in data["images"].items()}


def test_audit_compares_real_and_generated_encoding(demo):
    images = _panel_bytes(demo["data"])
    assert encoding_problems(demo["key"], images) == []
    real = next(next(iter(p["images"])) for p in demo["key"]["panels"].values() if p["control"])
    buffer = io.BytesIO()
    Image.open(io.BytesIO(images[real])).save(buffer, "JPEG", quality=40)  # another quantisation
    images[real] = buffer.getvalue()
    problems = encoding_problems(demo["key"], images)
    assert len(problems) == 1 and "1 real and 0 generated image(s)" in problems[0]


def test_audit_of_a_tampered_survey_folder_fails(demo, tmp_path):
    folder = tmp_path / "survey"
    folder.mkdir()
    html = (demo["report"].survey_dir / "index.html").read_text()
    real = next(next(iter(p["images"])) for p in demo["key"]["panels"].values() if p["control"])
    src = demo["data"]["images"][real]
    other = encode_image(demo["study"].folder / "reference" / "ref-00-0.jpg",
                         dataclasses.replace(demo["report"].encoding, quality=30))
    (folder / "index.html").write_text(html.replace(src, "data:image/jpeg;base64," + base64.b64encode(other).decode()))
    report = audit_survey(demo["study"], folder, demo["key"], {})
    assert any("real (control) images are encoded differently" in p for p in report.problems)


# --------------------------------------------------------------------------- analysis

def test_analysis_outputs_and_summary(demo):
    summary, out = demo["summary"], demo["analysis"]
    assert summary["task"] == "turing" and summary["counts"]["raters"] == 6
    assert summary["options"]["bootstrap"] == 300 and summary["options"]["flagged"] == "exclude"
    for name in ("report.html", "turing_auc.csv", "turing_accuracy.csv", "turing_comparisons.csv",
                 "turing_reader_auc.csv", "turing_mrmc.csv", "figures/roc.png", "figures/roc.svg"):
        assert (out / name).is_file(), name
    rrrc = {c["condition"]: c for c in summary["conditions"] if c["analysis"] == "rrrc"}
    assert set(rrrc) == {"model-a", "model-b"}
    assert rrrc["model-a"]["auc"] > 0.6 and rrrc["model-a"]["p_vs_half"] < 0.05  # the simulated effects
    assert rrrc["model-a"]["auc"] > rrrc["model-b"]["auc"]
    assert summary["comparisons"][0]["method"] == "bootstrap over readers and images"
    from bs4 import BeautifulSoup

    soup = BeautifulSoup((out / "report.html").read_text(), "html.parser")
    assert soup.find(id="table-turing-auc") is not None and soup.find(id="fig-roc").img["src"].startswith("data:image/png")
    # the title once, and simulated responses named as such
    title = demo["study"].title
    assert soup.find("h1").get_text() == f"{title} (simulated responses)"
    assert soup.find(id="simulated-banner") is not None and summary["simulated_files"] == 6
    # the answer first: per condition, could readers tell? (AUC with CI against 0.5)
    findings = [li.get_text() for li in soup.find(id="key-results").find_all("li")]
    labels = {c.name: c.label or c.name for c in demo["study"].conditions}
    assert findings[0].startswith(f"{labels['model-a']}: readers could tell its images from real ones: "
                                  f"AUC {rrrc['model-a']['auc']:.2f} (95% CI {rrrc['model-a']['ci_low']:.2f}")
    assert [k["text"] for k in summary["key_results"]] == findings
    methods = (out / "methods.md").read_text()
    assert "Obuchowski NA, Rockette HE" in methods and findings[0] in methods
    assert (out / "figures" / "roc.pdf").read_bytes().startswith(b"%PDF")
    assert list(pd.read_csv(out / "figures" / "roc.csv").columns) == ["condition", "fpr", "tpr"]
    # one condition's rows of the MRMC table give `glidemed mrmc` the same analysis
    table = orh.read_table(out / "turing_mrmc.csv")
    again = orh.mrmc(table[table["treatment"] == "model-b"], incomplete="drop-readers")
    assert again.rrrc.means.iloc[0]["ci_low"] == pytest.approx(rrrc["model-b"]["ci_low"], abs=1e-12)


def test_condition_auc_is_the_mean_reader_auc_from_the_definition(demo):
    table = pd.read_csv(demo["analysis"] / "turing_mrmc.csv", dtype={"reader": str, "case": str})
    summary = demo["summary"]
    left_out = {c["condition"]: {entry.split(": ")[0] for entry in (c["left_out_readers"] or "").split("; ") if entry}
                for c in summary["conditions"] if c["analysis"] == "rrrc"}
    for condition in ("model-a", "model-b"):
        part = table[table["treatment"] == condition]
        aucs = [roc_auc_score(rows["truth"], rows["rating"]) for reader, rows in part.groupby("reader")
                if reader not in left_out[condition]]
        auc = next(c["auc"] for c in summary["conditions"] if c["condition"] == condition and c["analysis"] == "rrrc")
        assert auc == pytest.approx(np.mean(aucs), abs=1e-12)


def test_accuracy_counts_and_wilson_intervals(demo):
    acc = pd.read_csv(demo["analysis"] / "turing_accuracy.csv", dtype={"reader": str})
    assert (acc["n"] + acc["unsure"] == 36).all()  # 12 generated + 24 real per condition
    for case in WILSON["cases"]:
        low, high = wilson_interval(case["x"], case["n"])
        assert (low, high) == pytest.approx((case["low"], case["high"]), abs=1e-9)


def _table(rng, readers=4, n_a=10, n_b=10, n_real=14, shift_a=1.0, shift_b=1.0, paired=False):
    rows = []
    real = [f"r{i}" for i in range(n_real)]
    a = [f"a{i}" for i in range(n_a)]
    b = a if paired else [f"b{i}" for i in range(n_b)]
    for j in range(readers):
        for case in real:
            rows.append((f"R{j}", "reference", case, 0, rng.normal()))
        for cond, cases, shift in (("A", a, shift_a), ("B", b, shift_b)):
            for case in cases:
                rows.append((f"R{j}", cond, case, 1, rng.normal() + shift))
    return pd.DataFrame(rows, columns=["reader", "condition", "case", "truth", "rating"])


def test_unpaired_comparison_bootstrap_is_calibrated_in_direction():
    rng = np.random.default_rng(3)
    table = _table(rng, shift_a=2.0, shift_b=0.0)
    result = compare_conditions(table, "A", "B", n_boot=400, seed=1)
    assert result["method"].startswith("bootstrap") and result["difference"] > 0.2
    assert result["ci_low"] > 0 and result["p"] < 0.05
    same = compare_conditions(_table(rng, shift_a=1.0, shift_b=1.0), "A", "B", n_boot=400, seed=1)
    assert same["ci_low"] < 0 < same["ci_high"]


def test_paired_comparison_is_orh():
    rng = np.random.default_rng(4)
    table = _table(rng, shift_a=1.5, shift_b=0.5, paired=True)
    result = compare_conditions(table, "A", "B")
    assert result["method"] == "ORH (paired cases)"
    both = table[table["condition"] != "reference"]
    direct = orh.mrmc(pd.concat([both.rename(columns={"condition": "treatment"}),
                                 *[table[table["truth"] == 0].assign(condition=c).rename(columns={"condition": "treatment"})
                                   for c in ("A", "B")]]))
    assert result["difference"] == pytest.approx(direct.rrrc.differences.iloc[0]["estimate"])
    assert result["p"] == pytest.approx(direct.rrrc.p)


def test_roc_points_end_at_the_corners():
    fpr, tpr = roc_points(np.array([1, 2, 3, 4, 5, 3.0]), np.array([False, False, True, True, True, False]))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_pseudonymized_archive_of_a_turing_study_verifies(demo, tmp_path):
    zip_path = archive_study(demo["study"], tmp_path / "turing.zip", pseudonymize=True, images=False)
    report = verify_archive(zip_path)
    assert report.ok and report.reran, report.hash_problems + report.differences


def test_cli_analyze_of_a_turing_study(demo, tmp_path):
    from click.testing import CliRunner

    from glidemed.cli import main

    result = CliRunner().invoke(main, ["analyze", str(demo["study"].path), "--out",
                                       str(tmp_path / "out"), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "6 rater(s)" in result.output and (tmp_path / "out" / "report.html").is_file()


def test_one_reader_gives_every_per_reader_output_and_says_what_needs_more(demo, tmp_path):
    from click.testing import CliRunner

    from glidemed.cli import main

    one = sorted((demo["root"] / "build").rglob("responses/*.json"))[0]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["analyze", str(demo["study"].path), str(one), "--out", str(out),
                                       "--bootstrap", "0", "--allow-simulated"])
    assert result.exit_code == 0, result.output
    assert "1 rater(s)" in result.output and "Traceback" not in result.output
    assert "not analysed: MRMC (ORH) AUC of model-a: not estimable: 1 reader(s): random-reader " \
           "analyses need at least 2" in result.output
    assert "not analysed: comparison model-a vs model-b: not estimable" in result.output
    for name in ("ledger.csv", "report.html", "turing_reader_auc.csv", "turing_accuracy.csv",
                 "turing_auc.csv", "turing_mrmc.csv", "figures/roc.png", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["analyses_not_done"]) == 3  # two conditions' ORH analyses, one comparison
    reader = pd.read_csv(out / "turing_reader_auc.csv")
    mrmc_table = pd.read_csv(out / "turing_mrmc.csv")
    for condition, rows in reader.groupby("condition"):
        part = mrmc_table[mrmc_table["treatment"] == condition]
        assert rows["auc"].iloc[0] == pytest.approx(roc_auc_score(part["truth"], part["rating"]), abs=1e-12)
    assert len(pd.read_csv(out / "turing_accuracy.csv")) == 2
    assert "analyses not done" in (out / "report.html").read_text()


def test_no_usable_answer_still_writes_the_ledger(demo, tmp_path):
    from click.testing import CliRunner

    from glidemed.cli import main

    bad = tmp_path / "responses" / "broken.json"
    bad.parent.mkdir()
    bad.write_text('{"schema": "glidemed-response/1"')
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["analyze", str(demo["study"].path), str(bad.parent), "--out",
                                       str(out), "--bootstrap", "0"])
    assert result.exit_code == 1  # as for every task: the reason of each file, in the ledger
    assert "no usable ratings in 1 response file(s)" in result.output
    assert f"every file's reason is in {out / 'ledger.csv'}" in " ".join(result.output.split())
    ledger = pd.read_csv(out / "ledger.csv")
    assert list(ledger["status"]) == ["rejected"] and "truncated JSON" in ledger["reason"][0]


def test_turing_ledger_neutralises_spreadsheet_formulas(demo, tmp_path):
    """A rater id that a spreadsheet would run as a formula reaches ledger.csv inert."""
    from glidemed.analysis.pipeline import run_analysis

    source = next((demo["root"] / "build").rglob("response-*.json"))
    data = json.loads(source.read_text())
    data["rater"]["id"] = '=HYPERLINK("http://example.org","x")'
    hostile = tmp_path / "responses" / "hostile.json"
    hostile.parent.mkdir()
    hostile.write_text(json.dumps(data))
    run_analysis(demo["study"], [hostile, *sorted((demo["root"] / "build").rglob("response-*.json"))],
                 tmp_path / "out", key=demo["key"], n_boot=0, allow_simulated=True)
    ledger = pd.read_csv(tmp_path / "out" / "ledger.csv")
    assert "'=HYPERLINK(\"http://example.org\",\"x\")" in set(ledger["rater"])


def test_a_condition_without_real_images_rated_is_listed_not_fatal(demo):
    from glidemed.analysis.ingest import ingest_responses
    from glidemed.analysis.turing import analyse_turing

    study, key = demo["study"], demo["key"]
    ratings, ledger, _ = ingest_responses(study, key, [demo["root"] / "build"], allow_simulated=True)
    real = {t for t, p in key["panels"].items() if p.get("control")}
    results = analyse_turing(study, study.survey.blocks[0].settings, ratings[~ratings["panel"].isin(real)],
                             key, ledger, "test", n_boot=0)
    assert results.conditions == [] and results.reader_aucs.empty and results.comparisons.empty
    assert len(results.not_done) == 2 and all("has only positive cases" in n for n in results.not_done)
