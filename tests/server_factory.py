"""A real `glidemed serve` process on a free loopback port, for the server tests and bench.

Only 127.0.0.1 is ever used. The process is stopped by its pid.
"""

from __future__ import annotations

import copy
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from response_factory import rechain

from glidemed.responses.chain import replay

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(check, what: str, timeout: float = 30):
    """Poll ``check()`` until it gives a true value (for what a server writes on its own
    time, such as a log line); an error naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.05)
    return value


def read_to_end(sock: socket.socket, timeout: float = 30) -> bytes:
    """Everything the server sends on ``sock`` until it closes the connection (an error
    if it has not closed it within ``timeout`` s)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def parse_reply(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-case headers, body) of one raw HTTP/1.1 reply."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def limit_file_size():
    """Files of at most 4 kB, as on a full disk (writes fail, the process lives on)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def partial_save(final: dict, n_events: int, step: int) -> dict:
    """The save the page sends after the first ``n_events`` answers of ``final`` (updated
    ``step`` seconds after 10:00)."""
    response = copy.deepcopy(final)
    response["events"] = response["events"][:n_events]
    answers = replay(response["events"])
    panels = []
    for panel in response["panels"]:
        if panel["position"] in answers:
            given = answers[panel["position"]]
            panel["ratings"] = {a: given["ratings"].get(a) for a in panel["ratings"]}
            panel["flags"] = {f: bool(given["flags"].get(f)) for f in panel["flags"]}
            panel["comment"] = given["comment"]
            panels.append(panel)
    response.update(panels=panels, complete=False, completed=None,
                    updated=f"2026-01-02T{10 + step // 3600:02d}:{step // 60 % 60:02d}:"
                            f"{step % 60:02d}Z")
    return rechain(response)


class ServedSurvey:
    """``glidemed serve STUDY`` with outputs under ``build_dir``; start(), stop(), url."""

    def __init__(self, study_path: Path, build_dir: Path, *options: str,
                 port: int | None = None, preexec=None):
        self.study_path, self.build_dir, self.options = study_path, build_dir, list(options)
        self.port = port or free_port()
        self.preexec = preexec
        self.process: subprocess.Popen | None = None
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self.admin_token = ""

    def start(self, timeout: float = 30) -> "ServedSurvey":
        env = {**os.environ, "GLIDEMED_BUILD_DIR": str(self.build_dir), "PYTHONUNBUFFERED": "1"}
        log = open(self.build_dir / f"serve-{self.port}.out", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "glidemed", "serve", str(self.study_path), "--host", LOOPBACK,
             "--port", str(self.port), *self.options],
            env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"glidemed serve exited with {self.process.returncode}: "
                                   + self.output())
            try:
                httpx.get(self.url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("glidemed serve did not answer in time: " + self.output())
        for line in self.output().splitlines():
            if "admin?token=" in line:
                self.admin_token = line.rsplit("admin?token=", 1)[1].strip()
        return self

    def output(self) -> str:
        return (self.build_dir / f"serve-{self.port}.out").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> "ServedSurvey":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
