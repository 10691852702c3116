"""The command line: help, prompts CSV, one-line errors with exit code 1."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

from click.testing import CliRunner

from glidemed.cli import PIPELINE, main
from conftest import ROOT


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_every_command_in_pipeline_order_with_its_whole_summary():
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines()
              if line.startswith("  ") and not line.lstrip().startswith("-")
              and line.split()[0] in main.commands]
    assert listed == [name for names in PIPELINE.values() for name in names]
    assert sorted(listed) == sorted(main.commands)  # every command has its place
    assert listed.index("generate") < listed.index("build") < listed.index("analyze") \
        < listed.index("archive")
    for name, command in main.commands.items():
        first_sentence = " ".join(command.help.split("\n\n")[0].split()).split(". ")[0]
        assert first_sentence.rstrip(".") in " ".join(result.output.split()), name


def test_every_command_has_help_text():
    for name, command in main.commands.items():
        assert command.help, f"{name} has no help text"
        assert run(name, "--help").exit_code == 0


def test_prompts_prints_csv(make_study):
    result = run("prompts", str(make_study()))
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == ["id", "style", "style_group", "topic", "detail", "text"]
    assert len(rows) == 8
    assert rows[4] == {"id": "xray.lungs.short", "style": "xray", "style_group": "radiology",
                       "topic": "lungs", "detail": "short", "text": "An x-ray image of the lungs"}


def test_study_typo_gives_one_line_error_and_exit_1(make_study):
    path = make_study()
    path.write_text(path.read_text().replace("seed =", "sed ="))
    result = run("prompts", str(path))
    assert result.exit_code == 1
    assert "sed: unknown key" in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_generate_reports_counts(make_study, tmp_path):
    out = tmp_path / "imgs"
    result = run("generate", str(make_study()), "--out", str(out), "--no-progress",
                 "--condition", "alpha")
    assert result.exit_code == 0, result.output
    assert "32 image(s) made, 0 already present, 32 planned" in result.output
    result = run("generate", str(make_study()), "--out", str(out), "--shard", "3/2")
    assert result.exit_code == 1 and "--shard" in result.output


def test_python_dash_m_runs_from_the_project_root():
    result = subprocess.run([sys.executable, "-m", "glidemed", "prompts", "demo"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("id,style,style_group,topic,detail,text")


def test_building_and_analysis_never_import_torch():
    code = ("import sys, glidemed.cli, glidemed.study, glidemed.generate.runner, "
            "glidemed.generate.glide, glidemed.survey.build, glidemed.analysis.pipeline; "
            "from glidemed.study import load_study; load_study('kather2022'); "
            "print(sorted(m for m in ('torch', 'glide_text2im') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_wrong_study_id_lists_the_studies_and_the_closest():
    result = run("prompts", "kather")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: kather: ")  # nothing printed before the error
    assert "did you mean kather2022?" in result.output
    studies = sorted(p.parent.name for p in (ROOT / "surveys").glob("*/study.toml"))
    assert result.output.rstrip().endswith(f"; studies in surveys: {', '.join(studies)}")
