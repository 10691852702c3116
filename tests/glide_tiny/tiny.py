"""Tiny random-weight GLIDE checkpoints for tests and benchmarks.

Builds the models of ``study.toml``'s conditions with glide-text2im's own factories,
gives the zero-initialised output layers small random weights (so that prompts and
guidance change the images), and saves the state dicts under the release file names.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
STUDY = HERE / "study.toml"


# Text2ImUNet parameters made with torch.empty and never initialised.
UNINITIALISED = ("positional_embedding", "padding_embedding")


def _randomise(module, seed: int) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = module.state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if key in UNINITIALISED or (key.endswith(".w") and value.dim() == 2):
            # glide-text2im's CLIP leaves its Affine weights, and the UNet its text
            # embeddings, uninitialised (torch.empty): whatever memory held before.
            state[key] = torch.randn(value.shape, generator=generator) / value.shape[1] ** 0.5
        elif not value.any():
            state[key] = torch.randn(value.shape, generator=generator) * 0.02
    return state


def write_checkpoints(folder: Path, study_path: Path = STUDY,
                      names: tuple[str, ...] = ("base", "upsample", "clip")) -> Path:
    """Save base.pt, upsample.pt, clip_image_enc.pt and clip_text_enc.pt into ``folder``.

    ``names`` limits what is written (the full-size benchmark writes only what it uses).
    """
    import torch
    from glide_text2im.clip.model_creation import create_clip_model
    from glide_text2im.model_creation import (
        create_model_and_diffusion,
        model_and_diffusion_defaults,
        model_and_diffusion_defaults_upsampler,
    )

    from glidemed.study import load_study

    study = load_study(study_path)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    params = {}
    for condition in study.conditions:
        for key, value in condition.params.items():
            params.setdefault(key, value)
    torch.manual_seed(0)
    for name, defaults, key in (("base.pt", model_and_diffusion_defaults, "base_options"),
                                ("upsample.pt", model_and_diffusion_defaults_upsampler,
                                 "upsample_options")):
        if name.removesuffix(".pt") not in names:
            continue
        options = defaults()
        options.update(params.get(key, {}), use_fp16=False)
        model, _ = create_model_and_diffusion(**options)
        torch.save(_randomise(model, 1), folder / name)
    if "clip" not in names:
        return folder
    config = params.get("clip_config")  # None: glide-text2im's own (full-size) CLIP
    clip = create_clip_model(config_path=str(study.folder / config) if config else None,
                             device=torch.device("cpu"))
    torch.save(_randomise(clip.image_encoder, 2), folder / "clip_image_enc.pt")
    torch.save(_randomise(clip.text_encoder, 3), folder / "clip_text_enc.pt")
    return folder
