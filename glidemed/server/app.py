"""The Starlette application of `glidemed serve`, its limits, and the uvicorn runner.

Only known files are mapped (the survey folder's files, listed at start), so nothing
else (the key, the server's secrets, a path with ``..``) can be served. Every refusal is
answered with ``{"error": reason}`` and logged in build/<study>/responses/server.log.
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

from glidemed import paths
from glidemed.analysis.ingest import MAX_RESPONSE_BYTES
from glidemed.errors import GlidemedError
from glidemed.server.secrets import admin_token, load_invitations
from glidemed.server.store import Refused, ResponseStore
from glidemed.study import Study

API_PATH = "/api/responses"
DEFAULT_RATE = 120  # requests a minute per client to the API; the survey's files get 20x
STATIC_FACTOR = 20
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


@dataclass
class SurveySite:
    """Everything the application serves, loaded once at start."""

    study: Study
    config: ServerConfig
    page: bytes
    files: dict[str, Path]  # URL path -> file of the survey folder
    store: ResponseStore
    admin_token: str
    log_path: Path
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.config.rate_limit)
        self._log_lock = threading.Lock()

    def log_refusal(self, client: str, method: str, path: str, status: int, reason: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        line = f"{stamp} {status} {client} {method} {path[:200]!r}: {reason[:500]}\n"
        try:
            with self._log_lock, open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError:
            pass  # a full disk must not stop the refusal itself


def load_site(study: Study, config: ServerConfig) -> SurveySite:
    """Read the folder build, its key and the server's secrets; check they belong together."""
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
    if data.get("build_hash") != key["build_hash"]:
        raise GlidemedError(f"{index}: survey and {key_path} are from different builds; "
                            "run `glidemed build` again")
    files = {"/" + p.relative_to(survey).as_posix(): p for p in sorted(survey.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(survey).parts)}
    secrets_dir = paths.server_dir(study)
    responses = paths.responses_dir(study)
    responses.mkdir(parents=True, exist_ok=True)
    store = ResponseStore(study, key, str(key_path), paths.received_dir(study),
                          load_invitations(secrets_dir))
    return SurveySite(study, config, _served_page(data), files, store, admin_token(secrets_dir),
                      responses / paths.SERVER_LOG)


def _page_data(index: Path) -> dict:
    text = index.read_text(encoding="utf-8")
    try:
        block = text.split('id="survey-data">', 1)[1].split("</script>", 1)[0]
        return json.loads(block)
    except (IndexError, ValueError):
        raise GlidemedError(f"{index}: not a glidemed survey page (no survey data)") from None


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
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    config = site.config
    allowed_hosts = config.allowed_hosts()
    own_origins = {f"http://{h}" for h in allowed_hosts} | {f"https://{h}" for h in allowed_hosts}
    if config.base_url:
        parts = urlsplit(config.base_url)
        own_origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    all_methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def refuse(request: Request, status: int, reason: str) -> Response:
        site.log_refusal(client_of(request), request.method, request.url.path, status, reason)
        headers = {"retry-after": "10"} if status in (429, 507) else None
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

    app = Starlette(routes=[Route(API_PATH, responses, methods=all_methods),
                           Route("/admin", admin, methods=all_methods),
                           Route("/{path:path}", static, methods=all_methods)])

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        request = Request(scope, receive)
        host = request.headers.get("host", "").lower()
        kind, factor = (("api", 1) if scope["path"].startswith(("/api/", "/admin"))
                        else ("static", STATIC_FACTOR))
        problem = None
        if host not in allowed_hosts:
            problem = (421, f"unknown host {host[:100]!r} (set --base-url to the public address)")
        elif request.method == "OPTIONS":
            problem = (403, "cross-origin requests are not accepted")
        elif not site.limiter.allow(client_of(request), kind, factor):
            problem = (429, "too many requests from this client; wait and retry")
        if problem:
            return await refuse(request, *problem)(scope, receive, send)

        async def send_secured(message):
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await app(scope, receive, send_secured)

    return guarded


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
<p>{{ rows|length }} rater(s), {{ finished }} finished. Invitations: {{ "on" if invited else "off" }}.</p>
<table id="progress">
<thead><tr><th>Rater</th><th>Panels rated</th><th>Panels</th><th>Saves</th><th>Last seen (UTC)</th><th>Finished</th></tr></thead>
<tbody>
{% for r in rows %}<tr><td>{{ r.rater }}</td><td>{{ r.panels_rated }}</td><td>{{ r.panels or "" }}</td><td>{{ r.saves }}</td><td>{{ r.last_seen or "not yet" }}</td><td>{{ "yes" if r.finished else "no" }}</td></tr>
{% endfor %}</tbody></table>
</body></html>
"""


def admin_page(site: SurveySite) -> str:
    """Per rater: panels rated, saves, last seen, finished. Nothing that unblinds."""
    import jinja2

    rows = sorted(site.store.progress.values(), key=lambda r: r.rater)
    template = jinja2.Environment(autoescape=True).from_string(ADMIN_TEMPLATE)
    return template.render(title=site.study.title, rows=rows,
                           finished=sum(r.finished for r in rows),
                           invited=bool(site.store.invitations))


def serve_study(study: Study, config: ServerConfig, echo: Callable[[str], None]) -> None:
    """Serve the folder build of ``study`` until interrupted (uvicorn, one process)."""
    import uvicorn

    site = load_site(study, config)
    echo(f"serving {paths.survey_dir(study)} at {config.public_url}")
    echo(f"responses -> {site.store.received}; refusals logged in {site.log_path}")
    echo("invitations: " + (f"on ({len(site.store.invitations)} raters)"
                            if site.store.invitations else "off (anyone with the link may answer)"))
    echo(f"progress page: {config.public_url}admin?token={site.admin_token}")
    limit = math.inf if config.rate_limit <= 0 else config.rate_limit
    echo(f"limits: body {config.max_bytes / 2**20:g} MB, {limit} API requests/minute per client")
    uvicorn.run(create_app(site), host=config.host, port=config.port, log_level="warning",
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", server_header=False,
                date_header=True)
