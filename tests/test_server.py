"""glidemed serve as a real uvicorn process on a loopback port: storage, refusals, limits,
invitations and the progress page. (The page in Chromium: test_server_browser.py; many
raters at once: test_server_load.py.)"""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from conftest import SMALL_STUDY
from response_factory import make_response
from server_factory import (LOOPBACK, ServedSurvey, limit_file_size, parse_reply, read_to_end,
                            wait_until)
from survey_factory import generated

from glidemed.analysis.ingest import ingest_responses
from glidemed.cli import main
from glidemed.fileio import sha256_file
from glidemed.paths import received_dir, responses_dir, server_dir, survey_dir
from glidemed.server.store import rater_folder
from glidemed.survey.build import build_survey
from glidemed.survey.key import load_key

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder-built 16-panel survey (study, key, study file, build folder)."""
    root = tmp_path_factory.mktemp("served")
    study_path = root / "study" / "study.toml"
    study_path.parent.mkdir()
    study_path.write_text(SMALL_STUDY.format(images_per_prompt=2, images_per_panel=2))
    with pytest.MonkeyPatch.context() as mp:  # outputs under root/build for the module
        study = generated(study_path, root / "build", mp)
        report = build_survey(study, single_file=False, workers=1)
        yield {"study": study, "key": load_key(report.key_path), "path": study_path,
               "build": root / "build"}


def clean(site) -> None:
    """Empty responses, no invitations."""
    import shutil

    shutil.rmtree(responses_dir(site["study"]), ignore_errors=True)
    shutil.rmtree(server_dir(site["study"]), ignore_errors=True)


@pytest.fixture(scope="module")
def server(site):
    """One server for the tests of storage and refusals (each uses its own raters)."""
    clean(site)
    with ServedSurvey(site["path"], site["build"]) as running:
        yield running
    clean(site)


@pytest.fixture
def fresh(site, monkeypatch):
    """The site with empty responses and no invitations, for a test's own server."""
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(site["build"]))
    clean(site)
    return site


def response(study, key, rater: str, **options) -> dict:
    """A valid response of ``rater`` to the built survey (which asks no profile questions)."""
    return make_response(study, key, rater, profile={}, **options)


def post(server, body, headers=None, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + "api/responses", content=content, timeout=30,
                      headers={"content-type": "application/json", **(headers or {})}, **kwargs)


def stored_files(site, raters: tuple[str, ...] | None = None) -> dict[str, str]:
    """Every file under received/ (of ``raters`` only, if given) -> its SHA-256."""
    folder = received_dir(site["study"])
    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file()} if folder.is_dir() else {}
    return {name: sha for name, sha in files.items()
            if raters is None or name.split("/")[0] in map(rater_folder, raters)}


def log_lines(site) -> list[str]:
    path = responses_dir(site["study"]) / "server.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def raw_get(server, target: str, host: str | None = None) -> tuple[int, bytes]:
    """A GET with the request target exactly as given (clients would normalise ``..``)."""
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host or f'{LOOPBACK}:{server.port}'}\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_serves_the_page_and_only_known_files(site, server):
    before = len(log_lines(site))
    page = httpx.get(server.url)
    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    soup = BeautifulSoup(page.text, "html.parser")
    data = json.loads(soup.find("script", id="survey-data").string)
    assert data["server"] == {"api": "api/responses"} and data["post_url"] == ""
    assert data["build_hash"] == site["key"].build_hash
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    js = httpx.get(server.url + "assets/survey.js")
    assert js.status_code == 200 and "X-Glidemed-Token" in js.text
    for target in ["/assets/", "/assets", "/../key/key.json", "/assets/../../key/key.json",
                   "/%2e%2e/key/key.json", "/key/key.json", "/server/admin-token",
                   "/responses/server.log", "/.survey.tmp/index.html", "//etc/passwd"]:
        status, body = raw_get(server, target)
        assert status == 404, target
        assert b"key.json" not in body or b"error" in body
    assert raw_get(server, "/", host="evil.example:80")[0] == 421
    assert httpx.request("OPTIONS", server.url + "api/responses").status_code == 403
    assert httpx.post(server.url + "assets/survey.js").status_code == 405
    log = log_lines(site)[before:]
    assert sum(" 404 " in line for line in log) == 10
    assert any(" 421 " in line and "unknown host" in line for line in log)
    assert any(" 405 " in line for line in log) and any(" 403 " in line for line in log)


