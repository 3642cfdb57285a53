"""Transfer sets: the inputs the teacher labels and the student learns from, when the task's data is not there.

A static source is a function `(config, teacher) -> TransferSet` that returns text once; the teacher labels it
once (cached) and the distillation loop trains on it. `SOURCES` maps each method name to its function.
`adversarial` trains on the `ood` set and, online, on perturbations of it (`zskd.methods.adversarial`);
`generate` reads the texts `zskd generate` wrote (`zskd.methods.generate`).
"""

from __future__ import annotations

from typing import Callable

from zskd.methods.common import TransferSet
from zskd.methods.generate import generated_transfer_set
from zskd.methods.indomain import indomain_transfer_set
from zskd.methods.ood import ood_transfer_set
from zskd.methods.random_tokens import random_transfer_set

SOURCES: dict[str, Callable[..., TransferSet]] = {
    "ood": ood_transfer_set,
    "adversarial": ood_transfer_set,
    "random": random_transfer_set,
    "indomain": indomain_transfer_set,
    "generate": generated_transfer_set,
}

__all__ = ["SOURCES", "TransferSet"]
