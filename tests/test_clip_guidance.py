"""x̂₀ CLIP guidance: the table, cutouts, the gradient step and the schedulers' x̂₀.

The CLIPs are tiny random-weight open_clip and transformers models saved by their own
libraries and loaded back through glidemed's CLIP loader (tests/tiny_clip.py).
"""

from __future__ import annotations

import pytest
import tiny_clip
from guidance_factory import HISTO, XRAY, study_toml, torch_one_thread  # noqa: F401

from glidemed.errors import GenerationError, StudyError
from glidemed.generate import clip_guidance as cg
from glidemed.study import parse_study

CONDITION = """
[[conditions]]
name = "guided"
generator = "glide"
params = {{ clip_guidance = {table} }}
"""


def study_with(table: str):
    return parse_study(study_toml(CONDITION.format(table=table), HISTO + XRAY), "study.toml")


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {"open_clip": tiny_clip.save_tiny_open_clip(root / "oc"),
            "transformers": tiny_clip.save_tiny_hf_clip(root / "hf")}


def spec(clip_dirs, library: str = "open_clip") -> str:
    folder = clip_dirs[library]
    return f"local-dir:{folder}" if library == "open_clip" else str(folder)


# -- the clip_guidance table (no torch) --------------------------------------------------

@pytest.mark.parametrize("table, expected", [
    ({"clip": "x", "cutouts": 0}, "clip_guidance.cutouts: expected at least 1, got 0"),
    ({"clip": "x", "cutouts": 10**6}, "clip_guidance.cutouts: expected at most 256, got 1000000"),
    ({"clip": "x", "scale": float("nan")}, "clip_guidance.scale: expected a finite number"),
    ({"clip": "x", "text": "an x-ray"}, "clip_guidance.text: the template must contain "
                                        "{description}"),
    ({"clip": "x", "text": {"xray": "an x-ray"}}, "clip_guidance.text.xray: the template must"),
    ({"clip": "x", "every": 0}, "clip_guidance.every: expected at least 1"),
    ({"clip": "x", "scale": -1}, "clip_guidance.scale: expected >= 0"),
    ({"clip": "x", "cutout_power": 0}, "clip_guidance.cutout_power: expected > 0"),
    ({"clip": "x", "loss": "l2"}, "clip_guidance.loss: expected one of spherical, cosine"),
    ({"clip": "x", "tv_weight": -0.5}, "clip_guidance.tv_weight: expected >= 0"),
    ({"clip": "x", "cutouts": 2.5}, "clip_guidance.cutouts: expected int"),
    ({"clip": "x", "scales": 1}, "clip_guidance.scales: unknown key"),
    ({"scale": 1.0}, "clip_guidance.clip: required"),
    ("biomedclip", "clip_guidance: expected a table"),
])
def test_bad_tables(table, expected):
    problems = cg.check_table(table)
    assert any(expected in problem for problem in problems), problems
    assert all("\n" not in problem for problem in problems)


def test_good_table_and_study_validation():
    assert cg.check_table({"clip": "local-dir:/m", "text": "a histology image of {description}",
                           "cutouts": 1, "every": 3, "tv_weight": 1, "range_weight": 2}) == []
    study = study_with('{ clip = "local-dir:/m", scale = 50.0 }')
    assert study.conditions[0].params["clip_guidance"]["scale"] == 50.0
    with pytest.raises(StudyError) as info:
        study_with('{ clip = "local-dir:/m", cutouts = 0, text = "no placeholder" }')
    message = info.value.message
    assert "conditions[0].params.clip_guidance.cutouts: expected at least 1" in message
    assert "clip_guidance.text: the template must contain {description}" in message
    assert all("\n" not in problem for problem in info.value.problems)  # one line each
    assert message.count("\n") == len(info.value.problems)  # the header, then a line each


