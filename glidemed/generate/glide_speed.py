"""Speed settings of the 'glide' generator: precision, attention kernel and torch.compile.

Condition parameters (next to ``fp16``):

- ``bf16 = true``: the model torsos in bfloat16, converted exactly as glide-text2im's
  ``convert_to_fp16`` converts to float16 (convolutions of the UNet blocks and the text
  transformer); GroupNorm, the timestep embedding and the output layer stay float32.
- ``attention = "sdpa"`` (default): glide-text2im's attention modules are swapped for
  ``torch.nn.functional.scaled_dot_product_attention`` (see ``glide_attention``);
  ``"original"`` keeps its einsum attention.
- ``compile = true``: the UNets run through ``torch.compile`` (``compile_mode``:
  ``default``, or ``reduce-overhead`` for CUDA graphs); the first call of each batch
  shape compiles, and its time is reported apart from the sampling time.

``check_params`` needs no torch; the rest runs when a generator is built.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from glidemed.errors import GenerationError

ATTENTION = ("sdpa", "original")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DEFAULTS: dict[str, Any] = {"bf16": False, "attention": "sdpa", "compile": False,
                            "compile_mode": "default"}
TYPES: dict[str, Any] = {"bf16": bool, "attention": str, "compile": bool, "compile_mode": str}


def check_params(p: dict) -> list[str]:
    """Problems with the speed parameters of merged 'glide' parameters ``p`` (no torch)."""
    problems = []
    if p["bf16"] and p.get("fp16"):
        problems.append("bf16: cannot be combined with fp16 = true (choose one precision)")
    if p["attention"] not in ATTENTION:
        problems.append(f"attention: expected one of {', '.join(ATTENTION)}, "
                        f"got {p['attention']!r}")
    if p["compile_mode"] not in COMPILE_MODES:
        problems.append(f"compile_mode: expected one of {', '.join(COMPILE_MODES)}, "
                        f"got {p['compile_mode']!r}")
    return problems


@dataclass(frozen=True)
class Speed:
    """Resolved speed settings of one condition on one device."""

    precision: str  # 'fp32', 'fp16' or 'bf16'
    attention: str
    compile: bool
    compile_mode: str

    def key(self) -> tuple:
        return (self.precision, self.attention, self.compile, self.compile_mode)


def resolve(p: dict, device, torch, condition: str) -> Speed:
    """The speed settings for merged parameters ``p`` on ``device``, checked to work there.

    fp16 defaults to on with CUDA. Raises a one-line GenerationError naming the setting
    when the device or this torch cannot do what is asked.
    """
    fp16 = p["fp16"] if p["fp16"] is not None else (device.type == "cuda" and not p["bf16"])
    precision = "bf16" if p["bf16"] else "fp16" if fp16 else "fp32"
    speed = Speed(precision, p["attention"], p["compile"], p["compile_mode"])
    where = f"condition {condition!r}"
    if precision != "fp32":
        problem = half_problem(torch, device, precision)
        if problem:
            raise GenerationError(f"{where}: {precision} = true: {problem}")
    if speed.compile:
        problem = compile_problem(torch, device)
        if problem:
            raise GenerationError(f"{where}: compile = true: torch.compile does not work "
                                  f"with this torch on {device}: {problem} (set compile = false)")
    return speed


def half_problem(torch, device, precision: str) -> str | None:
    """Why ``precision`` ('fp16'/'bf16') cannot run on ``device``, or None."""
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported(
            including_emulation=False):
        return (f"this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16 support; "
                "use fp16 = true")
    try:
        ones = torch.ones((1, 1, 4, 4), dtype=dtype, device=device)
        torch.nn.functional.conv2d(ones, ones[:, :, :3, :3])
    except (RuntimeError, NotImplementedError) as exc:
        return f"this torch cannot convolve in {dtype} on {device} ({_first_line(exc)})"
    return None


# Device -> the outcome of compile_problem, which is checked once per process and device.
_COMPILE_CHECKED: dict[str, str | None] = {}


def compile_problem(torch, device) -> str | None:
    """Why torch.compile cannot run on ``device`` (no compiler, unsupported Python...), or None."""
    if str(device) not in _COMPILE_CHECKED:
        try:
            compiled = torch.compile(lambda x: x * 2 + 1, dynamic=False)
            compiled(torch.ones(8, device=device))
            _COMPILE_CHECKED[str(device)] = None
        except Exception as exc:  # noqa: BLE001  (any failure of the compiler stack counts)
            _COMPILE_CHECKED[str(device)] = _first_line(exc)
    return _COMPILE_CHECKED[str(device)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def prepare(model, speed: Speed, torch):
    """Convert a freshly built glide-text2im model (before loading weights) to ``speed``."""
    if speed.precision == "fp16":
        model.convert_to_fp16()  # glide-text2im's own
    elif speed.precision == "bf16":
        convert_torso(model, torch.bfloat16, torch)
    if speed.attention == "sdpa":
        from glidemed.generate.glide_attention import use_sdpa

        use_sdpa(model)
    return model


def prepare_clip(clip) -> None:
    """The noised CLIP's attention through the fused kernel (it stays float32, as in glide)."""
    from glidemed.generate.glide_attention import use_sdpa

    use_sdpa(clip.image_encoder)
    use_sdpa(clip.text_encoder)


