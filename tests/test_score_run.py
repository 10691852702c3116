"""`glidemed score` end to end: tiny CLIP models through the real loaders, resume, bad input."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from glidemed.cli import main
from glidemed.errors import ScoringError
from glidemed.fileio import sha256_file
from glidemed.generate.manifest import load_manifest
from glidemed.generate.runner import run_generation
from glidemed.paths import images_dir
from glidemed.scores import registry
from glidemed.scores.inputs import read_scores, read_set_scores
from glidemed.scores.run import run_scoring
from glidemed.scores.setmetrics import cmmd
from glidemed.study import load_study
from scores_factory import inception_shaped, write_reference, write_small_study
from tiny_clip import save_tiny_hf_clip, save_tiny_open_clip

import torch
PER_IMAGE = ["clipscore", "style_zeroshot", "style_zeroshot_top1", "retrieval"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    old = {k: os.environ.get(k) for k in ("GLIDEMED_BUILD_DIR", "HF_HUB_OFFLINE")}
    os.environ.update(GLIDEMED_BUILD_DIR=str(root / "build"), HF_HUB_OFFLINE="1")
    try:
        study = load_study(write_small_study(root / "study"))
        run_generation(study, images_dir(study), progress=False)
        clips = {"oc": save_tiny_open_clip(root / "models" / "oc"),
                 "hf": save_tiny_hf_clip(root / "models" / "hf")}
        yield study, root, clips
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _clip_args(clips) -> list[str]:
    return ["--clip", f"oc=local-dir:{clips['oc']}", "--clip", f"hf={clips['hf']}"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_score_writes_scores_and_identities(setup):
    study, root, clips = setup
    out = root / "run1"
    result = _invoke("score", study.path, *_clip_args(clips), "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(images_dir(study))
    scores = pd.read_csv(out / "scores.csv")
    assert list(scores.columns) == ["condition", "prompt_id", "index", "metric", "value"]
    expected_metrics = {f"{m}:{name}" for m in PER_IMAGE for name in ("oc", "hf")}
    assert set(scores["metric"]) == expected_metrics
    assert len(scores) == len(manifest) * len(expected_metrics)
    assert not scores.duplicated(["condition", "prompt_id", "index", "metric"]).any()
    clipscore = scores[scores["metric"].str.startswith("clipscore")]["value"]
    assert clipscore.between(0, 100).all()
    meta = json.loads((out / "scores.json").read_text())
    assert meta["study_id"] == study.id
    assert {(i["condition"], i["prompt_id"], i["index"]): i["sha256"] for i in meta["images"]} == \
        {k: r["sha256"] for k, r in manifest.items()}
    models = {m["name"]: m for m in meta["models"]}
    weights = clips["oc"] / "open_clip_model.safetensors"
    assert models["oc"]["weight_files"] == {weights.name: sha256_file(weights)}
    assert models["oc"]["library"] == "open_clip" and models["hf"]["library"] == "transformers"
    assert "transformers" in models["hf"]["versions"]
    # what the writer writes, the reader accepts: the schema, every row, the manifest's images
    again = read_scores(study, out / "scores.csv", images_dir(study))
    assert len(again.scores) == len(scores) and again.meta == meta


class _TensorFeatures:
    """transformers 5 returns model outputs from get_*_features, torchmetrics 1.9 expects the
    projected tensors (the pooler_output): unwrap them, delegate everything else."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def to(self, device):
        self.model.to(device)
        return self

    def get_image_features(self, *args, **kwargs):
        out = self.model.get_image_features(*args, **kwargs)
        return out if torch.is_tensor(out) else out.pooler_output

    def get_text_features(self, *args, **kwargs):
        out = self.model.get_text_features(*args, **kwargs)
        return out if torch.is_tensor(out) else out.pooler_output


