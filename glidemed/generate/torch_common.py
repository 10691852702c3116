"""What the torch generators share: choosing the device and running one batch.

torch is passed in, never imported here, so importing this module stays cheap.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from glidemed.errors import GenerationError
from glidemed.generate.base import ImageJob


def torch_device(torch: Any, requested: str | None):
    """The device named by --device, else CUDA when present, else the CPU."""
    name = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise GenerationError(f"--device: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GenerationError(f"--device {name}: CUDA is not available on this machine "
                              "(use --device cpu)")
    return device


def sample_batch(torch: Any, jobs: list[ImageJob], sample: Callable[[list[str], list[int]], list],
                 where: str) -> tuple[list, dict]:
    """``sample(texts, seeds)`` for ``jobs`` in one batch, and each image's share of its time.

    CUDA running out of memory becomes a GenerationError naming the batch size that failed.
    """
    started = time.perf_counter()
    try:
        results = sample([job.prompt.text for job in jobs], [job.seed for job in jobs])
    except torch.cuda.OutOfMemoryError:
        raise GenerationError(f"{where}: CUDA ran out of memory with a batch of {len(jobs)} "
                              f"image(s); use a smaller batch: --batch-size below {len(jobs)} "
                              "(or the condition's batch_size)") from None
    share = {"seconds": round((time.perf_counter() - started) / len(jobs), 4),
             "batch_size": len(jobs)}
    return results, share
