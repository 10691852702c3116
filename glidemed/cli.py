"""The command line: each command parses options, loads the study and calls one stage."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from glidemed import __version__
from glidemed.study import load_study

STUDY = click.argument("study", metavar="STUDY")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glidemed")
def main() -> None:
    """Blinded expert rating studies of AI-generated medical images.

    STUDY is a study file, its folder, or the id of a study under surveys/.
    Stages: generate -> build -> (raters) -> analyze -> archive.
    """


@main.command()
@STUDY
def prompts(study: str) -> None:
    """Print the study's expanded prompts as CSV."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["id", "style", "style_group", "topic", "detail", "text"])
    for p in load_study(study).prompts():
        writer.writerow([p.id, p.style, p.style_group, p.topic, p.detail, p.text])


@main.command()
@STUDY
@click.option("--condition", "conditions", multiple=True, help="Only this condition (repeatable).")
@click.option("--only", multiple=True, help="Only prompt ids matching this glob, e.g. 'xray.*' (repeatable).")
@click.option("--limit", type=click.IntRange(min=0), help="Render at most this many new images.")
@click.option("--shard", default="1/1", show_default=True, help="Render shard I of N, e.g. 2/4.")
@click.option("--out", type=click.Path(path_type=Path), help="Images folder [build/<study>/images].")
@click.option("--device", help="Torch device for model generators, e.g. cuda, cuda:1, cpu.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass.")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path),
              help="Model checkpoint folder [$GLIDEMED_CHECKPOINT_DIR or the user cache].")
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
    click.echo(f"{report.made} image(s) made, {report.skipped} already present, "
               f"{report.planned} planned -> {report.out_dir}")


@main.command()
@STUDY
@click.option("--out", type=click.Path(path_type=Path), help="Zip file [build/<study>/<study>-archive.zip].")
@click.option("--images/--no-images", default=True, show_default=True, help="Include the images.")
@click.option("--responses/--no-responses", default=True, show_default=True,
              help="Include the raw response files.")
@click.option("--pseudonymize", is_flag=True, help="Replace rater ids by R01, R02, ... throughout.")
def archive(study, out, images, responses, pseudonymize) -> None:
    """Write one zip with everything needed to check the study's results."""
    from glidemed.archive import archive_study

    path = archive_study(load_study(study), out, images=images, responses=responses,
                         pseudonymize=pseudonymize)
    click.echo(f"archive written: {path} ({path.stat().st_size / 1e6:.1f} MB)")


@main.command("import-ratings")
@STUDY
@click.argument("spreadsheet", type=click.Path(path_type=Path))
@click.option("--nonsensical", type=click.Choice(["exclude", "zero"]), default="exclude",
              show_default=True, help="Ratings of prompts flagged nonsensical: leave out or count as 0.")
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
@click.argument("archive_file", metavar="ARCHIVE", type=click.Path(exists=True, path_type=Path))
@click.option("--hashes-only", is_flag=True, help="Check hashes without re-running the analysis.")
def verify(archive_file, hashes_only) -> None:
    """Check an archive's hashes and re-run its analysis; exit 1 on any difference."""
    from glidemed.archive import verify_archive
    from glidemed.errors import GlidemedError

    report = verify_archive(archive_file, rerun=not hashes_only)
    for line in report.hash_problems + report.differences:
        click.echo(line)
    if report.note:
        click.echo(report.note)
    if not report.ok:
        raise GlidemedError(f"{archive_file}: {len(report.hash_problems)} hash problem(s), "
                            f"{len(report.differences)} difference(s) in the re-run analysis")
    click.echo(f"{archive_file}: {report.checked_files} files verified"
               + ("; the re-run analysis matches every archived number" if report.reran else ""))
