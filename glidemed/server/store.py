"""Accept a posted response: the checks of `analyze`, then an append-only, atomic write.

Every accepted body is written to ``received/<rater>/<time>-<sha256>.json`` and never
overwritten; the same bytes posted again are recognised by their hash and not stored
twice. `analyze` reads the folder and, of each rater's files, uses the one its duplicate
rule prefers (chain verifies, most ratings, latest update).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from glidemed.responses import Rejected, check_response, decode_response, response_context
from glidemed.fileio import write_bytes_atomic
from glidemed.server.secrets import InvitationsUnreadable, token_matches
from glidemed.study import Study
from glidemed.survey.key import SurveyKey

SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
FILE_NAME = re.compile(r"(\d{8}T\d{12}Z)-([0-9a-f]{64})\.json")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Refused(Exception):
    """A request the server turns down: HTTP ``status`` and the reason for the reply."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def rater_folder(rater: str) -> str:
    """The folder name of a rater's files: the id itself when it is a plain name, else a
    readable part plus a hash (no separator, dot or other character of a path)."""
    if SAFE_ID.fullmatch(rater):
        return rater
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", rater)[:40].strip("_") or "rater"
    return f"{readable}~{hashlib.sha256(rater.encode('utf-8')).hexdigest()[:12]}"


@dataclass
class RaterProgress:
    """What the admin page shows of a rater: nothing about conditions or scores."""

    rater: str
    panels_rated: int = 0
    panels: int = 0
    saves: int = 0
    last_seen: str = ""
    finished: bool = False


@dataclass
class Stored:
    status: int  # 201 new, 200 same bytes already stored
    path: str  # relative to the responses folder
    sha256: str
    rater: str
    panels_rated: int
    complete: bool


class ResponseStore:
    """Checks and stores responses to one build; keeps the raters' progress in memory."""

    def __init__(self, study: Study, key: SurveyKey, key_name: str, received: Path,
                 invitations: Callable[[], dict[str, str]]):
        """``invitations()`` gives the invitations as they are now (rater -> token hash;
        {} when anyone may answer) or raises InvitationsUnreadable."""
        self.context = response_context(study, key, key_name)
        self.received = received
        self.invitations = invitations
        self.progress: dict[str, RaterProgress] = {}
        self._hashes: dict[str, set[str]] = {}  # rater folder -> sha256 of stored files
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._load_existing()

    def _load_existing(self) -> None:
        """Hashes of every stored file; progress from each rater's latest file."""
        if not self.received.is_dir():
            return
        for folder in sorted(p for p in self.received.iterdir() if p.is_dir()):
            names = sorted((m for p in folder.iterdir() if (m := FILE_NAME.fullmatch(p.name))),
                           key=lambda m: m.group(0))
            self._hashes[folder.name] = {m.group(2) for m in names}
            for match in reversed(names):
                path = folder / match.group(0)
                try:
                    parsed = check_response(path.read_bytes(), self.context, str(path))
                except (Rejected, OSError):
                    continue
                entry = self.progress.setdefault(parsed.rater, RaterProgress(parsed.rater))
                entry.saves = len(names)
                entry.last_seen = _iso(match.group(1))
                entry.panels = len(parsed.data["order"])
                entry.panels_rated = parsed.n_panels
                entry.finished = not parsed.partial_reason
                break

    def accept(self, raw: bytes, rater_header: str | None, token: str | None) -> Stored:
        """Check ``raw`` and store it; raise :class:`Refused` with the reason otherwise."""
        try:
            invitations = self.invitations()
        except InvitationsUnreadable:  # the reason is in the server's log, not for clients
            raise Refused(503, "the server cannot read its invitations file; nothing was "
                          "stored (the page keeps the answers and retries)") from None
        if invitations:
            if not rater_header or not token:
                raise Refused(401, "this survey is by invitation: open the link you were sent")
            if not token_matches(invitations, rater_header, token):
                raise Refused(403, "invitation token not valid for this rater")
        try:
            data = decode_response(raw)
        except Rejected as exc:
            raise Refused(400, str(exc)) from None
        if invitations and _rater_of(data) != rater_header:
            raise Refused(403, "the response's rater id is not the invited rater's")
        try:
            parsed = check_response(raw, self.context, "posted response", data)
        except Rejected as exc:
            raise Refused(422, str(exc)) from None
        if parsed.chain:
            raise Refused(422, f"tamper evidence does not verify: {'; '.join(parsed.chain)}")
        rater = parsed.rater
        folder = rater_folder(rater)
        with self._lock(folder):
            stored = self._hashes.setdefault(folder, set())
            now = datetime.now(timezone.utc)
            earlier = (sorted((self.received / folder).glob(f"*-{parsed.sha256}.json"))
                       if parsed.sha256 in stored else [])
            if earlier:
                name = earlier[0].name
                status = 200
            else:  # new bytes (or a stored file since removed by hand: stored again)
                name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{parsed.sha256}.json"
                try:
                    write_bytes_atomic(self.received / folder / name, raw)
                    _sync_folder(self.received / folder)  # the rename survives a power cut
                except OSError as exc:
                    if exc.errno in DISK_FULL:
                        raise Refused(507, "the server's disk is full; the response was not "
                                      "stored (the page keeps it and retries)") from None
                    raise Refused(500, f"the server could not store the response "
                                  f"({exc.strerror or exc})") from None
                stored.add(parsed.sha256)
                status = 201
            self._update(parsed, now, new=status == 201)
        return Stored(status, f"received/{folder}/{name}", parsed.sha256, rater,
                      parsed.n_panels, not parsed.partial_reason)

    def _lock(self, folder: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(folder, threading.Lock())

    def _update(self, parsed, now: datetime, new: bool) -> None:
        entry = self.progress.setdefault(parsed.rater, RaterProgress(parsed.rater))
        entry.saves += new
        entry.last_seen = now.isoformat(timespec="seconds")
        entry.panels = len(parsed.data["order"])
        # the best file so far, by the duplicate rule's main criterion (most ratings)
        entry.panels_rated = max(entry.panels_rated, parsed.n_panels)
        entry.finished = entry.finished or not parsed.partial_reason


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _rater_of(data) -> str | None:
    try:
        return data["rater"]["id"]
    except (KeyError, TypeError):
        return None


def _iso(stamp: str) -> str:
    moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")
