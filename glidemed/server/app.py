"""The Starlette application of `glidemed serve`, its limits, and the uvicorn runner.

Only known files are mapped (the survey folder's files, listed at start), so nothing
else (the key, the server's secrets, a path with ``..``) can be served. Every refusal,
whether the application, the router or the HTTP protocol turns the request down, is
answered with ``{"error": reason}`` and logged in one line in
build/<study>/responses/server.log; so is a client that leaves before its request is
complete. A request (headers and body) must arrive within ``request_timeout`` seconds
of its first byte, or it is answered 408 and its connection closed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from glidemed import outside_json, paths
from glidemed.responses import MAX_RESPONSE_BYTES
from glidemed.errors import GlidemedError
from glidemed.server.secrets import (InvitationsUnreadable, InvitationWatch, access_line,
                                     admin_token)
from glidemed.server.store import RaterProgress, Refused, ResponseStore
from glidemed.server.watch import file_stamp
from glidemed.study import Study

API_PATH = "/api/responses"
DEFAULT_RATE = 120  # requests a minute per client to the API; the survey's files get 20x
STATIC_FACTOR = 20
DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds for a client to send its whole request
MAX_CLIENTS = 10_000  # rate-limit buckets kept; the oldest are dropped beyond this
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
}


class RateLimiter:
    """Token buckets per (client, kind): ``per_minute`` requests a minute, bursts up to
    that many."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, kind: str, factor: int = 1) -> bool:
        if self.per_minute <= 0:
            return True
        capacity = float(self.per_minute * factor)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop((client, kind), (capacity, now))
            tokens = min(capacity, tokens + (now - last) * capacity / 60.0)
            allowed = tokens >= 1.0
            self._buckets[(client, kind)] = (tokens - allowed, now)
            if len(self._buckets) > MAX_CLIENTS:
                del self._buckets[next(iter(self._buckets))]
        return allowed


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = ""  # the public address behind a reverse proxy, e.g. https://x.org/survey/
    max_bytes: int = MAX_RESPONSE_BYTES
    rate_limit: int = DEFAULT_RATE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    @property
    def public_url(self) -> str:
        url = self.base_url or f"http://{self.host}:{self.port}/"
        return url if url.endswith("/") else url + "/"

    def allowed_hosts(self) -> set[str]:
        hosts = {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]", self.host)}
        if self.base_url:
            parts = urlsplit(self.base_url)
            hosts |= {parts.netloc, parts.hostname or ""}
        return {h.lower() for h in hosts if h}


class ServerLog:
    """build/<study>/responses/server.log: one line per refusal, disconnect or change of
    what the server accepts; changes are also said on the console (``echo``)."""

    def __init__(self, path: Path, echo: Callable[[str], None]):
        self.path = path
        self.echo = echo
        self._lock = threading.Lock()

    def _write(self, line: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} {line}\n")
        except OSError:
            pass  # a full disk must not stop the refusal itself

    def event(self, line: str) -> None:
        """A change of state (who may answer, limits): console and log."""
        self.echo(line)
        self._write(line)

    def request(self, client: str, method: str, path: str, status: int | str,
                reason: str) -> None:
        """A refused request (``status``) or a client gone before its request was complete
        (``status`` "-"), in one line."""
        reason = reason.replace("\n", " ")[:500]
        self._write(f"{status} {client} {method[:20]} {path[:200]!r}: {reason}")


class BuildWatch:
    """The build the server started with (its page and key). Served while it is the one on
    disk; once `glidemed build` has replaced it with another build, every request is
    refused (503, said once on the console and in server.log) until `serve` is restarted,
    so that no response is checked against a key that is no longer the study's."""

    def __init__(self, index: Path, key_path: Path, build_hash: str, log: ServerLog):
        self.index, self.key_path, self.build_hash, self.log = index, key_path, build_hash, log
        self._stamps = self._read_stamps()
        self._lock = threading.Lock()
        self.problem = ""

    def _read_stamps(self) -> tuple:
        return file_stamp(self.index), file_stamp(self.key_path)

    def stale(self) -> str:
        """Why the build served is no longer the study's ("" while it is)."""
        stamps = self._read_stamps()
        with self._lock:
            if stamps != self._stamps and not self.problem:
                self._stamps = stamps
                if self._hashes() != {self.build_hash}:
                    self.problem = ("the survey was rebuilt while this server runs; restart "
                                    "`glidemed serve` to serve the new build")
                    self.log.event(f"{self.index.parent}: {self.problem}; every request is "
                                   "refused until then")
            return self.problem

    def _hashes(self) -> set:
        from glidemed.survey.key import load_key

        try:
            return {_page_data(self.index).get("build_hash"), load_key(self.key_path).build_hash}
        except (GlidemedError, OSError) as exc:
            return {str(exc)}


