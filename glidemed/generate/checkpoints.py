"""GLIDE checkpoint files: where they live, what is present, and a safe downloader.

Checkpoints are read from one cache folder: ``--checkpoint-dir``, else the environment
variable ``GLIDEMED_CHECKPOINT_DIR``, else ``$XDG_CACHE_HOME/glidemed/glide`` (by
default ``~/.cache/glidemed/glide``). A file that is present is never re-fetched, so a
machine with the files copied into that folder works offline. Downloads are checked
(HTTP status, content type, Content-Length) and written to a temporary file that is
renamed only when complete, so a failed download never leaves a file under the
checkpoint's name.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glidemed.errors import GenerationError
from glidemed.fileio import atomic_path, sha256_file

ENV_VAR = "GLIDEMED_CHECKPOINT_DIR"

# The public December 2021 release, as listed by glide_text2im.download.MODEL_PATHS
# (a test checks that both agree). The file name is the last part of the URL.
MODEL_URLS = {
    "base": "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/base.pt",
    "upsample": "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/upsample.pt",
    "base-inpaint": "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/base_inpaint.pt",
    "upsample-inpaint":
        "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/upsample_inpaint.pt",
    "clip/image-enc":
        "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/clip_image_enc.pt",
    "clip/text-enc":
        "https://openaipublic.blob.core.windows.net/diffusion/dec-2021/clip_text_enc.pt",
}
# What text-to-image sampling needs (the inpainting models are not used by glidemed).
SAMPLING_NAMES = ("base", "upsample", "clip/image-enc", "clip/text-enc")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin")


def checkpoint_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The checkpoint cache folder: explicit, else $GLIDEMED_CHECKPOINT_DIR, else the user cache."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "glidemed" / "glide"


def file_name(name: str) -> str:
    """The file a known checkpoint name is cached under, e.g. 'clip/image-enc' -> 'clip_image_enc.pt'."""
    if name not in MODEL_URLS:
        raise GenerationError(_unknown_name(name))
    return MODEL_URLS[name].rsplit("/", 1)[-1]


def _unknown_name(name: str) -> str:
    return (f"unknown checkpoint name {name!r} (known: {', '.join(MODEL_URLS)}; or a file "
            f"name ending in {', '.join(CHECKPOINT_SUFFIXES)})")


def is_file_reference(ref: str) -> bool:
    """True when a checkpoint reference is a file (e.g. a fine-tuned model), not a release name."""
    return ref.endswith(CHECKPOINT_SUFFIXES)


def check_reference(ref: object) -> str | None:
    """The problem with a checkpoint reference from a study file, or None."""
    if not isinstance(ref, str) or not ref:
        return f"expected a checkpoint name or file name, got {ref!r}"
    if ref not in MODEL_URLS and not is_file_reference(ref):
        return _unknown_name(ref)
    return None


def resolve(ref: str, folder: Path) -> Path:
    """The path of a checkpoint reference: a release name or a file (relative to ``folder``)."""
    if is_file_reference(ref):
        path = Path(ref).expanduser()
        return path if path.is_absolute() else folder / path
    return folder / file_name(ref)


def require(ref: str, folder: Path, *, download: bool = False) -> Path:
    """The path of a present checkpoint; download a missing release file only when asked.

    Raises a GenerationError naming the file, the folder and how to obtain it.
    """
    path = resolve(ref, folder)
    if path.is_file():
        return path
    if is_file_reference(ref):
        raise GenerationError(f"checkpoint file {path} not found (folder {path.parent}); "
                              "copy the file there or give its full path")
    if download:
        download_checkpoint(ref, folder)
        return path
    raise GenerationError(missing_message(ref, folder))


def require_all(refs: list[str], folder: Path) -> None:
    """Raise one GenerationError naming every missing checkpoint of ``refs``."""
    missing = [ref for ref in refs if not resolve(ref, folder).is_file()]
    if len(missing) == 1:
        require(missing[0], folder)
    elif missing:
        files = ", ".join(resolve(ref, folder).name for ref in missing)
        releases = [ref for ref in missing if not is_file_reference(ref)]
        hint = (f" Download them with `glidemed checkpoints --download --checkpoint-dir "
                f"{folder}`, or on a machine without network copy "
                + ", ".join(MODEL_URLS[ref] for ref in releases) + " into that folder."
                if releases else "")
        raise GenerationError(f"{len(missing)} checkpoints are missing from folder {folder}: "
                              f"{files}.{hint} (Set --checkpoint-dir or ${ENV_VAR} to use "
                              "another folder.)")


def missing_message(name: str, folder: Path) -> str:
    return (f"checkpoint {name!r} is missing: {folder / file_name(name)} not found in folder "
            f"{folder}. Download it with `glidemed checkpoints --download "
            f"--checkpoint-dir {folder}`, or on a machine without network copy "
            f"{MODEL_URLS[name]} into that folder (set --checkpoint-dir or ${ENV_VAR} to "
            "use another folder)")


@dataclass(frozen=True)
class CheckpointStatus:
    name: str
    path: Path
    present: bool
    size: int | None = None
    sha256: str | None = None


def list_checkpoints(folder: Path, names: tuple[str, ...] = SAMPLING_NAMES,
                     hashes: bool = True) -> list[CheckpointStatus]:
    """Which release checkpoints are in ``folder``, with their sizes and SHA-256."""
    rows = []
    for name in names:
        path = folder / file_name(name)
        if path.is_file():
            rows.append(CheckpointStatus(name, path, True, path.stat().st_size,
                                         sha256_file(path) if hashes else None))
        else:
            rows.append(CheckpointStatus(name, path, False))
    return rows


def download_checkpoint(name: str, folder: Path, *, timeout: float = 60.0,
                        progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download a release checkpoint into ``folder`` (no-op when present)."""
    path = folder / file_name(name)
    if path.is_file():
        return path
    return download(MODEL_URLS[name], path, timeout=timeout, progress=progress)