def test_posts_are_stored_append_only_and_analyze_uses_the_latest_complete(site, server):
    study, key = site["study"], site["key"]
    partial = response(study, key, "alice", seed=1, n_seen=5, updated="2026-01-02T09:30:00Z")
    final = response(study, key, "alice", seed=1, updated="2026-01-02T10:00:00Z")
    odd = response(study, key, "../../bob/x", seed=2, n_seen=3)
    first = post(server, partial)
    assert first.status_code == 201, first.text
    assert first.json()["panels_rated"] == 5 and not first.json()["complete"]
    second = post(server, final)
    assert second.status_code == 201 and second.json()["complete"]
    again = post(server, final)
    assert again.status_code == 200 and again.json()["already_stored"]
    assert again.json()["stored"] == second.json()["stored"]
    assert post(server, odd).status_code == 201
    raters = ("alice", "../../bob/x")
    files = stored_files(site, raters)
    assert len(files) == 3
    assert sorted({name.split("/")[0] for name in files}) == sorted(map(rater_folder, raters))
    assert all("/" not in rater_folder(r) and ".." not in rater_folder(r)
               for r in ["../x", "a/b", "..", ".", "c:\\x", "é"])
    stored = received_dir(study) / second.json()["stored"].removeprefix("received/")
    assert stored.read_bytes() == json.dumps(final).encode()
    # analyze's default folder: received/ and the server's log beside it
    assert (responses_dir(study) / "server.log").is_file()
    ratings, ledger, _ = ingest_responses(study, key, [responses_dir(study)])
    assert "server.log" not in set(ledger["file"])
    alice = ledger[ledger["rater"] == "alice"].set_index("status")
    assert alice.loc["accepted", "file"] == second.json()["stored"]
    assert alice.loc["duplicate", "file"] == first.json()["stored"]
    assert {"alice", "../../bob/x"} <= set(ratings["rater"])