@dataclass
class SurveySite:
    """Everything the application serves, loaded once at start (the invitations excepted,
    which are re-read when their file changes)."""

    study: Study
    config: ServerConfig
    page: bytes
    files: dict[str, Path]  # URL path -> file of the survey folder
    store: ResponseStore
    admin_token: str
    log: ServerLog
    invitations: InvitationWatch
    build: BuildWatch
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.config.rate_limit)

    @property
    def log_path(self) -> Path:
        return self.log.path

    def log_refusal(self, client: str, method: str, path: str, status: int | str,
                    reason: str) -> None:
        self.log.request(client, method, path, status, reason)


def load_site(study: Study, config: ServerConfig,
              echo: Callable[[str], None] = lambda line: None) -> SurveySite:
    """Read the folder build, its key and the server's secrets; check they belong together.

    ``echo`` is told (as server.log is) when the invitations change while serving."""
    from glidemed.survey.key import load_key

    survey = paths.survey_dir(study)
    index = survey / "index.html"
    if not index.is_file():
        raise GlidemedError(f"{index}: no survey; run `glidemed build {study.id} --folder` first")
    if not (survey / "assets" / "survey.js").is_file():
        raise GlidemedError(f"{survey}: a single-file build; serving needs the folder build "
                            f"(`glidemed build {study.id} --folder`)")
    key_path = paths.key_dir(study) / "key.json"
    key = load_key(key_path)
    data = _page_data(index)
    if data.get("build_hash") != key.build_hash:
        raise GlidemedError(f"{index}: survey and {key_path} are from different builds; "
                            "run `glidemed build` again")
    files = {"/" + p.relative_to(survey).as_posix(): p for p in sorted(survey.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(survey).parts)}
    secrets_dir = paths.server_dir(study)
    responses = paths.responses_dir(study)
    responses.mkdir(parents=True, exist_ok=True)
    log = ServerLog(responses / paths.SERVER_LOG, echo)
    invitations = InvitationWatch(secrets_dir, log.event)
    store = ResponseStore(study, key, str(key_path), paths.received_dir(study),
                          invitations.current)
    return SurveySite(study, config, _served_page(data), files, store, admin_token(secrets_dir),
                      log, invitations, BuildWatch(index, key_path, key.build_hash, log))


def _page_data(index: Path) -> dict:
    try:
        text = index.read_text(encoding="utf-8")
        block = text.split('id="survey-data">', 1)[1].split("</script>", 1)[0]
        data = outside_json.loads(block)
    except (OSError, UnicodeDecodeError, IndexError, ValueError):
        raise GlidemedError(f"{index}: not a glidemed survey page (no survey data)") from None
    if not isinstance(data, dict):
        raise GlidemedError(f"{index}: not a glidemed survey page (no survey data)")
    return data


def _served_page(data: dict) -> bytes:
    """The built page, told to save to this server: its API (relative to the page, so a
    reverse proxy's path prefix needs no setting) and a policy that allows only it."""
    from glidemed.survey.render import render_page, survey_context

    served = {**data, "post_url": "", "server": {"api": API_PATH.lstrip("/")}}
    return render_page(survey_context(served, single_file=False, connect_src="'self'")).encode()


