"""`glidemed prescreen`: rank each style's prompt variants by automated scores, so that
expert time goes to the prompts worth rating.

K images per prompt variant are rendered with the study's generator (the first images of
the study itself: same seeds, resumable and shardable like `generate`), scored with the
given CLIP models (the scorers and embedding cache of `glidemed score`), and each
style's variants are ranked per metric by their mean, with 95% intervals from a crossed
bootstrap that resamples topics and image indices independently (the same draws for
every variant, so the variants stay paired). Written to ``build/<study>/prescreen/``:

- ``ranking.csv``: style, variant, template, metric, mean, ci_low, ci_high, rank (1 best;
  for retrieval, a rank itself, lower is better);
- ``ranking_figure.png``/``.svg``/``.pdf`` (its numbers in ``.csv``): the chosen metric
  per style and variant;
- ``study.toml``: the study with, per style, its plain first template (the control) and
  the ``keep`` best other variants by the chosen metric, ready for `generate` and
  `build`; ``prescreen.json`` beside it records where it came from (the source study's
  SHA-256, the ranking's, the metric, the models) and `archive` carries both.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from glidemed import __version__
from glidemed.errors import GlidemedError, ScoringError
from glidemed.fileio import sha256_bytes, sha256_file, write_text_atomic
from glidemed.study import KEY_PATTERN, Study, has_variants, variant_name

DEFAULT_METRIC = "style_zeroshot"  # the CLIP's zero-shot probability of the prompt's own style
RANKING_COLUMNS = ["style", "variant", "template", "metric", "mean", "ci_low", "ci_high", "rank"]
PROVENANCE = "prescreen.json"  # beside a derived study: where it came from
RANKING = "ranking.csv"  # beside it too: each variant's automated means
MAX_IMAGES = 64


class PrescreenError(GlidemedError):
    pass


@dataclass
class PrescreenReport:
    folder: Path
    made: int = 0  # images rendered in this run (the others were there)
    ranked: bool = False  # False when a shard rendered its part only
    metric: str = ""
    kept: dict[str, list[str]] = field(default_factory=dict)  # style: kept variants
    study_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def prescreen_dir(study: Study) -> Path:
    from glidemed.paths import study_build_dir

    return study_build_dir(study) / "prescreen"


def run_prescreen(study: Study, clip: list[str], *, images: int = 4, keep: int = 1,
                  metric: str | None = None, condition: str | None = None,
                  device: str | None = None, batch_size: int | None = None,
                  checkpoint_dir: Path | None = None, n_boot: int = 1000, seed: int = 0,
                  shard=None, progress: bool = True) -> PrescreenReport:
    """Render, score and rank (see the module docstring); every input is checked before
    anything is rendered."""
    from glidemed.generate.base import GeneratorContext
    from glidemed.generate.runner import Shard, run_generation
    from glidemed.scores.registry import make_scorers
    from glidemed.scores.run import run_scoring

    shard = shard or Shard()
    chosen = _check(study, clip, images, keep, condition)
    try:
        scorers = make_scorers([("clip", {"spec": spec}) for spec in clip], device)
    except ScoringError as exc:
        message = exc.message if exc.message.startswith("--clip") else f"--clip: {exc.message}"
        raise PrescreenError(message) from None
    metric = _metric_name(metric, [s.name for s in scorers])
    screen = dataclasses.replace(study, images_per_prompt=images,
                                 conditions=[study.condition(chosen)])
    folder = prescreen_dir(study)
    context = GeneratorContext(screen, device=device, batch_size=batch_size,
                               checkpoint_dir=checkpoint_dir)
    generated = run_generation(screen, folder / "images", shard=shard, context=context,
                               progress=progress)
    report = PrescreenReport(folder, made=generated.made, metric=metric)
    if shard.count > 1:
        return report  # each shard renders its part; a run without --shard ranks
    run_scoring(screen, images_dir=folder / "images", out_dir=folder / "scores", scorers=scorers,
                device=device, n_boot=0, seed=seed, progress=progress)
    scores = pd.read_csv(folder / "scores" / "scores.csv")
    ranking = rank_variants(study, scores, n_boot, seed)
    if metric not in set(ranking["metric"]):
        raise PrescreenError(f"--metric {metric}: not among the scores (known: "
                             f"{', '.join(sorted(set(ranking['metric'])))})")
    report.kept = keep_best(study, ranking, metric, keep)
    _write(study, folder, ranking, metric, report, clip, images, keep, chosen, n_boot, seed)
    report.ranked = True
    return report


def _check(study: Study, clip: list[str], images: int, keep: int, condition: str | None) -> str:
    """The condition to render; every other problem as one line."""
    if not has_variants(study):
        raise PrescreenError(f"{study.path}: no style gives several templates: nothing to "
                             "pre-screen (give a style templates = [...], see study-files)")
    if not clip:
        raise PrescreenError("--clip: give at least one CLIP model to score with (NAME=SPEC)")
    if not 1 <= images <= MAX_IMAGES:
        raise PrescreenError(f"--images: expected 1..{MAX_IMAGES} images per prompt variant, "
                             f"got {images}")
    fewest = min(len(s.variants) for s in study.styles if len(s.variants) > 1)
    if not 1 <= keep <= fewest - 1:
        raise PrescreenError(f"--keep {keep}: expected 1..{fewest - 1}, the variants a style "
                             f"has besides its first (the control; the fewest: {fewest})")
    generated = [c.name for c in study.conditions if c.name not in study.survey.controls]
    if condition is None:
        return generated[0]
    if condition not in generated:
        raise PrescreenError(f"--condition {condition!r}: not a generated condition of the study "
                             f"(known: {', '.join(generated)})")
    return condition


def _metric_name(metric: str | None, names: list[str]) -> str:
    """``style_zeroshot:<first model>`` by default; a bare metric takes the first model."""
    metric = metric or DEFAULT_METRIC
    return metric if ":" in metric else f"{metric}:{names[0]}"


def rank_variants(study: Study, scores: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    """``RANKING_COLUMNS`` for each style with several variants and each metric."""
    from glidemed.analysis.agreement import metric_direction

    prompts = {p.id: p for p in study.prompts()}
    known = scores[scores["prompt_id"].isin(prompts)]
    table = known.assign(
        style=[prompts[i].style for i in known["prompt_id"]],
        variant=[prompts[i].variant for i in known["prompt_id"]],
        topic=[prompts[i].topic for i in known["prompt_id"]],
        cell=[f"{prompts[i].seed_id}#{k}" for i, k in zip(known["prompt_id"], known["index"])])
    rows = []
    for style in (s for s in study.styles if len(s.variants) > 1):
        for metric, part in table[table["style"] == style.key].groupby("metric", sort=True):
            wide = part.pivot_table(index=["topic", "index", "cell"], columns="variant",
                                    values="value", aggfunc="first")
            variants = [variant_name(i) for i in range(len(style.variants))]
            wide = wide.reindex(columns=variants).dropna()  # images every variant has
            low, high = _crossed_intervals(wide, n_boot, seed)
            means = wide.mean()
            order = (-metric_direction(metric) * means).rank(method="min")
            rows += [{"style": style.key, "variant": v, "template": style.variants[i],
                      "metric": metric, "mean": means[v], "ci_low": low[i], "ci_high": high[i],
                      "rank": int(order[v]) if np.isfinite(order[v]) else None}
                     for i, v in enumerate(variants)]
    return pd.DataFrame(rows, columns=RANKING_COLUMNS)


def _crossed_intervals(wide: pd.DataFrame, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile intervals of each column's mean, resampling topics and image indices
    independently (the crossed bootstrap of the analysis, topics and indices in the places
    of raters and prompts; rows weighted by how often their topic and index were drawn)."""
    from glidemed.analysis.bootstrap import crossed_draws

    k = wide.shape[1]
    if n_boot <= 0 or wide.empty:
        return np.full(k, np.nan), np.full(k, np.nan)
    cells = wide.index.to_frame(index=False)
    draws = crossed_draws(cells, n_boot, seed, rater="topic", prompt="index")
    topic_codes = pd.Index(draws.raters).get_indexer(cells["topic"])
    index_codes = pd.Index(draws.prompts).get_indexer(cells["index"])
    weights = draws.rater_counts[:, topic_codes] * draws.prompt_counts[:, index_codes]
    totals = weights.sum(axis=1, keepdims=True).astype(float)
    valid = totals[:, 0] > 0
    means = (weights[valid] @ wide.to_numpy(float)) / totals[valid]
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def keep_best(study: Study, ranking: pd.DataFrame, metric: str, keep: int) -> dict[str, list[str]]:
    """Per style with variants: v1 (the control) and the ``keep`` best others by ``metric``."""
    kept = {}
    for style in (s for s in study.styles if len(s.variants) > 1):
        part = ranking[(ranking["style"] == style.key) & (ranking["metric"] == metric)
                       & (ranking["variant"] != "v1")].sort_values(["rank", "variant"])
        kept[style.key] = ["v1", *part["variant"].head(keep)]
    return kept


