"""The pairwise task and surveys of several blocks: settings, build, plan, analysis."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from glidemed.analysis.ingest import ingest
from glidemed.analysis.pipeline import run_analysis
from glidemed.errors import StudyError
from glidemed.paths import analysis_dir, responses_dir
from glidemed.simulate import make_params
from glidemed.simulate.responses import simulate_study
from glidemed.study import parse_study
from glidemed.survey.build import build_survey
from glidemed.survey.randomize import blocks_plan, key_plan, rater_plan
from tests.conftest import ROOT
from tests.survey_factory import generated

PAIRWISE = ROOT / "surveys" / "pairwise-demo" / "study.toml"
TURING = ROOT / "surveys" / "turing-demo" / "study.toml"


def page_data(report) -> dict:
    html = (report.survey_dir / "index.html").read_text()
    return json.loads(html.split('id="survey-data">', 1)[1].split("</script>", 1)[0])


@pytest.fixture(scope="module")
def pairwise(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairwise")
    with pytest.MonkeyPatch.context() as mp:
        study = generated(PAIRWISE, root / "build", mp)
        report = build_survey(study, workers=1)
        key = json.loads(report.key_path.read_text())
        params = make_params(None, ["condition:model-b=1.5", "condition:model-c=-1"])
        simulate_study(study, 8, seed=3, params=params)
        summary = run_analysis(study, n_boot=200)
        yield {"study": study, "report": report, "key": key, "data": page_data(report),
               "root": root, "summary": summary, "analysis": analysis_dir(study)}


def two_blocks_text() -> str:
    """The Turing demo as a survey of two blocks: real or generated first, then ratings."""
    text = TURING.read_text()
    head, rest = text.split("[survey]\n", 1)
    survey, turing = rest.split("[survey.turing]\n", 1)
    turing_settings, profile = turing.split("[[survey.profile]]", 1)
    survey = survey.replace('task = "turing"\n', "")
    head = head.replace("images_per_prompt = 2\n", "images_per_prompt = 2\nimages_per_panel = 2\n")
    return head + (
        "[survey]\n" + survey + "[[survey.profile]]" + profile
        + '\n[[survey.blocks]]\ntask = "turing"\ninstructions = "First: real or generated?"\n'
        + "[survey.blocks.turing]\n" + turing_settings
        + '\n[[survey.blocks]]\ntask = "ratings"\ninstructions = "Now rate the images."\n')


# --------------------------------------------------------------------------- settings

def problems(text: str) -> list[str]:
    with pytest.raises(StudyError) as info:
        parse_study(text, PAIRWISE)
    return info.value.problems


def test_bad_pairwise_settings_are_named_one_line_each():
    text = PAIRWISE.read_text()
    bad = text.replace('conditions = ["model-a", "model-b", "model-c"]', 'conditions = ["model-a", "modle-b"]')
    assert any(p.startswith("survey.pairwise.conditions: unknown condition 'modle-b'") for p in problems(bad))
    one = text.replace('conditions = ["model-a", "model-b", "model-c"]', 'conditions = ["model-a"]')
    assert any("expected at least two conditions to compare, got 1" in p for p in problems(one))
    even = text.replace('levels = ["left is better", "both equal", "right is better"]',
                        'levels = ["left", "right"]')
    assert any(p.startswith("survey.pairwise.levels: expected an odd number of levels") for p in problems(even))
    many = text.replace("pairs_per_prompt = 0", "pairs_per_prompt = 4")
    assert any(p.startswith("survey.pairwise.pairs_per_prompt: expected 0..3") for p in problems(many))


def test_pairwise_refuses_a_control_and_blocks_an_unknown_task():
    text = TURING.read_text().replace('task = "turing"', 'task = "pairwise"')
    text = text.replace("[survey.turing]", '[survey.pairwise]\nconditions = ["model-a", "reference"]\n[survey.x]')
    found = problems(text)
    assert any("'reference' is a control" in p for p in found)
    blocks = two_blocks_text().replace('task = "ratings"\ninstructions', 'task = "ratngs"\ninstructions')
    found = problems(blocks)
    assert any(p.startswith("survey.blocks[1].task: unknown task 'ratngs'; did you mean ratings?")
               for p in found), found


def test_two_blocks_parse_in_order():
    study = parse_study(two_blocks_text(), TURING)
    assert [b.task for b in study.survey.blocks] == ["turing", "ratings"]
    assert study.survey.blocks[0].settings.real_share == 0.5
    assert study.survey.blocks[1].instructions == "Now rate the images."


# --------------------------------------------------------------------------- plan

def test_blocks_plan_keeps_the_first_block_as_one_block_and_per_group_limits():
    images = [[f"i{p}a", f"i{p}b"] for p in range(9)]
    alone = rater_plan("h" * 64, "r1", images, 2, 1)
    both = blocks_plan("h" * 64, "r1", [
        {"panel_images": images, "images_per_panel": 2, "repeat_panels": 1},
        {"panel_images": images[:3], "images_per_panel": 2, "repeat_panels": 0}])
    assert both[:len(alone)] == alone
    assert sorted(e["panel"] for e in both[len(alone):]) == [9, 10, 11]
    groups = [p // 3 for p in range(9)]  # three prompts of three pairs
    some = rater_plan("h" * 64, "r1", images, 2, 0, groups, 1)
    assert sorted(groups[e["panel"]] for e in some) == [0, 1, 2]


# --------------------------------------------------------------------------- build and analysis

def test_pairwise_build_shows_two_conditions_of_one_prompt(pairwise):
    key, data = pairwise["key"], pairwise["data"]
    assert len(key["panels"]) == 12 * 3  # 12 prompts x 3 pairs
    for panel in key["panels"].values():
        assert len(panel["images"]) == 2 and "condition" not in panel
        assert len(set(panel["image_conditions"].values())) == 2
    (block,) = data["blocks"]
    assert block["image_labels"] == ["Left", "Right"] and block["first_value"] == 1
    assert [a["levels"] for a in block["aspects"]] == [["left is better", "both equal", "right is better"]] * 2
    assert pairwise["report"].audit.ok


def test_pairwise_unblinding_follows_the_sides_each_rater_saw(pairwise):
    study, key = pairwise["study"], pairwise["key"]
    answers, ledger, _ = ingest(study, key, [responses_dir(study)], allow_simulated=True)
    table = answers.table(0)
    response = json.loads(next(responses_dir(study).glob("response-*.json")).read_text())
    plan = key_plan(key, response["rater"]["id"])
    first = next(p for p in response["panels"] if p["position"] == 0)
    entry = key["panels"][first["token"]]
    row = table[(table["rater"] == response["rater"]["id"]) & (table["panel"] == first["token"])].iloc[0]
    assert [row["left"], row["right"]] == [entry["image_conditions"][t] for t in plan[0]["images"]]
    choice = first["ratings"][row["aspect"]]
    assert row["choice"] == choice
    assert row["winner"] == ("" if choice == 1 else row["right"] if choice == 2 else row["left"])
    assert set(ledger["status"]) <= {"accepted", "partial"}


def test_pairwise_analysis_recovers_the_simulated_order(pairwise):
    out, summary = pairwise["analysis"], pairwise["summary"]
    bt = pd.read_csv(out / "pairwise_bt.csv")
    overall = bt[(bt["group"] == "all")].set_index(["aspect", "condition"])["ability"]
    for aspect in ("style", "content"):
        assert overall[(aspect, "model-b")] > 0 > overall[(aspect, "model-c")]
    assert set(bt["group"]) == {"all", "radiology", "other styles"}
    rates = pd.read_csv(out / "pairwise_win_rates.csv")
    mirrored = rates.merge(rates, left_on=["aspect", "group", "condition", "opponent"],
                           right_on=["aspect", "group", "opponent", "condition"])
    assert ((mirrored["win_rate_x"] + mirrored["win_rate_y"]) - 1).abs().max() < 1e-12
    model = pd.read_csv(out / "pairwise_model.csv")
    assert set(model.loc[model["kind"] == "position_bias", "aspect"]) == {"style", "content"}
    answers = pd.read_csv(out / "pairwise_answers.csv", keep_default_na=False)
    assert list(answers.columns[:8]) == ["rater", "prompt_id", "style", "aspect", "left", "right",
                                         "choice", "winner"]
    for name in ("report.html", "ledger.csv", "figures/pairwise_leaderboard.png",
                 "figures/pairwise_leaderboard.svg", "figures/pairwise_win_rates.svg"):
        assert (out / name).is_file(), name
    assert summary["blocks"] == ["pairwise"] and summary["pairwise"]["conditions"][0] == "model-a"


def test_a_pair_not_in_the_raters_plan_is_rejected(pairwise, tmp_path):
    study, key = pairwise["study"], pairwise["key"]
    source = next(responses_dir(study).glob("response-*.json"))
    data = json.loads(source.read_text())
    panel = data["panels"][0]
    panel["images"] = panel["images"][::-1]  # the sides swapped after the fact
    path = tmp_path / "swapped.json"
    path.write_text(json.dumps(data))
    _, ledger, _ = ingest(study, key, [path], allow_simulated=True)
    assert ledger["status"].tolist() == ["flagged"]
    assert "images" in ledger["reason"][0]


def test_two_block_survey_builds_one_page_and_one_key(tmp_path, monkeypatch):
    path = tmp_path / "study" / "study.toml"
    path.parent.mkdir()
    path.write_text(two_blocks_text())
    for item in (TURING.parent).iterdir():
        if item.is_dir():
            (path.parent / item.name).symlink_to(item)
    study = generated(path, tmp_path / "build", monkeypatch)
    report = build_survey(study, workers=1)
    key, data = json.loads(report.key_path.read_text()), page_data(report)
    assert [b["task"] for b in key["blocks"]] == [b["task"] for b in data["blocks"]] == ["turing", "ratings"]
    sizes = [b["panels"] for b in data["blocks"]]
    assert sum(sizes) == len(data["panels"]) == len(key["panels"])
    first = [p["token"] for p in data["panels"][:sizes[0]]]
    assert {key["panels"][t]["block"] for t in first} == {0}
    assert report.audit.ok


def test_archive_of_a_pairwise_study_verifies_and_reruns(pairwise, tmp_path):
    from glidemed.archive import archive_study, verify_archive

    zip_path = archive_study(pairwise["study"], tmp_path / "pairwise.zip", pseudonymize=True,
                             images=False)
    report = verify_archive(zip_path)
    assert report.ok and report.reran, report.hash_problems + report.differences
