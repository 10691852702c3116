"""Each rater's panel order and image choice, exactly as the survey page computes them.

The page seeds sfc32 with the first 128 bits of sha256(build_hash + "\\n" + rater id),
shuffles the panels (Fisher-Yates), draws ``images_per_panel`` images per panel, then
inserts ``repeat_panels`` repeats later in the sequence with their images in other
positions. This mirror lets anyone check that the order in a response is what the
build and the rater id imply (survey.js, ``raterPlan``).
"""

from __future__ import annotations

import hashlib

MASK = 0xFFFFFFFF


class Sfc32:
    """The sfc32 generator on 32-bit words, returning floats in [0, 1) like the page."""

    def __init__(self, a: int, b: int, c: int, d: int):
        self.a, self.b, self.c, self.d = a & MASK, b & MASK, c & MASK, d & MASK

    def __call__(self) -> float:
        a, b, c, d = self.a, self.b, self.c, self.d
        t = (a + b + d) & MASK
        d = (d + 1) & MASK
        a = b ^ (b >> 9)
        b = (c + (c << 3)) & MASK
        c = ((c << 21) | (c >> 11)) & MASK
        c = (c + t) & MASK
        self.a, self.b, self.c, self.d = a, b, c, d
        return t / 4294967296

    def below(self, n: int) -> int:
        return int(self() * n)

    def shuffle(self, items: list) -> list:
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
        return items


def rater_rng(build_hash: str, rater: str) -> Sfc32:
    digest = hashlib.sha256(f"{build_hash}\n{rater}".encode()).hexdigest()
    rng = Sfc32(*(int(digest[i:i + 8], 16) for i in range(0, 32, 8)))
    for _ in range(12):
        rng()
    return rng


def rater_plan(build_hash: str, rater: str, panel_images: list[list[str]],
               images_per_panel: int, repeat_panels: int) -> list[dict]:
    """[{'panel': index into the page's panels, 'repeat': bool, 'images': [image tokens]}].

    ``panel_images`` are the image tokens of each panel in the page's order (by token).
    """
    rng = rater_rng(build_hash, rater)
    indices = rng.shuffle(list(range(len(panel_images))))
    order = [{"panel": p, "repeat": False,
              "images": rng.shuffle(list(panel_images[p]))[:images_per_panel]} for p in indices]
    picks = rng.shuffle(list(order))[:min(repeat_panels, len(order))]
    for original in picks:
        at = next(i for i, entry in enumerate(order) if entry is original)
        low = min(at + 2, len(order))
        where = low + rng.below(len(order) - low + 1)
        images = original["images"]
        shift = 1 + rng.below(len(images) - 1) if len(images) > 1 else 0
        order.insert(where, {"panel": original["panel"], "repeat": True,
                             "images": images[shift:] + images[:shift]})
    return order


def key_panel_images(key: dict) -> tuple[list[str], list[list[str]]]:
    """(panel tokens, image tokens of each panel), both in the page's order (by token)."""
    tokens = sorted(key["panels"])
    return tokens, [sorted(key["panels"][t]["images"]) for t in tokens]


def key_plan(key: dict, rater: str, images_per_panel: int, repeat_panels: int) -> list[dict]:
    """:func:`rater_plan` of the build described by ``key``, with panel tokens:
    [{'token', 'repeat', 'images'}]. The key's own ``images_per_panel`` and
    ``repeat_panels`` (written by the build) take precedence over the arguments."""
    tokens, images = key_panel_images(key)
    plan = rater_plan(key["build_hash"], rater, images,
                      key.get("images_per_panel", images_per_panel),
                      key.get("repeat_panels", repeat_panels))
    return [{"token": tokens[p["panel"]], "repeat": p["repeat"], "images": p["images"]}
            for p in plan]
