"""Speed settings of the 'glide' generator: fused attention, bf16/fp16, torch.compile, bad input."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glidemed.errors import GenerationError
from glidemed.generate import glide, glide_speed
from glidemed.generate.base import GeneratorContext
from glidemed.study import load_study

ROOT = Path(__file__).resolve().parent.parent
TINY = Path(__file__).parent / "glide_tiny"
TEXT = "An x-ray image of the lungs"
# Mean per-channel difference (0-255) between a 64 px image made in fp32 and the same seed
# in bf16 / fp16, tiny random-weight models on CPU: measured 1.5 and 0.5 (bench_glide.py
# --precision-diff; docs/generate/glide.md). Random weights amplify rounding, so single pixels differ much more.
MEAN_PRECISION_TOLERANCE = {"bf16": 4.0, "fp16": 2.0}


def _tiny():
    pytest.importorskip("torch", reason="torch not installed (pip install -e '.[glide]')")
    pytest.importorskip("glide_text2im",
                        reason="glide-text2im not installed (pip install -e '.[glide]')")
    spec = importlib.util.spec_from_file_location("glide_tiny", TINY / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    return tiny


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


@pytest.fixture(scope="module")
def ckpt(tiny, tmp_path_factory) -> Path:
    return tiny.write_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def study():
    return load_study(TINY / "study.toml")


def condition(study, name: str, **params):
    cond = study.condition(name)
    return dataclasses.replace(cond, params={**cond.params, **params})


def tiny_base(tiny, study, **options):
    """The tiny base model of the study with random (non-zero) weights, fp32, eval mode."""
    from glide_text2im.model_creation import create_model_and_diffusion, model_and_diffusion_defaults

    settings = model_and_diffusion_defaults()
    settings.update(study.condition("cfg").params["base_options"])
    settings.update({"use_fp16": False, **options})
    model, _ = create_model_and_diffusion(**settings)
    model.load_state_dict(tiny._randomise(model, 7))
    return model.eval()


def tiny_inputs(model, batch: int = 3):
    import torch

    generator = torch.Generator().manual_seed(1)
    tokens, masks = [], []
    for text in (TEXT, "A CT image of malaria", "")[:batch]:
        ids, mask = model.tokenizer.padded_tokens_and_mask(model.tokenizer.encode(text), 128)
        tokens.append(ids)
        masks.append(mask)
    return (torch.randn((batch, 3, 64, 64), generator=generator), torch.tensor([999, 500, 3][:batch]),
            {"tokens": torch.tensor(tokens), "mask": torch.tensor(masks, dtype=torch.bool)})


# -- parameters (no torch) --------------------------------------------------------------

@pytest.mark.parametrize("params, expected", [
    ({"bf16": True, "fp16": True}, "bf16: cannot be combined with fp16 = true"),
    ({"bf16": "yes"}, "bf16: expected bool"),
    ({"attention": "flash"}, "attention: expected one of sdpa, original"),
    ({"compile": 1}, "compile: expected bool"),
    ({"compile_mode": "fast"}, "compile_mode: expected one of default, reduce-overhead"),
])
def test_bad_speed_params(params, expected):
    problems = glide.check_params(params)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_speed_defaults_are_fp32_on_cpu_fused_attention_no_compile():
    assert glide.check_params({"bf16": True, "attention": "original", "compile": True,
                               "compile_mode": "reduce-overhead"}) == []
    assert {k: glide.DEFAULTS[k] for k in glide_speed.DEFAULTS} == {
        "bf16": False, "attention": "sdpa", "compile": False, "compile_mode": "default"}


# -- fused attention ----------------------------------------------------------------------

@pytest.mark.parametrize("with_text", [False, True])
def test_sdpa_unet_attention_matches_original(with_text):
    _tiny()
    import torch
    from glide_text2im.unet import QKVAttention

    from glidemed.generate.glide_attention import SdpaQKVAttention

    generator = torch.Generator().manual_seed(3)
    heads, ch, length = 4, 16, 50
    qkv = torch.randn((3, heads * 3 * ch, length), generator=generator) * 3
    encoder_kv = (torch.randn((3, heads * 2 * ch, 7), generator=generator) * 3
                  if with_text else None)
    expected = QKVAttention(heads)(qkv, encoder_kv)
    got = SdpaQKVAttention(heads)(qkv, encoder_kv)
    assert got.shape == expected.shape == (3, heads * ch, length)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-5), (got - expected).abs().max()
    # Not trivially equal: another head count mixes channels differently.
    assert not torch.allclose(SdpaQKVAttention(2)(qkv, encoder_kv), expected, atol=1e-2)


def test_sdpa_text_attention_matches_original():
    _tiny()
    import torch
    from glide_text2im.xf import QKVMultiheadAttention

    from glidemed.generate.glide_attention import SdpaQKVMultiheadAttention

    qkv = torch.randn((2, 128, 3 * 64), generator=torch.Generator().manual_seed(4)) * 3
    expected = QKVMultiheadAttention(2, 128)(qkv)
    got = SdpaQKVMultiheadAttention(2, 128)(qkv)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-5), (got - expected).abs().max()


def test_sdpa_clip_attention_matches_original_with_gradient(tiny):
    """The noised CLIP's image encoder (padded blocks, additive mask) and its input gradient."""
    import torch
    from glide_text2im.clip.model_creation import create_clip_model

    from glidemed.generate.glide_attention import use_sdpa

    clip = create_clip_model(config_path=str(TINY / "clip_tiny.yaml"), device=torch.device("cpu"))
    encoder = clip.image_encoder
    encoder.load_state_dict(tiny._randomise(encoder, 5))
    fused = copy.deepcopy(encoder)
    assert use_sdpa(fused) == encoder.n_xf_blocks
    x = torch.randn((2, 3, 64, 64), generator=torch.Generator().manual_seed(6))
    t = torch.tensor([10, 900])
    outputs, grads = [], []
    for module in (encoder, fused):
        leaf = x.clone().requires_grad_(True)
        out = module((leaf + 1) * 127.5, t)
        grads.append(torch.autograd.grad(out.square().sum(), leaf)[0])
        outputs.append(out.detach())
    assert torch.allclose(outputs[1], outputs[0], atol=1e-4, rtol=1e-4)
    assert torch.allclose(grads[1], grads[0], atol=1e-4, rtol=1e-3), (grads[1] - grads[0]).abs().max()


