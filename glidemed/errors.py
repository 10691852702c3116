"""The error family: every user mistake ends in one of these, never a traceback."""

from __future__ import annotations

import click


class GlidemedError(click.ClickException):
    """A problem the user can fix; the CLI prints it on one line and exits with 1."""

    exit_code = 1


class StudyError(GlidemedError):
    """A study file is missing or invalid. Holds every problem found, not just the first."""

    def __init__(self, path, problems: list[str], shown: list[str] | None = None):
        """``problems`` each name their key; ``shown`` are the same as the user reads them
        (with line numbers, in file order), one per line."""
        self.path = str(path)
        self.problems = list(problems)
        shown = list(shown) if shown is not None else self.problems
        if len(shown) == 1:
            super().__init__(f"{self.path}: {shown[0]}")
        else:
            lines = "".join(f"\n  {problem}" for problem in shown)
            super().__init__(f"{self.path}: {len(shown)} problems:{lines}")


class GenerationError(GlidemedError):
    """Image generation could not proceed (missing input, full disk, bad checkpoint...)."""


class SurveyError(GlidemedError):
    """The survey could not be built from the study and its images."""


class AnalysisError(GlidemedError):
    """Returned responses or a ratings table cannot be analysed."""


class ScoringError(GlidemedError):
    """Automated scores cannot be computed or joined (unreadable model, bad reference...)."""
