"""The 'glide' generator end to end, with tiny random-weight models (tests/glide_tiny/)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from kill_factory import kill_after, resume_and_check

from glidemed.cli import main
from glidemed.errors import GenerationError
from glidemed.fileio import sha256_file
from glidemed.generate import glide
from glidemed.generate.base import GeneratorContext
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import run_generation
from glidemed.study import load_study

TINY = Path(__file__).parent / "glide_tiny"
STUDY = TINY / "study.toml"
# Largest per-channel difference (0-255) between an image rendered in a batch of 4 and the
# same image rendered alone, measured with the tiny models at 64 px on CPU (see docs/generate/glide.md).
BATCH_TOLERANCE_64 = 2


def _engine() -> None:
    pytest.importorskip("torch", reason="torch not installed (pip install -e '.[glide]')")
    pytest.importorskip("glide_text2im",
                        reason="glide-text2im not installed (pip install -e '.[glide]')")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    _engine()
    spec = importlib.util.spec_from_file_location("glide_tiny", TINY / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    return tiny.write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def study():
    return load_study(STUDY)


def condition(study, name: str, **params):
    cond = study.condition(name)
    return dataclasses.replace(cond, params={**cond.params, **params})


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image, dtype=int)


# -- parameters (no torch needed) ------------------------------------------------------

def test_default_and_study_params_are_valid(study):
    assert glide.check_params({}) == []
    for cond in load_study("kather2022").conditions + study.conditions:
        assert glide.check_params(cond.params) == [], cond.name


@pytest.mark.parametrize("params, expected", [
    ({"guidance": "classifier"}, "guidance: expected one of"),
    ({"guidance_scale": True}, "guidance_scale: expected int or float"),
    ({"guidance_scale": -1}, "guidance_scale: expected >= 0"),
    ({"guidance_scale": 1e9}, "guidance_scale: expected at most 100, got 1000000000.0"),
    ({"guidance_scale": float("nan")}, "guidance_scale: expected a finite number, got nan"),
    ({"batch_size": 10**8}, "batch_size: expected at most 1024"),
    ({"base_respacing": "fast"}, "base_respacing: expected a step count"),
    ({"base_respacing": "1"}, "base_respacing: expected at least 2 steps"),
    ({"upsample_respacing": 27}, "upsample_respacing: expected str"),
    ({"upsample_temperature": 0}, "upsample_temperature: expected 0 < t <= 2"),
    ({"size": 128}, "size: expected 64"),
    ({"batch_size": 0}, "batch_size: expected at least 1"),
    ({"fp16": "yes"}, "fp16: expected bool"),
    ({"base_options": {"use_fp16": False}}, "base_options.use_fp16: set by glidemed"),
    ({"upsample_options": {"widht": 3}}, "upsample_options.widht: unknown model option"),
    ({"base_options": {"num_channels": "32"}}, "base_options.num_channels: expected int"),
    ({"base_checkpoint": "base-large"}, "base_checkpoint: unknown checkpoint name"),
    ({"steps": 10}, "steps: unknown parameter"),
])
def test_bad_params(params, expected):
    problems = glide.check_params(params)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_study_error_names_condition_param(tmp_path):
    text = STUDY.read_text().replace('guidance = "clip"', 'guidance = "clap"')
    (tmp_path / "study.toml").write_text(text)
    (tmp_path / "clip_tiny.yaml").write_text((TINY / "clip_tiny.yaml").read_text())
    result = CliRunner().invoke(main, ["prompts", str(tmp_path / "study.toml")])
    assert result.exit_code == 1
    assert "conditions[1].params.guidance: expected one of classifier-free, clip" in result.output


def test_model_options_match_glide_text2im():
    _engine()
    from glide_text2im.model_creation import model_and_diffusion_defaults

    assert set(glide.MODEL_OPTIONS) | set(glide.FIXED_OPTIONS) == set(model_and_diffusion_defaults())


def test_missing_engine_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "glide_text2im", None)
    with pytest.raises(GenerationError, match=r"pip install -e '\.\[glide\]'"):
        glide._import_engine()


# -- rendering --------------------------------------------------------------------------

def test_both_modes_manifest_and_offline(study, ckpt, tmp_path, monkeypatch):
    import urllib.request

    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(requests, "get", no_network)
    context = GeneratorContext(study, checkpoint_dir=ckpt)
    report = run_generation(study, tmp_path, context=context, progress=False)
    assert report.made == 2 * 2 * 3
    records = load_manifest(tmp_path)
    assert len(records) == 12
    hashes = {name: sha256_file(ckpt / name) for name in
              ("base.pt", "clip_image_enc.pt", "clip_text_enc.pt")}
    for (cond, prompt_id, index), rec in records.items():
        params = rec["params"]
        assert set(glide.DEFAULTS) <= set(params)
        assert (rec["width"], rec["height"]) == (64, 64)
        assert params["device"] == "cpu" and params["fp16"] is False
        assert params["base_respacing"] == "4" and params["batch_size"] == 4
        assert params["checkpoint_sha256"]["base_checkpoint"] == hashes["base.pt"]
        assert "torch" in rec["versions"] and "glide-text2im" in rec["versions"]
        assert rec["seconds"] > 0 and rec["batch_size"] in (2, 4)  # share of its batch's time
        if cond == "clip":
            assert params["guidance"] == "clip"
            assert params["checkpoint_sha256"]["clip_image_checkpoint"] == hashes["clip_image_enc.pt"]
            assert params["checkpoint_sha256"]["clip_text_checkpoint"] == hashes["clip_text_enc.pt"]
        else:
            assert params["guidance"] == "classifier-free"
            assert "clip_image_checkpoint" not in params["checkpoint_sha256"]
    # Every image differs: own seed, own prompt, own guidance.
    assert len({rec["sha256"] for rec in records.values()}) == 12


def test_same_seeds_same_bytes_and_only_within_tolerance(study, ckpt, tmp_path):
    context = GeneratorContext(study, checkpoint_dir=ckpt)
    first, second, alone = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_generation(study, first, conditions=["cfg"], context=context, progress=False)
    run_generation(study, second, conditions=["cfg"], context=context, progress=False)
    a, b = load_manifest(first), load_manifest(second)
    assert len(a) == 6
    assert {k: r["sha256"] for k, r in a.items()} == {k: r["sha256"] for k, r in b.items()}
    # One prompt alone, one image per forward pass: the same images up to batching floats.
    one = dataclasses.replace(context, batch_size=1)
    run_generation(study, alone, conditions=["cfg"], only=["xray.lungs.detailed"], context=one,
                   progress=False)
    c = load_manifest(alone)
    assert len(c) == 3
    for key, rec in c.items():
        diff = np.abs(pixels(alone / rec["file"]) - pixels(first / a[key]["file"]))
        assert diff.max() <= BATCH_TOLERANCE_64, (key, diff.max())


def test_guidance_and_seed_change_the_image(study, ckpt):
    context = GeneratorContext(study, checkpoint_dir=ckpt)
    text = "An x-ray image of the lungs"
    images = {}
    for name, scale in (("cfg", 3.0), ("cfg", 0.0), ("clip", 3.0), ("clip", 0.0)):
        gen = glide.GlideGenerator(condition(study, name, guidance_scale=scale), context)
        images[name, scale] = np.asarray(gen.sample([text], [5])[0], dtype=int)
    assert np.abs(images["cfg", 3.0] - images["cfg", 0.0]).max() > 10
    assert np.abs(images["clip", 3.0] - images["clip", 0.0]).max() > 0
    gen = glide.GlideGenerator(condition(study, "cfg"), context)
    other_seed = np.asarray(gen.sample([text], [6])[0], dtype=int)
    assert np.abs(other_seed - images["cfg", 3.0]).mean() > 10
    # CLIP guidance is deterministic too (its gradient is computed per row).
    gen = glide.GlideGenerator(condition(study, "clip"), context)
    first, second = (gen.sample([text, "A CT image"], [5, 9]) for _ in range(2))
    assert [i.tobytes() for i in first] == [i.tobytes() for i in second]
    assert np.abs(np.asarray(first[0], dtype=int) - images["clip", 3.0]).max() <= BATCH_TOLERANCE_64


@pytest.mark.slow
def test_upsampler(study, ckpt):
    context = GeneratorContext(study, checkpoint_dir=ckpt)
    gen = glide.GlideGenerator(condition(study, "cfg", size=256, upsample_respacing="2"), context)
    described = gen.describe()["params"]
    assert described["upsample_respacing"] == "2" and described["upsample_temperature"] == 0.997
    assert described["checkpoint_sha256"]["upsample_checkpoint"] == sha256_file(ckpt / "upsample.pt")
    image = gen.sample(["An x-ray image of the lungs"], [3])[0]
    assert image.size == (256, 256)
    again = gen.sample(["An x-ray image of the lungs"], [3])[0]
    assert image.tobytes() == again.tobytes()
    cooler = glide.GlideGenerator(condition(study, "cfg", size=256, upsample_respacing="2",
                                            upsample_temperature=0.5), context)
    assert cooler.sample(["An x-ray image of the lungs"], [3])[0].tobytes() != image.tobytes()


# -- errors -----------------------------------------------------------------------------

def test_checkpoint_not_fitting_options_names_keys(study, ckpt):
    context = GeneratorContext(study, checkpoint_dir=ckpt)
    options = {**condition(study, "cfg").params["base_options"], "num_channels": 64}
    with pytest.raises(GenerationError) as info:
        glide.GlideGenerator(condition(study, "cfg", base_options=options), context)
    message = info.value.message
    assert str(ckpt / "base.pt") in message and "base_options" in message
    assert "different shapes: time_embed.0.weight (file (128, 32), model (256, 64))" in message


def test_corrupt_checkpoint_and_own_checkpoint_file(study, ckpt, tmp_path):
    (tmp_path / "base.pt").write_bytes(b"<html>not a checkpoint</html>")
    with pytest.raises(GenerationError, match=f"cannot read checkpoint {tmp_path / 'base.pt'}"):
        glide.GlideGenerator(condition(study, "cfg"), GeneratorContext(study, checkpoint_dir=tmp_path))
    # A fine-tuned checkpoint named by file (here a copy of the tiny base model).
    (tmp_path / "finetuned.pt").write_bytes((ckpt / "base.pt").read_bytes())
    gen = glide.GlideGenerator(condition(study, "cfg", base_checkpoint="finetuned.pt"),
                               GeneratorContext(study, checkpoint_dir=tmp_path))
    params = gen.describe()["params"]
    assert params["base_checkpoint"] == "finetuned.pt"
    assert params["checkpoint_sha256"]["base_checkpoint"] == sha256_file(ckpt / "base.pt")
    reference = glide.GlideGenerator(condition(study, "cfg"), GeneratorContext(study, checkpoint_dir=ckpt))
    text = ["An x-ray image of the lungs"]
    assert gen.sample(text, [4])[0].tobytes() == reference.sample(text, [4])[0].tobytes()


def test_missing_checkpoint_is_one_clear_cli_error(tmp_path, ckpt):
    env = {"GLIDEMED_BUILD_DIR": str(tmp_path / "build")}
    result = CliRunner(env=env).invoke(main, ["generate", str(STUDY), "--no-progress",
                                              "--checkpoint-dir", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "base.pt not found in folder" in result.output
    assert "glidemed checkpoints --download" in result.output
    assert "Traceback" not in result.output


def test_fp16_on_cpu_and_unknown_device(study, ckpt, monkeypatch):
    import torch

    context = GeneratorContext(study, checkpoint_dir=ckpt)
    assert glide.GlideGenerator(condition(study, "cfg", fp16=True), context).fp16
    # A torch without float16 convolutions on CPU (older releases) is refused in one line.
    def no_half(*args, **kwargs):
        raise RuntimeError('"slow_conv2d_cpu" not implemented for \'Half\'')

    monkeypatch.setattr(torch.nn.functional, "conv2d", no_half)
    with pytest.raises(GenerationError, match=r"condition 'cfg': fp16 = true: this torch "
                                              r"cannot convolve in torch.float16 on cpu"):
        glide.GlideGenerator(condition(study, "cfg", fp16=True), context)
    monkeypatch.undo()
    with pytest.raises(GenerationError, match="--device"):
        glide.GlideGenerator(condition(study, "cfg"),
                             dataclasses.replace(context, device="gpu7"))


def test_out_of_memory_suggests_smaller_batch(study, ckpt, monkeypatch):
    import torch

    from glidemed.generate.runner import plan_jobs

    gen = glide.GlideGenerator(condition(study, "cfg"), GeneratorContext(study, checkpoint_dir=ckpt))

    def oom(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(gen, "sample", oom)
    jobs = plan_jobs(study, ["cfg"])[:3]
    with pytest.raises(GenerationError, match="smaller batch.*--batch-size"):
        list(gen.render(jobs))


# -- kill and resume --------------------------------------------------------------------

@pytest.mark.slow
def test_killed_run_resumes(ckpt, tmp_path):
    """SIGKILL a real `glidemed generate` mid-run; the rerun completes the same images."""
    env = {**os.environ, "GLIDEMED_BUILD_DIR": str(tmp_path / "build"),
           "GLIDEMED_CHECKPOINT_DIR": str(ckpt)}
    command = [sys.executable, "-m", "glidemed", "generate", str(STUDY), "--condition", "cfg",
               "--batch-size", "1", "--no-progress"]
    images = tmp_path / "build" / "glide-tiny" / "images"
    made_before = kill_after(command, env, images, records=2)
    assert 2 <= len(made_before) < 6
    records = resume_and_check(command, env, images, made_before, total=6)
    # Batch size 1 makes each image independent of where the run was cut.
    fresh = tmp_path / "fresh"
    study = load_study(STUDY)
    run_generation(study, fresh, conditions=["cfg"], progress=False,
                   context=GeneratorContext(study, batch_size=1, checkpoint_dir=ckpt))
    assert ({k: r["sha256"] for k, r in load_manifest(fresh).items()}
            == {k: r["sha256"] for k, r in records.items()})
    lines = sum(len(p.read_text().splitlines()) for p in (images / "manifest").glob("*.jsonl"))
    assert lines == 6 and json.loads((images / "manifest").glob("*.jsonl").__next__()
                                      .read_text().splitlines()[0])["generator"] == "glide"


# -- the sampling loop is glide-text2im's own ----------------------------------------------

def _notebook_reference(gen, text: str, seed: int, monkeypatch):
    """glide-text2im's p_sample_loop, as in its notebooks, fed the same noise stream."""
    import torch
    from glide_text2im import gaussian_diffusion

    stream = torch.Generator().manual_seed(seed)
    monkeypatch.setattr(gaussian_diffusion.th, "randn_like",
                        lambda x: torch.randn(x.shape[1:], generator=stream).expand_as(x).clone())
    model, diffusion, options = gen.base, gen.base_diffusion, gen.base_options
    scale = gen.p["guidance_scale"]
    noise = torch.randn((3, 64, 64), generator=stream)[None]
    if gen.clip is None:
        tokens, mask = gen._tokens(model, [text, ""], options["text_ctx"])

        def model_fn(x_t, ts, **kwargs):  # the notebook's classifier-free model_fn
            half = x_t[: len(x_t) // 2]
            combined = torch.cat([half, half], dim=0)
            model_out = model(combined, ts, **kwargs)
            eps, rest = model_out[:, :3], model_out[:, 3:]
            cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
            half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
            eps = torch.cat([half_eps, half_eps], dim=0)
            return torch.cat([eps, rest], dim=1)

        out = diffusion.p_sample_loop(model_fn, (2, 3, 64, 64), noise=noise.repeat(2, 1, 1, 1),
                                      device=gen.device, clip_denoised=True,
                                      model_kwargs={"tokens": tokens, "mask": mask})
        return out[:1]
    tokens, mask = gen._tokens(model, [text], options["text_ctx"])
    return diffusion.p_sample_loop(model, (1, 3, 64, 64), noise=noise, clip_denoised=True,
                                   model_kwargs={"tokens": tokens, "mask": mask},
                                   cond_fn=gen.clip.cond_fn([text], scale))


@pytest.mark.parametrize("name", ["cfg", "clip"])
def test_loop_matches_glide_p_sample_loop(study, ckpt, monkeypatch, name):
    import torch

    gen = glide.GlideGenerator(condition(study, name), GeneratorContext(study, checkpoint_dir=ckpt))
    text, seed = "An x-ray image of the lungs", 21
    with torch.no_grad():
        ours = gen._sample_base([text], [torch.Generator().manual_seed(seed)])
    reference = _notebook_reference(gen, text, seed, monkeypatch)
    assert torch.allclose(ours, reference, atol=1e-5), (ours - reference).abs().max()
