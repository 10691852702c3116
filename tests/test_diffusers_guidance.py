"""x̂₀ CLIP guidance in the 'diffusers' generator, with a tiny Stable Diffusion pipeline and a
tiny open_clip model, both saved by their libraries and loaded back through glidemed."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest
import tiny_clip
import tiny_pipelines
from guidance_factory import study_toml, torch_one_thread  # noqa: F401

from glidemed.errors import GenerationError
from glidemed.generate import diffusers_pipeline as dp
from glidemed.generate.base import GeneratorContext
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import run_generation
from glidemed.study import load_study

TEXT = "A histopathological image of the lungs"
SEEDS = [1, 2, 3]
# Strong enough to move a tiny random-weight CLIP's similarity in a few steps.
SCALE = 2000.0

CONDITION = """
[[conditions]]
name = "sd"
generator = "diffusers"
[conditions.params]
model = "models/sd"
scheduler = "DDIMScheduler"
steps = 4
guidance_scale = 7.5
batch_size = 2
clip_guidance = {{ clip = "local-dir:models/clip", scale = {scale}, cutouts = 4 }}
"""


@pytest.fixture(scope="module", autouse=True)
def offline(torch_one_thread):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    tiny_pipelines.save_tiny_sd(folder / "models" / "sd")
    tiny_clip.save_tiny_open_clip(folder / "models" / "clip")
    path = folder / "study.toml"
    path.write_text(study_toml(CONDITION.format(scale=SCALE), images_per_prompt=2),
                    encoding="utf-8")
    return load_study(path)


def generator(study, **params):
    cond = study.condition("sd")
    cond = dataclasses.replace(cond, params={**cond.params, **params})
    return dp.DiffusersGenerator(cond, GeneratorContext(study, device="cpu"))


def similarities(study, images, text: str = TEXT) -> np.ndarray:
    import torch

    from glidemed.clipmodels import load_clip

    clip = load_clip(f"local-dir:{study.folder / 'models' / 'clip'}", "cpu")
    with torch.no_grad():
        pixels = torch.stack([clip.preprocess(image) for image in images])
        return (clip.encode_image(pixels) @ clip.encode_text([text]).T)[:, 0].numpy()


def images(gen, seeds=SEEDS, texts=None):
    return [image for image, _ in gen.sample([TEXT] * len(seeds), seeds, texts)]


@pytest.mark.parametrize("scheduler", ["DDIMScheduler", "EulerDiscreteScheduler"])
def test_guidance_raises_clip_similarity_for_every_seed(study, scheduler):
    import torch

    plain = generator(study, scheduler=scheduler, clip_guidance=None)
    guided = generator(study, scheduler=scheduler)
    pipe = guided.pipe
    weights = {name: p.detach().clone() for module in (pipe.unet, pipe.vae, pipe.text_encoder)
               for name, p in module.named_parameters(prefix=type(module).__name__)}
    before = similarities(study, images(plain))
    after = similarities(study, images(guided))
    # A gradient of the wrong sign lowers the similarity instead.
    assert (after > before).all(), (before, after)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        for name, p in module.named_parameters(prefix=type(module).__name__):
            assert p.grad is None, name
            assert torch.equal(p, weights[name]), name
    assert "step" not in vars(guided.scheduler)  # the scheduler's own step again


def test_fidelity_without_guidance_and_other_texts(study):
    """Scale 0 changes nothing (the hook hands the scheduler the model's own output);
    another guidance text changes the image."""
    plain = np.asarray(images(generator(study, clip_guidance=None), SEEDS[:1])[0], dtype=int)
    zero = np.asarray(images(generator(study, clip_guidance={"clip": "local-dir:models/clip",
                                                              "scale": 0.0}), SEEDS[:1])[0],
                      dtype=int)
    assert np.abs(plain - zero).max() <= 1
    gen = generator(study)
    a = np.asarray(images(gen, SEEDS[:1])[0], dtype=int)
    b = np.asarray(images(gen, SEEDS[:1], ["a photo of a cat"])[0], dtype=int)
    assert (a != b).any()


def test_scheduler_without_x0_is_one_line(study):
    with pytest.raises(GenerationError) as info:
        generator(study, scheduler="DPMSolverMultistepScheduler")
    message = info.value.message
    assert "DPMSolverMultistepScheduler does not" in message
    assert "DDIMScheduler" in message and "EulerDiscreteScheduler" in message
    assert "\n" not in message and message.startswith(str(study.path))


def test_bad_table_and_unloadable_clip(study):
    assert any("clip_guidance.cutouts: expected at least 1" in p
               for p in dp.check_params({"model": "m", "clip_guidance": {"clip": "c", "cutouts": 0}}))
    with pytest.raises(GenerationError) as info:
        generator(study, clip_guidance={"clip": "local-dir:models/none"})
    assert "clip_guidance.clip" in info.value.message and "\n" not in info.value.message


def test_run_records_guidance_reproduces_alone_and_frees_memory(study, tmp_path):
    import torch
    from PIL import Image

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))

    context = GeneratorContext(study, device="cpu")
    out = tmp_path / "images"
    run_generation(study, out, context=context, progress=False, limit=2)
    first = live_tensors()
    run_generation(study, out, context=context, progress=False)
    # Nothing of a finished batch (crops, gradients, decoded images) stays alive.
    assert live_tensors() == first
    records = load_manifest(out)
    assert len(records) == 4
    guidance = next(iter(records.values()))["params"]["clip_guidance"]
    assert guidance["clip"] == "local-dir:models/clip" and guidance["scale"] == SCALE
    assert guidance["cutouts"] == 4 and guidance["every"] == 1
    assert len(guidance["clip_identity"]["weights_sha256"]) == 64
    # One image re-made alone, batch 1: the same pixels within the batching tolerance.
    alone = tmp_path / "alone"
    key = sorted(records)[-1]
    run_generation(study, alone, context=dataclasses.replace(context, batch_size=1),
                   progress=False, only=[key[1]])
    for k, rec in load_manifest(alone).items():
        a = np.asarray(Image.open(alone / rec["file"]), dtype=int)
        b = np.asarray(Image.open(out / records[k]["file"]), dtype=int)
        assert np.abs(a - b).max() <= 2, k