def test_hostile_requests_are_refused_logged_and_lose_nothing(site, server):
    study, key = site["study"], site["key"]
    good = response(study, key, "carol", seed=3, n_seen=4)
    foreign = response(study, {**key.data, "build_hash": "f" * 64}, "carol", seed=3)
    broken = response(study, key, "carol", seed=3)
    broken["panels"][0]["ratings"] = {a: 0 for a in broken["panels"][0]["ratings"]}
    bad_score = response(study, key, "carol", seed=3)
    bad_score["panels"][0]["ratings"][next(iter(bad_score["panels"][0]["ratings"]))] = 99
    cases = {
        "malformed JSON": (b'{"schema": "glidemed-response/1", ', {}, 400),
        "deep JSON": (b"[" * 100_000 + b"]" * 100_000, {}, 400),
        "duplicate key": (b'{"a": 1, "a": 2}', {}, 400),
        "not a response": (b'{"hello": "world"}', {}, 422),
        "foreign build": (foreign, {}, 422),
        "edited after the fact": (broken, {}, 422),
        "score out of range": (bad_score, {}, 422),
        "no rating": (response(study, key, "carol", n_seen=0), {}, 422),
        "wrong content type": (good, {"content-type": "text/plain"}, 415),
        "other origin": (good, {"origin": "https://evil.example"}, 403),
        "oversized": (b" " * (21 * 2**20), {}, 413),
    }
    assert post(server, good).status_code == 201
    before, logged = stored_files(site), len(log_lines(site))
    for name, (body, headers, status) in cases.items():
        reply = post(server, body, headers)
        assert reply.status_code == status, (name, reply.text)
        assert reply.json()["error"], name

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(22):
            yield b" " * 2**20

    streamed = httpx.post(server.url + "api/responses", content=chunks(), timeout=30,
                          headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert post(server, good, {"origin": server.url.rstrip("/")}).status_code == 200
    assert stored_files(site) == before  # nothing new stored, nothing lost
    log = log_lines(site)[logged:]
    assert len(log) == len(cases) + 1
    assert any(" 422 " in line and "another survey build" in line for line in log)
    assert any(" 422 " in line and "tamper evidence" in line for line in log)
    assert any(" 413 " in line for line in log) and any(" 415 " in line for line in log)


def test_flood_and_full_disk(fresh):
    """A flood from one client is cut off (others are not); with no space left, a save
    is answered 507 and nothing truncated or temporary is left."""
    study, key = fresh["study"], fresh["key"]
    saved = response(study, key, "hal", seed=7)
    assert len(json.dumps(saved)) > 4096
    with ServedSurvey(fresh["path"], fresh["build"], "--rate-limit", "10",
                      preexec=limit_file_size) as server:
        with httpx.Client(timeout=10) as client:
            codes = [client.post(server.url + "api/responses", content=b"{}",
                                 headers={"content-type": "application/json"}).status_code
                     for _ in range(25)]
        assert 9 <= codes.count(422) <= 11 and codes.count(429) == 25 - codes.count(422)
        assert codes[-1] == 429
        reply = post(server, saved, {"x-forwarded-for": "10.0.0.7"})  # another client
        assert reply.status_code == 507 and "disk is full" in reply.json()["error"]
        assert reply.headers["retry-after"]
    folder = received_dir(study) / "hal"
    assert not folder.exists() or list(folder.iterdir()) == []  # no truncated or temporary file
    log = log_lines(fresh)
    assert sum(" 429 " in line and "too many" in line for line in log) == codes.count(429)
    assert sum(" 507 " in line for line in log) == 1


def invited(site, *options: str) -> dict[str, str]:
    """Run `glidemed invite` with ``options``; return rater -> link."""
    if "--base-url" not in options:
        options = (*options, "--local")
    result = CliRunner().invoke(main, ["invite", str(site["path"]), *options])
    assert result.exit_code == 0, result.output
    with open(server_dir(site["study"]) / "invitations.csv", newline="") as handle:
        return {row["rater"]: row["link"] for row in csv.DictReader(handle)}


def test_invitations_guard_each_rater_id_and_the_progress_page_tracks_them(fresh, tmp_path):
    study, key = fresh["study"], fresh["key"]
    ids = tmp_path / "ids.txt"
    ids.write_text("# raters\ndana\nerik\n\n")
    invited(fresh, "--raters", str(ids), "--base-url", "https://example.org/survey/")
    links = invited(fresh, "--count", "2")
    folder = server_dir(study)
    assert survey_dir(study) not in folder.parents and folder != survey_dir(study)
    assert sorted(links) == ["R001", "R002", "dana", "erik"]
    assert links["dana"].startswith("https://example.org/survey/?rater=dana&token=")
    tokens = {r: link.rsplit("token=", 1)[1] for r, link in links.items()}
    assert len(set(tokens.values())) == 4 and all(len(t) >= 32 for t in tokens.values())
    assert not any(t in (folder / "invitations.json").read_text() for t in tokens.values())
    assert invited(fresh, "--raters", str(ids)) == links  # the links already sent are kept

    def as_rater(rater: str, token: str) -> dict:
        return {"x-glidemed-rater": rater, "x-glidemed-token": token}

    dana = response(study, key, "dana", seed=4, n_seen=2)
    with ServedSurvey(fresh["path"], fresh["build"]) as server:
        assert post(server, dana).status_code == 401
        assert post(server, dana, as_rater("dana", "x" * 32)).status_code == 403
        assert post(server, dana, as_rater("dana", tokens["erik"])).status_code == 403
        # erik's own token cannot post a response in dana's name
        assert post(server, dana, as_rater("erik", tokens["erik"])).status_code == 403
        stranger = response(study, key, "zoe", seed=5, n_seen=2)
        assert post(server, stranger, as_rater("zoe", tokens["dana"])).status_code == 403
        assert stored_files(fresh) == {}
        assert post(server, dana, as_rater("dana", tokens["dana"])).status_code == 201
        for n_seen in (3, None):
            reply = post(server, response(study, key, "erik", seed=6, n_seen=n_seen),
                         as_rater("erik", tokens["erik"]))
            assert reply.status_code == 201
        assert raw_get(server, "/invitations.csv")[0] == 404
        assert httpx.get(server.url + "admin").status_code == 403
        assert httpx.get(server.url + "admin?token=wrong").status_code == 403
        admin_token = server.admin_token
    assert len(stored_files(fresh)) == 3
    assert sum("/api/responses" in line and ("token" in line or "invit" in line)
               for line in log_lines(fresh)) == 5

    # progress survives a restart (read back from the stored files); same admin token
    with ServedSurvey(fresh["path"], fresh["build"]) as server:
        assert server.admin_token == admin_token == (folder / "admin-token").read_text().strip()
        page = httpx.get(server.url + "admin", params={"token": admin_token})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    soup = BeautifulSoup(page.text, "html.parser")
    rows = {tr.find_all("td")[0].text: [td.text for td in tr.find_all("td")[1:]]
            for tr in soup.find("table", id="progress").find("tbody").find_all("tr")}
    assert rows["erik"][:3] == ["16", "16", "2"] and rows["erik"][4] == "yes"
    assert rows["dana"][:3] == ["2", "16", "1"] and rows["dana"][4] == "no"
    assert rows["R001"] == ["0", "", "0", "not yet", "no"]
    text = soup.get_text(" ")
    for secret in [*key.conditions, *key.panels, "alpha", "beta"]:
        assert secret not in text
    assert sum(" 403 " in line and "admin" in line for line in log_lines(fresh)) == 2


def as_rater(rater: str, token: str) -> dict:
    return {"x-glidemed-rater": rater, "x-glidemed-token": token}


def tokens_of(links: dict[str, str]) -> dict[str, str]:
    return {r: link.rsplit("token=", 1)[1] for r, link in links.items()}


def test_invitations_changed_while_serving_are_seen_at_once(fresh, tmp_path):
    """Invitations added, damaged, restored and removed while `serve` runs: each change
    applies to the next request and is said on the console and in server.log; a file
    that cannot be read never opens the study."""
    import shutil

    study, key = fresh["study"], fresh["key"]
    ids = tmp_path / "ids.txt"
    ids.write_text("dana\n")
    with ServedSurvey(fresh["path"], fresh["build"]) as server:
        assert "study is OPEN: anyone with the address may answer" in server.output()
        assert any("study is OPEN" in line for line in log_lines(fresh))
        assert post(server, response(study, key, "zoe", seed=1, n_seen=2)).status_code == 201

        result = CliRunner().invoke(main, ["invite", str(fresh["path"]), "--raters", str(ids),
                                           "--local"])
        assert result.exit_code == 0, result.output
        assert "invitation-only (1 rater(s) invited)" in result.output
        assert "running `glidemed serve` applies this at its next request" in result.output
        dana = tokens_of(invited(fresh, "--raters", str(ids)))["dana"]
        stranger = response(study, key, "yan", seed=2, n_seen=2)
        assert post(server, stranger).status_code == 401
        assert post(server, stranger, as_rater("yan", dana)).status_code == 403
        reply = post(server, response(study, key, "dana", seed=3, n_seen=2), as_rater("dana", dana))
        assert reply.status_code == 201, reply.text
        assert "invitations changed (1 added): the study is now invitation-only" in server.output()

        r001 = tokens_of(invited(fresh, "--count", "1"))["R001"]
        reply = post(server, response(study, key, "R001", seed=4, n_seen=2), as_rater("R001", r001))
        assert reply.status_code == 201, reply.text
        page = httpx.get(server.url + "admin", params={"token": server.admin_token})
        assert ">R001<" in page.text and "Invitations: on" in page.text

        # a damaged file (here: cut short) refuses everyone until it is readable again
        path = server_dir(study) / "invitations.json"
        good = path.read_bytes()
        shutil.copy(path, tmp_path / "saved.json")
        path.write_bytes(good[:len(good) // 2])
        for body, headers in [(stranger, {}), (response(study, key, "dana", seed=3, n_seen=4),
                                              as_rater("dana", dana))]:
            reply = post(server, body, headers)
            assert reply.status_code == 503 and "invitations" in reply.json()["error"]
        assert "responses are refused until it is fixed" in server.output()
        shutil.copy(tmp_path / "saved.json", path)
        reply = post(server, response(study, key, "dana", seed=3, n_seen=5), as_rater("dana", dana))
        assert reply.status_code == 201, reply.text
        assert post(server, stranger).status_code == 401

        path.unlink()  # removed by hand: open again, and said so
        assert post(server, stranger).status_code == 201
        assert "invitations changed (2 removed): the study is now OPEN" in server.output()
    log = "\n".join(log_lines(fresh))
    for change in ["(1 added): the study is now invitation-only (1 rater",
                   "(1 added): the study is now invitation-only (2 rater",
                   "not a glidemed invitations file (truncated JSON",
                   "invitations file readable again: the study is invitation-only",
                   "(2 removed): the study is now OPEN"]:
        assert change in log, log
    assert "Traceback" not in server.output()


def open_request(server, data: bytes) -> socket.socket:
    """A connection to ``server`` that has sent ``data`` and waits."""
    sock = socket.create_connection((LOOPBACK, server.port), timeout=10)
    sock.sendall(data)
    return sock


def test_slow_clients_get_408_and_are_closed_while_others_are_served(fresh):
    study, key = fresh["study"], fresh["key"]
    host = f"Host: {LOOPBACK}:{{port}}\r\n"
    with ServedSurvey(fresh["path"], fresh["build"], "--request-timeout", "1") as server:
        assert "1 s to send a request" in server.output()
        head = (f"POST /api/responses HTTP/1.1\r\n{host.format(port=server.port)}"
                "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n").encode()
        slow = {"one byte of the body": open_request(server, head + b"{"),
                "half the headers": open_request(server, head[:40]),
                "headers, no body": open_request(server, head)}
        silent = socket.create_connection((LOOPBACK, server.port), timeout=10)
        # meanwhile a normal client is served
        assert httpx.get(server.url).status_code == 200
        assert post(server, response(study, key, "pia", seed=1, n_seen=2)).status_code == 201
        for name, sock in slow.items():
            with sock:
                status, headers, body = parse_reply(read_to_end(sock))  # ends: closed
            assert status == 408, name
            assert headers["connection"] == "close" and headers["x-content-type-options"]
            assert "not complete within 1 s" in json.loads(body)["error"], name
        with silent:
            assert read_to_end(silent) == b""  # an idle connection is just closed
    log = [line for line in log_lines(fresh) if " 408 " in line]
    assert len(log) == 3 and all("not complete within 1 s" in line for line in log)
    assert sum("'/api/responses'" in line for line in log) == 2
    assert "Traceback" not in server.output()


def test_a_client_that_does_not_read_its_replies_is_cut_off(fresh):
    """Requests sent in a row (pipelined) whose replies are never read: once the server
    cannot write for the limit, the connection is closed; others are served meanwhile."""
    with ServedSurvey(fresh["path"], fresh["build"], "--request-timeout", "1") as server:
        request = (f"GET /assets/survey.js HTTP/1.1\r\nHost: {LOOPBACK}:{server.port}\r\n"
                   "\r\n").encode()
        size = len(httpx.get(server.url + "assets/survey.js").content)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((LOOPBACK, server.port))
        with sock:
            count = 12 * 2**20 // size + 1
            sock.sendall(request * count)  # 12 MB of replies, none read
            line = wait_until(lambda: [x for x in log_lines(fresh) if "did not read" in x],
                              "log line of a client that does not read")
            assert httpx.get(server.url).status_code == 200
            try:  # what was on its way arrives, then the connection ends
                received = len(read_to_end(sock))
            except ConnectionResetError:
                received = 0
            assert received < count * size
    assert len(line) == 1 and "for 1 s; connection closed" in line[0]
    assert "Traceback" not in server.output()


def test_a_client_gone_mid_request_is_one_log_line_and_no_traceback(fresh):
    with ServedSurvey(fresh["path"], fresh["build"]) as server:
        head = (f"POST /api/responses HTTP/1.1\r\nHost: {LOOPBACK}:{server.port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{").encode()
        for data in [head, head[:30]]:
            open_request(server, data).close()
            assert httpx.get(server.url).status_code == 200
        gone = wait_until(lambda: [line for line in log_lines(fresh) if "disconnected" in line]
                          if len([line for line in log_lines(fresh) if "disconnected" in line])
                          == 2 else None, "two log lines of disconnects")
    assert "POST '/api/responses'" in gone[0] and " - 127.0.0.1 " in gone[0]
    output = server.output()
    assert "Traceback" not in output and "ClientDisconnect" not in output
    assert "disconnected" not in output  # the console stays quiet; server.log has it


def test_every_refusal_whatever_its_form_is_json_and_logged(site, server):
    own = f"{LOOPBACK}:{server.port}"
    cases = {  # raw request -> status
        "GET http://other.host/index.html HTTP/1.1\r\nHost: other.host\r\n": 421,
        f"GET http://other.host/index.html HTTP/1.1\r\nHost: {own}\r\n": 421,
        f"GET ftp://{own}/index.html HTTP/1.1\r\nHost: {own}\r\n": 400,
        f"OPTIONS * HTTP/1.1\r\nHost: {own}\r\n": 400,
        f"FOO / HTTP/1.1\r\nHost: {own}\r\n": 405,
        f"GET http://{own}/key/key.json HTTP/1.1\r\nHost: {own}\r\n": 404,
        "GET / HTTP/1.1\r\n": 400,  # no Host: refused by the HTTP parser
        "NOT HTTP AT ALL\r\n": 400,
        f"GET / HTTP/1.1\r\nHost: {own}\r\nnot a header\r\n": 400,
    }
    before = len(log_lines(site))
    for request, expected in cases.items():
        with open_request(server, (request + "Connection: close\r\n\r\n").encode()) as sock:
            status, headers, body = parse_reply(read_to_end(sock))
        assert status == expected, request[:60]
        assert headers["content-type"] == "application/json", request[:60]
        assert json.loads(body)["error"], request[:60]
    # the absolute form of our own address is served as its path
    with open_request(server, f"GET http://{own}/ HTTP/1.1\r\nHost: {own}\r\n"
                              "Connection: close\r\n\r\n".encode()) as sock:
        status, _, body = parse_reply(read_to_end(sock))
    assert status == 200 and b"survey-data" in body
    log = log_lines(site)[before:]
    assert len(log) == len(cases)
    assert sum(" 421 " in line and "other.host" in line for line in log) == 2
    assert "Traceback" not in server.output()


def test_a_survey_rebuilt_while_serving_is_not_served_against_the_old_key(fresh):
    """The page and key are read at start: once another build replaces them, every request
    is refused until restart (a rewrite of the same build is not a change)."""
    from glidemed.fileio import write_text_atomic
    from glidemed.paths import key_dir

    study, key = fresh["study"], fresh["key"]
    key_path = key_dir(study) / "key.json"
    saved = key_path.read_text(encoding="utf-8")
    try:
        with ServedSurvey(fresh["path"], fresh["build"]) as server:
            write_text_atomic(key_path, saved)  # the same build written again
            assert httpx.get(server.url).status_code == 200
            write_text_atomic(key_path, saved.replace(key.build_hash, "e" * 64))
            for reply in [httpx.get(server.url),
                          post(server, response(study, key, "uma", seed=1, n_seen=2))]:
                assert reply.status_code == 503 and "rebuilt" in reply.json()["error"]
            assert "restart `glidemed serve`" in server.output()
    finally:
        write_text_atomic(key_path, saved)
    assert stored_files(fresh) == {}
    assert sum(" 503 " in line and "rebuilt" in line for line in log_lines(fresh)) == 2


def test_serve_refuses_a_single_file_build(make_study, tmp_path, monkeypatch):
    study_path = make_study()
    study = generated(study_path, tmp_path / "b", monkeypatch)
    build_survey(study, workers=1)
    result = CliRunner().invoke(main, ["serve", str(study_path)])
    assert result.exit_code == 1 and "folder build" in result.output
    assert "Traceback" not in result.output


def test_invite_needs_one_of_raters_or_count(make_study, tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "b"))
    study_path = make_study()
    result = CliRunner().invoke(main, ["invite", str(study_path), "--local"])
    assert result.exit_code == 1 and "--raters FILE or --count N" in result.output
    ids = tmp_path / "ids.txt"
    ids.write_text("a\na\n")
    result = CliRunner().invoke(main, ["invite", str(study_path), "--raters", str(ids),
                                       "--local"])
    assert result.exit_code == 1 and "line 2" in result.output and "twice" in result.output


@pytest.mark.parametrize("name, content, problem", [
    ("invitations.json", b'{"schema": "glidemed-invitations/1", "raters": {', "truncated JSON"),
    ("invitations.json", b'{"schema": "glidemed-invitations/1", "raters": {"a\\ud800": '
                         b'{"token_sha256": "x"}}}', "not valid Unicode"),
    ("invitations.json", b'{"schema": "glidemed-invitations/1", "raters": {"a": 1}}',
     "no token_sha256"),
    ("invitations.json", b'{"schema": "glidemed-invitations/1", "raters": [1]}',
     "'raters' is not an object"),
    ("invitations.csv", b"who,where\nR001,x\n", "links file"),
])
def test_invite_reports_a_damaged_secrets_file_in_one_line(make_study, tmp_path, monkeypatch,
                                                            name, content, problem):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "b"))
    study_path = make_study()
    invited_one = CliRunner().invoke(main, ["invite", str(study_path), "--count", "1", "--local"])
    assert invited_one.exit_code == 0
    from glidemed.study import load_study

    target = server_dir(load_study(study_path)) / name
    target.write_bytes(content)
    result = CliRunner().invoke(main, ["invite", str(study_path), "--count", "1", "--local"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert name in result.output and problem in result.output, result.output
    assert target.read_bytes() == content  # nothing replaced


@pytest.mark.parametrize("options, message", [
    ((), "give --base-url, the survey's public address"),
    (("--base-url", "http://127.0.0.1:8000/"), "is this machine, which raters cannot reach"),
    (("--base-url", "http://localhost/survey/"), "is this machine"),
    (("--base-url", "http://[::1]:8000/"), "is this machine"),
    (("--base-url", "example.org/survey"), "is not an http(s) address"),
])
def test_invite_refuses_links_raters_cannot_open(make_study, tmp_path, monkeypatch, options,
                                                  message):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "b"))
    result = CliRunner().invoke(main, ["invite", str(make_study()), "--count", "1", *options])
    assert result.exit_code == 1 and message in result.output
    assert not list(tmp_path.rglob("invitations.*"))


def test_invite_says_where_the_links_point(make_study, tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDEMED_BUILD_DIR", str(tmp_path / "b"))
    public = CliRunner().invoke(main, ["invite", str(make_study()), "--count", "1",
                                       "--base-url", "https://example.org/survey/"])
    assert public.exit_code == 0
    assert "the links point to https://example.org/survey/" in public.output
    local = CliRunner().invoke(main, ["invite", str(make_study()), "--count", "1", "--local"])
    assert local.exit_code == 0 and "the links point to http://127.0.0.1:8000/" in local.output
