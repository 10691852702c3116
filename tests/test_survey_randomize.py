"""Per-rater randomization (the Python mirror of the page's; the browser tests compare them)."""

from __future__ import annotations

from collections import Counter

from glidemed.survey.randomize import Sfc32, rater_plan

PANELS = [[f"i{p}x{i}" for i in range(8)] for p in range(30)]


def test_sfc32_known_values():
    # Reference outputs of the page's JavaScript sfc32, run in Chromium.
    rng = Sfc32(1, 2, 3, 4)
    assert [int(rng() * 4294967296) for _ in range(5)] == [7, 34, 56623200, 188882296, 3431242869]
    rng = Sfc32(0xDEADBEEF, 0x12345678, 0xFFFFFFFF, 0x80000000)
    assert [int(rng() * 4294967296) for _ in range(3)] == [1893864807, 2453490763, 2004009120]


def test_plan_is_reproducible_and_rater_specific():
    a = rater_plan("0" * 64, "alice", PANELS, 4, 3)
    assert a == rater_plan("0" * 64, "alice", PANELS, 4, 3)
    assert a != rater_plan("0" * 64, "bob", PANELS, 4, 3)
    assert a != rater_plan("1" * 64, "alice", PANELS, 4, 3)


def test_every_panel_once_plus_repeats_in_other_positions():
    plan = rater_plan("f" * 64, "r", PANELS, 4, 5)
    assert len(plan) == 35
    counts = Counter(e["panel"] for e in plan)
    assert sorted(counts) == list(range(30)) and sum(v == 2 for v in counts.values()) == 5
    for i, entry in enumerate(plan):
        assert len(entry["images"]) == 4 and set(entry["images"]) <= set(PANELS[entry["panel"]])
        if entry["repeat"]:
            first = next(j for j, e in enumerate(plan) if e["panel"] == entry["panel"])
            original = plan[first]["images"]
            assert first < i - 1 and not plan[first]["repeat"]
            assert sorted(original) == sorted(entry["images"])
            assert all(x != y for x, y in zip(original, entry["images"]))


def test_order_and_images_are_roughly_uniform():
    first_panel, first_image = Counter(), Counter()
    for r in range(3000):
        plan = rater_plan("a" * 64, f"rater{r}", PANELS[:5], 2, 0)
        first_panel[plan[0]["panel"]] += 1
        first_image[plan[0]["images"][0][-1]] += 1
    assert all(500 < n < 700 for n in first_panel.values())
    assert len(first_image) == 8 and all(280 < n < 470 for n in first_image.values())
