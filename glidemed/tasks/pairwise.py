"""Side-by-side comparison: two images of one prompt from two conditions, which is better?

Each panel shows one image of each of two conditions for the same prompt; the page draws
the sides at random for each rater (its per-rater image order), and a repeat shows the
sides swapped. One question per aspect of the study, answered on ``levels`` (odd count,
the middle one a tie). With ``pairs_per_prompt`` > 0 each rater sees that many of each
prompt's condition pairs, drawn per rater. The image of a condition shown for a prompt
is drawn once per prompt and pair from its images (seeded by the study seed).

The answers become Bradley-Terry abilities (decisive answers), an ordinal
paired-comparison mixed model (every answer; its thresholds' asymmetry is the raters'
left/right bias) and win rates (glidemed.analysis.paired).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import combinations

from glidemed.study import Aspect, Study, SurveyBlock, check_range
from glidemed.tasks.base import BlockView, SurveyTask

PAIRWISE_LEVELS = ["left is better", "both equal", "right is better"]
ANSWER_COLUMNS = ["rater", "prompt_id", "style", "aspect", "left", "right", "choice", "winner",
                  "style_group", "panel", "repeat", "exclusion", "seconds", "comment"]


@dataclass(frozen=True)
class PairwiseSettings:
    """``[survey.pairwise]``."""

    conditions: list[str] = field(default_factory=list)  # compared with each other; empty: every generated one
    levels: list[str] = field(default_factory=lambda: list(PAIRWISE_LEVELS))  # odd count; middle: tie
    pairs_per_prompt: int = 0  # condition pairs shown per prompt and rater; 0: all pairs
    first_value: int = 1  # the number shown (and typed) for the first level


def compared_conditions(study: Study, settings: PairwiseSettings) -> list[str]:
    """The compared conditions in order (the first is the reference of the abilities)."""
    if settings.conditions:
        return list(settings.conditions)
    chosen = study.survey.conditions or [c.name for c in study.conditions]
    return [c for c in chosen if c not in study.survey.controls]


class PairwiseTask(SurveyTask):
    name = "pairwise"
    summary = ("which of two models is better? Two images of one prompt side by side, a forced "
               "choice with a tie, analysed as a Bradley-Terry leaderboard")
    settings_class = PairwiseSettings

    def problems(self, study: Study, block: SurveyBlock, where: str) -> list[str]:
        settings, key = block.settings, f"{where}.pairwise"
        names = {c.name for c in study.conditions}
        problems = []
        for name in settings.conditions:
            if name not in names:
                problems.append(f"{key}.conditions: unknown condition {name!r} "
                                f"(known: {', '.join(sorted(names))})")
            elif name in study.survey.controls:
                problems.append(f"{key}.conditions: {name!r} is a control (real images); "
                                "pairwise compares generated conditions")
        compared = compared_conditions(study, settings)
        if len(set(compared)) != len(compared):
            problems.append(f"{key}.conditions: a condition is named twice")
        if len(set(compared)) < 2:
            problems.append(f"{key}.conditions: expected at least two conditions to compare, "
                            f"got {len(set(compared))}")
        n_levels = len(settings.levels)
        if n_levels < 3 or n_levels % 2 == 0:
            problems.append(f"{key}.levels: expected an odd number of levels (3 or more; the "
                            f"middle one is a tie), got {n_levels}")
        elif not 0 <= settings.first_value <= 9 - (n_levels - 1):
            problems.append(f"{key}.first_value: the levels must be numbered within 0-9 (keys), "
                            f"got {settings.first_value}")
        n_pairs = len(set(compared)) * (len(set(compared)) - 1) // 2
        check_range(settings.pairs_per_prompt, 0, max(n_pairs, 1), f"{key}.pairs_per_prompt",
                    problems, "0: all pairs; at most the number of condition pairs")
        return problems

    def view(self, study: Study, block: SurveyBlock) -> BlockView:
        from glidemed.survey.texts import page_texts

        settings, texts = block.settings, page_texts(study.survey.language)
        aspects = [Aspect(a.key, a.label, texts["which_is_better_aspect"].replace("{aspect}", a.label),
                          list(settings.levels)) for a in study.aspects]
        return BlockView(self.name, aspects, list(study.flags), 2, settings.first_value,
                         texts["which_is_better"], block.instructions, [texts["left"], texts["right"]])

    def plan(self, study, block, records, old_panels, leave_out_missing=False):
        from glidemed.survey.panels import PanelPlan, PlannedImage, PlannedPanel, TokenMaker, check_found

        conditions = compared_conditions(study, block.settings)
        panel_tokens = {(p.prompt_id, tuple(sorted(p.image_conditions.values()))): t
                        for t, p in old_panels.items()}
        image_tokens = {(t, f): i for t, p in old_panels.items() for i, f in p.images.items()}
        forbidden = [c.name for c in study.conditions] + [c.generator for c in study.conditions]
        make_token = TokenMaker(set(old_panels) | {i for i in image_tokens.values()}, forbidden)
        panels, missing, left_out = [], [], []
        for prompt in study.prompts():
            found = {c: [records[(c, prompt.id, i)] for i in range(study.images_per_prompt)
                         if (c, prompt.id, i) in records] for c in conditions}
            for a, b in combinations(conditions, 2):
                absent = [c for c in (a, b) if not found[c]]
                if absent:
                    reason = f"no image of {', '.join(absent)}"
                    missing.append(f"{prompt.id} ({a} vs {b}): {reason}")
                    left_out.append({"prompt_id": prompt.id, "condition": f"{a} vs {b}",
                                     "reason": reason})
                    continue
                rng = random.Random(f"{study.seed}/pairwise/{prompt.id}/{a}/{b}")
                token = panel_tokens.get((prompt.id, tuple(sorted((a, b))))) or make_token()
                images = sorted((PlannedImage(image_tokens.get((token, r["file"])) or make_token(), r)
                                 for r in (rng.choice(found[a]), rng.choice(found[b]))),
                                key=lambda im: im.token)
                panels.append(PlannedPanel(token, prompt, "", False, images))
        check_found(study, panels, missing, leave_out_missing)
        panels.sort(key=lambda p: p.token)
        return PanelPlan(panels, conditions, left_out)

    def panels_per_prompt(self, block) -> int:
        return block.settings.pairs_per_prompt

    def unblind(self, answers, block_index: int):
        """:data:`ANSWER_COLUMNS`, one row per (panel seen, aspect); ``left``/``right``:
        the conditions on each side as this rater saw them, ``choice`` the level's index,
        ``winner`` the better side's condition (empty for the middle level)."""
        import pandas as pd

        context = answers.context
        levels = context.block_levels[block_index]
        flag_keys = context.block_flags[block_index]
        rows = []
        for rater, excluded, panel, entry, prompt in answers.panels(block_index):
            left, right = (entry.condition_of(t) for t in panel["images"][:2])
            flags = {f: bool(panel["flags"].get(f, False)) for f in flag_keys}
            for aspect, n_levels in levels.items():
                choice = panel["ratings"].get(aspect)
                reason = "flagged" if excluded else "" if choice is not None else "missing"
                middle = (n_levels - 1) / 2
                winner = ("" if reason or choice == middle else right if choice > middle else left)
                rows.append({"rater": rater, "prompt_id": prompt.id, "style": prompt.style,
                             "aspect": aspect, "left": left, "right": right,
                             "choice": pd.NA if reason else choice, "winner": winner,
                             "style_group": prompt.style_group, "panel": panel["token"],
                             "repeat": panel["repeat"], "exclusion": reason,
                             "seconds": panel["seconds"], "comment": panel["comment"], **flags})
        table = pd.DataFrame(rows, columns=ANSWER_COLUMNS + flag_keys)
        return table.astype({"choice": "Int64", "repeat": bool})

    def run_power(self, study, out, **options) -> str:
        """Power to detect the ability difference of the first two compared conditions."""
        from glidemed.paths import study_build_dir
        from glidemed.power_pairwise import pairwise_power, write_pairwise_power
        from glidemed.simulate import make_params

        block = next(b for b in study.survey.blocks if b.task == self.name)
        conditions = compared_conditions(study, block.settings)
        effects = make_params(None, list(options["effects"])).effects
        abilities = {c: sum(v for k, v in effects.items() if k.split("/")[-1] == f"condition:{c.lower()}")
                     for c in conditions}
        if not any(abilities.values()):
            abilities[conditions[1]] = options["difference"]
        prompts = options["prompt_counts"] or [len(study.prompts())]
        table = pairwise_power(conditions, abilities, options["rater_counts"], prompts,
                               n_sim=options["n_sims"], alpha=options["alpha"], seed=options["seed"],
                               pairs_per_prompt=block.settings.pairs_per_prompt,
                               n_levels=len(block.settings.levels))
        paths = write_pairwise_power(table, out or study_build_dir(study) / "power")
        return table.to_string(index=False) + f"\n-> {paths[0].parent}"

    # --- the analysis
    def sections(self, study: Study, block: SurveyBlock, table, run) -> list:
        """The report section of this block: abilities, the paired model, win rates."""
        from glidemed.tasks.pairwise_analysis import pairwise_section

        return [pairwise_section(study, block, table, run.options)]

    # --- simulated raters
    SIMULATED_POSITION_BIAS = 0.2  # log-odds towards the right image
    SIMULATED_TIE_SHARE = 0.15  # chance of the middle level between equal conditions
    SIMULATED_SD = 0.3  # rater and prompt random intercepts

    def simulate_choices(self, study, block, key, sessions: list, plans: dict,
                         params, seed: int) -> None:
        """Replace the simulated raters' answers by paired-comparison choices (glidemed.
        simulate.pairwise): abilities from ``--effect condition:NAME=X`` (0 otherwise),
        a position bias and ties; answers left blank stay blank."""
        import numpy as np

        from glidemed.simulate.pairwise import draw_choices, pairwise_thresholds

        conditions = compared_conditions(study, block.settings)
        ability = {c: sum(v for k, v in params.effects.items()
                          if k.split("/")[-1] == f"condition:{c.lower()}") for c in conditions}
        thresholds = pairwise_thresholds(len(block.settings.levels), self.SIMULATED_TIE_SHARE)
        rng = np.random.default_rng([seed, 2])
        prompts = {pid: v for pid, v in zip(
            sorted({p.prompt_id for p in key.panels.values()}),
            rng.normal(0, self.SIMULATED_SD, len(key.panels)))}
        for session in sessions:
            rater_effect = rng.normal(0, self.SIMULATED_SD)
            for place in range(session.seen):
                entry = plans[session.rater][place]
                panel = key.panels[entry["token"]]
                left, right = (panel.condition_of(t) for t in entry["images"][:2])
                eta = (ability[right] - ability[left] + rater_effect + prompts[panel.prompt_id]
                       + self.SIMULATED_POSITION_BIAS)
                given = session.scores[place] >= 0
                choices = draw_choices(rng, np.full(given.sum(), eta), thresholds)
                session.scores[place][given] = choices
