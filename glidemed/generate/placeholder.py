"""The 'placeholder' generator: deterministic, visibly marked images for demos and tests."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from glidemed.generate.base import GeneratorContext, ImageJob
from glidemed.generate.registry import unknown_or_mistyped
from glidemed.study import Condition

PARAMS = {"size": int}
DEFAULT_SIZE = 256


class PlaceholderGenerator:
    """Draws coloured shapes from the image's seed and stamps 'PLACEHOLDER' on them.

    Never the default of a real study: it exists so that surveys and analyses can be
    built and tested without a model.
    """

    batch_size = 16

    def __init__(self, condition: Condition, context: GeneratorContext):
        self.size = int(condition.params.get("size", DEFAULT_SIZE))

    @staticmethod
    def check_params(params: dict) -> list[str]:
        problems = unknown_or_mistyped(params, PARAMS)
        size = params.get("size", DEFAULT_SIZE)
        if isinstance(size, int) and not 8 <= size <= 2048:
            problems.append(f"size: expected 8..2048 pixels, got {size}")
        return problems

    def describe(self) -> dict:
        return {"params": {"size": self.size}, "versions": {}}

    def render(self, jobs: list[ImageJob]):
        for job in jobs:
            yield job, self.draw(job.seed), {}

    def draw(self, seed: int) -> Image.Image:
        rng = random.Random(seed)
        size = self.size
        image = Image.new("RGB", (size, size), tuple(rng.randrange(40, 200) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = rng.randrange(size), rng.randrange(size)
            r = rng.randrange(size // 16 + 1, size // 4 + 2)
            colour = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=colour)
        draw.rectangle((0, size // 2 - 8, size, size // 2 + 8), fill=(255, 255, 255))
        draw.text((4, size // 2 - 6), "PLACEHOLDER", fill=(200, 0, 0))
        return image