def test_sdpa_whole_tiny_model_matches_original(tiny, study):
    import torch
    from glide_text2im.unet import AttentionBlock, QKVAttention
    from glide_text2im.xf import QKVMultiheadAttention

    model = tiny_base(tiny, study)
    fused = copy.deepcopy(model)
    originals = [m for m in model.modules() if isinstance(m, (QKVAttention, QKVMultiheadAttention))]
    assert glide_speed.prepare(fused, glide_speed.Speed("fp32", "sdpa", False, "default"),
                               torch) is fused
    assert not any(isinstance(m, (QKVAttention, QKVMultiheadAttention)) for m in fused.modules())
    blocks = sum(isinstance(m, AttentionBlock) for m in model.modules())
    assert len(originals) == blocks + model.transformer.layers and blocks > 4
    assert fused.state_dict().keys() == model.state_dict().keys()  # checkpoints still load
    x, t, kwargs = tiny_inputs(model)
    with torch.no_grad():
        expected, got = model(x, t, **kwargs), fused(x, t, **kwargs)
    assert expected.abs().mean() > 1e-3  # the random output layer makes a real output
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4), (got - expected).abs().max()


# -- half precision -----------------------------------------------------------------------

def test_convert_torso_is_glide_convert_to_fp16_for_any_dtype(tiny, study):
    import torch

    glides = tiny_base(tiny, study, use_fp16=True)
    ours, bf16 = copy.deepcopy(glides), copy.deepcopy(glides)
    glides.convert_to_fp16()
    glide_speed.convert_torso(ours, torch.float16, torch)
    dtypes = {name: tensor.dtype for name, tensor in glides.state_dict().items()}
    assert dtypes == {name: tensor.dtype for name, tensor in ours.state_dict().items()}
    assert all(torch.equal(ours.state_dict()[name], tensor)
               for name, tensor in glides.state_dict().items())
    assert ours.dtype == glides.dtype == torch.float16
    glide_speed.convert_torso(bf16, torch.bfloat16, torch)
    assert bf16.dtype == torch.bfloat16
    assert {name: tensor.dtype for name, tensor in bf16.state_dict().items()} == {
        name: torch.bfloat16 if dtype == torch.float16 else dtype for name, dtype in dtypes.items()}
    assert sum(dtype == torch.float16 for dtype in dtypes.values()) > 20


