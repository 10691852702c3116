"""Checkpoint folder, offline checks and the safe downloader (against a local HTTP server)."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from glidemed.cli import main
from glidemed.errors import GenerationError
from glidemed.fileio import sha256_bytes
from glidemed.generate import checkpoints

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/good.pt") or self.path.endswith("/base.pt"):
            self._send(200, PAYLOAD, "application/octet-stream")
        elif self.path.endswith("/html.pt"):
            self._send(200, b"<html><body>Access denied</body></html>", "text/html; charset=utf-8")
        elif self.path.endswith("/truncated.pt"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            self.close_connection = True
        elif self.path.endswith("/nolength.pt"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(PAYLOAD)
            self.close_connection = True
        elif self.path.endswith("/slow.pt"):
            time.sleep(1)
            self._send(200, PAYLOAD, "application/octet-stream")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_folder_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(checkpoints.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert checkpoints.checkpoint_dir() == tmp_path / "xdg" / "glidemed" / "glide"
    monkeypatch.setenv(checkpoints.ENV_VAR, str(tmp_path / "env"))
    assert checkpoints.checkpoint_dir() == tmp_path / "env"
    assert checkpoints.checkpoint_dir(tmp_path / "cli") == tmp_path / "cli"


def test_default_folder_is_not_the_working_directory(monkeypatch):
    monkeypatch.delenv(checkpoints.ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert checkpoints.checkpoint_dir() == Path.home() / ".cache" / "glidemed" / "glide"


def test_urls_match_glide_text2im():
    download = pytest.importorskip("glide_text2im.download",
                                   reason="glide-text2im not installed (pip install -e '.[glide]')")
    assert checkpoints.MODEL_URLS == download.MODEL_PATHS


def test_names_and_references():
    assert checkpoints.file_name("clip/image-enc") == "clip_image_enc.pt"
    with pytest.raises(GenerationError, match="unknown checkpoint name 'large'"):
        checkpoints.file_name("large")
    assert checkpoints.check_reference("base") is None
    assert checkpoints.check_reference("finetuned/base-pathology.pt") is None
    assert "unknown checkpoint name" in checkpoints.check_reference("base-large")
    assert checkpoints.resolve("mine.pt", Path("/x")) == Path("/x/mine.pt")
    assert checkpoints.resolve("/abs/mine.pt", Path("/x")) == Path("/abs/mine.pt")


def test_missing_file_message_names_file_folder_and_remedy(tmp_path):
    with pytest.raises(GenerationError) as info:
        checkpoints.require("upsample", tmp_path)
    message = str(info.value.message)
    assert str(tmp_path / "upsample.pt") in message
    assert f"folder {tmp_path}" in message
    assert "glidemed checkpoints --download" in message
    assert checkpoints.MODEL_URLS["upsample"] in message
    with pytest.raises(GenerationError, match="mine.pt not found"):
        checkpoints.require("mine.pt", tmp_path)


def test_all_missing_files_in_one_message(tmp_path):
    (tmp_path / "base.pt").write_bytes(PAYLOAD)
    checkpoints.require_all(["base"], tmp_path)
    with pytest.raises(GenerationError) as info:
        checkpoints.require_all(["base", "upsample", "clip/text-enc", "mine.pt"], tmp_path)
    message = info.value.message
    assert f"3 checkpoints are missing from folder {tmp_path}" in message
    assert "upsample.pt, clip_text_enc.pt, mine.pt" in message
    assert checkpoints.MODEL_URLS["clip/text-enc"] in message
    assert checkpoints.MODEL_URLS["base"] not in message


def test_present_file_needs_no_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(checkpoints.urllib.request, "urlopen", no_network)
    (tmp_path / "base.pt").write_bytes(PAYLOAD)
    assert checkpoints.require("base", tmp_path, download=True) == tmp_path / "base.pt"
    assert checkpoints.download_checkpoint("base", tmp_path) == tmp_path / "base.pt"


def test_download_good_file(server, tmp_path):
    seen = []
    path = checkpoints.download(f"{server}/good.pt", tmp_path / "good.pt",
                                progress=lambda got, total: seen.append((got, total)))
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert leftovers(tmp_path) == ["good.pt"]


@pytest.mark.parametrize("name, reason", [
    ("missing.pt", "HTTP status 404"),
    ("html.pt", "web page"),
    ("truncated.pt", "bytes"),
    ("nolength.pt", "Content-Length"),
])
def test_failed_download_leaves_nothing(server, tmp_path, name, reason):
    with pytest.raises(GenerationError, match=reason) as info:
        checkpoints.download(f"{server}/{name}", tmp_path / "ckpt.pt")
    assert str(tmp_path / "ckpt.pt") in info.value.message
    assert leftovers(tmp_path) == []


def test_download_times_out(server, tmp_path):
    with pytest.raises(GenerationError, match="timed out"):
        checkpoints.download(f"{server}/slow.pt", tmp_path / "ckpt.pt", timeout=0.3)
    assert leftovers(tmp_path) == []


def test_unreachable_host_says_how_to_copy_by_hand(tmp_path):
    with pytest.raises(GenerationError, match="copy the file"):
        checkpoints.download("http://127.0.0.1:9/base.pt", tmp_path / "base.pt", timeout=2)
    assert leftovers(tmp_path) == []


def test_cli_lists_and_downloads(server, tmp_path, monkeypatch):
    monkeypatch.setitem(checkpoints.MODEL_URLS, "base", f"{server}/base.pt")
    runner = CliRunner()
    result = runner.invoke(main, ["checkpoints", "base", "--checkpoint-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "missing" in result.output
    result = runner.invoke(main, ["checkpoints", "base", "--download",
                                  "--checkpoint-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sha256_bytes(PAYLOAD) in result.output
    assert f"{len(PAYLOAD):,d} B" in result.output
    assert (tmp_path / "base.pt").read_bytes() == PAYLOAD


def test_cli_download_failure_is_one_line_error(server, tmp_path, monkeypatch):
    monkeypatch.setitem(checkpoints.MODEL_URLS, "upsample", f"{server}/html.pt")
    result = CliRunner().invoke(main, ["checkpoints", "upsample", "--download",
                                       "--checkpoint-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "web page" in result.output and "Traceback" not in result.output
    assert leftovers(tmp_path) == []


def test_cli_unknown_name(tmp_path):
    result = CliRunner().invoke(main, ["checkpoints", "huge", "--checkpoint-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown checkpoint name 'huge'" in result.output
