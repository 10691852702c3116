"""Model file hashing: digests match hashlib, the cache is used and invalidated."""

from __future__ import annotations

import hashlib
import os

from glidemed.modelfiles import HashCache, file_sha256, folder_digest


def test_folder_digest_matches_hashlib_and_ignores_non_weights(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"weights-a")
    (tmp_path / "model.bin").write_bytes(b"weights-b")
    (tmp_path / "config.json").write_text("{}")
    cache = HashCache(tmp_path / "cache.json")
    digest = folder_digest(tmp_path, cache=cache)
    assert digest.files == {
        "model.bin": hashlib.sha256(b"weights-b").hexdigest(),
        "unet/diffusion_pytorch_model.safetensors": hashlib.sha256(b"weights-a").hexdigest(),
    }
    assert digest.n_bytes == 18
    lines = "".join(f"{k}\t{v}\n" for k, v in sorted(digest.files.items()))
    assert digest.combined_sha256 == hashlib.sha256(lines.encode()).hexdigest()


def test_cache_is_reused_until_size_or_mtime_change(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"one")
    cache_path = tmp_path / "cache.json"
    first = file_sha256(weights, HashCache(cache_path))
    cache = HashCache(cache_path)
    cache.sha256(weights)
    cache.save()
    assert first == hashlib.sha256(b"one").hexdigest()
    # A cached entry is trusted while size and mtime agree (the whole point of the cache)...
    stat = weights.stat()
    weights.write_bytes(b"two")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert HashCache(cache_path).sha256(weights) == first
    # ...and recomputed once either changes.
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert HashCache(cache_path).sha256(weights) == hashlib.sha256(b"two").hexdigest()


def test_unreadable_cache_is_rebuilt(tmp_path):
    cache_path = tmp_path / "cache.json"
    cache_path.write_text("not json")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    cache = HashCache(cache_path)
    assert cache.sha256(weights) == hashlib.sha256(b"x").hexdigest()
    cache.save()
    assert str(weights.resolve()) in HashCache(cache_path).entries