PRECISION_SNIPPET = """
import dataclasses, json, sys
import numpy as np
from glidemed.generate import glide
from glidemed.generate.base import GeneratorContext
from glidemed.study import load_study
study = load_study(sys.argv[1])
context = GeneratorContext(study, device="cpu", checkpoint_dir=sys.argv[2])
cfg = study.condition("cfg")
texts, seeds = ["An x-ray image of the lungs", "A CT image of malaria"], [3, 4]
images = {}
for precision in ("fp32", "bf16", "fp16"):
    params = {**cfg.params, "bf16": precision == "bf16", "fp16": precision == "fp16"}
    gen = glide.GlideGenerator(dataclasses.replace(cfg, params=params), context)
    assert gen.speed.precision == precision and gen.describe()["params"]["bf16"] == (precision == "bf16")
    images[precision] = [np.asarray(i, dtype=int) for i in gen.sample(texts, seeds)]
a = images["fp32"]
print(json.dumps({"seed_change": float(np.abs(a[0] - a[1]).mean()), **{
    p: max(float(np.abs(x - y).mean()) for x, y in zip(a, images[p])) for p in ("bf16", "fp16")}}))
"""


def test_half_precision_images_close_to_fp32(ckpt):
    """Same seeds in fp32, bf16 and fp16: images differ, but far less than another seed.

    Run in a fresh interpreter: in this test process, after other tests had run bf16 and
    fp16 models, both precisions once gave images identical to fp32 (not explained yet).
    """
    import json

    result = subprocess.run([sys.executable, "-c", PRECISION_SNIPPET, str(TINY / "study.toml"),
                             str(ckpt)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    diffs = json.loads(result.stdout.strip().splitlines()[-1])
    for precision, tolerance in MEAN_PRECISION_TOLERANCE.items():
        assert 0 < diffs[precision] <= tolerance, diffs
        assert diffs["seed_change"] > 20 * diffs[precision], diffs


def test_bf16_keeps_groupnorm_and_timestep_embedding_fp32(tiny, study):
    """Record the dtype every aten op computes in during a bf16 forward pass."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    model = tiny_base(tiny, study)
    glide_speed.prepare(model, glide_speed.Speed("bf16", "sdpa", False, "default"), torch)
    for name, param in model.named_parameters():
        if ".norm." in f".{name}" or name.startswith(("time_embed.", "out.")) or "emb_layers" in name:
            assert param.dtype == torch.float32, name
    seen: dict[str, set] = {}

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if first is not None:
                seen.setdefault(func.__name__.split(".")[0], set()).add(first.dtype)
            return func(*args, **(kwargs or {}))

    x, t, kwargs = tiny_inputs(model)
    with torch.no_grad(), Record():
        out = model(x, t, **kwargs)
    assert out.dtype == torch.float32
    assert seen["native_group_norm"] == {torch.float32}
    assert seen["convolution"] == {torch.float32, torch.bfloat16}  # the output layer stays fp32
    assert torch.bfloat16 in seen["_scaled_dot_product_flash_attention_for_cpu"] | seen.get(
        "_scaled_dot_product_attention_math", set())
    assert seen["cos"] == {torch.float32}  # the sinusoidal timestep embedding


# -- bad input: one line, naming the setting ----------------------------------------------

def test_bf16_on_gpu_without_bf16(monkeypatch):
    _tiny()
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-16GB")
    params = {**glide.DEFAULTS, "bf16": True}
    with pytest.raises(GenerationError) as info:
        glide_speed.resolve(params, torch.device("cuda"), torch, "fast")
    assert info.value.message == ("condition 'fast': bf16 = true: this GPU (Tesla V100-SXM2-16GB) "
                                  "has no bfloat16 support; use fp16 = true")


BROKEN_COMPILER_SNIPPET = """
import sys
import torch._inductor.config as inductor
from glidemed.generate import glide
from glidemed.generate.base import GeneratorContext
from glidemed.study import load_study
inductor.cpp.cxx = ("/nonexistent/c++",)
inductor.force_disable_caches = True
study = load_study(sys.argv[1])
cfg = study.condition("cfg")
try:
    glide.GlideGenerator(type(cfg)(**{**cfg.__dict__, "params": {**cfg.params, "compile": True}}),
                         GeneratorContext(study, device="cpu", checkpoint_dir=sys.argv[2]))
except glide.GenerationError as exc:
    print(exc.message)
"""


def test_compile_without_a_working_compiler(ckpt):
    """A real failing compile: the C++ compiler inductor is told to use does not exist.

    In a fresh interpreter, since inductor remembers a broken compiler for the process.
    """
    result = subprocess.run([sys.executable, "-c", BROKEN_COMPILER_SNIPPET,
                             str(TINY / "study.toml"), str(ckpt)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    message = result.stdout.strip().splitlines()[-1]
    assert message.startswith("condition 'cfg': compile = true: torch.compile does not work "
                              "with this torch on cpu: ")
    assert "C++ compiler" in message and message.endswith("(set compile = false)")


def test_batch_that_does_not_fit_writes_nothing(study, ckpt, tmp_path, monkeypatch):
    import torch

    from glidemed.generate.runner import run_generation

    context = GeneratorContext(study, device="cpu", checkpoint_dir=ckpt)
    base = glide.GlideGenerator(condition(study, "cfg"), context).base

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(base, "forward", out_of_memory)  # the model shared by the cached loader
    with pytest.raises(GenerationError) as info:
        run_generation(study, tmp_path, conditions=["cfg"], context=context, progress=False)
    assert info.value.message == ("CUDA ran out of memory with a batch of 4 image(s) in condition "
                                  "'cfg'; use a smaller batch (--batch-size or the condition's "
                                  "batch_size)")
    assert not list(tmp_path.rglob("*.png"))
    assert all(p.stat().st_size == 0 for p in tmp_path.rglob("*.jsonl"))


# -- torch.compile --------------------------------------------------------------------------

@pytest.mark.slow
def test_compiled_sampling_matches_and_reports_compile_time(study, ckpt, tmp_path):
    from glidemed.generate.manifest import load_manifest
    from glidemed.generate.runner import run_generation

    context = GeneratorContext(study, device="cpu", checkpoint_dir=ckpt)
    eager = glide.GlideGenerator(condition(study, "cfg"), context)
    compiled = glide.GlideGenerator(condition(study, "cfg", compile=True), context)
    assert isinstance(compiled.base, glide_speed.Compiled) and compiled.base is not eager.base
    texts, seeds = [TEXT, "A CT image of malaria"], [3, 4]
    a = [np.asarray(i, dtype=int) for i in eager.sample(texts, seeds)]
    b = [np.asarray(i, dtype=int) for i in compiled.sample(texts, seeds)]
    assert max(int(np.abs(x - y).max()) for x, y in zip(a, b)) <= 2
    assert compiled.base.take_compile_seconds() > 0
    # Through the runner, batches of 3 (a new shape): the first batch reports its compile
    # time apart, the second (same shape) none.
    study_compiled = dataclasses.replace(
        study, conditions=[condition(study, "cfg", compile=True, batch_size=3)])
    run_generation(study_compiled, tmp_path, context=context, progress=False)
    records = list(load_manifest(tmp_path).values())
    assert len(records) == 6 and records[0]["params"]["compile"] is True
    compiled_first = [r for r in records if "compile_seconds" in r]
    assert len(compiled_first) == 3 and all(r["compile_seconds"] > 0 for r in compiled_first)


# -- the benchmark ----------------------------------------------------------------------------

@pytest.mark.slow
def test_full_size_benchmark_runs(tmp_path):
    """bench_glide.py --full-size at two steps, base model only: the released architectures, the real path."""
    _tiny()
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_glide.py"), "--full-size", "--steps", "2",
         "--size", "64", "--modes", "classifier-free", "--precisions", "bf16",
         "--batch-sizes", "1", "--images", "1", "--notebook-batch", "1", "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "385.0M parameters" in out  # the released base model's size
    assert "GFLOP per image" in out and "img/s" in out and "paper study" in out
    assert "notebook recipe" in out and "speed-up" in out
