"""Server benchmark: 50 raters saving to `glidemed serve` at once, then 100 raters' files.

A temporary paper-size study (kather2022's 272 prompts, one placeholder condition, small
images: the images do not matter here), built as a folder and served by a real uvicorn
process on 127.0.0.1. Each simulated rater (the project's simulator, with rater effects)
posts its partial saves, one after the other without pause (a closed loop, so this is the
most the server holds), then its complete file. Prints requests/s, p50/p99 latency of a
save, how many were lost (posted with a 201 but not on disk byte for byte), the server's
memory once 100 raters' files are stored (target < 200 MB), and what 400 slow clients (each
declares a body and sends one byte) get and when, while a normal client is served.

    python bench/bench_server.py [--raters 50] [--seconds 30] [--saves 30] [--slow 400]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_survey import paper_study  # noqa: E402
from server_factory import (LOOPBACK, ServedSurvey, parse_reply, partial_save,  # noqa: E402
                            read_to_end)

from glidemed.fileio import sha256_bytes, sha256_file  # noqa: E402
from glidemed.generate.runner import run_generation  # noqa: E402
from glidemed.paths import images_dir, received_dir  # noqa: E402
from glidemed.simulate import simulate_study  # noqa: E402
from glidemed.study import load_study  # noqa: E402
from glidemed.survey.build import build_survey  # noqa: E402


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def slow_clients(server: ServedSurvey, count: int, limit: float) -> None:
    """``count`` connections (each its own client behind the proxy) that declare a body of
    5 kB and send one byte; meanwhile one normal request."""
    began = time.perf_counter()
    sockets = []
    for i in range(count):
        sock = socket.create_connection((LOOPBACK, server.port), timeout=10)
        sock.sendall((f"POST /api/responses HTTP/1.1\r\nHost: {LOOPBACK}:{server.port}\r\n"
                      f"X-Forwarded-For: 10.3.{i // 250}.{i % 250}\r\nContent-Type: "
                      "application/json\r\nContent-Length: 5000\r\n\r\n{").encode())
        sockets.append(sock)
    started = time.perf_counter()
    normal = httpx.get(server.url, timeout=60)
    normal_ms = (time.perf_counter() - started) * 1e3
    codes: collections.Counter = collections.Counter()
    for sock in sockets:
        with sock:
            try:
                data = read_to_end(sock, timeout=limit + 60)
                codes[parse_reply(data)[0] if data else "closed"] += 1
            except OSError as exc:
                codes[type(exc).__name__] += 1
    elapsed = time.perf_counter() - began
    print(f"{count} slow clients (one byte of a declared body): {dict(codes)}, all answered and "
          f"closed {elapsed:.1f} s after the first opened (limit {limit:g} s); a normal request "
          f"meanwhile: {normal.status_code} in {normal_ms:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--saves", type=int, default=30, help="partial saves per rater at most")
    parser.add_argument("--memory-raters", type=int, default=100)
    parser.add_argument("--slow", type=int, default=400, help="slow clients at once")
    parser.add_argument("--request-timeout", type=float, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        study_path = paper_study(tmp)
        text = study_path.read_text().replace("size = 256", "size = 32")
        study_path.write_text(text.replace("images_per_prompt = 8", "images_per_prompt = 4"))
        os.environ["GLIDEMED_BUILD_DIR"] = str(tmp / "build")
        study = load_study(study_path)
        run_generation(study, images_dir(study), progress=False)
        report = build_survey(study, single_file=False)
        finals = [json.loads(p.read_text()) for p in
                  simulate_study(study, max(args.raters, args.memory_raters), tmp / "sim", seed=3)]
        bodies = {}
        for final in finals:
            n = len(final["events"])
            saves = [partial_save(final, 1 + n * i // args.saves, i) for i in range(args.saves)]
            bodies[final["rater"]["id"]] = [json.dumps(r).encode() for r in saves + [final]]
        sizes = [len(b) for saves in bodies.values() for b in saves]
        print(f"survey: {report.panels} panels; a save is {min(sizes) / 1e3:.0f}-"
              f"{max(sizes) / 1e3:.0f} kB (complete: {statistics.mean(len(s[-1]) for s in bodies.values()) / 1e3:.0f} kB)")

        latencies: list[float] = []
        codes: list[int] = []
        accepted: set[str] = set()
        lock = threading.Lock()
        raters = list(bodies)[:args.raters]

        window = {"deadline": float("inf")}  # set when every rater is ready
        barrier = threading.Barrier(len(raters) + 1)

        def session(index: int, rater: str) -> None:
            headers = {"content-type": "application/json",
                       "x-forwarded-for": f"10.1.{index // 250}.{index % 250}"}
            with httpx.Client(timeout=60) as client:
                barrier.wait()
                for body in bodies[rater][:-1]:
                    if time.monotonic() > window["deadline"]:
                        break
                    began = time.perf_counter()
                    reply = client.post(server.url + "api/responses", content=body, headers=headers)
                    spent = time.perf_counter() - began
                    with lock:
                        latencies.append(spent)
                        codes.append(reply.status_code)
                        if reply.status_code == 201:
                            accepted.add(sha256_bytes(body))

        with ServedSurvey(study_path, tmp / "build", "--request-timeout",
                          str(args.request_timeout)) as server:
            threads = [threading.Thread(target=session, args=(i, rater))
                       for i, rater in enumerate(raters)]
            for thread in threads:
                thread.start()
            window["deadline"] = time.monotonic() + args.seconds
            barrier.wait()
            began = time.perf_counter()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - began
            ordered = sorted(latencies)
            stored = {sha256_file(p) for p in received_dir(study).rglob("*.json")}
            lost = len(accepted - stored)
            print(f"{len(raters)} concurrent raters: {len(codes)} saves in {elapsed:.1f} s = "
                  f"{len(codes) / elapsed:.1f} requests/s; latency p50 {ordered[len(ordered) // 2] * 1e3:.0f} ms, "
                  f"p99 {ordered[int(len(ordered) * 0.99)] * 1e3:.0f} ms; "
                  f"status codes {sorted(set(codes))}; lost {lost}")

            with httpx.Client(timeout=60) as client:
                for i, (rater, saves) in enumerate(list(bodies.items())[:args.memory_raters]):
                    reply = client.post(server.url + "api/responses", content=saves[-1],
                                        headers={"content-type": "application/json",
                                                 "x-forwarded-for": f"10.2.{i // 250}.{i % 250}"})
                    assert reply.status_code in (200, 201), reply.text
            now, peak = rss_mb(server.process.pid)
            files = sum(1 for _ in received_dir(study).rglob("*.json"))
            print(f"server memory with {args.memory_raters} raters' files received ({files} files): "
                  f"{now:.0f} MB resident, peak {peak:.0f} MB (target < 200 MB)")
            slow_clients(server, args.slow, args.request_timeout)


if __name__ == "__main__":
    main()
