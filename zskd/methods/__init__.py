"""Distillation methods: how the inputs the teacher labels and the student learns from are made, when the task's
data is not there. One file per method, each ending in its `METHOD` (`zskd.methods.base.Method`): a transfer-set
function `(config, teacher) -> TransferSet`, its option checks, and any objectives it adds to the training loop.
`METHODS` maps each `--method` name to one; adding a method is a new file and a line here.
"""

from __future__ import annotations

from zskd.methods import adversarial, embedding_guess, generate, indomain, ood, random_tokens
from zskd.methods.base import Batch, Method, Objective, Setup
from zskd.methods.common import TransferSet

METHODS: dict[str, Method] = {
    "ood": ood.METHOD,  # out-of-domain sentences, class-balanced by the teacher (Rashid et al., first half)
    "adversarial": adversarial.METHOD,  # the ood set plus online adversarial perturbations (Rashid et al.)
    "embedding-guess": embedding_guess.METHOD,  # pseudo-embeddings guessed from the teacher (Ma et al., AS-DFD)
    "generate": generate.METHOD,  # texts a language model wrote (`zskd generate`; Melas-Kyriazi et al.)
    "random": random_tokens.METHOD,  # random vocabulary words: the floor
    "indomain": indomain.METHOD,  # the task's own unlabelled text: the ceiling (benchmark only)
}

__all__ = ["METHODS", "Batch", "Method", "Objective", "Setup", "TransferSet"]
