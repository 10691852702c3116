"""The methods paragraph to paste: ``analysis/methods.md`` and the report's Methods.

Written from the summary (``summary.json`` as written, less its output hashes), so every
number in it is one a reviewer finds there: the design, the counts and exclusions, the
options of each test and model, the key results and the software versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glidemed.study import Study

REFERENCES = {
    "kather": "Kather JN, Ghaffari Laleh N, Foersch S, Truhn D. Medical domain knowledge in "
              "domain-agnostic generative AI. npj Digit Med. 2022;5:90.",
    "ordinal": "Christensen RHB. ordinal: Regression Models for Ordinal Data. R package; "
               "cumulative link (mixed) models as in its clm and clmm functions.",
    "holm": "Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat. "
            "1979;6:65-70.",
    "dunn": "Dunn OJ. Multiple comparisons using rank sums. Technometrics. 1964;6:241-252.",
    "cliff": "Cliff N. Dominance statistics: ordinal analyses to answer ordinal questions. "
             "Psychol Bull. 1993;114:494-509.",
    "pigeonhole": "Owen AB. The pigeonhole bootstrap. Ann Appl Stat. 2007;1:386-411.",
    "krippendorff": "Hayes AF, Krippendorff K. Answering the call for a standard reliability "
                    "measure for coding data. Commun Methods Meas. 2007;1:77-89.",
    "icc": "Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater "
           "reliability. Psychol Bull. 1979;86:420-428.",
    "orh": "Obuchowski NA, Rockette HE. Hypothesis testing of diagnostic accuracy for multiple "
           "readers and multiple tests: an ANOVA approach with dependent observations. Commun "
           "Stat Simul Comput. 1995;24:285-308.",
    "hillis": "Hillis SL. A comparison of denominator degrees of freedom methods for "
              "multiple observer ROC analysis. Stat Med. 2007;26:596-619.",
    "bradley_terry": "Bradley RA, Terry ME. Rank analysis of incomplete block designs: I. The "
                     "method of paired comparisons. Biometrika. 1952;39:324-345.",
    "bradleyterry2": "Turner H, Firth D. Bradley-Terry models in R: the BradleyTerry2 package. "
                     "J Stat Softw. 2012;48(9):1-21.",
    "scipy": "Virtanen P, et al. SciPy 1.0: fundamental algorithms for scientific computing in "
             "Python. Nat Methods. 2020;17:261-272.",
    "posthocs": "Terpilowski MA. scikit-posthocs: pairwise multiple comparison tests in "
                "Python. J Open Source Softw. 2019;4(36):1169.",
}
RATINGS_REFERENCES = ("kather", "ordinal", "holm", "dunn", "cliff", "pigeonhole", "krippendorff",
                      "icc", "scipy", "posthocs")
TASK_REFERENCES = {"turing": ("orh", "hillis"), "pairwise": ("bradley_terry", "bradleyterry2",
                                                             "ordinal", "pigeonhole")}


def design_record(study: Study, conditions: list[str] | None = None) -> dict[str, Any]:
    """The study's design as ``summary.json`` records it (the methods' first paragraph);
    ``conditions``: those analysed (default: every condition of the study)."""
    prompts = study.prompts()
    survey = study.survey
    analysed = set(conditions) if conditions is not None else {c.name for c in study.conditions}
    return {
        "prompts": len(prompts),
        "topics": len(study.topics),
        "styles": [s.label for s in study.styles],
        "details": sorted({p.detail for p in prompts}),
        "conditions": [c.label or c.name for c in study.conditions
                       if c.name not in survey.controls and c.name in analysed],
        "controls": [c.label or c.name for c in study.conditions if c.name in survey.controls],
        "images_per_prompt": study.images_per_prompt,
        "images_per_panel": study.images_per_panel,
        "aspects": [{"label": a.label, "lowest": 0, "highest": len(a.levels) - 1}
                    for a in study.aspects],
        "variants": {s.label: len(s.variants) for s in study.styles if len(s.variants) > 1},
        "tasks": [b.task for b in survey.blocks],
        "repeat_panels": survey.repeat_panels,
    }


def _list(items: list[str]) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def design_paragraph(design: dict, source: str, from_survey: bool) -> str:
    detail = (" each as a short and a detailed description," if design["details"] == ["detailed", "short"]
              else "")
    controls = (f", with real reference images ({_list(design['controls'])}) as controls"
                if design["controls"] else "")
    text = (f"The study comprised {design['prompts']} prompts: {design['topics']} topics in "
            f"{len(design['styles'])} styles ({_list(design['styles'])}),{detail} rendered by "
            f"{len(design['conditions'])} condition(s) ({_list(design['conditions'])}){controls}; "
            f"{design['images_per_prompt']} images per prompt and condition, "
            f"{design['images_per_panel']} shown per panel.")
    if design.get("variants"):
        text += (" Prompt variants (templates) per style: " + ", ".join(
            f"{style} {n}" for style, n in design["variants"].items()) + " (other styles one); "
            "the variants of a prompt were rendered from the same seeds.")
    scales = _list([f"{a['label']} ({a['lowest']}-{a['highest']})" for a in design["aspects"]])
    if from_survey:
        text += (f" Raters scored {scales} in a self-contained survey page that carries no "
                 "condition, generator, seed or file name (audited when the page was built); "
                 "each rater's panel order, the images shown and their positions were drawn at "
                 "random from the rater's id")
        text += (f", and {design['repeat_panels']} panels were shown twice to measure "
                 "consistency." if design["repeat_panels"] else ".")
    else:
        text += f" Raters scored {scales}; the ratings were read from {source}."
    return text


def counts_paragraph(counts: dict) -> str:
    excluded = counts.get("exclusions") or {}
    text = (f"{counts['raters']} raters rated {counts['panels']} panels; "
            f"{counts['usable_ratings']} of {counts['ratings']} ratings were analysed")
    text += ("; excluded: " + ", ".join(f"{reason} {n}" for reason, n in excluded.items()) + "."
             if excluded else ".")
    files = counts.get("files") or {}
    if files:
        text += " Response files: " + ", ".join(f"{n} {status}" for status, n in files.items()) + "."
    return text


def ratings_methods(summary: dict, method_paragraphs: list[str]) -> list[str]:
    """The methods of a ratings analysis, from its ``summary``."""
    from_survey = bool(summary["counts"].get("files"))
    paragraphs = [design_paragraph(summary["design"], summary["source"], from_survey),
                  counts_paragraph(summary["counts"]), *method_paragraphs]
    primary = [m for m in summary["models"] if m["role"] == "primary"]
    if primary:
        paragraphs.append("Primary model per aspect: " + "; ".join(
            f"{m['aspect']}: {m['model']} model {m['formula']} (n = {m['n']})" for m in primary) + ".")
    findings = [k["text"] for k in summary.get("key_results", [])]
    if findings:
        paragraphs.append("Results: " + " ".join(findings))
    return paragraphs


def software_sentence(versions: dict) -> str:
    rest = ", ".join(f"{name} {version}" for name, version in versions.items()
                     if name not in ("glidemed", "python"))
    return (f"Analyses were run with glidemed {versions.get('glidemed', 'unknown')} (Python "
            f"{versions.get('python', 'unknown')}; {rest}).")


def methods_markdown(title: str, paragraphs: list[str], versions: dict,
                     references: tuple[str, ...], simulated: bool) -> str:
    """``methods.md``: the paragraphs, the software and the references to cite."""
    lines = [f"# Methods: {title}", ""]
    if simulated:
        lines += ["**Simulated data**: these results come from simulated responses "
                  "(`glidemed simulate`), not from raters.", ""]
    for paragraph in [*paragraphs, software_sentence(versions)]:
        lines += [paragraph, ""]
    lines += ["## References", ""]
    lines += [f"{n}. {REFERENCES[key]}" for n, key in enumerate(dict.fromkeys(references), 1)]
    return "\n".join(lines) + "\n"


def references_for(tasks: list[str], ratings: bool) -> tuple[str, ...]:
    keys = list(RATINGS_REFERENCES) if ratings else ["kather"]
    for task in tasks:
        keys += TASK_REFERENCES.get(task, ())
    return tuple(dict.fromkeys(keys))


def write_methods(folder: Path, title: str, paragraphs: list[str], versions: dict,
                  references: tuple[str, ...], simulated: int) -> None:
    """``methods.md``: the methods paragraph to paste, with the references to cite."""
    (folder / "methods.md").write_text(
        methods_markdown(title, paragraphs, versions, references, bool(simulated)), encoding="utf-8")
