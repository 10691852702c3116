"""Set metrics (FID, KID, CMMD) and per-image CLIP metrics against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from glidemed.scores.clipscores import clip_image_metrics
from glidemed.scores.setmetrics import bootstrap_set_metric, cmmd, fid, kid
from glidemed.study import load_study
from scores_factory import inception_shaped

import torch


def _images(seed: int, n: int):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, 3, 299, 299), dtype=np.uint8))


def _features(module, images):
    with torch.no_grad():
        return module(images).double().numpy()


def test_fid_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    module = inception_shaped()
    real, fake = _images(1, 24), _images(2, 20) // 2  # fake darker: a real difference
    metric = FrechetInceptionDistance(feature=module)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    expected = float(metric.compute())
    ours = fid(_features(module, real), _features(module, fake))
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-8)
    assert ours > 0.1


def test_fid_is_exact_with_fewer_images_than_features():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(5, 40)), rng.normal(0.5, 2, size=(7, 40))
    from scipy import linalg

    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((real.mean(0) - fake.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert fid(real, fake) == pytest.approx(expected, rel=1e-5)


def test_kid_matches_torchmetrics_on_all_images():
    from torchmetrics.image.kid import KernelInceptionDistance

    module = inception_shaped()
    real, fake = _images(3, 12), _images(4, 12) // 3
    metric = KernelInceptionDistance(feature=module, subsets=1, subset_size=12)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    expected = float(metric.compute()[0])
    assert kid(_features(module, real), _features(module, fake)) == pytest.approx(expected, rel=1e-6)


def test_kid_unequal_sets_is_the_unbiased_estimate():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 5)), rng.normal(1, 1, size=(9, 5))
    k = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    xx = np.mean([k(x[i], x[j]) for i in range(6) for j in range(6) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(9) for j in range(9) if i != j])
    xy = np.mean([k(a, b) for a in x for b in y])
    assert kid(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_cmmd_follows_the_reference_definition():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(15, 8))
    y = rng.normal(0.4, 1, size=(11, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    gamma = 1 / (2 * 10 ** 2)
    expected = 1000 * (rbf_kernel(x, x, gamma=gamma).mean() + rbf_kernel(y, y, gamma=gamma).mean()
                       - 2 * rbf_kernel(x, y, gamma=gamma).mean())
    assert cmmd(x, y) == pytest.approx(expected, rel=1e-10)
    assert cmmd(x, x) == pytest.approx(0, abs=1e-9)


def test_bootstrap_resamples_both_sets_with_replacement():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 4)), rng.normal(0.5, 1, size=(25, 4))
    value, low, high = bootstrap_set_metric(cmmd, x, y, n_boot=300, seed=7)
    draw = np.random.default_rng(7)
    boot = [cmmd(x[draw.integers(0, 20, 20)], y[draw.integers(0, 25, 25)]) for _ in range(300)]
    assert value == cmmd(x, y)
    assert (low, high) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])))
    assert low < value < high
    assert bootstrap_set_metric(cmmd, x, y, 0, 1)[1] != bootstrap_set_metric(cmmd, x, y, 0, 1)[1]


def _unit(rng, shape):
    v = rng.normal(size=shape)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_clip_metrics_from_their_definitions(make_study):
    study = load_study(make_study())
    prompts = study.prompts()
    rng = np.random.default_rng(4)
    text = {p.id: _unit(rng, 6) for p in prompts}
    image_prompts = [p.id for p in prompts] * 2
    # half the images close to their own prompt, half random
    emb = np.stack([text[pid] * 3 + rng.normal(size=6) * (0.2 if i < len(prompts) else 3)
                    for i, pid in enumerate(image_prompts)])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    scale = 14.3
    out = clip_image_metrics(study, image_prompts, emb, text, scale)
    by_id = {p.id: p for p in prompts}
    for i, pid in enumerate(image_prompts):
        p = by_id[pid]
        cos = float(emb[i] @ text[pid])
        assert out["clipscore"][i] == pytest.approx(100 * max(cos, 0))
        # zero-shot: one text per style, the same topic and detail in that style's template
        texts = {s.key: s.template.replace("{description}", getattr(
            next(t for t in study.topics if t.key == p.topic), p.detail)) for s in study.styles}
        ids = {s: next(q.id for q in prompts if q.text == texts[s]) for s in texts}
        logits = np.array([scale * emb[i] @ text[ids[s]] for s in texts])
        probs = np.exp(logits) / np.exp(logits).sum()
        mine = list(texts).index(p.style)
        assert out["style_zeroshot"][i] == pytest.approx(probs[mine])
        assert out["style_zeroshot_top1"][i] == float(probs.argmax() == mine)
        same = [q.id for q in prompts if q.style == p.style]
        order = sorted(same, key=lambda q: -float(emb[i] @ text[q]))
        assert out["retrieval"][i] == order.index(pid) + 1
    close = slice(0, len(prompts))
    assert np.all(out["retrieval"][close] == 1) and np.all(out["style_zeroshot_top1"][close] == 1)
