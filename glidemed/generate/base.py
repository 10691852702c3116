"""The generator interface: what the runner asks of every image source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from PIL import Image

from glidemed.study import Condition, Prompt, Study


@dataclass(frozen=True)
class ImageJob:
    """One image to make: a prompt under a condition, its index and its seed."""

    prompt: Prompt
    condition: Condition
    index: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.condition.name, self.prompt.id, self.index)

    @property
    def relpath(self) -> str:
        """Path of the image under the images folder."""
        return f"{self.condition.name}/{self.prompt.id}/{self.index:02d}.png"


@dataclass(frozen=True)
class GeneratorContext:
    """What a generator may need beyond its parameters."""

    study: Study
    device: str | None = None  # e.g. 'cuda', 'cpu'; None lets the generator choose
    batch_size: int | None = None  # overrides the condition's batch size
    checkpoint_dir: Path | None = None


class Generator(Protocol):
    """An image source. Construct with (condition, context); then call ``render``.

    ``render`` yields each job with its image and a dict of extra manifest fields (may
    be empty; a batching generator sets 'seconds' to each image's share of the batch),
    in any order, as soon as it is ready, so the runner can save it at once.
    ``describe`` returns what the manifest records about the generator (resolved
    parameters, checkpoint hashes, software versions). ``batch_size`` is how many jobs
    ``render`` is best given at once. The class also has a static ``check_params``
    (see ``registry``) that study validation calls without constructing it.
    """

    batch_size: int

    def render(self, jobs: list[ImageJob]) -> Iterable[tuple[ImageJob, Image.Image, dict]]: ...

    def describe(self) -> dict: ...


def chunked(items: list, size: int) -> Iterator[list]:
    """Consecutive slices of ``items`` of at most ``size`` (at least 1) each."""
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start:start + size]
