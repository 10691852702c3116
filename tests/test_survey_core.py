"""The page's core (site_templates/survey/js/core.js) under Node, against its Python mirrors:
the rater plan, the hash chain's start and steps, and the rater-id rule, without a browser."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess

import pytest
from conftest import ROOT

from glidemed.responses import normalise_rater
from glidemed.responses.chain import chain_head, chain_start
from glidemed.survey.randomize import rater_plan

CORE = ROOT / "site_templates" / "survey" / "js" / "core.js"
NODE = shutil.which("node")
RUNNER = """
const core = require(process.argv[1]);
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = input.raters.map((rater) => ({
  plan: core.raterPlan(input.build_hash, rater, input.panels, input.k, input.repeats)
    .map((e) => ({panel: e.p, repeat: e.repeat, images: e.images})),
  start: core.chainStart(input.build_hash, {id: rater, profile: input.profile}),
  head: core.chainStep(core.chainStart(input.build_hash, {id: rater, profile: input.profile}),
                       {seq: 0, position: 1, field: "comment", value: rater,
                        at: "2026-01-01T00:00:00Z"}),
  id: core.normaliseId(" " + rater + " "),
}));
process.stdout.write(JSON.stringify(out));
"""


def rater_ids(n: int) -> list[str]:
    """Plain, accented (NFC and NFD), non-Latin, emoji and spaced ids."""
    rng = random.Random(7)
    alphabet = "abcXYZ019-_ éüß日本語🙂Ωж\u0301"
    ids = [f"R{i:03d}" for i in range(n // 2)]
    ids += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))).strip() or "x"
            for _ in range(n - len(ids))]
    return ids


def run_core(payload: dict) -> list[dict]:
    if NODE is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node not found: the survey core is tested under Node")
        pytest.skip("node not found: install Node.js to test the survey core without a browser")
    done = subprocess.run([NODE, "-e", RUNNER, str(CORE)], input=json.dumps(payload),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_pages_core_equals_python_for_a_thousand_raters():
    rng = random.Random(3)
    panels = [[f"img{p}-{i}" for i in range(rng.randint(4, 8))] for p in range(40)]
    build_hash = "b" * 16 + "4f2a"
    profile = {"specialty": "pathology", "years": "7"}
    raters = rater_ids(1000)
    got = run_core({"build_hash": build_hash, "panels": panels, "k": 4, "repeats": 5,
                    "raters": raters, "profile": profile})
    assert len(got) == 1000
    for rater, js in zip(raters, got):
        assert js["plan"] == rater_plan(build_hash, rater, panels, 4, 5), rater
        assert js["start"] == chain_start(build_hash, {"id": rater, "profile": profile}), rater
        event = {"seq": 0, "position": 1, "field": "comment", "value": rater,
                 "at": "2026-01-01T00:00:00Z"}
        assert js["head"] == chain_head(build_hash, [event],
                                        rater={"id": rater, "profile": profile}), rater
        assert js["id"] == normalise_rater(" " + rater + " "), rater
