"""The boundary between a distillation method and the one training loop.

A `Method` says how to build the transfer set the teacher labels (`transfer_set`), checks its own options
(`validate`), and, where it acts during training, adds `Objective`s: extra loss terms the loop adds to the base
loss (KL + logit MSE against the cached teacher labels) at every step. The loop knows nothing else about a method.

    METHODS["toy"] = Method(transfer_set=random_transfer_set, objectives=lambda setup: [MyObjective(setup)])

An objective sees the batch the loop just trained on (`Batch`) and returns a loss term or None (nothing this step).
If it holds state (a second model, an optimiser), `state_dict`/`load_state_dict` put it into the run's resumable
checkpoints; files it appends to in the work directory (JSONL records with a "step") are listed in `artefacts`, so
that a resumed run drops the lines past its checkpoint and the finished run keeps them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from zskd.methods.common import TransferSet

if TYPE_CHECKING:
    from zskd.data import Examples
    from zskd.distill import DistillConfig
    from zskd.students import Student
    from zskd.teacher import Teacher


@dataclass
class Setup:
    """What objectives may use, fixed before training starts."""

    config: DistillConfig
    teacher: Teacher
    student: Student  # the bare module (not wrapped for distributed training)
    vocabulary: list[int]  # teacher id of each student token
    token_counts: dict[int, int]  # how often the training rows use each teacher token
    teacher_ids: list[list[int]]  # the training rows in teacher tokens (a `Batch`'s `rows` index them)
    segments: list[list[int]]  # their segment ids
    shots: Examples | None  # the few labelled examples of a low-data run
    work: Path  # the run's work directory, where artefacts go
    is_main_process: bool


@dataclass
class Batch:
    """One training step's batch, after the student's forward pass on it."""

    rows: list[int]  # indices of the training rows in the batch
    inputs: dict[str, torch.Tensor]  # [B, L] student input_ids, attention_mask, token_type_ids
    teacher_logits: torch.Tensor  # [B, K] the cached teacher labels
    student_logits: torch.Tensor  # [B, K]
    hidden_states: tuple[torch.Tensor, ...] | None  # the student's, when an objective asked for them
    student_features: torch.Tensor | None  # [B, D] what the student's logit layer read, when an objective asked
    student: Callable[..., Any]  # the student to run on other inputs (wrapped for distributed training)


class Objective:
    """A loss term the loop adds at every step. Subclasses set `name` and define `loss`."""

    name: str = ""
    needs_hidden_states: bool = False  # the loop asks the student for its hidden states
    needs_features: bool = False  # the loop keeps what the student's logit layer read (`Batch.student_features`)
    artefacts: tuple[str, ...] = ()  # JSONL files (one record per line, with a "step") it writes in the work dir

    def loss(self, step: int, batch: Batch) -> torch.Tensor | None:
        """The weighted loss term at `step` (0-based, before the optimiser's step), or None."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def to(self, device: torch.device) -> Objective:
        return self


def last_before_evaluation(step: int, every: int, eval_every: int) -> bool:
    """Whether `step` (0-based) is the last step, of those an objective acts on every `every` steps, before the
    loop's next evaluation: where an objective writes its samples, so that they line up with `metrics.jsonl`."""
    return (step + every) // eval_every > step // eval_every


def no_checks(config: DistillConfig) -> None:
    """For methods without options of their own."""


def no_objectives(setup: Setup) -> list[Objective]:
    """For methods that act only through their transfer set."""
    return []


@dataclass(frozen=True)
class Method:
    """A distillation method: its transfer set, its option checks and its training-time objectives."""

    transfer_set: Callable[[DistillConfig, Teacher], TransferSet]
    validate: Callable[[DistillConfig], None] = field(default=no_checks)
    objectives: Callable[[Setup], list[Objective]] = field(default=no_objectives)
    needs_weights: bool = False  # white-box: reads the teacher's embeddings and gradients, not only its answers
    options_group: str | None = None  # the `DistillConfig` options group only this method reads, e.g. "adversarial"
