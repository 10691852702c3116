"""Model files: SHA-256 of files and folders (cached by path, size and modification
time), and whether the model hub can be reached.

A model folder of several GB is hashed once; later runs read the digest of every file
whose size and modification time are unchanged from a small JSON cache in the user cache
folder (``$XDG_CACHE_HOME/glidemed/file-hashes.json``). The cache is only an
optimisation: a missing, unreadable or foreign cache file is rebuilt silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from glidemed import outside_json
from glidemed.fileio import sha256_file, write_text_atomic

# Files that hold weights; configs, tokenizers and READMEs are small and hashed apart.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5",
                   ".onnx", ".gguf")


def cache_file() -> Path:
    """Where file digests are cached: the user cache folder, as for checkpoints."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "glidemed" / "file-hashes.json"


class HashCache:
    """Digests keyed by absolute path, valid while size and mtime_ns are unchanged."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_file()
        self.entries: dict[str, dict] = {}
        self.changed = False
        try:
            loaded = outside_json.loads(self.path.read_bytes())
            if isinstance(loaded, dict):
                self.entries = {k: v for k, v in loaded.items() if isinstance(v, dict)}
        except (OSError, outside_json.OutsideJSONError):
            pass

    def sha256(self, file: Path) -> str:
        file = Path(file).resolve()
        stat = file.stat()
        entry = self.entries.get(str(file))
        if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns \
                and isinstance(entry.get("sha256"), str):
            return entry["sha256"]
        digest = sha256_file(file)
        self.entries[str(file)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                   "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        """Write the cache back if it changed; a cache that cannot be written is skipped."""
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.path, json.dumps(self.entries, sort_keys=True))
            self.changed = False
        except OSError:
            pass


@dataclass
class FolderDigest:
    """Every weight file's SHA-256 (relative POSIX path -> digest) and one combined digest."""

    folder: str
    files: dict[str, str] = field(default_factory=dict)
    n_bytes: int = 0

    @property
    def combined_sha256(self) -> str:
        """SHA-256 over the sorted 'path<TAB>digest' lines: changes with any file or name."""
        lines = "".join(f"{name}\t{digest}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(lines.encode("utf-8")).hexdigest()

    def as_record(self) -> dict:
        return {"folder": self.folder, "weights_sha256": self.combined_sha256,
                "weight_files": dict(sorted(self.files.items())), "weight_bytes": self.n_bytes}


def file_sha256(path: str | os.PathLike, cache: HashCache | None = None) -> str:
    """SHA-256 of one file, through the cache."""
    own = cache is None
    cache = cache or HashCache()
    digest = cache.sha256(Path(path))
    if own:
        cache.save()
    return digest


def folder_digest(folder: str | os.PathLike, suffixes: tuple[str, ...] = WEIGHT_SUFFIXES,
                  cache: HashCache | None = None) -> FolderDigest:
    """Digest of every file below ``folder`` whose name ends in one of ``suffixes``."""
    root = Path(folder)
    own = cache is None
    cache = cache or HashCache()
    digest = FolderDigest(folder=str(root))
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.name.endswith(suffixes):
            digest.files[file.relative_to(root).as_posix()] = cache.sha256(file)
            digest.n_bytes += file.stat().st_size
    if own:
        cache.save()
    return digest


def hub_online(timeout: float = 3.0) -> bool:
    """False under HF_HUB_OFFLINE, else whether the hub's host answers within ``timeout``."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout).close()
    except OSError:
        return False
    return True
