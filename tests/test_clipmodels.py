"""The CLIP loader: both libraries through their real loading paths, and its bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PIL

from glidemed.clipmodels import ClipLoadError, load_clip
from glidemed.fileio import sha256_file
from tiny_clip import save_tiny_hf_clip, save_tiny_open_clip


@pytest.fixture(scope="module")
def clip_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {"open_clip": save_tiny_open_clip(root / "oc"), "transformers": save_tiny_hf_clip(root / "hf")}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _image(seed: int = 0, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    return PIL.fromarray((rng.random((*shape, 3)) * 255).astype("uint8"))


@pytest.mark.parametrize("library", ["open_clip", "transformers"])
def test_embeddings_match_the_library_pipeline(clip_folders, library):
    folder = clip_folders[library]
    spec = f"local-dir:{folder}" if library == "open_clip" else str(folder)
    clip = load_clip(spec, device="cpu")
    assert clip.library == library and clip.spec == spec
    image = _image()
    pixels = clip.preprocess(image)
    assert pixels.shape == (3, clip.image_size, clip.image_size)
    assert 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0
    ours = clip.encode_image(pixels[None])
    texts = ["a histology image of the lungs", "an x-ray of the heart"]
    text_ours = clip.encode_text(texts)
    with torch.no_grad():
        if library == "open_clip":
            import open_clip

            model, _, preprocess = open_clip.create_model_and_transforms(spec)
            theirs = model.encode_image(preprocess(image)[None])
            text_theirs = model.encode_text(open_clip.get_tokenizer(spec)(texts))
        else:
            from transformers import CLIPModel, CLIPProcessor

            model = CLIPModel.from_pretrained(folder)
            processor = CLIPProcessor.from_pretrained(folder)
            inputs = processor(images=image, return_tensors="pt")
            out = model.get_image_features(pixel_values=inputs["pixel_values"])
            theirs = out if torch.is_tensor(out) else out.pooler_output
            tok = processor(text=texts, return_tensors="pt", padding="max_length", max_length=77)
            out = model.get_text_features(input_ids=tok["input_ids"],
                                          attention_mask=tok["attention_mask"])
            text_theirs = out if torch.is_tensor(out) else out.pooler_output
    theirs = theirs / theirs.norm(dim=-1, keepdim=True)
    text_theirs = text_theirs / text_theirs.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(text_ours, text_theirs, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(text_ours[0], text_ours[1])


@pytest.mark.parametrize("library", ["open_clip", "transformers"])
def test_image_embedding_is_differentiable_and_resizes(clip_folders, library):
    folder = clip_folders[library]
    clip = load_clip(f"local-dir:{folder}" if library == "open_clip" else str(folder), "cpu")
    pixels = torch.rand(2, 3, 40, 40, requires_grad=True)  # another size: resized inside
    embedding = clip.encode_image(pixels)
    torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(2))
    (embedding[:, 0].sum()).backward()
    assert pixels.grad is not None and float(pixels.grad.abs().sum()) > 0


def test_identity_names_weights_hash_and_versions(clip_folders):
    folder = clip_folders["open_clip"]
    clip = load_clip(str(folder), "cpu")  # a plain folder with open_clip_config.json
    assert clip.library == "open_clip"
    weights = folder / "open_clip_model.safetensors"
    assert clip.identity["weight_files"] == {weights.name: sha256_file(weights)}
    assert clip.identity["versions"]["open_clip_torch"]
    assert clip.identity["config_sha256"]["open_clip_config.json"] == \
        sha256_file(folder / "open_clip_config.json")
    hf = load_clip(str(clip_folders["transformers"]), "cpu")
    assert hf.identity["library"] == "transformers" and "transformers" in hf.identity["versions"]


def test_unreadable_folders_are_one_line_errors(tmp_path, clip_folders):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a model")
    cases = {str(empty): "neither open_clip",
             f"local-dir:{empty}": "no open_clip_config.json",
             str(tmp_path / "missing"): "not a CLIP model folder",
             "someone/some-clip": "offline"}
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "open_clip_config.json").write_text('{"model_cfg": {"embed_dim": 8}}')
    (broken / "open_clip_model.safetensors").write_bytes(b"garbage")
    cases[f"local-dir:{broken}"] = "open_clip cannot read it"
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "open_clip_config.json").write_bytes(
        (clip_folders["open_clip"] / "open_clip_config.json").read_bytes())
    cases[f"local-dir:{noweights}"] = "random weights"
    badhf = tmp_path / "badhf"
    badhf.mkdir()
    (badhf / "config.json").write_text('{"model_type": "bert"}')
    cases[str(badhf)] = "transformers cannot read it"
    for spec, needle in cases.items():
        with pytest.raises(ClipLoadError) as caught:
            load_clip(spec, "cpu")
        message = caught.value.format_message()
        assert needle in message and "\n" not in message and spec in message, message
