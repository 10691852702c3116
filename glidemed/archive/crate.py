"""The archive's RO-Crate 1.2 metadata (``ro-crate-metadata.json``), written with ``rocrate``.

Every file is a data entity with its encoding format, size and SHA-256; each stage
(generate, build, analyze) is a ``CreateAction`` with its instrument, inputs (``object``)
and outputs (``result``), as the Process Run Crate profile describes. :func:`crate_problems`
checks a crate against the members of its zip.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from glidemed import __version__
from glidemed.archive.citation import archive_description, archive_title
from glidemed.study import Study

CRATE_NAME = "ro-crate-metadata.json"
CRATE_VERSION = "1.2"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
SEALED_KEY_ID = "#sealed-unblinding-key"
ENCODINGS = {".toml": "application/toml", ".jsonl": "application/jsonl", ".csv": "text/csv",
             ".tex": "application/x-tex", ".md": "text/markdown", ".cff": "application/yaml",
             ".webp": "image/webp", ".svg": "image/svg+xml", ".json": "application/json",
             ".html": "text/html", ".png": "image/png", ".jpg": "image/jpeg",
             ".jpeg": "image/jpeg", ".txt": "text/plain", ".zip": "application/zip"}
DESCRIPTIONS = {
    "key/key.json": "The unblinding key: panel and image tokens to prompts, conditions and "
                    "image files. Raters never see it; keep it under embargo until publication.",
    "key/build.json": "The survey build record: build hash, options and the SHA-256 of every "
                      "survey file.",
    "analysis/ledger.csv": "Every response file the analysis read and what became of it.",
    "analysis/summary.json": "Counts, tests, models and reliability of the analysis, as JSON.",
    "analysis/report.html": "The analysis report.",
    "SHA256SUMS": "SHA-256 of every other file of the archive (sha256sum -c format).",
}


def encoding_format(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in ENCODINGS:
        return ENCODINGS[suffix]
    return mimetypes.guess_type(name)[0] or ("text/plain" if not suffix else "application/octet-stream")


@dataclass
class Stages:
    """What the archive records about each stage: its time, inputs, outputs and software."""

    generate_end: str = ""
    generators: list[dict] = field(default_factory=list)  # {condition, generator, params, versions}
    build_end: str = ""
    analyze_end: str = ""
    analysis_versions: dict[str, str] = field(default_factory=dict)
    analysis_options: dict = field(default_factory=dict)


def build_crate(study: Study, members: dict[str, tuple[int, str]], stages: Stages,
                today: dt.date, sealed_key: tuple[str, int, str] | None = None,
                renamed: dict[str, str] | None = None) -> bytes:
    """``ro-crate-metadata.json`` for ``members`` (name -> (size, SHA-256)); ``sealed_key``:
    (file name, size, SHA-256) of the key zip kept apart; ``renamed``: archive name of a
    response -> the name the analysis ledger gives it."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate(version=CRATE_VERSION)
    meta = study.archive
    crate.name = archive_title(study)
    crate.description = archive_description(study)
    crate.datePublished = today.isoformat()
    license_id = f"https://spdx.org/licenses/{meta.license}"
    crate.license = crate.add(ContextEntity(crate, license_id, properties={
        "@type": "CreativeWork", "name": meta.license}))
    if meta.keywords:
        crate.root_dataset["keywords"] = list(meta.keywords)
    if meta.version:
        crate.root_dataset["version"] = meta.version
    if meta.doi:
        crate.root_dataset["identifier"] = f"https://doi.org/{meta.doi}"
    authors = []
    for i, author in enumerate(meta.authors, start=1):
        properties = {"@type": "Person", "name": author.full_name,
                      "familyName": author.family_names}
        if author.given_names:
            properties["givenName"] = author.given_names
        if author.affiliation:
            properties["affiliation"] = crate.add(ContextEntity(
                crate, f"#organization-{i}", properties={"@type": "Organization",
                                                         "name": author.affiliation}))
        authors.append(crate.add(ContextEntity(crate, author.orcid_url or f"#author-{i}",
                                               properties=properties)))
    if authors:
        crate.root_dataset["author"] = authors
    profile = crate.add(ContextEntity(crate, PROCESS_RUN_CRATE, properties={
        "@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"}))
    crate.root_dataset["conformsTo"] = profile

    files = {}
    for name, (size, digest) in sorted(members.items()):
        properties = {"name": PurePosixPath(name).name, "encodingFormat": encoding_format(name),
                      "contentSize": str(size), "sha256": digest}
        if name in DESCRIPTIONS:
            properties["description"] = DESCRIPTIONS[name]
        if renamed and name in renamed:
            properties["alternateName"] = renamed[name]
            properties["description"] = f"Response file, named {renamed[name]!r} by the analysis."
        files[name] = crate.add_file(dest_path=name, properties=properties)
    if sealed_key is not None:
        key_name, key_size, key_digest = sealed_key
        crate.add(ContextEntity(crate, SEALED_KEY_ID, properties={
            "@type": "CreativeWork", "name": key_name, "encodingFormat": "application/zip",
            "contentSize": str(key_size), "sha256": key_digest,
            "description": "The unblinding key (key/ of the study), sealed in its own zip and "
                           "left out of this archive until publication; its SHA-256 lets a "
                           "reader check that a key released later is the one used."}))

    actions = _actions(crate, study, files, stages, sealed_key is not None)
    crate.root_dataset["mentions"] = actions
    return (json.dumps(crate.metadata.generate(), indent=1, ensure_ascii=False) + "\n").encode()


