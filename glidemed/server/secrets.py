"""Invitation tokens (one per rater) and the admin token, under build/<study>/server/.

That folder is beside the survey, never inside it, and the server maps only the survey's
own files, so no secret is ever served. Only SHA-256 hashes of the rater tokens are kept
in ``invitations.json``; the links to send (with the tokens) are in ``invitations.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

from glidemed.errors import GlidemedError
from glidemed.fileio import write_text_atomic

INVITATIONS_SCHEMA = "glidemed-invitations/1"
INVITATIONS_FILE = "invitations.json"
LINKS_FILE = "invitations.csv"
ADMIN_TOKEN_FILE = "admin-token"
MAX_RATER_ID = 200  # as the response schema


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _write_private(path: Path, text: str) -> None:
    write_text_atomic(path, text)
    os.chmod(path, 0o600)


def admin_token(folder: Path) -> str:
    """The admin token of this study's server, created on first use and kept."""
    path = folder / ADMIN_TOKEN_FILE
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 20:
            return token
    token = secrets.token_urlsafe(24)
    _write_private(path, token + "\n")
    return token


def load_invitations(folder: Path) -> dict[str, str]:
    """Rater id -> SHA-256 of their token; empty when nobody was invited."""
    path = folder / INVITATIONS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != INVITATIONS_SCHEMA:
            raise ValueError(f"schema is not {INVITATIONS_SCHEMA!r}")
        return {str(r): str(e["token_sha256"]) for r, e in data["raters"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GlidemedError(f"{path}: not a glidemed invitations file ({exc})") from None


def token_matches(invitations: dict[str, str], rater: str, token: str) -> bool:
    expected = invitations.get(rater)
    return expected is not None and hmac.compare_digest(expected, token_hash(token))


def read_rater_ids(path: Path) -> list[str]:
    """One rater id a line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise GlidemedError(f"{path}: cannot read rater ids ({exc})") from None
    ids, seen = [], set()
    for number, line in enumerate(lines, 1):
        rater = line.strip()
        if not rater or rater.startswith("#"):
            continue
        if len(rater) > MAX_RATER_ID or any(ord(c) < 32 for c in rater):
            raise GlidemedError(f"{path}: line {number}: a rater id is 1-{MAX_RATER_ID} "
                                "printable characters")
        if rater in seen:
            raise GlidemedError(f"{path}: line {number}: rater id {rater!r} appears twice")
        seen.add(rater)
        ids.append(rater)
    if not ids:
        raise GlidemedError(f"{path}: no rater ids (one a line)")
    return ids


@dataclass
class InviteReport:
    links_file: Path
    new: list[str]
    kept: list[str]


def invite(folder: Path, base_url: str, rater_ids: list[str] | None = None,
           count: int | None = None) -> InviteReport:
    """Give each new rater an unguessable token; raters invited before keep theirs.

    ``count`` adds raters R001, R002, ... after the highest such id already invited.
    Writes invitations.json (token hashes) and invitations.csv (rater, link).
    """
    if (rater_ids is None) == (count is None):
        raise GlidemedError("invite: give either --raters FILE or --count N")
    path = folder / INVITATIONS_FILE
    raters = dict(json.loads(path.read_text(encoding="utf-8"))["raters"]) if path.is_file() else {}
    load_invitations(folder)  # a damaged file is reported, never silently replaced
    links = _read_links(folder / LINKS_FILE)
    if count is not None:
        taken = [int(r[1:]) for r in raters if r[:1] == "R" and r[1:].isdigit()]
        start = max(taken, default=0) + 1
        rater_ids = [f"R{n:03d}" for n in range(start, start + count)]
    new = [r for r in rater_ids if r not in raters]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    base = base_url if base_url.endswith("/") else base_url + "/"
    for rater in new:
        token = secrets.token_urlsafe(24)
        raters[rater] = {"token_sha256": token_hash(token), "created": now}
        links[rater] = base + "?" + urlencode({"rater": rater, "token": token})
    _write_private(path, json.dumps({"schema": INVITATIONS_SCHEMA, "raters": raters},
                                    indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rater", "link"])
    writer.writerows(sorted(links.items()))
    _write_private(folder / LINKS_FILE, out.getvalue())
    return InviteReport(folder / LINKS_FILE, new, [r for r in rater_ids if r not in new])


def _read_links(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["rater"]: row["link"] for row in csv.DictReader(handle)}
