"""Small studies with generated images, reference folders and feature modules for the score tests."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import SMALL_STUDY


def write_small_study(folder: Path, images_per_prompt: int = 2, extra: str = "") -> Path:
    """The tests' small placeholder study (2 conditions, 2 styles, 8 prompts) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.toml"
    path.write_text(SMALL_STUDY.format(images_per_prompt=images_per_prompt,
                                       images_per_panel=min(2, images_per_prompt)) + extra,
                    encoding="utf-8")
    return path


def write_reference(folder: Path, prompt_ids: list[str], per_prompt: int = 2,
                    size: int = 40) -> Path:
    """A folder of 'real' images (coloured noise) with an images.csv mapping them to prompts."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(folder / "images.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "prompt_id"])
        for prompt_id in prompt_ids:
            for k in range(per_prompt):
                name = f"{prompt_id}-{k}.png"
                pixels = (rng.random((size, size, 3)) * 255).astype("uint8")
                Image.fromarray(pixels).save(folder / name)
                writer.writerow([name, prompt_id])
    return folder


def inception_shaped(dim: int = 16):
    """A module taking uint8 N x 3 x 299 x 299 to N x dim features, as torchmetrics' FID
    takes a custom feature extractor."""
    import torch

    class InceptionShaped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            generator = torch.Generator().manual_seed(0)
            self.conv = torch.nn.Conv2d(3, dim, kernel_size=13, stride=13)
            with torch.no_grad():
                self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * 0.05)

        def forward(self, x):
            return torch.tanh(self.conv(x.float() / 255)).mean(dim=(2, 3)) * 5

    return InceptionShaped()
