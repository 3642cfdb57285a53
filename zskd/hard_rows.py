"""Batches that return to what the student gets wrong: a share of every training batch drawn again from the rows
whose KL against the teacher was highest when the student last saw them (prioritised replay, Schaul et al. 2016,
with the distillation loss as the priority).

A transfer set of general text is mostly easy: the teacher is confident and the student soon agrees with it. The
rows near the teacher's decision boundary, where the student still disagrees, are few, and a uniform pass visits
each of them as rarely as the rest. So the loop keeps each training row's KL from its last visit (free: the loss is
computed anyway) and fills `fraction` of every batch with rows drawn with probability proportional to it; rows not
visited yet count at the mean of those that were. A drawn row's KL is replaced at that visit, so a row the student
has learned stops being drawn. The rest of each batch walks the transfer set in the usual shuffled epochs.
"""

from __future__ import annotations

import numpy as np
import torch


class HardRows:
    """Each training row's KL at its last visit, and the rows drawn again from it for each batch."""

    def __init__(self, rows: int, fraction: float, batch_size: int, seed: int):
        self.count = min(round(fraction * batch_size), batch_size - 1)  # drawn rows a batch; one row still walks
        self.last_loss = np.full(rows, np.nan)
        self.seed = seed

    def draw(self, step: int) -> list[int]:
        """`count` row indices for `step`'s batch, drawn with replacement with probability proportional to their
        last KL (uniform before any visit). Depends only on the seed, the step and the recorded losses, so a
        resumed run draws what an uninterrupted one would."""
        if not self.count:
            return []
        rng = np.random.default_rng([self.seed, 5, step])
        visited = ~np.isnan(self.last_loss)
        if not visited.any():
            return rng.integers(len(self.last_loss), size=self.count).tolist()
        weights = np.where(visited, self.last_loss, self.last_loss[visited].mean()).clip(min=0.0) + 1e-12
        return rng.choice(len(weights), size=self.count, p=weights / weights.sum()).tolist()

    def update(self, rows: list[int], losses: torch.Tensor) -> None:
        """Record the [B] per-row `losses` of the batch `rows` just trained on."""
        if self.count:
            self.last_loss[rows] = losses.detach().double().cpu().numpy()

    def state_dict(self) -> dict:
        return {"last_loss": torch.from_numpy(self.last_loss)} if self.count else {}

    def load_state_dict(self, state: dict) -> None:
        if "last_loss" in state:
            self.last_loss = state["last_loss"].numpy().copy()
