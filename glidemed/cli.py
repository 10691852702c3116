"""The command line: each command parses options, loads the study and calls one stage."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from glidemed import __version__
from glidemed.study import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, load_study
from glidemed.tasks import TASKS, get_task

STUDY = click.argument("study", metavar="STUDY")
CHECKPOINT_DIR = click.option(
    "--checkpoint-dir", type=click.Path(path_type=Path),
    help="Model checkpoint folder [$GLIDEMED_CHECKPOINT_DIR or the user cache].")
BOOTSTRAP_SEED = click.option("--seed", type=int, default=0, show_default=True,
                              help="Random seed of the bootstrap.")

# The commands in the order a study uses them, in the sections that `--help` shows.
PIPELINE: dict[str, list[str]] = {
    "Design and generate": ["prompts", "prescreen", "generate", "checkpoints", "sheets", "score"],
    "Survey and collect": ["build", "audit-blinding", "invite", "serve"],
    "Analyse": ["analyze", "import-ratings", "mrmc"],
    "Plan": ["simulate", "power"],
    "Deposit": ["archive", "verify"],
}


class PipelineGroup(click.Group):
    """Lists the commands in pipeline order, by section, each with its whole first sentence."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        ordered = [name for names in PIPELINE.values() for name in names]
        return ordered + sorted(set(self.commands) - set(ordered))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = set()
        for section, names in PIPELINE.items():
            rows = [(name, self.commands[name].get_short_help_str(limit=200))
                    for name in names if name in self.commands]
            listed.update(names)
            with formatter.section(section):
                formatter.write_dl(rows)
        others = [(n, self.commands[n].get_short_help_str(limit=200))
                  for n in sorted(set(self.commands) - listed)]
        if others:
            with formatter.section("Other commands"):
                formatter.write_dl(others)


@click.group(cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glidemed")
def main() -> None:
    """Blinded expert rating studies of AI-generated medical images.

    STUDY is a study file, its folder, or the id of a study under surveys/.
    A study goes: generate -> build -> (raters answer) -> analyze -> archive.
    """


@main.command()
@STUDY
def prompts(study: str) -> None:
    """Print the study's expanded prompts as CSV."""
    from glidemed.study import has_variants

    loaded = load_study(study)
    variants = has_variants(loaded)  # a study of one template per style prints as it always has
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["id", "style", "style_group", "topic", "detail", "text"]
                    + ["variant", "negative"] * variants)
    for p in loaded.prompts():
        writer.writerow([p.id, p.style, p.style_group, p.topic, p.detail, p.text]
                        + [p.variant, p.negative] * variants)


@main.command()
@STUDY
@click.option("--condition", "conditions", multiple=True, help="Only this condition (repeatable).")
@click.option("--only", multiple=True, help="Only prompt ids matching this glob, e.g. 'xray.*' (repeatable).")
@click.option("--limit", type=click.IntRange(min=0), help="Render at most this many new images.")
@click.option("--shard", default="1/1", show_default=True, help="Render shard I of N, e.g. 2/4.")
@click.option("--out", type=click.Path(path_type=Path), help="Images folder [build/<study>/images].")
@click.option("--device", help="Torch device for model generators, e.g. cuda, cuda:1, cpu.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass.")
@CHECKPOINT_DIR
@click.option("--progress/--no-progress", default=True, help="Show a progress bar with ETA.")
def generate(study, conditions, only, limit, shard, out, device, batch_size, checkpoint_dir,
             progress) -> None:
    """Render every prompt x condition x image index (resumable, shardable)."""
    from glidemed.generate.base import GeneratorContext
    from glidemed.generate.runner import Shard, run_generation
    from glidemed.paths import images_dir

    loaded = load_study(study)
    context = GeneratorContext(loaded, device=device, batch_size=batch_size,
                               checkpoint_dir=checkpoint_dir)
    report = run_generation(loaded, out or images_dir(loaded), conditions=list(conditions),
                            only=list(only), limit=limit, shard=Shard.parse(shard),
                            context=context, progress=progress)
    if report.remade:
        click.echo(f"re-made {len(report.remade)} missing or corrupt image(s): "
                   + ", ".join(report.remade[:10]) + (" ..." if len(report.remade) > 10 else ""),
                   err=True)
    if report.blanked:
        click.echo(f"warning: {len(report.blanked)} image(s) blanked by the model's safety "
                   "checker, recorded as blanked in the manifest: " + ", ".join(report.blanked[:10])
                   + (" ..." if len(report.blanked) > 10 else ""), err=True)
    click.echo(f"{report.made} image(s) made, {report.skipped} already present, "
               f"{report.planned} planned -> {report.out_dir}")