def test_guidance_text_prompt_template_and_per_style():
    study = study_with('{ clip = "m" }')
    histo, xray = study.prompts()[0], study.prompts()[2]
    assert (histo.style, xray.style) == ("histo", "xray")
    settings = cg.GuidanceSettings.from_table({"clip": "m"})
    assert cg.guidance_text(settings, study, histo) == histo.text
    settings = cg.GuidanceSettings.from_table({"clip": "m", "text": "H&E of {description}"})
    assert cg.guidance_text(settings, study, histo) == "H&E of the lungs"
    detailed = next(p for p in study.prompts() if p.detail == "detailed")
    assert cg.guidance_text(settings, study, detailed) == "H&E of the lungs, organs in the chest"
    per_style = cg.GuidanceSettings.from_table({"clip": "m", "text": {"xray": "CXR: {description}"}})
    assert cg.guidance_text(per_style, study, xray) == "CXR: the lungs"
    with pytest.raises(GenerationError, match="no template for style 'histo'"):
        cg.guidance_text(per_style, study, histo)


def test_guided_steps():
    settings = cg.GuidanceSettings.from_table({"clip": "m", "every": 3})
    assert [s for s in range(10) if settings.is_guided(s)] == [0, 3, 6, 9]


# -- cutouts ----------------------------------------------------------------------------

def test_cutouts_shape_determinism_and_batch_independence(torch_one_thread):
    torch = torch_one_thread
    image = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0))
    [g1, g2] = cg.cutout_generators([5, 5])
    a = cg.make_cutouts(image, 6, 16, 1.0, g1)
    b = cg.make_cutouts(image, 6, 16, 1.0, g2)
    assert a.shape == (6, 3, 16, 16)
    assert torch.equal(a, b)
    # Each image's crops come from its own seed: the same alone as next to another image.
    [alone] = cg.cutout_generators([7])
    [_, beside] = cg.cutout_generators([5, 7])
    assert torch.equal(cg.make_cutouts(image, 6, 16, 1.0, alone),
                       cg.make_cutouts(image, 6, 16, 1.0, beside))
    [other] = cg.cutout_generators([8])
    assert not torch.equal(a, cg.make_cutouts(image, 6, 16, 1.0, other))
    # The crops are parts of the image: a crop of the whole image is its resized copy.
    flat = torch.zeros(3, 40, 48)
    flat[0] = 1.0
    crops = cg.make_cutouts(flat, 4, 16, 1.0, cg.cutout_generators([1])[0])
    assert torch.allclose(crops[:, 0], torch.ones(4, 16, 16))
    assert torch.allclose(crops[:, 1:], torch.zeros(4, 2, 16, 16))


def test_large_power_favours_small_crops(torch_one_thread):
    torch = torch_one_thread
    image = torch.zeros(3, 64, 64)
    image[:, 24:40, 24:40] = 1.0  # a bright square: small crops show more black around it

    def mean_side(power: float) -> float:
        generator = torch.Generator().manual_seed(3)
        draws = torch.rand(200, 3, generator=generator)[:, 0]
        low = int(64 * cg.MIN_CUT_FRACTION)
        return float((low + (64 - low) * draws ** power).mean())

    assert mean_side(4.0) < mean_side(1.0) < mean_side(0.25)


# -- the gradient step, with real tiny CLIPs --------------------------------------------

@pytest.mark.parametrize("library", ["open_clip", "transformers"])
def test_step_lowers_the_loss_and_leaves_weights_alone(torch_one_thread, clip_dirs, library):
    torch = torch_one_thread
    guide = cg.load_guide({"clip": spec(clip_dirs, library), "scale": 20.0, "cutouts": 4},
                          "cpu", "study.toml")
    weights = {name: p.detach().clone() for name, p in guide.clip._model.named_parameters()}
    texts = ["an x-ray image of the lungs", "a photo of a heart", "tissue"]
    embeddings = guide.text_embeddings(texts)
    seeds = [1, 2, 3]
    x0 = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with torch.no_grad():
        shifted = guide.shift(x0, cg.glide_pixels, embeddings, cg.cutout_generators(seeds))
        before = guide.loss(cg.glide_pixels(x0), embeddings, cg.cutout_generators(seeds))
        after = guide.loss(cg.glide_pixels(shifted), embeddings, cg.cutout_generators(seeds))
    assert shifted.shape == x0.shape and not shifted.requires_grad
    assert (shifted - x0).abs().max() > 0
    # Along the gradient (not against it) for every image: a wrong sign raises the loss.
    assert bool((after < before).all()), (before, after)
    for name, p in guide.clip._model.named_parameters():
        assert p.grad is None, name
        assert torch.equal(p, weights[name]), name


