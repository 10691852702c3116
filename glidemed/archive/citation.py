"""CITATION.cff and .zenodo.json of an archived study, both from its ``[archive]`` table."""

from __future__ import annotations

import datetime as dt
import json

from glidemed.study import ArchiveMetadata, Study, orcid_digits

CFF_VERSION = "1.2.0"


def archive_title(study: Study) -> str:
    return study.archive.title or study.title


def archive_description(study: Study) -> str:
    return study.archive.description or (
        f"Blinded expert rating study '{study.id}' of AI-generated medical images: study file, "
        "generated images with their manifest, survey, responses, key and analysis.")


def citable(meta: ArchiveMetadata) -> bool:
    """A citation needs at least one author."""
    return bool(meta.authors)


def citation_cff(study: Study, today: dt.date) -> str:
    """CITATION.cff (Citation File Format 1.2.0) for the archive as a dataset."""
    meta = study.archive
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    lines = [f"cff-version: {CFF_VERSION}",
             f"message: {q('If you use these data, please cite them using these metadata.')}",
             "type: dataset",
             f"title: {q(archive_title(study))}",
             f"abstract: {q(archive_description(study))}",
             "authors:"]
    for author in meta.authors:
        lines.append(f"  - family-names: {q(author.family_names)}")
        if author.given_names:
            lines.append(f"    given-names: {q(author.given_names)}")
        if author.orcid:
            lines.append(f"    orcid: {q(author.orcid_url)}")
        if author.affiliation:
            lines.append(f"    affiliation: {q(author.affiliation)}")
    lines.append(f"license: {q(meta.license)}")
    if meta.keywords:
        lines.append("keywords:")
        lines += [f"  - {q(k)}" for k in meta.keywords]
    if meta.version:
        lines.append(f"version: {q(meta.version)}")
    if meta.doi:
        lines.append(f"doi: {q(meta.doi)}")
    lines.append(f"date-released: {q(today.isoformat())}")
    return "\n".join(lines) + "\n"


def zenodo_json(study: Study, today: dt.date) -> dict:
    """The deposit metadata Zenodo reads from ``.zenodo.json``."""
    meta = study.archive
    creators = []
    for author in meta.authors:
        creator = {"name": ", ".join(p for p in (author.family_names, author.given_names) if p)}
        if author.affiliation:
            creator["affiliation"] = author.affiliation
        if author.orcid:
            creator["orcid"] = orcid_digits(author.orcid)
        creators.append(creator)
    record = {"upload_type": "dataset", "title": archive_title(study),
              "description": archive_description(study), "creators": creators,
              "license": meta.license.lower(), "access_right": "open",
              "publication_date": today.isoformat()}
    if meta.keywords:
        record["keywords"] = list(meta.keywords)
    if meta.version:
        record["version"] = meta.version
    if meta.doi:
        record["doi"] = meta.doi
    return record