def derived_study_text(study: Study, kept: dict[str, list[str]], header: str) -> str:
    """The study file with each style's templates cut to ``kept`` and a new id."""
    from glidemed.toml_lines import key_lines

    text = study.path.read_text(encoding="utf-8")
    lines = text.splitlines()
    where = key_lines(text)
    replaced: dict[int, tuple[int, str]] = {}  # first line: (last line, new text)
    for i, style in enumerate(study.styles):
        if style.key not in kept:
            continue
        start = where[f"styles[{i}].templates"] - 1
        end = _array_end(lines, start)
        chosen = [style.variants[int(v[1:]) - 1] for v in kept[style.key]]
        replaced[start] = (end, "templates = [" + ",\n             ".join(
            json.dumps(t, ensure_ascii=False) for t in chosen) + "]")
    id_line = where["id"] - 1
    replaced[id_line] = (id_line, f'id = "{derived_id(study)}"')
    out, n = [], 0
    while n < len(lines):
        if n in replaced:
            end, new = replaced[n]
            out.append(new)
            n = end + 1
        else:
            out.append(lines[n])
            n += 1
    return header + "\n".join(out) + "\n"


def derived_id(study: Study) -> str:
    name = f"{study.id}-prescreened"
    return name if KEY_PATTERN.match(name) else study.id