def test_penalties_pull_towards_smooth_in_range_images(torch_one_thread, clip_dirs):
    torch = torch_one_thread
    guide = cg.load_guide({"clip": spec(clip_dirs), "scale": 0.0, "tv_weight": 100.0,
                           "range_weight": 100.0}, "cpu", "study.toml")
    embeddings = guide.text_embeddings(["x"])
    x0 = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 3 - 1.5
    shifted = guide.shift(x0, cg.glide_pixels, embeddings, cg.cutout_generators([1]))
    pixels, moved = cg.glide_pixels(x0), cg.glide_pixels(shifted)
    assert cg.total_variation(moved) < cg.total_variation(pixels)
    assert cg.range_penalty(moved) < cg.range_penalty(pixels)


def test_spherical_distance_from_its_definition(torch_one_thread):
    torch = torch_one_thread
    a = torch.nn.functional.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(2)), dim=-1)
    angle = torch.arccos((a * b).sum(-1).clamp(-1, 1))
    # |a - b| = 2 sin(θ/2), so 2 arcsin(|a - b| / 2)² = θ² / 2.
    assert torch.allclose(cg.spherical_distance(a, b), angle ** 2 / 2, atol=1e-5)


def test_unloadable_clip_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for bad in (f"local-dir:{tmp_path / 'missing'}", str(tmp_path / "empty")):
        with pytest.raises(GenerationError) as info:
            cg.load_guide({"clip": bad}, "cpu", "study.toml: condition 'g'")
        message = info.value.message
        assert message.startswith("study.toml: condition 'g': clip_guidance.clip: ")
        assert "\n" not in message


def test_describe_records_parameters_and_identity(clip_dirs):
    guide = cg.load_guide({"clip": spec(clip_dirs), "cutouts": 3, "every": 2,
                           "text": "a {description}"}, "cpu", "s")
    record = guide.describe()
    assert {k: record[k] for k in ("clip", "scale", "cutouts", "cutout_power", "every", "text",
                                   "loss", "tv_weight", "range_weight")} == {
        "clip": spec(clip_dirs), "scale": 200.0, "cutouts": 3, "cutout_power": 1.0, "every": 2,
        "text": "a {description}", "loss": "spherical", "tv_weight": 0.0, "range_weight": 0.0}
    identity = record["clip_identity"]
    assert len(identity["weights_sha256"]) == 64 and identity["library"] == "open_clip"
    assert record["clip_image_size"] == 32


# -- schedulers: glidemed's x̂₀ equals each scheduler's own pred_original_sample ----------

@pytest.mark.parametrize("name, prediction_type", [
    (name, kind) for name in cg.GUIDABLE_SCHEDULERS for kind in cg.PREDICTION_TYPES
    # diffusers' own EulerAncestral has no 'sample' prediction
    if (name, kind) != ("EulerAncestralDiscreteScheduler", "sample")])
