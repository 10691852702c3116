"""The panel plan: one panel per prompt x condition, opaque tokens, stable across rebuilds."""

from __future__ import annotations

import pytest

from glidemed.errors import SurveyError
from glidemed.study import load_study
from glidemed.survey import panels as panels_module
from glidemed.survey.key import TOKEN_RE, KeyPanel
from glidemed.survey.panels import TokenMaker, plan_panels, survey_conditions
from survey_factory import CONTROL_CONDITION


def records_for(study, skip=()):
    return {(c.name, p.id, i): {"file": f"{c.name}/{p.id}/{i:02d}.png", "width": 32, "height": 32}
            for c in study.conditions for p in study.prompts()
            for i in range(study.images_per_prompt) if (c.name, p.id, i) not in skip}


def as_key(plan):
    """The KeyPanels of a plan, by token (what a rebuild reuses)."""
    return {p.token: KeyPanel(p.token, p.prompt.id, {im.token: im.record["file"] for im in p.images},
                              p.condition) for p in plan.panels}


def test_one_panel_per_prompt_and_condition(make_study):
    study = load_study(make_study())
    plan = plan_panels(study, records_for(study))
    assert len(plan.panels) == 16 and plan.conditions == ["alpha", "beta"]
    assert [p.token for p in plan.panels] == sorted(p.token for p in plan.panels)
    tokens = [p.token for p in plan.panels] + [i.token for p in plan.panels for i in p.images]
    assert len(set(tokens)) == len(tokens) == 16 + 64
    assert all(TOKEN_RE.match(t) and "alpha" not in t.lower() for t in tokens)
    for panel in plan.panels:
        assert [i.token for i in panel.images] == sorted(i.token for i in panel.images)


def test_tokens_survive_a_rebuild(make_study):
    study = load_study(make_study())
    first = plan_panels(study, records_for(study))
    again = plan_panels(study, records_for(study), as_key(first))
    assert as_key(again) == as_key(first)
    fresh = plan_panels(study, records_for(study))
    assert not set(as_key(fresh)) & set(as_key(first))


def test_missing_images(make_study):
    study = load_study(make_study())
    records = records_for(study, skip={("beta", "xray.lungs.short", 2)})
    with pytest.raises(SurveyError, match=r"1 panel\(s\).*beta/xray.lungs.short: image\(s\) 2"):
        plan_panels(study, records)
    plan = plan_panels(study, records, leave_out_missing=True)
    assert len(plan.panels) == 15
    assert plan.left_out == [{"prompt_id": "xray.lungs.short", "condition": "beta",
                              "reason": "image(s) 2 missing or corrupt"}]


def test_survey_conditions_selection(make_study):
    study = load_study(make_study(extra='[survey]\nconditions = ["beta"]\n'))
    assert survey_conditions(study) == ["beta"]
    plan = plan_panels(study, records_for(study))
    assert {p.condition for p in plan.panels} == {"beta"}


def test_token_maker_skips_forbidden_words(monkeypatch):
    draws = iter("xxALPHAxxxxx" "abcdefghijkl")
    monkeypatch.setattr(panels_module.secrets, "choice", lambda alphabet: next(draws))
    assert TokenMaker(set(), ["alpha"])() == "abcdefghijkl"


def test_control_without_any_image_is_reported(make_study, tmp_path):
    (tmp_path / "refs").mkdir()
    study = load_study(make_study(folder=tmp_path, extra=CONTROL_CONDITION + """
        [survey]
        controls = ["real"]
        """))
    records = {k: r for k, r in records_for(study).items() if k[0] != "real"}
    with pytest.raises(SurveyError, match="real: no control images at all"):
        plan_panels(study, records)
    plan = plan_panels(study, records, leave_out_missing=True)
    assert {p.condition for p in plan.panels} == {"alpha", "beta"}
    assert plan.left_out == [{"prompt_id": "*", "condition": "real",
                              "reason": "no control images at all"}]