def test_clipscore_matches_torchmetrics(setup):
    """torchmetrics' CLIPScore with the same transformers model and processor."""
    from PIL import Image
    from torchmetrics.functional.multimodal import clip_score
    from transformers import CLIPModel, CLIPProcessor

    study, root, clips = setup
    out = root / "run-tm"
    run_scoring(study, [f"hf={clips['hf']}"], out_dir=out, progress=False, device="cpu")
    scores = pd.read_csv(out / "scores.csv")
    scores = scores[scores["metric"] == "clipscore:hf"].head(6)
    model = _TensorFeatures(CLIPModel.from_pretrained(clips["hf"]))
    processor = CLIPProcessor.from_pretrained(clips["hf"])
    texts = {p.id: p.text for p in study.prompts()}
    manifest = load_manifest(images_dir(study))
    for row in scores.itertuples():
        file = images_dir(study) / manifest[(row.condition, row.prompt_id, row.index)]["file"]
        pixels = torch.from_numpy(np.array(Image.open(file).convert("RGB"))).permute(2, 0, 1)
        expected = float(clip_score(pixels, texts[row.prompt_id],
                                    model_name_or_path=lambda: (model, processor)))
        assert row.value == pytest.approx(max(expected, 0), abs=2e-3)


def test_interrupted_run_resumes_where_it_stopped(setup, monkeypatch):
    study, root, clips = setup
    out = root / "resume"
    n_images = len(load_manifest(images_dir(study)))
    real_embed = registry.ClipScorer.embed
    calls = {"n": 0}

    def embed_then_die(self, images):
        calls["n"] += 1
        if calls["n"] > 2:  # two batches of 4 done (one model), then the process "dies"
            raise KeyboardInterrupt
        return real_embed(self, images)

    monkeypatch.setattr(registry.ClipScorer, "embed", embed_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_scoring(study, [f"oc=local-dir:{clips['oc']}"], out_dir=out, batch_size=4,
                    progress=False, device="cpu")
    assert not (out / "scores.csv").exists()  # nothing half-written
    monkeypatch.setattr(registry.ClipScorer, "embed", real_embed)
    report = run_scoring(study, [f"oc=local-dir:{clips['oc']}"], out_dir=out, batch_size=4,
                         progress=False, device="cpu")
    assert report.embedded == n_images - 8
    again = run_scoring(study, [f"oc=local-dir:{clips['oc']}"], out_dir=out, progress=False,
                        device="cpu")
    assert again.embedded == 0
    fresh = root / "fresh"
    run_scoring(study, [f"oc=local-dir:{clips['oc']}"], out_dir=fresh, progress=False, device="cpu")
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv"), pd.read_csv(fresh / "scores.csv"),
                                  atol=1e-5)


def test_reference_gives_cmmd_fid_kid_per_condition_and_style(setup):
    study, root, clips = setup
    ids = [p.id for p in study.prompts()]
    reference = write_reference(root / "reference", ids, per_prompt=2)
    out = root / "sets"
    run_scoring(study, [f"oc=local-dir:{clips['oc']}"], out_dir=out, reference=reference,
                fid=True, inception_module=inception_shaped(), n_boot=20, progress=False,
                device="cpu")
    sets = pd.read_csv(out / "set_scores.csv")
    styles = [s.key for s in study.styles] + ["all"]
    assert set(sets["metric"]) == {"cmmd:oc", "fid", "kid"}
    assert len(sets) == 3 * len(study.conditions) * len(styles)
    assert (sets["ci_low"] <= sets["value"]).all() and (sets["value"] <= sets["ci_high"]).all()
    # the reader accepts what the writer wrote, reference images included
    assert len(read_set_scores(study, out / "set_scores.csv")) == len(sets)
    assert len(read_scores(study, out / "scores.csv", images_dir(study)).meta["reference_images"])
    # CMMD of one cell from the definition, on embeddings made here with the real loader
    from PIL import Image

    from glidemed.clipmodels import load_clip

    clip = load_clip(f"local-dir:{clips['oc']}", "cpu")
    manifest = load_manifest(images_dir(study))

    def embed(paths):
        with torch.no_grad():
            return clip.encode_image(torch.stack([clip.preprocess(Image.open(p)) for p in paths])).numpy()

    fake = [images_dir(study) / r["file"] for (c, pid, _), r in sorted(manifest.items())
            if c == "alpha" and pid.startswith("histo.")]
    real = sorted(reference.glob("histo.*.png"))
    row = sets[(sets["condition"] == "alpha") & (sets["style"] == "histo")
               & (sets["metric"] == "cmmd:oc")].iloc[0]
    assert row["n_images"] == len(fake) and row["n_reference"] == len(real)
    assert row["value"] == pytest.approx(cmmd(embed(real), embed(fake)), rel=1e-4)