def raise_compile_failure(exc: Exception, speed: Speed, condition: str) -> None:
    """Raise a one-line GenerationError when ``exc`` came from torch.compile's stack."""
    if speed.compile and type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
        raise GenerationError(f"condition {condition!r}: compile = true: torch.compile failed on "
                              f"this model: {_first_line(exc)} (set compile = false)") from None


def convert_torso(model, dtype, torch) -> None:
    """``Text2ImUNet.convert_to_fp16`` for any ``dtype``: the same modules, the same way.

    glide-text2im converts the convolutions of the input, middle and output blocks, the
    text transformer's linear layers, its projection and token embedding (its
    ``Parameter.to`` calls on the positional and padding embeddings change nothing, so
    those stay float32 here too), and computes the torso in ``model.dtype``.
    """
    from torch import nn

    def torso(module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            module.to(dtype)

    def transformer(module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            module.to(dtype)

    for blocks in (model.input_blocks, model.middle_block, model.output_blocks):
        blocks.apply(torso)
    if model.xf_width:
        model.transformer.apply(transformer)
        model.transformer_proj.to(dtype)
        model.token_embedding.to(dtype)
        if model.xf_ar:
            model.unemb.to(dtype)
    model.dtype = dtype


class Compiled:
    """A glide-text2im model whose calls go through torch.compile.

    Attributes (tokenizer, del_cache...) are the model's. The first call of each input
    shape compiles; its time is added to ``compile_seconds`` (see ``take_compile_seconds``).
    In a CUDA-graph mode each call starts a new graph step and its output is copied out
    of the graph's memory, since the sampling loop keeps it past the next call.
    """

    def __init__(self, model, speed: Speed, torch):
        self.model = model
        self._torch = torch
        self._compiled = torch.compile(model, mode=speed.compile_mode, dynamic=False)
        self._graphs = speed.compile_mode == "reduce-overhead"
        self._shapes: set[tuple] = set()
        self.compile_seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def __call__(self, x, timesteps, **kwargs):
        torch = self._torch
        shape = (tuple(x.shape), x.dtype) + tuple(
            (k, tuple(v.shape)) for k, v in sorted(kwargs.items()) if hasattr(v, "shape"))
        first = shape not in self._shapes
        if first:
            started = time.perf_counter()
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()
        out = self._compiled(x, timesteps, **kwargs)
        if self._graphs:
            out = out.clone()
        if first:
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            self.compile_seconds += time.perf_counter() - started
            self._shapes.add(shape)
        return out

    def take_compile_seconds(self) -> float:
        """Compile time since the last call of this method."""
        seconds, self.compile_seconds = self.compile_seconds, 0.0
        return seconds


def compile_model(model, speed: Speed, torch):
    """``model`` wrapped in ``Compiled`` when ``speed.compile``, else unchanged."""
    return Compiled(model, speed, torch) if speed.compile else model


def take_compile_seconds(*models) -> float:
    """Compile time spent by any compiled ``models`` since last asked."""
    return sum(m.take_compile_seconds() for m in models if isinstance(m, Compiled))
