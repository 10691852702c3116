"""Study files: parsing, validation (all problems at once), expansion, the paper's design."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from glidemed.cli import main
from glidemed.errors import StudyError
from glidemed.study import DEFAULT_LEVELS, load_study, parse_study, resolve_study_path
from conftest import ROOT, SMALL_STUDY

BASE = SMALL_STUDY.format(images_per_prompt=4, images_per_panel=2)


def problems_of(text: str) -> list[str]:
    with pytest.raises(StudyError) as info:
        parse_study(text, "x/study.toml")
    assert "x/study.toml" in str(info.value)
    return info.value.problems


def test_small_study_expands_in_order():
    study = parse_study(BASE)
    ids = [p.id for p in study.prompts()]
    assert ids == [
        "histo.lungs.short", "histo.lungs.detailed", "histo.heart.short", "histo.heart.detailed",
        "xray.lungs.short", "xray.lungs.detailed", "xray.heart.short", "xray.heart.detailed",
    ]
    prompt = study.prompts()[5]
    assert prompt.text == "An x-ray image of the lungs, organs in the chest"
    assert (prompt.style_group, prompt.detail, prompt.topic) == ("radiology", "detailed", "lungs")
    assert study.prompts()[0].style_group == "histo"


def test_defaults_are_the_papers_scales_and_flag():
    study = parse_study(BASE)
    assert [a.key for a in study.aspects] == ["style", "content"]
    assert study.aspects[0].levels == DEFAULT_LEVELS
    assert study.aspects[0].values == [0, 1, 2, 3, 4]
    assert [f.key for f in study.flags] == ["nonsensical"]


def test_blocks_list_short_then_detailed_descriptions():
    text = BASE.replace('key = "lungs"', 'key = "lungs"\nblock = "organs"').replace(
        'key = "heart"', 'key = "heart"\nblock = "organs"')
    ids = [p.id for p in parse_study(text).prompts()][:4]
    assert ids == ["histo.lungs.short", "histo.heart.short", "histo.lungs.detailed",
                   "histo.heart.detailed"]


def test_typo_is_an_error_not_ignored():
    problems = problems_of(BASE.replace("images_per_panel", "images_per_pannel"))
    assert any("images_per_pannel: unknown key" in p for p in problems)


def test_all_problems_reported_at_once():
    text = (BASE.replace('generator = "placeholder"\nparams = { size = 32 }\n\n[[conditions]]',
                         'generator = "dalle"\nparams = {}\n\n[[conditions]]', 1)
            .replace('key = "heart"', 'key = "lungs"')
            .replace('template = "An x-ray image of {description}"', 'template = "An x-ray"')
            + '\n[[styles]]\nkey = "ct"\nlabel = 3\n')
    problems = problems_of(text)
    joined = "\n".join(problems)
    assert "conditions[0].generator: unknown generator 'dalle'" in joined
    assert "topics[1].key: duplicate key 'lungs'" in joined
    assert "styles[1].template: must contain '{description}'" in joined
    assert "styles[2].label: expected a string, got 3" in joined
    assert "styles[2].template: missing" in joined


def test_unknown_generator_parameter_is_reported():
    problems = problems_of(BASE.replace("size = 32", "sise = 32", 1))
    assert any("conditions[0].params.sise: unknown parameter" in p for p in problems)


def test_unknown_condition_in_survey_settings_and_bad_toml():
    problems = problems_of(BASE + '\n[survey]\nconditions = ["gamma"]\n')
    assert any("survey.conditions: unknown condition 'gamma'" in p for p in problems)
    assert any("not valid TOML" in p for p in problems_of("id = "))


def test_images_per_panel_cannot_exceed_images_per_prompt():
    problems = problems_of(SMALL_STUDY.format(images_per_prompt=2, images_per_panel=4))
    assert any(p.startswith("images_per_panel") for p in problems)


def test_study_reference_by_file_folder_or_id(tmp_path, make_study):
    path = make_study()
    assert resolve_study_path(path) == path
    assert resolve_study_path(path.parent) == path
    surveys = tmp_path / "surveys"
    make_study(folder=surveys / "small")
    assert load_study("small", surveys_dir=surveys).id == "small"
    with pytest.raises(StudyError, match="no study file found"):
        load_study("missing", surveys_dir=surveys)


def test_demo_study_is_valid_and_has_a_group_with_several_styles():
    study = load_study(ROOT / "surveys" / "demo")
    groups = [s.style_group for s in study.styles]
    assert any(groups.count(g) > 1 for g in groups)
    assert len(study.conditions) == 2
    assert {c.generator for c in study.conditions} == {"placeholder"}


def test_kather2022_expands_to_the_published_prompts(kather_xlsx):
    study = load_study(ROOT / "surveys" / "kather2022")
    published = pd.read_excel(kather_xlsx, sheet_name="raw data")["Prompt"].str.strip().tolist()
    assert [p.text.strip() for p in study.prompts()] == published
    assert len(published) == 272
    assert len(study.topics) == 17 and len(study.styles) == 8
    radiology = [s.key for s in study.styles if s.group == "radiology"]
    assert radiology == ["xray", "mri", "ct"]
    assert {c.generator for c in study.conditions} == {"glide"}
    assert {c.params["guidance"] for c in study.conditions} == {"clip", "classifier-free"}


def test_empty_aspect_list_is_an_error_not_the_default():
    problems = problems_of("aspects = []\n" + BASE)
    assert any(p.startswith("aspects: at least one aspect is required") for p in problems)


def test_problems_come_one_per_line_with_line_numbers_and_suggestions(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(SMALL_STUDY.format(images_per_prompt=4, images_per_panel=2)
                    .replace("images_per_panel = 2", "images_per_panl = 2")
                    .replace('generator = "placeholder"', 'generator = "placeholdr"', 1)
                    .replace("{{description}}", "{desciption}", 1)
                    .replace("A histopathological image of {description}",
                             "A histopathological image of {desciption}")
                    + '\n[survey]\ntask = "rating"\n')
    with pytest.raises(StudyError) as info:
        load_study(path)
    lines = info.value.message.splitlines()
    text = path.read_text().splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(text, 1) if fragment in line)

    assert lines[0] == f"{path}: 4 problems:"
    assert lines[1:] == [
        f"  line {line_of('images_per_panl')}: images_per_panl: unknown key; did you mean "
        "images_per_panel? (allowed: id, title, instructions, styles, topics, conditions, "
        "consent, seed, images_per_prompt, images_per_panel, aspects, flags, survey, archive)",
        f"  line {line_of('placeholdr')}: conditions[0].generator: unknown generator "
        "'placeholdr'; did you mean placeholder? (known: diffusers, folder, glide, placeholder)",
        f"  line {line_of('desciption')}: styles[0].template: unknown field {{desciption}}; "
        "did you mean {description}? (a template has one field, {description})",
        f"  line {line_of('rating')}: survey.task: unknown task 'rating'; did you mean "
        "ratings? (known: ratings, turing, pairwise)",
    ]
    assert sorted(p.split(":")[0] for p in info.value.problems) == sorted([
        "images_per_panl", "conditions[0].generator", "styles[0].template", "survey.task"])


def test_a_single_problem_is_one_line():
    with pytest.raises(StudyError) as info:
        parse_study(SMALL_STUDY.format(images_per_prompt=4, images_per_panel=2)
                    .replace('key = "xray"', 'key = "X ray"'))
    assert "\n" not in info.value.message and info.value.message.startswith("study.toml: line ")


@pytest.mark.parametrize("line", ['title = "bad \\ud800 title"', "title = 'ok'\nx = \"\\udfff\""])
def test_text_that_is_not_valid_unicode_is_a_one_line_study_error(tmp_path, line):
    """TOML forbids surrogate escapes; glidemed says so in one line, naming the file."""
    path = tmp_path / "study.toml"
    path.write_text(BASE.replace('title = "Small test study"', line), encoding="utf-8")
    result = CliRunner().invoke(main, ["prompts", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}" in result.output and "not valid TOML" in result.output
    assert "not a Unicode scalar value" in result.output


@pytest.mark.parametrize("change, phrase", [
    (("images_per_prompt = 4", "images_per_prompt = 100000000"),
     "images_per_prompt: expected 1..64, got 100000000"),
    (("images_per_prompt = 4", "images_per_prompt = 0"), "images_per_prompt: expected 1..64, got 0"),
    (("images_per_panel = 2", "images_per_panel = 5"),
     "images_per_panel: expected 1..4 (images_per_prompt), got 5"),
    (("seed = 11", "seed = -1"), "seed: expected 0..9223372036854775807, got -1"),
    ("\n[survey]\nimage_size = -256\n",
     "survey.image_size: expected 16..4096 (pixels, or 0 to keep the generated size), got -256"),
    ("\n[survey]\nimage_size = 100000\n", "survey.image_size: expected 16..4096"),
    ("\n[survey]\nrepeat_panels = -3\n",
     "survey.repeat_panels: expected 0..16 (at most the number of panels), got -3"),
    ("\n[survey]\nrepeat_panels = 100000000000\n",
     "survey.repeat_panels: expected 0..16 (at most the number of panels), got 100000000000"),
    ("\n[survey]\nrepeat_panels = 17\n", "survey.repeat_panels: expected 0..16"),
    ("\n[survey]\nimage_quality = 0\n", "survey.image_quality: expected 1..100, got 0"),
])
def test_numeric_keys_are_bounded_at_load(change, phrase):
    text = BASE.replace(*change) if isinstance(change, tuple) else BASE + change
    assert any(p.startswith(phrase) for p in problems_of(text))


def test_bounds_at_their_limits_load():
    text = (BASE.replace("images_per_prompt = 4", "images_per_prompt = 64")
            + "\n[survey]\nimage_size = 16\nrepeat_panels = 16\n")
    study = parse_study(text)
    assert (study.images_per_prompt, study.survey.image_size, study.survey.repeat_panels) == (
        64, 16, 16)


def test_turing_images_per_condition_is_bounded_by_what_is_generated():
    text = BASE + ('\n[[conditions]]\nname = "real"\ngenerator = "folder"\n'
                   'params = { folder = "refs" }\n[survey]\ntask = "turing"\n'
                   'controls = ["real"]\n[survey.turing]\nimages_per_condition = 33\n')
    assert ("survey.turing.images_per_condition: expected 0..32 (0: all; at most the images "
            "generated per condition), got 33") in problems_of(text)


@pytest.mark.parametrize("title", ['""', '"   "', '"\\t\\n"'])
def test_empty_title_is_rejected(title):
    assert "title: must not be empty" in problems_of(
        BASE.replace('title = "Small test study"', f"title = {title}"))


def test_duplicate_profile_key_is_rejected():
    profile = '\n[[survey.profile]]\nkey = "years"\nlabel = "Years"\n'
    problems = problems_of(BASE + profile + profile.replace("Years", "Years again"))
    assert "survey.profile[1].key: duplicate key 'years'" in problems


def test_build_image_size_option_has_the_study_bounds(make_study):
    result = CliRunner().invoke(main, ["build", str(make_study()), "--image-size", "100000"])
    assert result.exit_code == 2 and "100000 is not in the range 16<=x<=4096" in result.output


def test_nan_and_inf_are_not_numbers_in_a_study():
    text = BASE + ('\n[[conditions]]\nname = "real"\ngenerator = "folder"\n'
                   'params = { folder = "refs" }\n[survey]\ntask = "turing"\n'
                   'controls = ["real"]\n[survey.turing]\nreal_share = nan\n')
    assert "survey.turing.real_share: expected a finite number, got nan" in problems_of(text)