def create_app(site: SurveySite):
    """The ASGI application (Starlette) serving ``site``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import MutableHeaders
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    config = site.config
    allowed_hosts = config.allowed_hosts()
    own_origins = {f"http://{h}" for h in allowed_hosts} | {f"https://{h}" for h in allowed_hosts}
    if config.base_url:
        parts = urlsplit(config.base_url)
        own_origins.add(f"{parts.scheme}://{parts.netloc}".lower())

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def refuse(request: Request, status: int, reason: str) -> Response:
        site.log_refusal(client_of(request), request.method, request.scope["path"], status,
                         reason)
        headers = {"retry-after": "10"} if status in (429, 503, 507) else None
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

    async def static(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return refuse(request, 405, f"method {request.method} not allowed here")
        path = request.url.path
        if path in ("/", "/index.html"):
            return HTMLResponse(site.page, headers={"cache-control": "no-cache"})
        target = site.files.get(path)
        if target is None:
            return refuse(request, 404, "not a file of the survey")
        return FileResponse(target)

    async def responses(request: Request) -> Response:
        if request.method != "POST":
            return refuse(request, 405, "POST a response file here")
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in own_origins:
            return refuse(request, 403, f"cross-origin request from {origin[:100]} refused")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return refuse(request, 415, "expected Content-Type: application/json")
        try:
            body = await _read_body(request, config.max_bytes)
        except Refused as exc:
            return refuse(request, exc.status, exc.reason)
        except ClientDisconnect:  # gone (or timed out): logged by the protocol, nothing to send
            return Response(status_code=400)
        try:
            rater = request.headers.get("x-glidemed-rater")
            stored = await run_in_threadpool(site.store.accept, body,
                                             unquote(rater) if rater is not None else None,
                                             request.headers.get("x-glidemed-token"))
        except Refused as exc:
            return refuse(request, exc.status, exc.reason)
        return JSONResponse({"stored": stored.path, "sha256": stored.sha256,
                             "already_stored": stored.status == 200,
                             "panels_rated": stored.panels_rated, "complete": stored.complete},
                            status_code=stored.status, headers={"cache-control": "no-store"})

    async def admin(request: Request) -> Response:
        import hmac

        if request.method not in ("GET", "HEAD"):
            return refuse(request, 405, "method not allowed")
        token = request.query_params.get("token", "")
        if not hmac.compare_digest(token.encode(), site.admin_token.encode()):
            return refuse(request, 403, "admin token missing or wrong")
        return HTMLResponse(admin_page(site), headers={"cache-control": "no-store"})

    async def http_refusal(request: Request, exc: HTTPException) -> Response:
        """The router's own refusals (no route, method) in the same form as ours."""
        return refuse(request, exc.status_code, str(exc.detail))

    async def internal_error(request: Request, exc: Exception) -> Response:
        return refuse(request, 500, f"internal error ({type(exc).__name__})")

    app = Starlette(routes=[Route(API_PATH, responses, methods=HTTP_METHODS),
                            Route("/admin", admin, methods=HTTP_METHODS),
                            Route("/{path:path}", static, methods=HTTP_METHODS)],
                    exception_handlers={HTTPException: http_refusal, Exception: internal_error})

    def request_problem(request: Request) -> tuple[int, str] | None:
        """What refuses a request before it reaches a route: (status, reason), or None."""
        host = request.headers.get("host", "").lower()
        kind, factor = (("api", 1) if request.scope["path"].startswith(("/api/", "/admin"))
                        else ("static", STATIC_FACTOR))
        if host not in allowed_hosts:
            return 421, f"unknown host {host[:100]!r} (set --base-url to the public address)"
        if stale := site.build.stale():
            return 503, stale
        if request.method not in HTTP_METHODS:
            return 405, f"method {request.method[:20]!r} not allowed"
        if request.method == "OPTIONS":
            return 403, "cross-origin requests are not accepted"
        if not site.limiter.allow(client_of(request), kind, factor):
            return 429, "too many requests from this client; wait and retry"
        return None

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        scope, problem = _origin_form(scope)
        request = Request(scope, receive)
        problem = problem or request_problem(request)
        if problem:
            return await refuse(request, *problem)(scope, receive, send)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await app(scope, receive, send_secured)

    return guarded


HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _origin_form(scope: dict) -> tuple[dict, tuple[int, str] | None]:
    """A request target in absolute form (``GET http://host/path``, RFC 9112 3.2.2) as
    the origin form with its authority as the Host header; any other target that is not a
    path is a problem (status, reason)."""
    path = scope["path"]
    if path.startswith("/"):
        return scope, None
    parts = urlsplit(path)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return scope, (400, f"request target {path[:100]!r} is not a path")
    origin_path = parts.path or "/"
    raw = scope["raw_path"]
    raw_path = urlsplit(raw.decode("latin-1")).path.encode("latin-1") or b"/"
    headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
    headers.append((b"host", parts.netloc.encode("latin-1")))
    return {**scope, "path": origin_path, "raw_path": raw_path, "headers": headers}, None


async def _read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "invalid Content-Length")
        if int(declared) > limit:
            raise Refused(413, f"body of {int(declared) / 2**20:.1f} MB is over the "
                          f"{limit / 2**20:g} MB limit for a response")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body over the {limit / 2**20:g} MB limit for a response")
        chunks.append(chunk)
    return b"".join(chunks)


ADMIN_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>Progress: {{ title }}</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style>
</head><body>
<h1>Progress: {{ title }}</h1>
<p>{{ rows|length }} rater(s), {{ finished }} finished. Invitations: {{ access }}.</p>
<table id="progress">
<thead><tr><th>Rater</th><th>Panels rated</th><th>Panels</th><th>Saves</th><th>Last seen (UTC)</th><th>Finished</th></tr></thead>
<tbody>
{% for r in rows %}<tr><td>{{ r.rater }}</td><td>{{ r.panels_rated }}</td><td>{{ r.panels or "" }}</td><td>{{ r.saves }}</td><td>{{ r.last_seen or "not yet" }}</td><td>{{ "yes" if r.finished else "no" }}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""