def _software(crate, ident: str, name: str, version: str, **extra):
    from rocrate.model.contextentity import ContextEntity

    properties = {"@type": "SoftwareApplication", "name": name, "softwareVersion": version}
    properties.update(extra)
    return crate.add(ContextEntity(crate, ident, properties=properties))


def _actions(crate, study: Study, files: dict, stages: Stages, key_sealed: bool) -> list:
    def pick(*prefixes: str) -> list:
        return [entity for name, entity in files.items() if name.startswith(prefixes)]

    glidemed = _software(crate, "#glidemed", "glidemed", __version__,
                         url="https://pypi.org/project/glidemed/")
    study_file = pick("study/")
    generators = [
        _software(crate, f"#generator-{g['condition']}", f"glidemed generator {g['generator']!r}",
                  g.get("versions", {}).get("glidemed", ""),
                  description=f"Condition {g['condition']!r}: generator {g['generator']!r} with "
                              f"parameters {json.dumps(g.get('params', {}), sort_keys=True)}; "
                              f"software {json.dumps(g.get('versions', {}), sort_keys=True)}")
        for g in stages.generators]
    libraries = [_software(crate, f"#software-{name}", name, version)
                 for name, version in sorted(stages.analysis_versions.items())
                 if name not in ("glidemed",)]
    analysis_tool = glidemed
    if libraries:
        analysis_tool = _software(crate, "#glidemed-analysis", "glidemed analyze",
                                  stages.analysis_versions.get("glidemed", __version__),
                                  softwareRequirements=libraries)
    authors = crate.root_dataset.get("author") or []
    key = ([crate.get(SEALED_KEY_ID)] if key_sealed else pick("key/key.json"))
    plan = [
        ("#generate", "glidemed generate: images from the study's prompts",
         [glidemed, *generators], study_file, pick("images/"), stages.generate_end),
        ("#build", "glidemed build: the blinded survey and its key",
         [glidemed], study_file + pick("images/manifest/"),
         pick("survey/", "key/"), stages.build_end),
        ("#analyze", "glidemed analyze: the returned responses unblinded and analysed"
         + (f" (options {json.dumps(stages.analysis_options, sort_keys=True)})"
            if stages.analysis_options else ""),
         [analysis_tool], study_file + pick("responses/") + key, pick("analysis/"),
         stages.analyze_end),
    ]
    actions = []
    for ident, name, instrument, inputs, outputs, end in plan:
        if not outputs:
            continue
        if ident == "#build" and key_sealed:
            outputs = outputs + key
        properties = {"name": name}
        if end:
            properties["endTime"] = end
        action = crate.add_action(_one_or_list(instrument), identifier=ident,
                                  object=_one_or_list(inputs), result=_one_or_list(outputs),
                                  properties=properties)
        if authors:
            action["agent"] = authors[0]  # the study's first author ran the stages
        actions.append(action)
    return actions


def _one_or_list(entities: list):
    """RO-Crate 1.2 recommends a single value rather than a list of one."""
    return entities[0] if len(entities) == 1 else entities


def crate_problems(crate_bytes: bytes, members: dict[str, tuple[int, str]]) -> list[str]:
    """What in the crate disagrees with the zip: a file not described, a described file
    missing, a wrong size or SHA-256, or a crate that is not RO-Crate JSON-LD."""
    try:
        data = json.loads(crate_bytes)
        graph = {entity["@id"]: entity for entity in data["@graph"]}
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{CRATE_NAME}: not RO-Crate JSON-LD ({exc})"]
    problems = []
    described = {}
    for ident, entity in graph.items():
        kinds = entity.get("@type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if "File" in kinds:
            described[ident] = entity
    for name in sorted(set(members) - set(described) - {CRATE_NAME}):
        problems.append(f"{name}: not described in {CRATE_NAME}")
    for name, entity in sorted(described.items()):
        if name not in members:
            problems.append(f"{name}: described in {CRATE_NAME} but not in the archive")
            continue
        size, digest = members[name]
        if entity.get("sha256") != digest:
            problems.append(f"{name}: SHA-256 does not match {CRATE_NAME}")
        if str(entity.get("contentSize")) != str(size):
            problems.append(f"{name}: size {size} bytes, {CRATE_NAME} says {entity.get('contentSize')}")
    return problems


def crate_root(crate_bytes: bytes) -> dict:
    """The crate's root dataset with its authors resolved (for the reviewer's summary)."""
    try:
        data = json.loads(crate_bytes)
        graph = {entity["@id"]: entity for entity in data["@graph"]}
        root = dict(graph["./"])
    except (ValueError, KeyError, TypeError):
        return {}
    authors = root.get("author", [])
    authors = [authors] if isinstance(authors, dict) else authors
    root["author_names"] = [graph.get(a.get("@id"), {}).get("name", "") for a in authors
                            if isinstance(a, dict)]
    root["sealed_key"] = graph.get(SEALED_KEY_ID)
    root["renamed"] = {ident: e["alternateName"] for ident, e in graph.items()
                       if isinstance(e, dict) and "alternateName" in e}
    return root
