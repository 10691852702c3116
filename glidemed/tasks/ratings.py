"""The paper's task: panels of one condition's images for a prompt, rated on 0-4 scales."""

from __future__ import annotations

from glidemed.study import MAX_IMAGES_PER_PROMPT, MAX_REPEAT_PANELS, Study, SurveyBlock, check_range, expand_prompts
from glidemed.tasks.base import BlockView, SurveyTask


class RatingsTask(SurveyTask):
    name = "ratings"
    summary = ("absolute quality: each panel shows several images of one condition for a prompt, "
               "rated on the study's scales (the paper's design)")
    frames_report = True  # its analysis is glidemed.analysis.pipeline's

    def problems(self, study: Study, block: SurveyBlock, where: str) -> list[str]:
        problems: list[str] = []
        if 1 <= study.images_per_prompt <= MAX_IMAGES_PER_PROMPT:
            check_range(study.images_per_panel, 1, study.images_per_prompt, "images_per_panel",
                         problems, "images_per_prompt")
        shown = study.survey.conditions or [c.name for c in study.conditions]
        n_panels = len(expand_prompts(study)) * len(shown)
        if n_panels:
            check_range(study.survey.repeat_panels, 0, min(MAX_REPEAT_PANELS, n_panels),
                         "survey.repeat_panels", problems, "at most the number of panels")
        return problems

    def view(self, study: Study, block: SurveyBlock) -> BlockView:
        return BlockView(self.name, list(study.aspects), list(study.flags), study.images_per_panel,
                         instructions=block.instructions)

    def plan(self, study, block, records, old_panels, leave_out_missing=False):
        from glidemed.survey.panels import plan_panels

        return plan_panels(study, records, old_panels, leave_out_missing=leave_out_missing)
