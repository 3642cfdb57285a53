"""The learning-rate schedule every training loop here uses: linear warm-up, then linear decay to zero."""

from __future__ import annotations


def linear_warmup_decay(peak: float, step: int, total: int, warmup_ratio: float) -> float:
    """Learning rate at `step` of `total`: rising linearly to `peak` over the first `warmup_ratio` of the steps
    (at least one), then falling linearly to 0 at `total`."""
    warmup = max(1, int(warmup_ratio * total))
    scale = step / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))
    return peak * scale
