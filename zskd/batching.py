"""Batches of token-id sequences grouped by length, padded per batch: the one place that decides batch shapes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Index batches in order of decreasing length (for inference): at most `batch_size` rows and, when given,
    at most `max_tokens` padded tokens per batch."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, current, width = [], [], 0
    for index in order.tolist():
        width = max(width, lengths[index])
        if current and (len(current) == batch_size or (max_tokens and width * (len(current) + 1) > max_tokens)):
            batches.append(current)
            current, width = [], lengths[index]
        current.append(index)
    if current:
        batches.append(current)
    return batches


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled training batches of similar lengths: shuffle, sort within windows of 50 batches, shuffle the
    batches. The order depends only on (seed, epoch), so a resumed run sees the same batches."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([-lengths[i] for i in chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def pad(sequences: Sequence[Sequence[int]], pad_value: int = 0) -> torch.Tensor:
    """Right-pad a list of int sequences into a [B, L] long tensor."""
    width = max(len(s) for s in sequences)
    out = np.full((len(sequences), width), pad_value, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return torch.from_numpy(out)
