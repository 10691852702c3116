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
               images_per_panel: int, repeat_panels: int, groups: list[int] | None = None,
               per_group: int = 0) -> list[dict]:
    """[{'panel': index into the page's panels, 'repeat': bool, 'images': [image tokens]}].

    ``panel_images`` are the image tokens of each panel in the page's order (by token).
    With ``per_group`` > 0, only the first ``per_group`` panels of each group (``groups``:
    one number per panel) in the shuffled order are shown.
    """
    rng = rater_rng(build_hash, rater)
    indices = rng.shuffle(list(range(len(panel_images))))
    if per_group > 0:
        shown: dict[int, int] = {}
        kept = []
        for p in indices:
            shown[groups[p]] = shown.get(groups[p], 0) + 1
            if shown[groups[p]] <= per_group:
                kept.append(p)
        indices = kept
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


def blocks_plan(build_hash: str, rater: str, blocks: list[dict]) -> list[dict]:
    """The plans of a survey's blocks one after the other, panel indices counted over all
    blocks. Each block: {'panel_images', 'images_per_panel', 'repeat_panels', 'groups',
    'per_group'}. The first block is drawn as :func:`rater_plan` draws a one-block survey;
    block ``i`` > 0 as if the rater id were ``rater + "\n" + i``."""
    plan, offset = [], 0
    for i, block in enumerate(blocks):
        seed = rater if i == 0 else f"{rater}\n{i}"
        for entry in rater_plan(build_hash, seed, block["panel_images"], block["images_per_panel"],
                                block["repeat_panels"], block.get("groups"), block.get("per_group", 0)):
            plan.append({**entry, "panel": entry["panel"] + offset})
        offset += len(block["panel_images"])
    return plan


def prompt_groups(prompt_ids: list[str]) -> list[int]:
    """Each panel's group for ``per_group``: its prompt, numbered by first appearance."""
    index: dict[str, int] = {}
    return [index.setdefault(pid, len(index)) for pid in prompt_ids]


def key_plan(key, rater: str, images_per_panel: int = 1, repeat_panels: int = 0) -> list[dict]:
    """The plan of ``rater`` in the build described by ``key`` (a SurveyKey or its dict):
    [{'token', 'repeat', 'images'}] (:meth:`glidemed.survey.key.SurveyKey.plan`)."""
    from glidemed.survey.key import SurveyKey

    return SurveyKey.of(key, images_per_panel, repeat_panels).plan(rater)
