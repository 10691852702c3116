"""Automated scores of a study's images (``glidemed score``), read by ``glidemed analyze``.

- ``inputs``: the images to score (the manifest), the reference set, the scores files;
- ``cache``: per-scorer image embeddings keyed by image SHA-256 (what makes a run resumable);
- ``clipscores``: per-image CLIP metrics from embeddings (CLIPScore, zero-shot style, retrieval);
- ``setmetrics``: FID, KID and CMMD between two sets of features, with bootstrap intervals;
- ``registry``: the scorer families (one CLIP model, the Inception network);
- ``run``: the stage itself.

torch and the model libraries are imported only inside the scorers.
"""
