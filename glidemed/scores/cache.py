"""Image embeddings of one scorer, keyed by image SHA-256, in atomically written chunks.

Each batch of a run adds one ``chunk-<n>.npz`` (``sha256`` and ``features``); a killed run
loses at most the batch in progress, and the next run embeds only what no chunk holds. The
folder is named after the scorer's identity (model files' SHA-256), so a changed model
never reuses old embeddings.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from glidemed.fileio import write_bytes_atomic


def identity_key(identity: dict) -> str:
    """12 hex digits of the SHA-256 of the identity (JSON, sorted keys), versions left out."""
    stable = {k: v for k, v in identity.items() if k != "versions"}
    text = json.dumps(stable, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


class EmbeddingCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.features: dict[str, np.ndarray] = {}
        self._next = 0
        for chunk in sorted(self.folder.glob("chunk-*.npz")):
            try:
                with np.load(chunk, allow_pickle=False) as data:
                    for sha, row in zip(data["sha256"], data["features"]):
                        self.features[str(sha)] = row
            except (OSError, ValueError, KeyError):
                continue  # a chunk cut short: its images are embedded again
            self._next = max(self._next, int(chunk.stem.split("-")[1]) + 1)

    def __contains__(self, sha256: str) -> bool:
        return sha256 in self.features

    def add(self, sha256s: list[str], features: np.ndarray) -> None:
        """Keep these rows and write them as one new chunk."""
        features = np.asarray(features, dtype=np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, sha256=np.array(sha256s, dtype=str), features=features)
        write_bytes_atomic(self.folder / f"chunk-{self._next:06d}.npz", buffer.getvalue())
        self._next += 1
        self.features.update(zip(sha256s, features))

    def matrix(self, sha256s: list[str]) -> np.ndarray:
        return np.stack([self.features[s] for s in sha256s]) if sha256s else np.zeros((0, 0))