def admin_page(site: SurveySite) -> str:
    """Per rater (invited or seen): panels rated, saves, last seen, finished. Nothing that
    unblinds."""
    import jinja2

    try:
        invited = site.invitations.current()
        access = "on" if invited else "off (anyone with the address may answer)"
    except InvitationsUnreadable as exc:
        invited, access = {}, f"file cannot be read ({exc}); responses are refused"
    rows = sorted(({r: RaterProgress(r) for r in invited} | site.store.progress).values(),
                  key=lambda r: r.rater)
    template = jinja2.Environment(autoescape=True).from_string(ADMIN_TEMPLATE)
    return template.render(title=site.study.title, rows=rows,
                           finished=sum(r.finished for r in rows), access=access)


def http_protocol(site: SurveySite):
    """uvicorn's HTTP/1.1 protocol (h11), with a deadline for each request and its
    protocol-level refusals in the JSON form and log of the application's."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    limit = site.config.request_timeout

    class BoundedH11(H11Protocol):
        """A request must be complete (headers and body) ``limit`` s after its first byte
        (a connection's first request: after the connection is made), and a client must
        not leave the reply unread for ``limit`` s."""

        _deadline = None  # the request's
        _stalled = None  # the reply's, while the client reads nothing
        _ended_here = False

        def connection_made(self, transport) -> None:  # a silent connection is timed too
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(limit, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _request_state(self) -> str:
            """"idle" (no byte of a request yet), "partial" (part of one, unanswered),
            "answered" (refused before its body was in) or "received" (all of it is in)."""
            state, cycle = self.conn.their_state, self.cycle
            if state is h11.SEND_BODY:
                return "answered" if cycle is not None and cycle.response_started else "partial"
            if state is h11.IDLE:
                return "partial" if self.conn.trailing_data[0] else "idle"
            return "received"

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            state = self._request_state()
            if state == "received":
                self._disarm()
            elif state != "idle":
                self._arm()

        def _request_line(self) -> tuple[str, str]:
            """Method and path of the request being received ("-" before its headers)."""
            if self.conn.their_state is h11.SEND_BODY and self.cycle is not None:
                return self.cycle.scope["method"], self.cycle.scope["path"]
            return "-", "-"

        def _client(self) -> str:
            return self.client[0] if self.client else "unknown"

        def _too_slow(self) -> None:
            self._deadline = None
            state = self._request_state()
            if self.transport.is_closing() or state == "received":
                return
            self._ended_here = True
            if state != "idle":  # an idle connection is closed without a word, as keep-alive's
                reason = f"request not complete within {limit:g} s; connection closed"
                if state == "partial":
                    self.transport.write(raw_refusal(408, reason))
                site.log_refusal(self._client(), *self._request_line(), 408, reason)
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the application's read ends at once
                cycle.message_event.set()
            self.transport.close()

        def pause_writing(self) -> None:  # the client does not read what it asked for
            super().pause_writing()
            if self._stalled is None:
                self._stalled = self.loop.call_later(limit, self._not_reading)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._stalled is not None:
                self._stalled.cancel()
                self._stalled = None

        def _not_reading(self) -> None:
            self._stalled = None
            if self.transport.is_closing():
                return
            self._ended_here = True
            site.log_refusal(self._client(), "-", "-", "-", f"client did not read the reply "
                             f"for {limit:g} s; connection closed")
            self.transport.abort()  # close() would wait for the unread reply

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._stalled is not None:
                self._stalled.cancel()
                self._stalled = None
            if not self._ended_here and self._request_state() == "partial":
                site.log_refusal(self._client(), *self._request_line(), "-",
                                 "client disconnected before its request was complete")
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            reason = "malformed HTTP request (request line or headers)"
            site.log_refusal(self._client(), "-", "-", 400, reason)
            self._disarm()
            self._ended_here = True  # answered: its connection's end is not a disconnect
            self.transport.write(raw_refusal(400, reason))
            self.transport.close()

    return BoundedH11


def raw_refusal(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 refusal that closes the connection, as the application's."""
    from http import HTTPStatus

    body = json.dumps({"error": reason}).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def serve_study(study: Study, config: ServerConfig, echo: Callable[[str], None]) -> None:
    """Serve the folder build of ``study`` until interrupted (uvicorn, one process)."""
    import uvicorn

    site = load_site(study, config, echo)
    echo(f"serving {paths.survey_dir(study)} at {config.public_url}")
    echo(f"responses -> {site.store.received}; refusals logged in {site.log_path}")
    echo(f"progress page: {config.public_url}admin?token={site.admin_token}")
    limit = math.inf if config.rate_limit <= 0 else config.rate_limit
    site.log.event(f"started at {config.public_url}; limits: body {config.max_bytes / 2**20:g} "
                   f"MB, {limit} API requests/minute per client, {config.request_timeout:g} s "
                   "to send a request")
    site.log.event("the study is " + access_line(site.invitations.current())
                   + "; invitations added while serving are seen at once")
    uvicorn.run(create_app(site), host=config.host, port=config.port, log_level="warning",
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", server_header=False,
                date_header=True, http=http_protocol(site))
