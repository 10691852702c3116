"""Survey tasks, one plug-in each: what a rater is asked, and how the answers are analysed.

A task owns its settings (``[survey.<task>]`` or a ``[[survey.blocks]]`` table), its
panels, what its screens show, the unblinding of its answers, its analysis and report
section, its simulated raters and its power analysis (see :class:`~glidemed.tasks.base.SurveyTask`).
Nothing outside this package asks which task a survey has; it asks the task.
"""

from __future__ import annotations

import importlib
from functools import cache

# name -> "module:Class"; a task's module imports its heavy dependencies only when used.
TASKS = {
    "ratings": "glidemed.tasks.ratings:RatingsTask",
    "turing": "glidemed.tasks.turing:TuringTask",
    "pairwise": "glidemed.tasks.pairwise:PairwiseTask",
}


@cache
def get_task(name: str):
    """The task called ``name`` (a KeyError for an unknown name: study validation names it)."""
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def block_views(study) -> list:
    """What each block of the survey shows, in order (:class:`~glidemed.tasks.base.BlockView`)."""
    return [get_task(block.task).view(study, block) for block in study.survey.blocks]


def block_study(study, index: int = 0):
    """The study as block ``index``'s screens see it: its aspects, flags and images per
    panel in place of the study's (what simulated raters of that block answer)."""
    import dataclasses

    view = get_task(study.survey.blocks[index].task).view(study, study.survey.blocks[index])
    return dataclasses.replace(study, aspects=view.aspects, flags=view.flags,
                               images_per_panel=view.images_per_panel)