def test_x0_matches_the_schedulers_own(torch_one_thread, name, prediction_type):
    torch = torch_one_thread
    import diffusers

    # (DDIM and DDPM clip their x̂₀ to [-1, 1] by default: off, to compare it unclipped.)
    clip = {"clip_sample": False} if name in cg.ALPHA_SCHEDULERS else {}
    scheduler = getattr(diffusers, name)(num_train_timesteps=1000, beta_schedule="scaled_linear",
                                         beta_start=0.00085, beta_end=0.012,
                                         prediction_type=prediction_type, **clip)
    scheduler.set_timesteps(5)
    assert cg.scheduler_problem(scheduler) is None
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, 8, 8, generator=g) * float(scheduler.init_noise_sigma)
    for timestep in scheduler.timesteps:
        output = torch.randn(2, 4, 8, 8, generator=g)
        scheduler.scale_model_input(sample, timestep)  # as pipelines do before the model
        a, b = cg._x0_coefficients(scheduler, timestep, sample)
        result = scheduler.step(output, timestep, sample, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(a * sample + b * output, result.pred_original_sample, atol=1e-4)
        sample = result.prev_sample


def test_scheduler_without_x0_named_with_the_ones_that_work():
    import diffusers

    message = cg.scheduler_problem(diffusers.DPMSolverMultistepScheduler())
    assert "DPMSolverMultistepScheduler does not" in message
    assert all(name in message for name in cg.GUIDABLE_SCHEDULERS)


def test_guided_scheduler_restores_the_step(torch_one_thread, clip_dirs):
    import diffusers

    scheduler = diffusers.DDIMScheduler()
    guide = cg.load_guide({"clip": spec(clip_dirs)}, "cpu", "s")
    batch = cg.BatchGuidance(guide, ["t"], [1])
    with cg.guided_scheduler(scheduler, batch, cg.glide_pixels):
        assert "step" in vars(scheduler)
    assert "step" not in vars(scheduler)


def test_clip_folder_relative_to_the_study(tmp_path, clip_dirs):
    assert cg.resolve_clip_spec("local-dir:models/x", tmp_path) == f"local-dir:{tmp_path}/models/x"
    assert cg.resolve_clip_spec("local-dir:/abs/x", tmp_path) == "local-dir:/abs/x"
    (tmp_path / "plip").mkdir()
    assert cg.resolve_clip_spec("plip", tmp_path) == str(tmp_path / "plip")
    assert cg.resolve_clip_spec("vinid/plip", tmp_path) == "vinid/plip"  # a hub id
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "oc").symlink_to(clip_dirs["open_clip"])
    study = parse_study(study_toml(CONDITION.format(table='{ clip = "local-dir:models/oc" }')),
                        tmp_path / "study.toml")
    guide = cg.load_guide({"clip": "local-dir:models/oc"}, "cpu", "s", study)
    assert guide.describe()["clip"] == "local-dir:models/oc"  # as the study names it
    assert guide.describe()["clip_identity"]["folder"] == str(tmp_path / "models" / "oc")
    # A template for a style the study does not have is refused, not silently unused.
    with pytest.raises(GenerationError, match=r"clip_guidance.text names unknown style\(s\) "
                                              r"hist \(the study's styles: histo\)"):
        cg.load_guide({"clip": "local-dir:models/oc", "text": {"hist": "a {description}"}},
                      "cpu", "s", study)


def test_audit_knows_the_guidance_values():
    from glidemed.survey.audit import forbidden_terms

    study = study_with('{ clip = "local-dir:/models/biomedclip", text = "H&E slide of {description}" }')
    terms = {t.text: t.what for t in forbidden_terms(study, {})}
    assert terms["local-dir:/models/biomedclip"] == "parameter value (clip_guidance.clip)"
    assert terms["biomedclip"] == "parameter value (clip_guidance.clip)"
    assert "h&e slide of {description}" in terms


def test_medclip_study_is_valid_with_four_conditions():
    from glidemed.study import load_study

    study = load_study("kather2022-medclip")
    assert [c.generator for c in study.conditions] == ["glide", "glide", "glide", "diffusers"]
    assert [c.params.get("guidance") for c in study.conditions[:2]] == ["classifier-free", "clip"]
    guided = [c.params["clip_guidance"]["clip"] for c in study.conditions if "clip_guidance" in c.params]
    assert guided == ["local-dir:models/biomedclip"] * 2
    assert len(study.prompts()) == 272
    assert [p.text for p in study.prompts()] == [p.text for p in load_study("kather2022").prompts()]
