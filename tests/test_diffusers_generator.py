"""The 'diffusers' generator end to end, with tiny random-weight pipelines (tests/tiny_pipelines.py)
saved into a temporary folder and loaded back offline through the real diffusers loaders."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import tiny_pipelines
from kill_factory import kill_after, resume_and_check
from glidemed.cli import main
from glidemed.errors import GenerationError
from glidemed.fileio import sha256_file
from glidemed.generate import diffusers_pipeline as dp
from glidemed.generate.base import GeneratorContext
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import plan_jobs, run_generation
from glidemed import modelfiles
from glidemed.modelfiles import folder_digest
from glidemed.study import load_study

# Largest per-channel difference (0-255) between an image made in a batch and the same
# image made alone, measured with the tiny pipelines on CPU (bench/bench_diffusers.py).
BATCH_TOLERANCE = 2

STUDY_TEMPLATE = """
id = "tiny-diffusers"
title = "Tiny diffusers study"
instructions = "Rate the images."
seed = 7
images_per_prompt = 2
images_per_panel = 1

[[conditions]]
name = "sd"
generator = "diffusers"
params = {{ model = "models/sd", steps = 3, guidance_scale = 5.0, batch_size = 2 }}

[[conditions]]
name = "sdxl"
generator = "diffusers"
params = {{ model = "models/sdxl", steps = 3, scheduler = "DPMSolverMultistepScheduler", batch_size = 2 }}
{extra}
[[styles]]
key = "xray"
label = "X-ray"
template = "An x-ray image of {{description}}"

[[topics]]
key = "lungs"
short = "the lungs"
detailed = "the lungs, organs in the chest"
"""


@pytest.fixture(scope="module", autouse=True)
def offline_single_thread(tmp_path_factory):
    """No hub access; a private hash cache; one torch thread (two crawl on a busy 2-core machine)."""
    import torch

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    mp.undo()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A folder holding the tiny pipelines as saved folders: sd, sdxl, sd-safety, ..."""
    root = tmp_path_factory.mktemp("models")
    tiny_pipelines.save_tiny_sd(root / "sd")
    tiny_pipelines.save_tiny_sdxl(root / "sdxl")
    return root


@pytest.fixture
def make_study(tmp_path, models):
    """A study file in a fresh folder whose models/ links to the saved tiny pipelines."""

    def factory(extra: str = "") -> Path:
        folder = tmp_path / "study"
        folder.mkdir(exist_ok=True)
        if not (folder / "models").exists():
            (folder / "models").symlink_to(models, target_is_directory=True)
        path = folder / "study.toml"
        path.write_text(STUDY_TEMPLATE.format(extra=textwrap.dedent(extra)), encoding="utf-8")
        return path

    return factory


def generator(study, name: str, **params):
    cond = study.condition(name)
    cond = dataclasses.replace(cond, params={**cond.params, **params})
    return dp.DiffusersGenerator(cond, GeneratorContext(study))


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image, dtype=int)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# -- parameters (no torch needed) ------------------------------------------------------