@main.command()
@STUDY
@click.option("--clip", "clips", multiple=True, required=True,
              help="CLIP model to score with, NAME=SPEC (a local folder; repeatable).")
@click.option("--images", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images per prompt variant.")
@click.option("--keep", type=int, default=1, show_default=True,
              help="Best variants kept per style, besides the first template (the control).")
@click.option("--metric", help="Metric that chooses the variants [style_zeroshot of the first --clip].")
@click.option("--condition", help="Condition that renders [the study's first generated one].")
@click.option("--shard", default="1/1", show_default=True,
              help="Render shard I of N; a run without --shard then scores and ranks.")
@click.option("--device", help="Torch device, e.g. cuda, cpu.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass.")
@CHECKPOINT_DIR
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Resamples of the crossed bootstrap over topics and images.")
@BOOTSTRAP_SEED
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def prescreen(study, clips, images, keep, metric, condition, shard, device, batch_size,
              checkpoint_dir, n_boot, seed, progress) -> None:
    """Rank each style's prompt variants by CLIP scores; write a study of the best ones."""
    from glidemed.generate.runner import Shard
    from glidemed.prescreen import run_prescreen

    report = run_prescreen(load_study(study), list(clips), images=images, keep=keep, metric=metric,
                           condition=condition, device=device, batch_size=batch_size,
                           checkpoint_dir=checkpoint_dir, n_boot=n_boot, seed=seed,
                           shard=Shard.parse(shard), progress=progress)
    if not report.ranked:
        click.echo(f"{report.made} image(s) made for this shard -> {report.folder / 'images'}; "
                   "run again without --shard to score and rank")
        return
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    kept = "; ".join(f"{style}: {', '.join(v)}" for style, v in report.kept.items())
    click.echo(f"{report.made} image(s) made; ranked by {report.metric}; kept {kept}")
    click.echo(f"-> {report.folder / 'ranking.csv'} and {report.study_path}")


@main.command("checkpoints")
@click.argument("names", nargs=-1)
@CHECKPOINT_DIR
@click.option("--download", is_flag=True, help="Download the missing files (checked, atomic).")
@click.option("--no-hash", is_flag=True, help="Skip the SHA-256 of present files.")
def checkpoints_command(names, checkpoint_dir, download, no_hash) -> None:
    """List GLIDE checkpoints (NAMES, default: those sampling needs) with sizes and SHA-256."""
    from glidemed.generate import checkpoints

    folder = checkpoints.checkpoint_dir(checkpoint_dir)
    names = tuple(names) or checkpoints.SAMPLING_NAMES
    if download:
        checkpoints.fetch_missing(folder, names)
    rows = checkpoints.list_checkpoints(folder, names, hashes=not no_hash)
    click.echo(f"checkpoint folder: {folder}")
    for row in rows:
        state = f"{row.size:>14,d} B  {row.sha256 or ''}" if row.present else "missing"
        click.echo(f"{row.name:<17} {row.path.name:<22} {state}")


@main.command()
@STUDY
@click.option("--images", type=click.Path(path_type=Path), help="Images folder [build/<study>/images].")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder [build/<study>/sheets].")
def sheets(study, images, out) -> None:
    """Contact sheets, style x topic overviews and condition comparisons (not for raters)."""
    from glidemed.paths import images_dir, sheets_dir
    from glidemed.sheets import make_sheets

    loaded = load_study(study)
    report = make_sheets(loaded, images or images_dir(loaded), out or sheets_dir(loaded))
    click.echo(f"{len(report.sheets)} sheet(s) -> {report.out_dir}")


@main.command()
@STUDY
@click.option("--single-file/--folder", default=True, show_default=True,
              help="One self-contained index.html (for e-mail) or index.html + assets/ (for hosting).")
@click.option("--image-format", type=click.Choice(["jpeg", "png", "webp"]),
              help="Image format for every condition [study's survey.image_format].")
@click.option("--image-quality", type=click.IntRange(1, 100), help="JPEG/WebP quality [study's].")
@click.option("--image-size", type=click.IntRange(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
              help="Square side in pixels [study's].")
@click.option("--leave-out-missing", is_flag=True,
              help="Leave out panels whose images are missing instead of failing (reported).")
@click.option("--new-tokens", is_flag=True,
              help="Draw new panel and image tokens; responses to the old build no longer match.")
def build(study, single_file, image_format, image_quality, image_size, leave_out_missing,
          new_tokens) -> None:
    """Build the blinded survey (build/<study>/survey/) and its key (build/<study>/key/)."""
    from glidemed.survey.build import build_survey

    report = build_survey(load_study(study), single_file=single_file, image_format=image_format,
                          image_quality=image_quality, image_size=image_size,
                          leave_out_missing=leave_out_missing, new_tokens=new_tokens)
    for item in report.left_out:
        click.echo(f"left out {item['condition']}/{item['prompt_id']}: {item['reason']}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{report.panels} panels, {report.images} images "
               f"({report.encoding.format} q{report.encoding.quality}, {report.encoding.size} px), "
               f"{report.size_bytes / 1e6:.1f} MB -> {report.survey_dir}; key -> {report.key_path}; "
               f"blinding audit passed")


@main.command("audit-blinding")
@STUDY
def audit_blinding(study) -> None:
    """Scan the built survey for anything that reveals a panel's condition; exit 1 if found."""
    from glidemed.paths import survey_dir
    from glidemed.survey.audit import audit_blinding as run_audit

    loaded = load_study(study)
    report = run_audit(loaded)
    click.echo(f"blinding audit passed: {report.files} file(s), {report.images} image(s) "
               f"in {survey_dir(loaded)}")


@main.command()
@STUDY
@click.option("--out", type=click.Path(path_type=Path), help="Zip file [build/<study>/<study>-archive.zip].")
@click.option("--images/--no-images", default=True, show_default=True, help="Include the images.")
@click.option("--responses/--no-responses", default=True, show_default=True,
              help="Include the raw response files.")
@click.option("--pseudonymize", is_flag=True, help="Replace rater ids by R01, R02, ... throughout.")
@click.option("--responses-from", type=click.Path(path_type=Path),
              help="Folder holding the analysed response files [where the analysis read them].")
@click.option("--seal-key", is_flag=True,
              help="Write the key to its own zip (under embargo); the archive records its SHA-256.")
def archive(study, out, images, responses, pseudonymize, responses_from, seal_key) -> None:
    """Write one zip (an RO-Crate) with everything needed to check the study's results."""
    from glidemed.archive import archive_study, sealed_key_path

    path = archive_study(load_study(study), out, images=images, responses=responses,
                         pseudonymize=pseudonymize, responses_from=responses_from,
                         seal_key=seal_key)
    click.echo(f"archive written: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if seal_key:
        click.echo(f"key sealed in: {sealed_key_path(path)} (keep it under embargo)")


@main.command("import-ratings")
@STUDY
@click.argument("spreadsheet", type=click.Path(path_type=Path))
@click.option("--nonsensical", type=click.Choice(["exclude", "zero", "paper"]), default="exclude",
              show_default=True, help="Ratings flagged nonsensical: leave out, count as 0, or (paper) "
                                     "count every rating of a prompt any rater flagged as 0.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Tidy ratings table [build/<study>/analysis/ratings.csv].")
def import_ratings(study, spreadsheet, nonsensical, out) -> None:
    """Read the seed study's published spreadsheet into the tidy ratings table."""
    from glidemed.analysis.legacy import import_ratings as run_import
    from glidemed.paths import analysis_dir

    loaded = load_study(study)
    target = out or analysis_dir(loaded) / "ratings.csv"
    counts = run_import(loaded, spreadsheet, target, nonsensical)
    click.echo(", ".join(f"{n} {reason}" for reason, n in counts.items()) + f" -> {target}")


@main.command()
@STUDY
@click.argument("responses", nargs=-1, type=click.Path(path_type=Path))
@click.option("--ratings", type=click.Path(path_type=Path),
              help="Analyse this ratings table instead of responses (tidy CSV, or the paper's .xlsx).")
@click.option("--key", type=click.Path(path_type=Path), help="Survey key [build/<study>/key/key.json].")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder [build/<study>/analysis].")
@click.option("--model", default="score ~ style + detail + condition", show_default=True,
              help="Ordinal model formula over the tidy columns; (1|rater) adds a random intercept.")
@click.option("--nonsensical", type=click.Choice(["exclude", "zero", "paper"]), default="exclude",
              show_default=True, help="Ratings flagged nonsensical: leave out, count as 0, or (paper) "
                                     "count every rating of a prompt any rater flagged as 0.")
@click.option("--flagged", type=click.Choice(["include", "exclude"]), default="exclude",
              show_default=True, help="Flagged files (chain or plan does not verify): use or leave out.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for confidence intervals.")
@BOOTSTRAP_SEED
@click.option("--scores", type=click.Path(path_type=Path),
              help="Automated scores to compare with the ratings [build/<study>/scores/scores.csv "
                   "when present].")
@click.option("--allow-simulated", is_flag=True,
              help="Analyse simulated response files together with real ones.")
def analyze(study, responses, ratings, key, out, model, nonsensical, flagged, n_boot, seed,
            scores, allow_simulated) -> None:
    """Analyse returned response files (files or folders) [build/<study>/responses]."""
    from glidemed.analysis.pipeline import run_analysis
    from glidemed.paths import analysis_dir

    loaded = load_study(study)
    if ratings is not None and responses:
        raise click.UsageError("give either response files or --ratings, not both")
    summary = run_analysis(loaded, list(responses), out, ratings=ratings, key=key, model=model,
                           nonsensical=nonsensical, flagged=flagged, n_boot=n_boot, seed=seed,
                           scores=scores, allow_simulated=allow_simulated)
    files = summary["counts"]["files"]
    if files:
        click.echo("response files: " + ", ".join(f"{n} {s}" for s, n in files.items())
                   + " (reasons in ledger.csv)")
    for model in summary.get("models", []):  # a Turing study has none
        for note in model["notes"]:
            if "separation" in note:
                click.echo(f"note: {model['role']} {model['model']} model, aspect "
                           f"{model['aspect']!r}: {note}", err=True)
    for note in summary.get("analyses_not_done", []):  # a Turing study with too few readers
        click.echo(f"not analysed: {note}", err=True)
    counts = summary["counts"]
    ratings = (f", {counts['usable_ratings']} usable of {counts['ratings']} ratings"
               if "usable_ratings" in counts else "")
    click.echo(f"{counts['raters']} rater(s){ratings} -> {out or analysis_dir(loaded)}/report.html")


@main.command()
@click.argument("archive_file", metavar="ARCHIVE", type=click.Path(exists=True, path_type=Path))
@click.option("--hashes-only", is_flag=True, help="Check hashes without re-running the analysis.")
@click.option("--key", "key_zip", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The sealed key zip, once released: checked against the archive, then used.")
def verify(archive_file, hashes_only, key_zip) -> None:
    """Check an archive's hashes, records and RO-Crate, re-run its analysis; exit 1 on any
    difference."""
    from glidemed.archive import verify_archive
    from glidemed.errors import GlidemedError

    report = verify_archive(archive_file, rerun=not hashes_only, key=key_zip)
    found = report.hash_problems + report.differences
    for line in found[:20]:
        click.echo(line)
    if len(found) > 20:
        click.echo(f"... and {len(found) - 20} more")
    for line in report.summary():
        click.echo(line)
    if not report.ok:
        raise GlidemedError(f"{archive_file}: {len(report.hash_problems)} hash problem(s), "
                            f"{len(report.differences)} difference(s) in the re-run analysis")
    click.echo(f"{archive_file}: {report.checked_files} files verified"
               + ("; the re-run analysis matches every archived number" if report.reran else ""))


def _int_list(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated whole numbers, got {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise click.BadParameter(f"expected counts of at least 1, got {value!r}")
    return numbers


SIM_OPTIONS = [
    click.option("--effect", "effects", multiple=True, metavar="[ASPECT/]FACTOR:LEVEL=X",
                 help="Latent effect (logits) replacing the default, e.g. style:xray=-1.5, "
                      "condition:soft=-0.5, content/detail:detailed=0.3 (repeatable)."),
    click.option("--params", "params_file", type=click.Path(path_type=Path),
                 help="TOML or JSON file of simulation parameters (see the documentation, docs/power.md)."),
    click.option("--dropout", type=click.FloatRange(0, 1),
                 help="Chance that a rater stops partway [0]."),
    click.option("--missing", type=click.FloatRange(0, 1),
                 help="Chance that a rating is left blank [0.002]."),
]


def _sim_options(func):
    for option in reversed(SIM_OPTIONS):
        func = option(func)
    return func


@main.command()
@STUDY
@click.option("--raters", type=click.IntRange(min=1), required=True, help="Number of raters.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder [build/<study>/responses].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--key", "key_path", type=click.Path(path_type=Path),
              help="Survey key [build/<study>/key/key.json].")
@_sim_options
def simulate(study, raters, out, seed, key_path, effects, params_file, dropout, missing) -> None:
    """Write simulated raters' response files for the built survey."""
    from glidemed.simulate import make_params, other_simulated_files, simulate_study

    params = make_params(params_file, effects, dropout=dropout, missing=missing)
    paths = simulate_study(load_study(study), raters, out, key_path, seed, params)
    click.echo(f"{len(paths)} simulated response file(s) -> {paths[0].parent}")
    stale = other_simulated_files(paths[0].parent, paths)
    if stale:
        click.echo(f"note: {paths[0].parent} also holds {len(stale)} simulated file(s) from an "
                   f"earlier run ({', '.join(p.name for p in stale[:3])}"
                   f"{' ...' if len(stale) > 3 else ''}); analyze reads them too", err=True)


@main.command()
@STUDY
@click.option("--raters", "rater_counts", callback=_int_list, default="3,5,10", show_default=True,
              help="Rater counts to try, comma-separated.")
@click.option("--prompts", "prompt_counts", callback=_int_list,
              help="Total prompt counts to try, comma-separated [the study's, and twice that].")
@click.option("--difference", type=float, default=1.0, show_default=True,
              help="Difference between the two groups (see --scale).")
@click.option("--scale", type=click.Choice(["score", "logit"]), default="score", show_default=True,
              help="score: points of the rating scale; logit: latent log odds ratio.")
@click.option("--groups", default=None, metavar="A,B",
              help="Style groups or styles to compare [histopathology,radiology when present].")
@click.option("--aspect", help="Aspect to test [the study's first].")
@click.option("--sims", type=click.IntRange(min=1), default=200, show_default=True,
              help="Simulated studies per cell.")
@click.option("--method", type=click.Choice(["mixed", "mann-whitney", "hillis", "roe-metz"]),
              help="Analysis of each simulated study [mixed]; for --design turing: hillis (OR "
                   "variance components) or roe-metz (simulation) [roe-metz].")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder [build/<study>/power].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@_sim_options
@click.option("--design", type=click.Choice(list(TASKS)),
              help="ratings: the rating survey; turing: an MRMC reader study of real vs generated "
                   "images; pairwise: an ability difference between the first two compared "
                   "conditions (--effect condition:NAME=X; --difference when none is given) "
                   "[the study's first survey task].")
@click.option("--cases", "case_counts", callback=_int_list, default="50,100,200", show_default=True,
              help="turing: total cases (images) per study, comma-separated.")
@click.option("--auc", "aucs", default="0.7", show_default=True, metavar="AUC[,AUC2]",
              help="turing: one AUC (tested against 0.5) or two (their difference is tested).")
@click.option("--pilot", type=click.Path(path_type=Path),
              help="turing, hillis: pilot MRMC table (reader,treatment,case,truth,rating) for the "
                   "OR variance components [the Roe-Metz model's].")
@click.option("--roe-metz", "roe_metz_file", type=click.Path(path_type=Path),
              help="turing: TOML or JSON file of Roe-Metz variance components (see the documentation, docs/power.md).")
@click.option("--target", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.8,
              show_default=True, help="turing, hillis: power for the cases-needed table.")
def power(study, rater_counts, prompt_counts, difference, scale, groups, aspect, sims, method,
          alpha, out, seed, jobs, progress, effects, params_file, dropout, missing, design,
          case_counts, aucs, pilot, roe_metz_file, target) -> None:
    """Estimate power by simulation for several rater and prompt counts."""
    from glidemed.power import run_power
    from glidemed.simulate import make_params

    loaded = load_study(study)
    task = get_task(design or loaded.survey.blocks[0].task)
    text = task.run_power(loaded, out, rater_counts=rater_counts, prompt_counts=prompt_counts,
                          case_counts=case_counts, aucs=aucs, method=method, pilot=pilot,
                          roe_metz_file=roe_metz_file, n_sims=sims, alpha=alpha, target=target,
                          seed=seed, effects=effects, difference=difference)
    if text is not None:
        click.echo(text)
        return
    if method in ("hillis", "roe-metz"):
        raise click.BadParameter(f"{method} is a method of --design turing", param_hint="--method")
    method = method or "mixed"
    pair = tuple(g.strip() for g in groups.split(",")) if groups else None
    if pair is not None and len(pair) != 2:
        raise click.BadParameter(f"expected two names A,B, got {groups!r}", param_hint="--groups")
    n_prompts = len(loaded.prompts())
    table, paths = run_power(
        loaded, out, rater_counts=rater_counts, prompt_counts=prompt_counts or [n_prompts, 2 * n_prompts],
        difference=difference, n_sims=sims, method=method, alpha=alpha, seed=seed, groups=pair,
        scale=scale, aspect=aspect, jobs=jobs, progress=progress,
        params=make_params(params_file, effects, dropout=dropout, missing=missing))
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"-> {', '.join(str(p) for p in paths)}")


@main.command()
@STUDY
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep the default behind a reverse proxy).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--base-url", default="", help="Public address of the survey behind a reverse "
                                             "proxy, e.g. https://example.org/survey/.")
@click.option("--max-mb", type=click.FloatRange(min=0.001), default=20, show_default=True,
              help="Largest response body accepted, in MB.")
@click.option("--rate-limit", type=click.IntRange(min=0), default=120, show_default=True,
              help="API requests a minute per client (0: no limit).")
@click.option("--request-timeout", type=click.FloatRange(min=0.1, max=3600), default=30,
              show_default=True, help="Seconds a client has to send a whole request "
                                      "(headers and body); slower ones get 408.")
def serve(study, host, port, base_url, max_mb, rate_limit, request_timeout) -> None:
    """Host the folder build and receive responses into build/<study>/responses/received/."""
    from glidemed.server.app import ServerConfig, serve_study

    config = ServerConfig(host=host, port=port, base_url=base_url,
                          max_bytes=int(max_mb * 1024 * 1024), rate_limit=rate_limit,
                          request_timeout=request_timeout)
    serve_study(load_study(study), config, lambda line: click.echo(line))


@main.command()
@STUDY
@click.option("--raters", "raters_file", type=click.Path(path_type=Path),
              help="File of rater ids, one a line.")
@click.option("--count", type=click.IntRange(min=1), help="Invite N raters R001, R002, ...")
@click.option("--base-url", help="The survey's public address, where raters open it "
                                  "(e.g. https://example.org/survey/); the links point there.")
@click.option("--local", is_flag=True, help="Links to this machine (http://127.0.0.1:8000/ or a "
                                            "loopback --base-url), for trying the survey here.")
def invite(study, raters_file, count, base_url, local) -> None:
    """Per-rater links with unguessable tokens; `serve` then accepts only invited raters."""
    from glidemed.paths import server_dir
    from glidemed.server.secrets import (access_line, check_base_url, load_invitations,
                                         read_rater_ids)
    from glidemed.server.secrets import invite as run_invite

    base_url = check_base_url(base_url, local)
    ids = read_rater_ids(raters_file) if raters_file is not None else None
    folder = server_dir(load_study(study))
    report = run_invite(folder, base_url, ids, count)
    click.echo(f"{len(report.new)} rater(s) invited, {len(report.kept)} already invited "
               f"(links kept) -> {report.links_file}; the links point to {base_url}")
    click.echo(f"the study is {access_line(load_invitations(folder))}; a running `glidemed "
               "serve` applies this at its next request (no restart needed)")


@main.command()
@STUDY
@click.option("--clip", "clips", multiple=True, metavar="[NAME=]MODEL",
              help="CLIP model (repeatable): local-dir:PATH (open_clip folder), a transformers "
                   "CLIPModel folder, or a hub id when online; NAME names its metrics.")
@click.option("--reference", type=click.Path(path_type=Path),
              help="Folder of real images with images.csv (as the folder generator): CMMD, "
                   "and FID/KID with --fid, per condition and style.")
@click.option("--fid", is_flag=True, help="Also FID and KID against --reference (needs "
                                          "--inception-weights).")
@click.option("--inception-weights", type=click.Path(path_type=Path),
              help="Inception weights file for FID/KID (pt_inception-2015-12-05-6726825d.pth); "
                   "implies --fid.")
@click.option("--images", type=click.Path(path_type=Path), help="Images folder [build/<study>/images].")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder [build/<study>/scores].")
@click.option("--device", help="Torch device, e.g. cuda, cpu [cuda when available].")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per forward pass.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=200, show_default=True,
              help="Bootstrap resamples of the set metrics' intervals.")
@BOOTSTRAP_SEED
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def score(study, clips, reference, fid, inception_weights, images, out, device, batch_size,
          n_boot, seed, progress) -> None:
    """Automated scores of the images (CLIPScore, zero-shot style, retrieval, CMMD, FID/KID)."""
    from glidemed.scores.run import run_scoring

    report = run_scoring(load_study(study), list(clips), images_dir=images, out_dir=out,
                         reference=reference, fid=fid, inception_weights=inception_weights,
                         device=device, batch_size=batch_size, n_boot=n_boot, seed=seed,
                         progress=progress)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{report.images} image(s) and {report.reference} reference image(s) scored "
               f"({report.embedded} new embedding(s)): {report.rows} score(s), {report.set_rows} "
               f"set score(s) -> {report.out_dir}")


def _scale_range(ctx, param, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected LOW,HIGH, e.g. 1,5, got {value!r}") from None
    if not low < high:
        raise click.BadParameter(f"expected LOW below HIGH, got {value!r}")
    return low, high


@main.command("mrmc")
@click.argument("table", type=click.Path(path_type=Path))
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the results as JSON here.")
@click.option("--cov", "cov_method", type=click.Choice(["jackknife", "delong"]), default="jackknife",
              show_default=True, help="Covariance of the AUCs over cases.")
@click.option("--scale", callback=_scale_range, metavar="LOW,HIGH",
              help="Rating scale; a rating outside it is an error.")
@click.option("--drop-incomplete-readers", is_flag=True,
              help="Leave out (and list) readers who did not read every case, instead of stopping.")
def mrmc_command(table, json_out, cov_method, scale, drop_incomplete_readers) -> None:
    """MRMC ROC analysis (Obuchowski-Rockette, Hillis df) of a reader,treatment,case,truth,rating table."""
    from glidemed.analysis.mrmc import mrmc, summary_text, write_json

    result = mrmc(table, cov_method=cov_method, scale=scale,
                  incomplete="drop-readers" if drop_incomplete_readers else "refuse")
    click.echo(summary_text(result))
    if json_out:
        click.echo(f"-> {write_json(result, json_out)}")
