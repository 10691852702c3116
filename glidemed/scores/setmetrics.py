"""Set-level distances between generated and reference images, from their features.

- ``fid``: Frechet distance between Gaussians fitted to the two sets (torchmetrics' FID on
  Inception features). tr sqrt(S1 S2) is the nuclear norm of A B' with S1 = A'A, S2 = B'B
  (centred features over sqrt(n - 1)): exact, and fast when a set is smaller than the
  feature dimension.
- ``kid``: unbiased MMD^2 with the cubic polynomial kernel (x'y / d + 1)^3 (torchmetrics' KID
  on all images at once instead of random subsets).
- ``cmmd``: CMMD (Jayasumana et al. 2024): MMD^2 (the biased V-statistic of their reference
  code) with the Gaussian RBF kernel, sigma = 10, on L2-normalised CLIP embeddings, times 1000.

Intervals: percentile bootstrap resampling the images of each set with replacement,
independently (``bootstrap_set_metric``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0
SetMetric = Callable[[np.ndarray, np.ndarray], float]


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu1, mu2 = real.mean(0), fake.mean(0)
    a = (real - mu1) / np.sqrt(len(real) - 1)
    b = (fake - mu2) / np.sqrt(len(fake) - 1)
    trace_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(((mu1 - mu2) ** 2).sum() + (a * a).sum() + (b * b).sum() - 2 * trace_sqrt)


def kid(real: np.ndarray, fake: np.ndarray, degree: int = 3, coef: float = 1.0) -> float:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    gamma = 1.0 / real.shape[1]

    def kernel(x, y):
        return (gamma * x @ y.T + coef) ** degree

    m, n = len(real), len(fake)
    kxx, kyy, kxy = kernel(real, real), kernel(fake, fake), kernel(real, fake)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def cmmd(real: np.ndarray, fake: np.ndarray, sigma: float = CMMD_SIGMA,
         scale: float = CMMD_SCALE) -> float:
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    gamma = 1.0 / (2 * sigma ** 2)

    def mean_kernel(a, b):
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-gamma * np.maximum(sq, 0)).mean()

    return float(scale * (mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y)))


SET_METRICS: dict[str, SetMetric] = {"fid": fid, "kid": kid, "cmmd": cmmd}
MIN_SET_SIZE = 2


def bootstrap_set_metric(metric: SetMetric, real: np.ndarray, fake: np.ndarray, n_boot: int,
                         seed: int, level: float = 0.95) -> tuple[float, float, float]:
    """(value, CI low, CI high): percentile interval over ``n_boot`` resamples of both sets."""
    value = metric(real, fake)
    if n_boot < 1:
        return value, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boot = np.array([metric(real[rng.integers(0, len(real), len(real))],
                            fake[rng.integers(0, len(fake), len(fake))]) for _ in range(n_boot)])
    boot = boot[np.isfinite(boot)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail]) if len(boot) else (np.nan, np.nan)
    return value, float(low), float(high)
