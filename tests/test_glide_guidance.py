"""x̂₀ CLIP guidance in the 'glide' generator, with tiny random-weight GLIDE and CLIP models."""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tiny_clip
from guidance_factory import torch_one_thread  # noqa: F401
from PIL import Image

from glidemed.generate import glide
from glidemed.generate.base import GeneratorContext
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import run_generation
from glidemed.study import load_study
from glidemed.survey.audit import forbidden_terms

pytest.importorskip("torch", reason="torch not installed (pip install -e '.[glide]')")
pytest.importorskip("glide_text2im", reason="glide-text2im not installed (pip install -e '.[glide]')")

TINY = Path(__file__).parent / "glide_tiny"
TEXT = "An x-ray image of the lungs"
SEEDS = [3, 4, 5, 6]
# Strong enough to move a tiny random-weight CLIP's similarity in four steps.
SCALE = 20000.0


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("glide_tiny", TINY / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    return tiny.write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory) -> str:
    return f"local-dir:{tiny_clip.save_tiny_open_clip(tmp_path_factory.mktemp('clip') / 'oc')}"


@pytest.fixture(scope="module")
def study():
    return load_study(TINY / "study.toml")


def generator(study, ckpt, name: str, **params):
    cond = study.condition(name)
    cond = dataclasses.replace(cond, params={**cond.params, **params})
    return glide.GlideGenerator(cond, GeneratorContext(study=study, checkpoint_dir=ckpt,
                                                       device="cpu"))


def similarities(torch, clip_spec: str, images, text: str = TEXT) -> np.ndarray:
    from glidemed.clipmodels import load_clip

    clip = load_clip(clip_spec, "cpu")
    with torch.no_grad():
        pixels = torch.stack([clip.preprocess(image) for image in images])
        return (clip.encode_image(pixels) @ clip.encode_text([text]).T)[:, 0].numpy()


def test_guidance_raises_clip_similarity_for_every_seed(torch_one_thread, study, ckpt, clip_spec):
    torch = torch_one_thread
    plain = generator(study, ckpt, "cfg").sample([TEXT] * len(SEEDS), SEEDS)
    gen = generator(study, ckpt, "cfg", clip_guidance={"clip": clip_spec, "scale": SCALE,
                                                       "cutouts": 4})
    weights = {k: v.clone() for k, v in gen.base.state_dict().items()}
    guided = gen.sample([TEXT] * len(SEEDS), SEEDS)
    before = similarities(torch, clip_spec, plain)
    after = similarities(torch, clip_spec, guided)
    # A gradient of the wrong sign lowers the similarity instead.
    assert (after > before).all(), (before, after)
    # No gradient reached the diffusion model or the CLIP, and no weight changed.
    assert all(p.grad is None for p in gen.base.parameters())
    assert all(p.grad is None for p in gen.guide.clip._model.parameters())
    assert all(torch.equal(v, weights[k]) for k, v in gen.base.state_dict().items())


def test_every_and_text_change_the_guidance(torch_one_thread, study, ckpt, clip_spec):
    table = {"clip": clip_spec, "scale": SCALE, "cutouts": 2}

    def image(guide_text: str = TEXT, **extra):
        gen = generator(study, ckpt, "cfg", clip_guidance={**table, **extra})
        return np.asarray(gen.sample([TEXT], [SEEDS[0]], [guide_text])[0], dtype=int)

    base = image()
    assert (image(every=2) != base).any()  # half the steps guided
    assert (image("a photo of a cat") != base).any()  # another target text
    assert (image() == base).all()  # and the same parameters give the same pixels


def test_with_glides_noised_clip_guidance_too(torch_one_thread, study, ckpt, clip_spec):
    noised = generator(study, ckpt, "clip")
    both = generator(study, ckpt, "clip", clip_guidance={"clip": clip_spec, "scale": SCALE,
                                                         "cutouts": 2})
    assert both.clip is not None and both.guide is not None
    a = np.asarray(noised.sample([TEXT], [SEEDS[0]])[0], dtype=int)
    b = np.asarray(both.sample([TEXT], [SEEDS[0]])[0], dtype=int)
    assert (a != b).any()


def test_run_records_guidance_reproduces_alone_and_frees_memory(torch_one_thread, study, ckpt,
                                                                clip_spec, tmp_path):
    torch = torch_one_thread
    table = {"clip": clip_spec, "scale": SCALE, "cutouts": 2, "every": 2,
             "text": {"xray": "chest radiograph of {description}"}}
    cond = dataclasses.replace(study.condition("cfg"),
                               params={**study.condition("cfg").params, "clip_guidance": table,
                                       "batch_size": 2})
    guided_study = dataclasses.replace(study, conditions=[cond])
    context = GeneratorContext(study=guided_study, checkpoint_dir=ckpt, device="cpu")

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))

    out = tmp_path / "images"
    run_generation(guided_study, out, context=context, progress=False, limit=2)
    counts = [live_tensors()]
    run_generation(guided_study, out, context=context, progress=False, limit=2)
    counts.append(live_tensors())
    run_generation(guided_study, out, context=context, progress=False)
    counts.append(live_tensors())
    # Nothing of a finished batch (crops, gradients, embeddings) stays alive.
    assert counts[0] == counts[1] == counts[2], counts
    records = load_manifest(out)
    assert len(records) == 6
    record = next(iter(records.values()))
    params = record["params"]["clip_guidance"]
    assert params["every"] == 2 and params["cutouts"] == 2 and params["scale"] == SCALE
    assert params["text"] == table["text"] and params["clip"] == clip_spec
    assert len(params["clip_identity"]["weights_sha256"]) == 64
    assert params["clip_identity"]["versions"]["open_clip_torch"]

    # Re-made alone (--only one prompt, batch 1), each image matches within the batch tolerance.
    alone = tmp_path / "alone"
    single = dataclasses.replace(context, batch_size=1)
    run_generation(guided_study, alone, only=["xray.lungs.short"], context=single,
                   progress=False)
    for key, rec in load_manifest(alone).items():
        a = np.asarray(Image.open(alone / rec["file"]), dtype=int)
        b = np.asarray(Image.open(out / records[key]["file"]), dtype=int)
        assert np.abs(a - b).max() <= 2, key

    # The blinding audit knows the new values (the CLIP's folder, the template).
    terms = {t.text for t in forbidden_terms(guided_study, records)}
    assert clip_spec.lower() in terms
    assert "chest radiograph of {description}" in terms