@pytest.mark.parametrize("params, expected", [
    ({}, "model: missing"),
    ({"model": "m", "steps": 0}, "steps: expected at least 1"),
    ({"model": "m", "steps": 10**9}, "steps: expected at most 1000, got 1000000000"),
    ({"model": "m", "guidance_scale": float("inf")}, "guidance_scale: expected a finite number"),
    ({"model": "m", "guidance_scale": 101}, "guidance_scale: expected at most 100"),
    ({"model": "m", "width": 8 * 10**6}, "width: expected at most 4096"),
    ({"model": "m", "height": 8192}, "height: expected at most 4096"),
    ({"model": "m", "batch_size": 4096}, "batch_size: expected at most 1024"),
    ({"model": "m", "steps": 2.5}, "steps: expected int"),
    ({"model": "m", "guidance_scale": -1}, "guidance_scale: expected >= 0"),
    ({"model": "m", "guidance_scale": "7"}, "guidance_scale: expected int or float"),
    ({"model": "m", "scheduler": "dpm++"}, "scheduler: expected a diffusers scheduler class"),
    ({"model": "m", "width": 500}, "width: expected a multiple of 8"),
    ({"model": "m", "height": 0}, "height: expected a multiple of 8"),
    ({"model": "m", "dtype": "fp16"}, "dtype: expected one of float32, float16, bfloat16"),
    ({"model": "m", "batch_size": 0}, "batch_size: expected at least 1"),
    ({"model": "m", "safety_checker": 1}, "safety_checker: expected bool"),
    ({"model": "m", "pipeline_options": {"torch_dtype": "float16"}},
     "pipeline_options.torch_dtype: set by glidemed (use the dtype parameter)"),
    ({"model": "m", "negative_promt": "blurry"}, "negative_promt: unknown parameter"),
])
def test_bad_params(params, expected):
    problems = dp.check_params(params)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_all_params_valid_and_study_error_names_the_condition(tmp_path):
    full = {"model": "models/sd", "steps": 20, "guidance_scale": 7.5, "negative_prompt": "text",
            "scheduler": "DPMSolverMultistepScheduler", "width": 512, "height": 768,
            "dtype": "bfloat16", "batch_size": 4, "variant": "fp16",
            "pipeline_options": {"use_safetensors": True}, "safety_checker": True,
            "clip_guidance": {"clip": "local-dir:models/clip"}}
    assert dp.check_params(full) == []
    assert set(full) == set(dp.DEFAULTS) == set(dp.TYPES)
    path = tmp_path / "study.toml"
    path.write_text(STUDY_TEMPLATE.format(extra="").replace("steps = 3,", "stepz = 3,"))
    result = CliRunner().invoke(main, ["prompts", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "conditions[0].params.stepz: unknown parameter" in result.output


def test_validation_and_prompts_without_model_or_torch(tmp_path):
    """A study whose model folder is absent loads; validation never imports torch."""
    path = tmp_path / "study.toml"
    path.write_text(STUDY_TEMPLATE.format(extra=""))
    code = ("import sys; from glidemed.study import load_study; "
            f"s = load_study({str(path)!r}); print(len(s.prompts()), "
            "sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "2 []"


def test_missing_engine_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(GenerationError, match=r"pip install -e '\.\[diffusers\]'"):
        dp._import_engine()


# -- generation ---------------------------------------------------------------------------

def test_run_writes_images_and_a_complete_manifest(make_study, models, tmp_path):
    study = load_study(make_study())
    out = tmp_path / "images"
    report = run_generation(study, out, progress=False)
    assert report.made == 2 * 2 * 2
    records = load_manifest(out)
    assert len(records) == 8 and len({r["sha256"] for r in records.values()}) == 8
    digests = {name: folder_digest(models / name) for name in ("sd", "sdxl")}
    for (cond, _, _), rec in records.items():
        params = rec["params"]
        assert sha256_file(out / rec["file"]) == rec["sha256"]
        assert set(dp.DEFAULTS) <= set(params)
        assert params["pipeline_class"] == {"sd": "StableDiffusionPipeline",
                                            "sdxl": "StableDiffusionXLPipeline"}[cond]
        assert params["model_folder"] == str((models / cond).resolve())
        assert params["model_index_sha256"] == sha256_file(models / cond / "model_index.json")
        assert params["weights_sha256"] == digests[cond].combined_sha256
        assert params["weight_files"] == digests[cond].files and len(params["weight_files"]) >= 3
        assert params["steps"] == 3 and params["dtype"] == "float32" and params["device"] == "cpu"
        assert params["width"] == params["height"] == rec["width"] == rec["height"] == 32
        assert params["safety_checker"] is False and "nsfw_detected" not in rec
        assert params["scheduler_config"]["_class_name"] == params["scheduler"]
        assert {"torch", "diffusers", "transformers"} <= set(rec["versions"])
        assert rec["batch_size"] == 2 and rec["seconds"] > 0
    sd = records["sd", "xray.lungs.short", 0]["params"]
    sdxl = records["sdxl", "xray.lungs.short", 0]["params"]
    assert sd["scheduler"] == "DDIMScheduler" and sd["guidance_scale"] == 5.0
    assert sdxl["scheduler"] == "DPMSolverMultistepScheduler"
    assert sdxl["guidance_scale"] == 5.0  # StableDiffusionXLPipeline's own default, resolved
    assert sdxl["scheduler_config"]["beta_schedule"] == "scaled_linear"  # from the folder's


def _direct(folder: Path, text: str, seed: int, **kwargs):
    """The image the pipeline makes when called directly, as its documentation shows."""
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    image = pipe(text, generator=torch.Generator().manual_seed(seed), **kwargs).images[0]
    return np.asarray(image.convert("RGB"), dtype=int)


def test_fidelity_same_pixels_as_calling_the_pipeline(make_study, models, tmp_path):
    study = load_study(make_study())
    out = tmp_path / "images"
    run_generation(study, out, only=["xray.lungs.detailed"], progress=False,
                   context=GeneratorContext(study, batch_size=1))
    records = load_manifest(out)
    sd = records["sd", "xray.lungs.detailed", 1]
    direct = _direct(models / "sd", sd["text"], sd["seed"], num_inference_steps=3,
                     guidance_scale=5.0)
    assert np.array_equal(pixels(out / sd["file"]), direct)
    from diffusers import DPMSolverMultistepScheduler, DiffusionPipeline
    import torch

    xl = records["sdxl", "xray.lungs.detailed", 0]
    pipe = DiffusionPipeline.from_pretrained(models / "sdxl")
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    image = pipe(xl["text"], num_inference_steps=3,
                 generator=torch.Generator().manual_seed(xl["seed"])).images[0]
    assert np.array_equal(pixels(out / xl["file"]), np.asarray(image, dtype=int))
    # A different seed gives a different image: the comparison above can fail.
    other = _direct(models / "sd", sd["text"], sd["seed"] + 1, num_inference_steps=3,
                    guidance_scale=5.0)
    assert np.abs(other - direct).max() > 10


def test_same_seeds_same_bytes_and_other_batch_within_tolerance(make_study, tmp_path):
    study = load_study(make_study())
    first, second, alone = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_generation(study, first, progress=False)
    run_generation(study, second, progress=False)
    a, b = load_manifest(first), load_manifest(second)
    assert {k: r["sha256"] for k, r in a.items()} == {k: r["sha256"] for k, r in b.items()}
    run_generation(study, alone, only=["xray.lungs.short"], progress=False,
                   context=GeneratorContext(study, batch_size=1))
    c = load_manifest(alone)
    assert len(c) == 4
    for key, rec in c.items():
        assert rec["batch_size"] == 1 and a[key]["batch_size"] == 2
        diff = np.abs(pixels(alone / rec["file"]) - pixels(first / a[key]["file"]))
        assert diff.max() <= BATCH_TOLERANCE, (key, diff.max())


def test_parameters_reach_the_pipeline(make_study):
    study = load_study(make_study())
    text, seed = ["An x-ray image of the lungs"], [3]
    base = np.asarray(generator(study, "sd").sample(text, seed)[0][0], dtype=int)
    changed = {
        "negative_prompt": generator(study, "sd", negative_prompt="blurry"),
        "guidance_scale": generator(study, "sd", guidance_scale=1.0),
        "steps": generator(study, "sd", steps=4),
        "scheduler": generator(study, "sd", scheduler="EulerDiscreteScheduler"),
    }
    for name, gen in changed.items():
        image = np.asarray(gen.sample(text, seed)[0][0], dtype=int)
        assert np.abs(image - base).max() > 0, name
    wide = generator(study, "sd", width=48, height=40)
    image = wide.sample(text, seed)[0][0]
    assert image.size == (48, 40)
    params = wide.describe()["params"]
    assert (params["width"], params["height"]) == (48, 40)
    # The conditions share one loaded pipeline; each keeps its own scheduler.
    assert changed["scheduler"].pipe is wide.pipe
    assert np.array_equal(np.asarray(generator(study, "sd").sample(text, seed)[0][0], dtype=int),
                          base)


def test_bfloat16_on_cpu_and_pipeline_options(make_study):
    study = load_study(make_study())
    gen = generator(study, "sd", dtype="bfloat16", pipeline_options={"use_safetensors": True})
    import torch

    assert gen.pipe.unet.dtype == torch.bfloat16
    assert gen.describe()["params"]["dtype"] == "bfloat16"
    assert gen.sample(["An x-ray"], [1])[0][0].size == (32, 32)


# -- safety checker -------------------------------------------------------------------------

def test_safety_checker_off_by_default_and_blanked_images_recorded(make_study, models, tmp_path):
    tiny_pipelines.save_tiny_sd(models / "sd-flags-all", safety_checker=True)
    tiny_pipelines.save_tiny_sd(models / "sd-flags-none", safety_checker=False)
    study = load_study(make_study(extra="""
        [[conditions]]
        name = "off"
        generator = "diffusers"
        params = { model = "models/sd-flags-all", steps = 2 }

        [[conditions]]
        name = "on"
        generator = "diffusers"
        params = { model = "models/sd-flags-all", steps = 2, safety_checker = true }

        [[conditions]]
        name = "pass"
        generator = "diffusers"
        params = { model = "models/sd-flags-none", steps = 2, safety_checker = true }
        """))
    out = tmp_path / "images"
    run_generation(study, out, conditions=["off", "on", "pass"], only=["xray.lungs.short"],
                   progress=False)
    records = load_manifest(out)
    off, on, passed = (records[name, "xray.lungs.short", 0] for name in ("off", "on", "pass"))
    assert "nsfw_detected" not in off and "blanked" not in off
    assert pixels(out / off["file"]).max() > 0
    assert on["nsfw_detected"] is True and "safety checker" in on["blanked"]
    assert on["params"]["safety_checker"] is True
    assert pixels(out / on["file"]).max() == 0  # what the checker left: a black image
    assert passed["nsfw_detected"] is False and "blanked" not in passed
    # Same weights, same seed: the checker that passes leaves the generated image as it was.
    unchecked = generator(study, "off", model="models/sd-flags-none")
    image, flag = unchecked.sample([passed["text"]], [passed["seed"]])[0]
    assert flag is None and np.array_equal(pixels(out / passed["file"]), np.asarray(image, dtype=int))


def test_cli_warns_of_blanked_images(make_study, models, tmp_path):
    if not (models / "sd-flags-all").exists():
        tiny_pipelines.save_tiny_sd(models / "sd-flags-all", safety_checker=True)
    path = make_study(extra="""
        [[conditions]]
        name = "on"
        generator = "diffusers"
        params = { model = "models/sd-flags-all", steps = 2, safety_checker = true }
        """)
    result = CliRunner(env={"HF_HUB_OFFLINE": "1"}).invoke(
        main, ["generate", str(path), "--condition", "on", "--only", "*.short", "--out",
               str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert ("warning: 2 image(s) blanked by the model's safety checker, recorded as blanked in "
            "the manifest: on/xray.lungs.short/00.png, on/xray.lungs.short/01.png") in result.output


def test_safety_checker_asked_of_a_pipeline_without_one(make_study):
    study = load_study(make_study())
    with pytest.raises(GenerationError, match="safety_checker = true, but the pipeline in .* "
                                              "has no safety checker"):
        generator(study, "sdxl", safety_checker=True)


# -- bad input: one line, nothing written ---------------------------------------------------

def _cli_fails(study_path: Path, tmp_path: Path, *args: str) -> str:
    out = tmp_path / "out"
    result = CliRunner(env={"HF_HUB_OFFLINE": "1"}).invoke(
        main, ["generate", str(study_path), "--out", str(out), "--no-progress", *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert files_under(out) == [], files_under(out)
    return result.output


def _bad_condition(params: str) -> str:
    return f"""
        [[conditions]]
        name = "bad"
        generator = "diffusers"
        params = {{ {params} }}
        """


@pytest.mark.parametrize("setup, params, expected", [
    (None, 'model = "models/empty"', "has no model_index.json, so it is not a saved diffusers"),
    (None, 'model = "models/nowhere/at/all"', "model folder .*nowhere/at/all not found"),
    ("surrogate", 'model = "models/surrogate"',
     "cannot read .*model_index.json: text that is not valid Unicode in _class_name"),
    ("StableDiffusionImg2ImgPipeline", 'model = "models/img2img"',
     "StableDiffusionImg2ImgPipeline is not a text-to-image pipeline \\(it takes image\\)"),
    ("unconditional", 'model = "models/uncond"',
     "DDPMPipeline is not a text-to-image pipeline \\(it takes no prompt\\)"),
    (None, 'model = "models/sd", scheduler = "KarrasDPMScheduler"',
     "unknown scheduler 'KarrasDPMScheduler'"),
    (None, 'model = "models/sd", scheduler = "FlowMatchEulerDiscreteScheduler"',
     "scheduler FlowMatchEulerDiscreteScheduler does not fit this pipeline's DDIMScheduler"),
    ("latent-16", 'model = "models/latent-16", width = 40',
     "width = 40 is not accepted by StableDiffusionPipeline: expected a multiple of 16"),
    (None, 'model = "models/sd", dtype = "float16"', 'dtype = "float16" needs a CUDA device'),
    (None, 'model = "runwayml/stable-diffusion-v1-5"',
     "model 'runwayml/stable-diffusion-v1-5' is not a folder next to the study and this "
     "machine is offline"),
])
def test_bad_input_is_one_line_and_writes_nothing(make_study, models, tmp_path, setup, params,
                                                  expected):
    if setup == "surrogate":
        (models / "surrogate").mkdir(exist_ok=True)
        (models / "surrogate" / "model_index.json").write_text('{"_class_name": "X\\ud800"}')
    elif setup == "latent-16":
        if not (models / "latent-16").exists():
            tiny_pipelines.save_tiny_sd(models / "latent-16", latent_scale=16)
    elif setup == "unconditional":
        if not (models / "uncond").exists():
            tiny_pipelines.save_tiny_unconditional(models / "uncond")
    elif setup and not (models / "img2img").exists():
        tiny_pipelines.save_tiny_sd_variant(models / "img2img", setup)
    (models / "empty").mkdir(exist_ok=True)
    path = make_study(extra=_bad_condition(params))
    output = _cli_fails(path, tmp_path, "--condition", "bad")
    import re

    assert re.search(expected, output), output
    assert "condition 'bad'" in output and str(path) in output


def test_hub_id_offline_names_the_folder_to_copy_to(make_study, tmp_path, monkeypatch):
    study = load_study(make_study())
    where = "study.toml: condition 'x'"
    expected = (study.folder / "CompVis" / "stable-diffusion-v1-4").resolve()
    with pytest.raises(GenerationError) as info:
        dp.locate_model("CompVis/stable-diffusion-v1-4", study.folder, where)
    assert str(expected) in info.value.message and "huggingface-cli download" in info.value.message
    # Without HF_HUB_OFFLINE the hub host is probed (here: unreachable) rather than hung on.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(modelfiles.socket, "create_connection", _refuse)
    assert dp.hub_online() is False
    with pytest.raises(GenerationError, match="offline"):
        dp.locate_model("CompVis/stable-diffusion-v1-4", study.folder, where)
    # Online, a hub id is fetched through the given download function, then loaded locally.
    fetched = dp.locate_model("CompVis/stable-diffusion-v1-4", study.folder, where,
                              online=lambda: True, download=lambda repo: study.folder / "models" / "sd")
    assert fetched == ((study.folder / "models" / "sd").resolve(), "CompVis/stable-diffusion-v1-4")

    def broken(repo):
        raise OSError("404 Client Error: Repository Not Found")

    with pytest.raises(GenerationError, match="model 'CompVis/x': no folder .*CompVis/x, and "
                                              "fetching it from the Hugging Face hub failed: "
                                              "404 Client Error"):
        dp.locate_model("CompVis/x", study.folder, where, online=lambda: True, download=broken)
    # A copied hub folder is used as is, with the study unchanged.
    (study.folder / "CompVis").mkdir()
    (study.folder / "CompVis" / "stable-diffusion-v1-4").symlink_to(study.folder / "models" / "sd")
    assert dp.locate_model("CompVis/stable-diffusion-v1-4", study.folder, where)[1] is None


def _refuse(*args, **kwargs):
    raise OSError("network is unreachable")


def test_out_of_memory_names_the_batch_size(make_study, monkeypatch):
    import torch

    study = load_study(make_study())
    gen = generator(study, "sd")

    def oom(kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(gen, "call_pipeline", oom)
    jobs = plan_jobs(study, ["sd"])[:3]
    with pytest.raises(GenerationError, match="out of memory with a batch of 3 image.*smaller "
                                              "batch: --batch-size below 3"):
        list(gen.render(jobs))


# -- kill and resume ------------------------------------------------------------------------

@pytest.mark.slow
def test_sigkill_mid_batch_leaves_complete_images_and_resumes(make_study, tmp_path):
    """SIGKILL a real `glidemed generate` between images; the rerun completes the same set."""
    path = make_study().with_name("study.toml")
    text = path.read_text().replace("images_per_prompt = 2", "images_per_prompt = 4")
    path.write_text(text.replace("steps = 3, guidance_scale = 5.0, batch_size = 2",
                                 "steps = 8, guidance_scale = 5.0, batch_size = 3"))
    out = tmp_path / "images"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "glidemed", "generate", str(path), "--condition", "sd",
               "--out", str(out), "--no-progress"]
    made_before = kill_after(command, env, out, records=1)
    assert 1 <= len(made_before) < 8
    # Only complete images under final names (a hidden .tmp may remain from the cut write);
    # every record's image is there with its hash.
    from PIL import Image

    for png in out.rglob("*.png"):
        with Image.open(png) as image:
            image.load()
    assert all(sha256_file(out / r["file"]) == r["sha256"] for r in made_before.values())
    assert all(p.suffix in (".png", ".jsonl") or p.name.startswith(".") and p.suffix == ".tmp"
               for p in files_under(out))
    resume_and_check(command, env, out, made_before, total=8)
    lines = [json.loads(line) for p in (out / "manifest").glob("*.jsonl")
             for line in p.read_text().splitlines()]
    assert len(lines) == 8 and {r["generator"] for r in lines} == {"diffusers"}


def test_kather2022_sd_study_loads_without_its_model_folder(tmp_path):
    from conftest import ROOT

    study = load_study(ROOT / "surveys" / "kather2022-sd")
    assert len(study.prompts()) == 272
    assert [c.generator for c in study.conditions] == ["glide", "diffusers"]
    assert study.prompts() == load_study(ROOT / "surveys" / "kather2022").prompts()
    sd = study.condition("sd15")
    folder = (study.folder / sd.params["model"]).resolve()
    if folder.exists():
        pytest.skip(f"{folder} holds a model here")
    output = _cli_fails(study.path, tmp_path, "--condition", "sd15")
    assert f"copy the saved pipeline into {folder}" in output
