"""The pairwise task's analysis: Bradley-Terry leaderboard, paired ordinal model, win rates.

Per aspect, from the first answers (repeats and excluded answers left out):

- ``pairwise_bt``: Bradley-Terry abilities from the decisive answers (ties left out), the
  first compared condition fixed at 0; for all answers and per style group (radiology
  against the other styles when the study has radiology, as in the paper);
- ``pairwise_model``: the ordinal paired-comparison mixed model on every answer (ties
  included), random intercepts for rater and prompt; its thresholds' asymmetry is the
  raters' left/right position bias;
- ``pairwise_win_rates``: the share of answers each condition won against each other (ties
  half), with crossed rater x prompt bootstrap CIs, for all answers and per style group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glidemed.analysis.report import ReportSection
from glidemed.errors import AnalysisError

ALL = "all"
BT_OUTPUT = ["aspect", "group", "condition", "ability", "se", "ci_low", "ci_high", "n_wins",
             "n_comparisons"]


def style_groups(study) -> dict[str, str]:
    """Style -> the group it is reported in: radiology and the other styles when the study
    has radiology styles (the paper's contrast), else each style's own group."""
    groups = {s.key: s.style_group for s in study.styles}
    if "radiology" in groups.values():
        return {k: g if g == "radiology" else "other styles" for k, g in groups.items()}
    return groups


def pairwise_section(study, block, table: pd.DataFrame, options: dict) -> ReportSection:
    from glidemed.analysis.paired import paired_bradley_terry, paired_model, win_rates
    from glidemed.tasks.pairwise import compared_conditions

    conditions = compared_conditions(study, block.settings)
    n_levels = len(block.settings.levels)
    use = table[(table["exclusion"] == "") & ~table["repeat"].astype(bool)].copy()
    use["choice"] = use["choice"].astype(int)
    groups = style_groups(study)
    use["group"] = use["style"].map(groups)
    notes: list[str] = []
    bt, models = [], []
    for aspect in pd.unique(table["aspect"]):
        mine = use[use["aspect"] == aspect]
        for group, part in [(ALL, mine), *mine.groupby("group", sort=True)]:
            try:
                abilities = paired_bradley_terry(part, conditions, None, n_levels)
            except AnalysisError as exc:
                notes.append(f"Bradley-Terry, aspect {aspect!r}, {group}: {exc.message}")
                continue
            bt.append(abilities.assign(aspect=aspect, group=group))
        try:
            model = paired_model(mine, conditions, aspect, n_levels)
            models.append(model.table.assign(aspect=aspect))
            notes += model.notes
        except AnalysisError as exc:
            notes.append(f"paired model, aspect {aspect!r}: {exc.message}")
    bt_table = (pd.concat(bt, ignore_index=True)[BT_OUTPUT] if bt
                else pd.DataFrame(columns=BT_OUTPUT))
    model_table = (pd.concat(models, ignore_index=True) if models else pd.DataFrame())
    if len(model_table):
        model_table = model_table[["aspect", *[c for c in model_table.columns if c != "aspect"]]]
    rates = win_rates(use, conditions, n_levels, groups="group", n_boot=options["bootstrap"],
                      seed=options["seed"]) if len(use) else pd.DataFrame()
    from glidemed.analysis.figures import _RC, plt, render
    from glidemed.analysis.labels import Labels

    labels = Labels.of(study)
    with plt.rc_context(_RC):
        figures = {
            "pairwise_leaderboard": render(
                leaderboard_figure(bt_table, labels), "Bradley-Terry abilities (log-odds against "
                f"{labels.of_key('condition', conditions[0])}) with 95% Wald CIs, per aspect and "
                "style group.", bt_table),
            "pairwise_win_rates": render(
                win_rate_figure(rates, labels), "Share of comparisons the row condition won "
                "against the column condition (ties half), all answers.",
                rates[rates["group"] == ALL] if len(rates) else rates),
        }
    bias = (model_table[model_table["kind"] == "position_bias"] if len(model_table)
            else pd.DataFrame())
    paragraphs = [
        f"{use['rater'].nunique()} rater(s) compared {', '.join(conditions)} side by side on "
        f"{use['prompt_id'].nunique()} prompt(s): {len(use)} answers "
        f"({int((use['winner'] == '').sum())} ties), repeats left out.",
        "Bradley-Terry abilities are log-odds of winning against the reference condition "
        f"({conditions[0]}, fixed at 0), from the decisive answers (ties left out); 95% Wald "
        "CIs. They equal R's BradleyTerry2::BTm.",
        "The ordinal paired-comparison model (cumulative logit on the answer scale, design "
        "x_right - x_left, random intercepts for rater and prompt; as R's ordinal::clmm) uses "
        "every answer, ties included. Its thresholds would be symmetric if raters had no side "
        "preference; their asymmetry, the position bias, is the log-odds shift towards the "
        "right image" + "".join(
            f" ({r.aspect}: {r.estimate:.2f}, 95% CI {r.ci_low:.2f} to {r.ci_high:.2f})"
            for r in bias.itertuples() if np.isfinite(r.estimate)) + ".",
        f"Win rates count ties as half a win; 95% CIs from a crossed bootstrap that resamples "
        f"raters and prompts independently ({options['bootstrap']} resamples, seed {options['seed']}).",
        *notes,
    ]
    summary = {"conditions": conditions, "levels": list(block.settings.levels),
               "abilities": bt_table.to_dict(orient="records"),
               "model": model_table.to_dict(orient="records"),
               "win_rates": rates.to_dict(orient="records"), "notes": notes}
    return ReportSection("pairwise", "Side-by-side comparison (pairwise)", paragraphs,
                         {"pairwise_answers": table, "pairwise_bt": bt_table,
                          "pairwise_model": model_table, "pairwise_win_rates": rates},
                         figures, summary, pairwise_findings(bt_table, conditions[0], labels))


def pairwise_findings(bt: pd.DataFrame, reference: str, labels) -> list[str]:
    """Per aspect, the Bradley-Terry ranking of all answers and each condition against the
    reference, in words."""
    found = []
    for aspect, part in bt[bt["group"] == ALL].groupby("aspect", sort=False):
        ranked = part.sort_values("ability", ascending=False)
        order = " > ".join(labels.of_key("condition", c) for c in ranked["condition"])
        against = "; ".join(
            f"{labels.of_key('condition', r.condition)} {r.ability:+.2f} (95% CI {r.ci_low:.2f} "
            f"to {r.ci_high:.2f})" for r in ranked.itertuples() if r.condition != reference)
        found.append(f"Side by side, {labels.of_key('aspect', aspect).lower()}: {order}. "
                     f"Bradley-Terry log-odds of winning against "
                     f"{labels.of_key('condition', reference)}: {against}.")
    return found


def leaderboard_figure(bt: pd.DataFrame, labels):
    """Abilities with CIs: one panel per aspect, one row per condition, a marker per group."""
    from glidemed.analysis.figures import SINGLE, colours, new_figure

    aspects = list(pd.unique(bt["aspect"])) or ["(none)"]
    conditions_n = max(1, bt["condition"].nunique()) if len(bt) else 1
    fig, axes = new_figure(len(aspects), 0.35 * conditions_n + 1.6,
                           width=SINGLE * min(len(aspects), 2))
    for ax, aspect in zip(axes[0], aspects):
        part = bt[bt["aspect"] == aspect]
        conditions = list(pd.unique(part["condition"]))
        groups = list(pd.unique(part["group"]))
        for g, (group, colour) in enumerate(zip(groups, colours(len(groups)))):
            rows = part[part["group"] == group].set_index("condition").reindex(conditions)
            y = np.arange(len(conditions)) + (g - (len(groups) - 1) / 2) * 0.18
            ax.errorbar(rows["ability"], y, xerr=[rows["ability"] - rows["ci_low"],
                                                  rows["ci_high"] - rows["ability"]],
                        fmt="o", capsize=2, label=labels.of_key("style_group", group),
                        markersize=4, color=colour)
        ax.axvline(0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yticks(range(len(conditions)), [labels.of_key("condition", c) for c in conditions])
        ax.invert_yaxis()
        ax.set_xlabel("ability (log-odds)")
        ax.set_title(labels.of_key("aspect", aspect))
        if groups:
            ax.legend(loc="best", title="answers")
    return fig


def win_rate_figure(rates: pd.DataFrame, labels):
    """Heatmap of win rates (row beat column), all answers, one panel per aspect."""
    from glidemed.analysis.figures import SINGLE, new_figure

    part = rates[rates["group"] == ALL] if len(rates) else rates
    aspects = list(pd.unique(part["aspect"])) if len(part) else ["(none)"]
    fig, axes = new_figure(len(aspects), SINGLE * 0.9, width=SINGLE * min(len(aspects), 2))
    image = None
    for ax, aspect in zip(axes[0], aspects):
        mine = part[part["aspect"] == aspect] if len(part) else part
        conditions = list(dict.fromkeys([*mine.get("condition", []), *mine.get("opponent", [])]))
        grid = np.full((len(conditions), len(conditions)), np.nan)
        for r in mine.itertuples():
            grid[conditions.index(r.condition), conditions.index(r.opponent)] = r.win_rate
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdBu")
        for i in range(len(conditions)):
            for j in range(len(conditions)):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center")
        names = [labels.of_key("condition", c) for c in conditions]
        ax.set_xticks(range(len(conditions)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(conditions)), names)
        ax.set_xlabel("against")
        ax.set_title(labels.of_key("aspect", aspect))
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="win rate of the row")
    return fig
