"""Tiny random-weight CLIP models saved through each library's own saving path.

``save_tiny_open_clip`` writes an open_clip folder (``open_clip_config.json`` and
``open_clip_model.safetensors``, as ``open_clip.push_to_hf_hub.save_for_hf`` writes them),
read back with ``local-dir:``; ``save_tiny_hf_clip`` writes a transformers ``CLIPModel`` folder
with ``save_pretrained`` (model, tokenizer and image processor). Both build in about a second.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_OPEN_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
TINY_HF_IMAGE_SIZE = 30


def save_tiny_open_clip(folder, seed: int = 0, image_size: int = 32) -> Path:
    """Build a tiny open_clip model from a config and save it as open_clip saves models."""
    import importlib

    import open_clip
    import torch

    # open_clip's package namespace shadows the module by its function of the same name.
    hub = importlib.import_module("open_clip.push_to_hf_hub")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(json.dumps(TINY_OPEN_CLIP_CFG))
    cfg["vision_cfg"]["image_size"] = image_size
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    # create_model() sets these from the preprocess config; save_config_for_hf writes them.
    model.visual.image_mean = open_clip.OPENAI_DATASET_MEAN
    model.visual.image_std = open_clip.OPENAI_DATASET_STD
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    import safetensors.torch

    safetensors.torch.save_file(tensors, folder / hub.HF_SAFE_WEIGHTS_NAME)
    hub.save_config_for_hf(model, folder / hub.HF_CONFIG_NAME, model_config=cfg)
    return folder


def _tiny_vocab() -> tuple[dict[str, int], list[str]]:
    """A character vocabulary without merges: every ASCII text splits into known tokens."""
    import string

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, []


def save_tiny_hf_clip(folder, seed: int = 0, image_size: int = TINY_HF_IMAGE_SIZE) -> Path:
    """Build a tiny transformers CLIPModel and save it (with tokenizer and image processor)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _tiny_vocab()
    text = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=len(vocab), max_position_embeddings=77,
                bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab["<|endoftext|>"])
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                  image_size=image_size, patch_size=5)
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    model.save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder
