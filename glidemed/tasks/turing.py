"""The visual Turing test: one image per screen, real (controls) or generated?

Every shown image is a panel of one image, the question is the panel text, and the
confidence scale ("definitely real" ... "definitely generated") is the only aspect.

Which images: ``images_per_condition`` generated images of every generated condition
(0: all), and real images from the control conditions so that they are ``real_share`` of
all screens. The choice is seeded by the study seed and stable across rebuilds (tokens of
an existing key are kept).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from glidemed.errors import SurveyError
from glidemed.study import Aspect, Flag, MAX_IMAGES_PER_PROMPT, Study, SurveyBlock, check_range, expand_prompts
from glidemed.tasks.base import BlockView, SurveyTask

ASPECT_KEY = "realness"
FLAG_KEY = "flagged"
TURING_LEVELS = ["definitely real", "probably real", "unsure", "probably generated",
                 "definitely generated"]


@dataclass(frozen=True)
class TuringSettings:
    """``[survey.turing]``."""

    question: str = "Is this image real or generated?"
    levels: list[str] = field(default_factory=lambda: list(TURING_LEVELS))  # real ... generated
    first_value: int = 1  # the number shown for the first level (1: a 1-5 scale)
    images_per_condition: int = 0  # generated images shown per condition; 0: all
    real_share: float = 0.5  # share of screens showing real images
    flag: str = "Flag this image (broken, not a medical image, ...)"


class TuringTask(SurveyTask):
    name = "turing"
    summary = ("can experts tell generated images from real ones? One image per screen, real or "
               "generated, analysed as a multi-reader ROC study (needs real images as a control)")
    settings_class = TuringSettings

    def problems(self, study: Study, block: SurveyBlock, where: str) -> list[str]:
        settings, turing = study.survey, block.settings
        problems = []
        if not settings.controls:
            problems.append("survey.controls: a turing task needs a condition of real images "
                            "(a folder condition named in controls)")
        chosen = settings.conditions or [c.name for c in study.conditions]
        if not [c for c in chosen if c not in settings.controls]:
            problems.append("survey.conditions: a turing task needs a generated condition besides "
                            "the controls")
        if len(turing.levels) < 2:
            problems.append(f"{where}.turing.levels: expected at least two levels")
        if not 0 < turing.real_share < 1:
            problems.append(f"{where}.turing.real_share: expected a share between 0 and 1, "
                            f"got {turing.real_share}")
        generated = study.images_per_prompt * len(expand_prompts(study))
        check_range(turing.images_per_condition, 0, generated or MAX_IMAGES_PER_PROMPT,
                    f"{where}.turing.images_per_condition", problems,
                    "0: all; at most the images generated per condition")
        if not 0 <= turing.first_value <= 9 - (len(turing.levels) - 1):
            problems.append(f"{where}.turing.first_value: the levels must be numbered within 0-9 "
                            f"(keys), got {turing.first_value}")
        return problems

    def view(self, study: Study, block: SurveyBlock) -> BlockView:
        from glidemed.survey.texts import page_texts

        turing, heading = block.settings, page_texts(study.survey.language)["real_or_generated"]
        aspect = Aspect(ASPECT_KEY, heading, turing.question, list(turing.levels))
        return BlockView(self.name, [aspect], [Flag(FLAG_KEY, turing.flag)], 1, turing.first_value,
                         heading, block.instructions)

    def panel_text(self, study, block, panel) -> str:
        return block.settings.question  # never the prompt

    def plan(self, study, block, records, old_panels, leave_out_missing=False):
        """One single-image panel per chosen image (see the module docstring)."""
        from glidemed.survey.panels import PanelPlan, PlannedImage, PlannedPanel, TokenMaker, survey_conditions

        turing = block.settings
        conditions = survey_conditions(study)
        controls = [c for c in conditions if c in study.survey.controls]
        generated = [c for c in conditions if c not in controls]
        by_condition: dict[str, list[dict]] = {c: [] for c in conditions}
        for (condition, _prompt, _index), record in sorted(records.items()):
            if condition in by_condition:
                by_condition[condition].append(record)
        rng = random.Random(f"{study.seed}/turing")
        chosen: dict[str, list[dict]] = {}
        short = []
        for condition in generated:
            pool = by_condition[condition]
            n = turing.images_per_condition or len(pool)
            if len(pool) < max(n, 1):
                short.append(f"condition {condition} has {len(pool)} image(s), {n or 1} wanted")
                continue
            chosen[condition] = rng.sample(pool, n)
        n_generated = sum(len(v) for v in chosen.values())
        n_real = max(1, round(n_generated * turing.real_share / (1 - turing.real_share)))
        real_pool = [(c, r) for c in controls for r in by_condition[c]]
        if len(real_pool) < n_real:
            short.append(f"the controls ({', '.join(controls)}) have {len(real_pool)} real image(s), "
                         f"{n_real} wanted for real_share {turing.real_share:g}")
        if short:
            raise SurveyError(f"{study.path}: not enough images for the turing task: {'; '.join(short)} "
                              f"(generate more, or lower survey.turing.images_per_condition or real_share)")
        for condition, record in rng.sample(real_pool, n_real):
            chosen.setdefault(condition, []).append(record)

        old_by_file = {file: (token, image) for token, p in old_panels.items()
                       for image, file in p.images.items()}
        forbidden = [c.name for c in study.conditions] + [c.generator for c in study.conditions]
        taken = set(old_panels) | {i for p in old_panels.values() for i in p.images}
        make_token = TokenMaker(taken, forbidden)
        prompts = {p.id: p for p in study.prompts()}
        panels = []
        for condition, records_ in chosen.items():
            for record in records_:
                panel_token, image_token = old_by_file.get(record["file"]) or (make_token(), make_token())
                panels.append(PlannedPanel(panel_token, prompts[record["prompt_id"]], condition,
                                           condition in controls, [PlannedImage(image_token, record)]))
        panels.sort(key=lambda p: p.token)
        return PanelPlan(panels, conditions)

    def run_power(self, study, out, **options) -> str:
        from glidemed.power_mrmc import run_turing_power

        return run_turing_power(study, out, rater_counts=options["rater_counts"],
                                case_counts=options["case_counts"], aucs=options["aucs"],
                                method=options["method"], pilot=options["pilot"],
                                roe_metz_file=options["roe_metz_file"], n_sims=options["n_sims"],
                                alpha=options["alpha"], target=options["target"], seed=options["seed"])

    # --- the analysis
    def _results(self, study, block, table, run):
        from glidemed.analysis.turing import analyse_turing

        results = analyse_turing(study, block.settings, table, run.key, run.ledger, run.source,
                                 run.options["bootstrap"], run.options["seed"])
        results.options.update({k: v for k, v in run.options.items() if k not in ("bootstrap", "seed")})
        return results

    def sections(self, study, block, table, run) -> list:
        from glidemed.analysis.turing import turing_section

        return [turing_section(self._results(study, block, table, run))]

    def write_alone(self, study, block, table, run) -> dict:
        from glidemed.analysis.turing import write_turing

        results = self._results(study, block, table, run)
        results.inputs = run.inputs
        if run.provenance:
            results.created, results.versions = run.provenance["created"], run.provenance["versions"]
        return write_turing(results, run.out)