def _array_end(lines: list[str], start: int) -> int:
    """The line where the array that opens on line ``start`` closes (brackets in strings
    do not count)."""
    depth, quote = 0, ""
    for n in range(start, len(lines)):
        line = lines[n]
        i = line.index("=") + 1 if n == start else 0
        while i < len(line):
            char = line[i]
            if quote:
                if char == "\\" and quote == '"':
                    i += 1
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
                if depth == 0:
                    return n
            i += 1
    raise PrescreenError(f"{lines[start]!r}: the templates array does not close")


def _write(study: Study, folder: Path, ranking: pd.DataFrame, metric: str,
           report: PrescreenReport, clip: list[str], images: int, keep: int, condition: str,
           n_boot: int, seed: int) -> None:
    from glidemed.analysis.figures import write_figure

    ranking_text = ranking.to_csv(index=False)
    provenance = {
        "schema": "glidemed-prescreen/1", "glidemed": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_study": str(study.path.resolve()), "source_study_id": study.id,
        "source_sha256": sha256_file(study.path), "ranking_sha256": sha256_bytes(ranking_text.encode()),
        "metric": metric, "clip": list(clip), "images_per_variant": images, "keep": keep,
        "condition": condition, "bootstrap": n_boot, "seed": seed,
        "kept": {style: {v: study.style(style).variants[int(v[1:]) - 1] for v in variants}
                 for style, variants in report.kept.items()},
    }
    header = (f"# Derived by glidemed prescreen from {study.path.name} (SHA-256 "
              f"{provenance['source_sha256'][:16]}…): per style, its first template (the control)\n"
              f"# and the {keep} best other variant(s) by {metric}; see {PROVENANCE} and "
              "ranking.csv beside this file.\n")
    write_text_atomic(folder / RANKING, ranking_text)
    write_figure(folder, "ranking_figure", ranking_figure(study, ranking, metric))
    write_text_atomic(folder / PROVENANCE, json.dumps(provenance, indent=1, ensure_ascii=False) + "\n")
    report.study_path = folder / "study.toml"
    write_text_atomic(report.study_path, derived_study_text(study, report.kept, header))
    relative = [c.name for c in study.conditions if c.generator == "folder"] + [
        e.file for e in study.survey.examples]
    if relative:
        report.notes.append(f"{report.study_path}: names files relative to its folder "
                            f"({', '.join(relative)}); copy it beside {study.path} before using it")


def ranking_figure(study: Study, ranking: pd.DataFrame, metric: str):
    """The chosen metric per style (panels) and variant, with its crossed-bootstrap CI."""
    from glidemed.analysis.figures import DOUBLE, _RC, colours, new_figure, plt, render

    part = ranking[ranking["metric"] == metric]
    styles = list(dict.fromkeys(part["style"]))
    with plt.rc_context(_RC):
        columns = min(len(styles), 4)
        rows = -(-len(styles) // columns)
        fig, axes = new_figure(columns, 1.7 * rows + 0.4, width=DOUBLE, rows=rows, sharey=True)
        for n, style in enumerate(styles):
            ax = axes[n // columns][n % columns]
            mine = part[part["style"] == style]
            x = np.arange(len(mine))
            ax.errorbar(x, mine["mean"], yerr=[(mine["mean"] - mine["ci_low"]).clip(lower=0),
                                               (mine["ci_high"] - mine["mean"]).clip(lower=0)],
                        fmt="o", capsize=2, color=colours(1)[0])
            ax.set_xticks(x, mine["variant"])
            ax.set_title(study.style(style).label)
        for n in range(len(styles), rows * columns):
            axes[n // columns][n % columns].axis("off")
        for row in axes:
            row[0].set_ylabel(metric)
        return render(fig, f"{metric} per prompt variant (v1: the first template), mean and "
                      "crossed-bootstrap 95% CI over topics and images.", part)
