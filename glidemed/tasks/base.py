"""The interface every survey task implements, and what a block of the page shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from glidemed.study import Aspect, Flag, Study, SurveyBlock


@dataclass(frozen=True)
class BlockView:
    """What the page shows in one block: its scales, flags, images and texts.

    The page is the same for every task: panels of ``images_per_panel`` images with a
    text above them and one radio scale per aspect; a task chooses what they are."""

    task: str
    aspects: list[Aspect]
    flags: list[Flag]
    images_per_panel: int
    first_value: int = 0  # the number shown (and typed) for a scale's first level
    heading: str = ""  # above each panel ("Real or generated?"); empty: none
    instructions: str = ""  # the block's own instructions screen (blocks after the first)
    image_labels: list[str] = field(default_factory=list)  # e.g. Left, Right; empty: numbered


class SurveyTask:
    """One survey task. Subclasses set ``name``, ``summary`` and ``settings_class`` (a
    dataclass read from the task's table; None: no settings) and implement the methods."""

    name: ClassVar[str]
    summary: ClassVar[str]  # when to use it, one line (the documentation lists them)
    settings_class: ClassVar[type | None] = None

    # --- the study file
    def problems(self, study: Study, block: SurveyBlock, where: str) -> list[str]:
        """Problems of the block's settings with this study, each 'key: what is wrong'."""
        return []

    # --- the survey build
    def view(self, study: Study, block: SurveyBlock) -> BlockView:
        raise NotImplementedError

    def plan(self, study: Study, block: SurveyBlock, records: dict, old_panels: dict,
             leave_out_missing: bool = False):
        """The block's panels (:class:`glidemed.survey.panels.PanelPlan`), the tokens of
        ``old_panels`` (this block's KeyPanels of an earlier build, by token) reused."""
        raise NotImplementedError

    def panel_text(self, study: Study, block: SurveyBlock, panel) -> str:
        """The text above a panel's images (the prompt, unless the task hides it)."""
        return panel.prompt.text

    def panels_per_prompt(self, block: SurveyBlock) -> int:
        """Panels of one prompt that each rater sees, drawn per rater; 0: all of them (a
        task showing several panels per prompt may show each rater a part)."""
        return 0

    # --- the analysis
    def unblind(self, answers, block_index: int):
        """The block's answers (:class:`glidemed.analysis.ingest.Answers`) as a tidy table;
        by default one row per rating of a one-condition panel (glidemed.analysis.tidy)."""
        from glidemed.analysis.ingest import tidy_ratings

        return tidy_ratings(answers, block_index)

    # The ratings task's report holds the other blocks' sections; a survey without it gets
    # a report of sections (glidemed.analysis.report.render_sections_report).
    frames_report: ClassVar[bool] = False

    def sections(self, study: Study, block: SurveyBlock, table, run: Any) -> list:
        """The block's results as report sections (glidemed.analysis.report.ReportSection)."""
        raise NotImplementedError

    def simulate_choices(self, study: Study, block: SurveyBlock, key, sessions: list,
                         plans: dict, params: Any, seed: int) -> None:
        """Give the simulated raters' sessions (glidemed.simulate) this task's answers; by
        default they keep the rating model's scores."""

    def run_power(self, study: Study, out, **options) -> str | None:
        """The ``glidemed power`` stage of this task (its text for the terminal); None: the
        rating survey's power analysis (glidemed.power) applies."""
        return None

    def write_alone(self, study: Study, block: SurveyBlock, table, run: Any) -> dict | None:
        """Write the analysis of a survey of this block only, its own way, and return its
        summary; None: the common report (the default)."""
        return None
