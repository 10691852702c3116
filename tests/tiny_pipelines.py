"""Tiny random-weight diffusers pipelines, built from configs without network and saved.

Each ``save_tiny_*`` function builds a pipeline through diffusers' and transformers' own
classes (as diffusers' test suite does), saves it with ``save_pretrained`` into
``folder`` and returns the folder, which then loads back through
``DiffusionPipeline.from_pretrained`` with ``HF_HUB_OFFLINE=1``. Weights come from a fixed
torch seed, so the same call saves the same model. Images are meaningless; speed and the
loading path are real.
"""

from __future__ import annotations

from pathlib import Path

# Byte-level BPE needs every character of a prompt in the vocabulary; these are the
# printable ASCII characters, each as a word-inner and a word-final ('</w>') token.
_CHARS = [chr(c) for c in range(33, 127)]
_MERGES = ["i n", "t h", "a n", "e r", "o n", "th e</w>", "in g</w>"]


def tiny_tokenizer(max_length: int = 77):
    """A CLIPTokenizer built in memory: one token per character plus a few merges."""
    from transformers import CLIPTokenizer

    tokens = ["<|startoftext|>", "<|endoftext|>", "!"] + _CHARS + [c + "</w>" for c in _CHARS]
    tokens += ["".join(merge.split()) for merge in _MERGES]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in _MERGES], model_max_length=max_length,
                         bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                         pad_token="!", unk_token="<|endoftext|>")


def _text_config(hidden_size: int = 32, projection_dim: int = 32, vocab_size: int = 256):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2, hidden_size=hidden_size,
                          intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
                          num_hidden_layers=2, vocab_size=vocab_size, hidden_act="gelu",
                          projection_dim=projection_dim, max_position_embeddings=77)


def _vae(latent_channels: int = 4, latent_scale: int = 2):
    """A tiny AutoencoderKL whose latents are ``latent_scale`` (a power of 2) times smaller."""
    from diffusers import AutoencoderKL

    blocks = latent_scale.bit_length()
    return AutoencoderKL(block_out_channels=[4] + [8] * (blocks - 1), in_channels=3,
                         out_channels=3, down_block_types=["DownEncoderBlock2D"] * blocks,
                         up_block_types=["UpDecoderBlock2D"] * blocks,
                         latent_channels=latent_channels, norm_num_groups=2, sample_size=32)


def _ddim():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def tiny_sd_components(seed: int = 0, latent_scale: int = 2) -> dict:
    """The components of a tiny Stable Diffusion 1.x-shaped pipeline (no safety checker)."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, cross_attention_dim=32,
                                norm_num_groups=2, attention_head_dim=2,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = _vae(latent_scale=latent_scale)
    text_encoder = CLIPTextModel(_text_config())
    return {"unet": unet, "scheduler": _ddim(), "vae": vae, "text_encoder": text_encoder,
            "tokenizer": tiny_tokenizer(), "safety_checker": None, "feature_extractor": None,
            "image_encoder": None}


def tiny_safety_checker(flag_everything: bool, seed: int = 0):
    """A tiny StableDiffusionSafetyChecker and its feature extractor.

    Its concept thresholds are set so that it flags every image (``flag_everything``) or
    none, whatever its random weights say.
    """
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(seed)
    config = CLIPConfig(text_config={"bos_token_id": 0, "eos_token_id": 1, "hidden_size": 32, "intermediate_size": 37,
                                     "num_attention_heads": 4, "num_hidden_layers": 2,
                                     "vocab_size": 256},
                        vision_config={"hidden_size": 32, "intermediate_size": 37,
                                       "num_attention_heads": 4, "num_hidden_layers": 2,
                                       "image_size": 32, "patch_size": 8},
                        projection_dim=32)
    checker = StableDiffusionSafetyChecker(config).eval()
    # The checker flags an image when a cosine similarity exceeds its threshold
    # (similarities lie in [-1, 1]).
    threshold = -2.0 if flag_everything else 2.0
    with torch.no_grad():
        checker.concept_embeds_weights.fill_(threshold)
        checker.special_care_embeds_weights.fill_(threshold)
    extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return checker, extractor


def save_tiny_sd(folder: str | Path, *, safety_checker: bool | None = None,
                 seed: int = 0, latent_scale: int = 2) -> Path:
    """Save a tiny StableDiffusionPipeline into ``folder`` and return it.

    ``safety_checker``: None saves none; True one that flags every image; False one that
    flags none. ``latent_scale``: the VAE's down-scaling (2 makes 32 px images; 8 as in
    Stable Diffusion makes 128 px).
    """
    from diffusers import StableDiffusionPipeline

    components = tiny_sd_components(seed, latent_scale)
    if safety_checker is not None:
        components["safety_checker"], components["feature_extractor"] = \
            tiny_safety_checker(safety_checker, seed)
    pipe = StableDiffusionPipeline(**components, requires_safety_checker=False)
    return _save(pipe, folder)


def save_tiny_sd_variant(folder: str | Path, pipeline_class: str, seed: int = 0) -> Path:
    """The tiny SD components saved under another pipeline class of diffusers, e.g.
    'StableDiffusionImg2ImgPipeline' (for tests of pipelines that are not text-to-image)."""
    import diffusers

    cls = getattr(diffusers, pipeline_class)
    pipe = cls(**tiny_sd_components(seed), requires_safety_checker=False)
    return _save(pipe, folder)


def save_tiny_unconditional(folder: str | Path, seed: int = 0) -> Path:
    """A tiny DDPMPipeline (unconditional: no prompt)."""
    import torch
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=16,
                       in_channels=3, out_channels=3, norm_num_groups=2,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    return _save(DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100)), folder)


def save_tiny_sdxl(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny StableDiffusionXLPipeline (two text encoders, micro-conditioning)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    # cross_attention_dim = the two encoders' widths; the added embedding takes six time
    # ids of addition_time_embed_dim each plus the pooled projection of the second encoder.
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, norm_num_groups=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=(2, 4), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                transformer_layers_per_block=(1, 1),
                                projection_class_embeddings_input_dim=6 * 8 + 32,
                                cross_attention_dim=64)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(
        unet=unet, scheduler=scheduler, vae=_vae(),
        text_encoder=CLIPTextModel(_text_config()), tokenizer=tiny_tokenizer(),
        text_encoder_2=CLIPTextModelWithProjection(_text_config()), tokenizer_2=tiny_tokenizer(),
        image_encoder=None, feature_extractor=None, force_zeros_for_empty_prompt=True,
        add_watermarker=False)
    return _save(pipe, folder)


def _save(pipe, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