def download(url: str, dest: Path, *, timeout: float = 60.0, chunk_size: int = 1 << 20,
             progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Fetch ``url`` into ``dest`` safely; raise GenerationError on any failure.

    The body goes to a temporary file beside ``dest`` that is renamed only after the
    HTTP status was 200, the content type was not HTML and the byte count equals
    Content-Length. Any failure removes the temporary file.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenerationError(f"cannot create checkpoint folder {dest.parent}: "
                              f"{exc.strerror or exc}") from None
    request = urllib.request.Request(url, headers={"User-Agent": "glidemed"})
    what = f"download of {url} to {dest}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status != 200:
                raise GenerationError(f"{what} failed: HTTP status {response.status}")
            kind = response.headers.get("Content-Type", "")
            if "html" in kind.lower():
                raise GenerationError(f"{what} failed: the server sent a web page "
                                      f"({kind}), not a checkpoint")
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if expected is None:
                raise GenerationError(f"{what} failed: the server did not say the file size "
                                      "(no Content-Length), so a complete download cannot be "
                                      "told from a truncated one")
            received = 0
            with atomic_path(dest) as part:
                with open(part, "wb") as handle:
                    while block := response.read(chunk_size):
                        handle.write(block)
                        received += len(block)
                        if progress:
                            progress(received, expected)
                if received != expected:
                    raise GenerationError(f"{what} failed: got {received} of {expected} bytes")
        return dest
    except urllib.error.HTTPError as exc:
        raise GenerationError(f"{what} failed: HTTP status {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise GenerationError(f"{what} failed: {reason}. Without network, copy the file "
                              f"into {dest.parent} by hand") from None


def fetch_missing(folder: Path, names: tuple[str, ...] = SAMPLING_NAMES,
                  progress: bool = True) -> list[str]:
    """Download the named release checkpoints missing from ``folder``; return their names."""
    from tqdm import tqdm

    fetched = []
    for name in names:
        if (folder / file_name(name)).is_file():
            continue
        with tqdm(unit="B", unit_scale=True, desc=file_name(name), file=sys.stderr,
                  disable=not progress) as bar:
            def update(received: int, total: int | None) -> None:
                bar.total = total
                bar.update(received - bar.n)

            download_checkpoint(name, folder, progress=update)
        fetched.append(name)
    return fetched
