"""The task registry: every task behind one interface, and nothing else asks a task's name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from glidemed.study import parse_study
from glidemed.tasks import TASKS, get_task
from glidemed.tasks.base import SurveyTask
from tests.conftest import ROOT

PACKAGE = ROOT / "glidemed"


def _mentions_task(node: ast.AST) -> bool:
    return any("task" in (n.id if isinstance(n, ast.Name) else n.attr).lower()
               for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Attribute)))


def name_comparisons(path: Path) -> list[str]:
    """Comparisons (==, !=, in, not in) of a task (a name or attribute called *task*) with a
    task's name, as 'file:line'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        parts = [node.left, *node.comparators]
        constants = [c for p in parts for c in ([p] if not isinstance(p, (ast.Tuple, ast.List, ast.Set))
                                                else p.elts)]
        if any(isinstance(c, ast.Constant) and c.value in TASKS for c in constants) \
                and any(_mentions_task(p) for p in parts):
            found.append(f"{path.relative_to(ROOT) if ROOT in path.parents else path.name}:{node.lineno}")
    return found


def test_no_module_outside_the_tasks_branches_on_a_task_name():
    modules = [p for p in PACKAGE.rglob("*.py") if PACKAGE / "tasks" not in p.parents]
    assert [hit for p in modules for hit in name_comparisons(p)] == []


def test_the_check_finds_a_branch_on_a_task_name(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('def f(study, inputs):\n    if "ratings" in inputs:\n        return 0\n'
                     '    return study.survey.task in ("turing", "x")\n', encoding="utf-8")
    assert name_comparisons(probe) == ["probe.py:4"]


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_implements_the_interface(name):
    task = get_task(name)
    assert isinstance(task, SurveyTask) and task.name == name and task.summary
    for method in ("view", "plan"):
        assert getattr(type(task), method) is not getattr(SurveyTask, method), (name, method)
    assert task.frames_report or type(task).sections is not SurveyTask.sections


def test_each_task_table_is_read_with_its_own_settings_type():
    text = (ROOT / "surveys" / "pairwise-demo" / "study.toml").read_text()
    study = parse_study(text.replace("pairs_per_prompt = 0", "pairs_per_prompt = 2"))
    (block,) = study.survey.blocks
    assert type(block.settings).__name__ == "PairwiseSettings" and block.settings.pairs_per_prompt == 2
    with pytest.raises(Exception, match="survey.pairwise.pairs_per_promt: unknown key; did you mean "
                                        "pairs_per_prompt"):
        parse_study(text.replace("pairs_per_prompt = 0", "pairs_per_promt = 0"))
