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
import ipaddress
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode, urlsplit

from glidemed.errors import GlidemedError
from glidemed.fileio import write_text_atomic
from glidemed.outside_json import OutsideJSONError, loads
from glidemed.server.watch import file_stamp

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
        token = path.read_bytes().decode("ascii", errors="replace").strip()
        if len(token) >= 20 and token.isascii() and token.isprintable():
            return token
    token = secrets.token_urlsafe(24)
    _write_private(path, token + "\n")
    return token


def _read_raters(path: Path) -> dict[str, dict]:
    """The ``raters`` member of an invitations file, checked; {} when there is no file."""
    if not path.exists():
        return {}
    try:
        data = loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("schema") != INVITATIONS_SCHEMA:
            raise ValueError(f"schema is not {INVITATIONS_SCHEMA!r}")
        raters = data.get("raters")
        if not isinstance(raters, dict):
            raise ValueError("'raters' is not an object")
        for rater, entry in raters.items():
            if not (isinstance(entry, dict) and isinstance(entry.get("token_sha256"), str)):
                raise ValueError(f"rater {rater[:50]!r} has no token_sha256")
        return raters
    except OSError as exc:
        raise GlidemedError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (OutsideJSONError, ValueError) as exc:
        raise GlidemedError(f"{path}: not a glidemed invitations file ({exc})") from None


def load_invitations(folder: Path) -> dict[str, str]:
    """Rater id -> SHA-256 of their token; empty when nobody was invited."""
    return {r: e["token_sha256"] for r, e in _read_raters(folder / INVITATIONS_FILE).items()}


class InvitationsUnreadable(Exception):
    """The invitations file exists but cannot be read; its reason is ``str()``."""


class InvitationWatch:
    """The invitations as they are now, for a server that runs while `invite` adds raters.

    The file is re-read whenever its (inode, size, mtime_ns) changes, which costs one
    ``stat`` a call. A file that cannot be read (damaged, or edited by hand) never opens
    the study: :meth:`current` raises :class:`InvitationsUnreadable` until it is fixed.
    ``notify`` is told, in one line, each time what the server accepts changes.
    """

    def __init__(self, folder: Path, notify: Callable[[str], None]):
        self.path = folder / INVITATIONS_FILE
        self.notify = notify
        self._lock = threading.Lock()
        self._problem = ""
        self._stamp = file_stamp(self.path)
        self._raters = load_invitations(folder)  # at start a broken file stops `serve`

    def current(self) -> dict[str, str]:
        """Rater id -> token hash now ({}: open to anyone); see the class for errors."""
        stamp = file_stamp(self.path)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._reload()
            if self._problem:
                raise InvitationsUnreadable(self._problem)
            return self._raters

    def _reload(self) -> None:
        try:
            raters = load_invitations(self.path.parent)
        except (GlidemedError, OSError) as exc:
            if not self._problem:
                self.notify(f"invitations: {exc}; responses are refused until it is fixed "
                            "(run `glidemed invite` again or restore the file)")
            self._problem = str(exc)
            return
        if self._problem:
            self.notify(f"invitations file readable again: the study is {access_line(raters)}")
        elif raters != self._raters:
            self.notify(describe_change(self._raters, raters))
        self._problem = ""
        self._raters = raters


def access_line(invitations: dict[str, str]) -> str:
    """Who may answer, in one line: for the console, server.log and `invite`."""
    if invitations:
        return f"invitation-only ({len(invitations)} rater(s) invited)"
    return "OPEN: anyone with the address may answer (no invitations)"


def describe_change(before: dict[str, str], after: dict[str, str]) -> str:
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    changes = ", ".join(part for part in (f"{added} added" * bool(added),
                                          f"{removed} removed" * bool(removed)) if part)
    return f"invitations changed{f' ({changes})' if changes else ''}: the study is now " \
           + access_line(after)


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


LOCAL_URL = "http://127.0.0.1:8000/"


def check_base_url(base_url: str | None, local: bool) -> str:
    """The address the links point to. A loopback address (or none) needs ``local``: links to
    127.0.0.1 e-mailed to raters would open nothing on their machines."""
    if base_url is None:
        if local:
            return LOCAL_URL
        raise GlidemedError("invite: give --base-url, the survey's public address where raters "
                            "open it (e.g. https://example.org/survey/), or --local for links "
                            "to this machine")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GlidemedError(f"invite: --base-url {base_url!r} is not an http(s) address")
    if _is_loopback(parts.hostname) and not local:
        raise GlidemedError(f"invite: --base-url {base_url} is this machine, which raters "
                            "cannot reach; give the public address, or --local to mean it")
    return base_url


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost" or host.lower().endswith(".localhost")


def invite(folder: Path, base_url: str, rater_ids: list[str] | None = None,
           count: int | None = None) -> InviteReport:
    """Give each new rater an unguessable token; raters invited before keep theirs.

    ``count`` adds raters R001, R002, ... after the highest such id already invited.
    Writes invitations.json (token hashes) and invitations.csv (rater, link).
    """
    if (rater_ids is None) == (count is None):
        raise GlidemedError("invite: give either --raters FILE or --count N")
    path = folder / INVITATIONS_FILE
    raters = dict(_read_raters(path))  # a damaged file is reported, never silently replaced
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
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["rater"]: row["link"] for row in csv.DictReader(handle)}
    except (OSError, UnicodeDecodeError, KeyError, csv.Error) as exc:
        raise GlidemedError(f"{path}: not a glidemed links file ({exc!r}); the links "
                            "already sent would be lost, so nothing was changed") from None