@pytest.mark.slow
def test_fid_with_an_inception_weights_file(setup, monkeypatch, tmp_path):
    """The real loading path (torchmetrics / torch-fidelity) with a random-weight file."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf

    study, root, clips = setup
    with monkeypatch.context() as patch:  # build the architecture without downloading
        patch.setattr(tf, "load_state_dict_from_url", lambda *a, **k: None)
        patch.setattr(tf.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        net = tf.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "inception.pth"
    torch.save(net.state_dict(), weights)
    # two generated and two reference images keep the full-size network quick on a CPU
    records = [r for (c, pid, _), r in sorted(load_manifest(images_dir(study)).items())
               if c == "alpha" and pid == "histo.lungs.short"]
    few = tmp_path / "images"
    for record in records:
        (few / record["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(images_dir(study) / record["file"], few / record["file"])
    (few / "manifest").mkdir()
    (few / "manifest" / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    reference = write_reference(tmp_path / "ref", ["histo.lungs.short"], per_prompt=2)
    out = tmp_path / "fid"
    result = _invoke("score", study.path, "--images", few, "--reference", reference, "--fid",
                     "--inception-weights", weights, "--bootstrap", "5", "--out", out,
                     "--no-progress")
    assert result.exit_code == 0, result.output
    sets = pd.read_csv(out / "set_scores.csv")
    assert set(sets["metric"]) == {"fid", "kid"}
    assert np.isfinite(sets["value"]).all()
    meta = json.loads((out / "scores.json").read_text())
    assert meta["models"][0]["weights_sha256"] == sha256_file(weights)


def _one_line_error(args, needle: str, out):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.output
    assert not out.exists()  # nothing half-written
    return lines[0]


def test_bad_input_is_one_line_and_writes_nothing(setup, tmp_path):
    study, root, clips = setup
    out = tmp_path / "out"
    empty = tmp_path / "notamodel"
    empty.mkdir()
    _one_line_error(["score", study.path, "--clip", empty, "--out", out], "neither open_clip", out)
    bad_ref = write_reference(tmp_path / "ref", ["histo.lungs.short", "histo.nowhere.short"], 1)
    line = _one_line_error(["score", study.path, *_clip_args(clips), "--reference", bad_ref,
                            "--out", out], "unknown prompt id 'histo.nowhere.short'", out)
    assert "images.csv" in line
    ref = write_reference(tmp_path / "ref2", ["histo.lungs.short"], 1)
    _one_line_error(["score", study.path, "--reference", ref, "--fid", "--out", out],
                    "--inception-weights", out)
    _one_line_error(["score", study.path, "--reference", ref, "--fid", "--inception-weights",
                     tmp_path / "missing.pth", "--out", out], "not found", out)
    _one_line_error(["score", study.path, "--fid", "--out", out], "--reference", out)
    _one_line_error(["score", study.path, "--out", out], "nothing to score", out)
    _one_line_error(["score", study.path, "--clip", f"a={clips['hf']}", "--clip",
                     f"a=local-dir:{clips['oc']}", "--out", out], "second model named 'a'", out)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    _one_line_error(["score", study.path, "--reference", ref, "--fid", "--inception-weights",
                     garbage, "--out", out], "not usable Inception weights", out)


def test_no_images_is_a_clear_error(setup, tmp_path):
    study, root, clips = setup
    with pytest.raises(ScoringError, match="no generated images"):
        run_scoring(study, [f"hf={clips['hf']}"], images_dir=tmp_path / "none", out_dir=tmp_path / "o")
