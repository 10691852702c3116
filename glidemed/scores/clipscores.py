"""Per-image CLIP metrics from L2-normalised embeddings (numpy; the model runs elsewhere).

- ``clipscore``: 100 * max(cos(image, own prompt), 0), torchmetrics' CLIPScore per image;
- ``style_zeroshot``: softmax over the study's styles of logit_scale * cos(image, the prompt's
  topic and detail written in each style's (first) template); the probability of the
  prompt's own style, so the prompt variants of a style are judged by the same classes. ``style_zeroshot_top1`` is 1 when that style has the highest probability, else 0;
- ``retrieval``: rank (1 = best) of the image's own prompt among the study's prompts of the same
  style (and prompt variant) by cosine; ties count against the own prompt (rank = 1 + prompts scoring at least as
  high, other than itself).
"""

from __future__ import annotations

import numpy as np

from glidemed.study import Study

# Higher is better for every metric but retrieval (a rank).
DIRECTIONS = {"clipscore": 1, "style_zeroshot": 1, "style_zeroshot_top1": 1, "retrieval": -1}


def clip_image_metrics(study: Study, image_prompts: list[str], image_emb: np.ndarray,
                       text_emb: dict[str, np.ndarray], logit_scale: float) -> dict[str, np.ndarray]:
    """Metric -> one value per image. ``text_emb``: prompt id -> embedding of its text."""
    prompts = study.prompts()
    by_id = {p.id: p for p in prompts}
    ids = [p.id for p in prompts]
    T = np.stack([text_emb[i] for i in ids])
    position = {pid: i for i, pid in enumerate(ids)}
    cos = image_emb.astype(np.float64) @ T.T.astype(np.float64)  # images x prompts
    own = np.array([position[p] for p in image_prompts])
    rows = np.arange(len(own))
    own_cos = cos[rows, own]
    out = {"clipscore": 100 * np.maximum(own_cos, 0)}
    style_order = [s.key for s in study.styles]
    # zero-shot: the classes are the prompts of the same topic and detail in each style's
    # first template (v1), whatever the variant of the image: every variant is judged alike
    siblings = {}
    for p in prompts:
        if p.variant == "v1":
            siblings.setdefault((p.topic, p.detail), {})[p.style] = position[p.id]
    if len(style_order) > 1:
        prob = np.full(len(own), np.nan)
        top1 = np.full(len(own), np.nan)
        for i, pid in enumerate(image_prompts):
            p = by_id[pid]
            group = siblings[(p.topic, p.detail)]
            classes = [s for s in style_order if s in group]
            columns = [group[s] for s in classes]
            logits = logit_scale * cos[i, columns]
            logits = logits - logits.max()
            weights = np.exp(logits)
            mine = classes.index(p.style)
            prob[i] = weights[mine] / weights.sum()
            top1[i] = float(np.argmax(logits) == mine)
        out["style_zeroshot"] = prob
        out["style_zeroshot_top1"] = top1
    same_style = {}  # the prompts of the same style and variant
    for p in prompts:
        same_style.setdefault((p.style, p.variant), []).append(position[p.id])
    ranks = np.empty(len(own))
    for i, pid in enumerate(image_prompts):
        candidates = same_style[(by_id[pid].style, by_id[pid].variant)]
        values = cos[i, candidates]
        ranks[i] = int((values >= own_cos[i]).sum())  # the own prompt counts once
    out["retrieval"] = ranks
    return out
