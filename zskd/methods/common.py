"""The transfer set every method returns, and what methods share: word counts and class balancing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zskd.data import TextInput


@dataclass
class TransferSet:
    """Inputs for the teacher to label. `in_domain` marks sets built from the task's own text (benchmark only);
    `own_texts` counts the leading inputs that are the method's own texts in the task's register (generated texts and
    their variants; the --few-shot texts join them) rather than out-of-domain fill."""

    inputs: list[TextInput]
    description: str
    in_domain: bool = False
    info: dict = field(default_factory=dict)
    own_texts: int = 0


def word_count(item: TextInput) -> int:
    return sum(len(t.split()) for t in item) if isinstance(item, tuple) else len(item.split())


def class_histogram(logits: np.ndarray, label_names: list[str]) -> dict[str, int]:
    """How many inputs the teacher assigns to each class."""
    counts = np.bincount(logits.argmax(-1), minlength=len(label_names))
    return {name: int(c) for name, c in zip(label_names, counts)}


def balanced_selection(logits: np.ndarray, size: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Indices of at most `size` inputs, as even as possible across the teacher's predicted classes: each class
    gets an equal share, a class with too few inputs gives its unused share to the others. Random within a class.

    With `groups` (one value per input, e.g. the kind of rule that made a pair), each group keeps its share of the
    pool and is balanced on its own, so that how an input was made does not tell the student the teacher's class."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return _balanced_within(logits, size, rng)
    _, group_of, group_sizes = np.unique(groups, return_inverse=True, return_counts=True)
    total = min(size, len(group_of))
    exact = total * group_sizes / len(group_of)
    shares = np.floor(exact).astype(int)
    shares[np.argsort(shares - exact)[: total - shares.sum()]] += 1  # largest remainders
    chosen = []
    for g, share in enumerate(shares):
        members = np.flatnonzero(group_of == g)
        chosen.append(members[_balanced_within(logits[members], share, rng)])
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=int)


def _balanced_within(logits: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    predicted = logits.argmax(-1)
    pools = [rng.permutation(np.flatnonzero(predicted == k)) for k in range(logits.shape[1])]
    quota = {k: 0 for k in range(len(pools))}
    remaining = min(size, len(predicted))
    open_classes = [k for k in quota if len(pools[k])]
    while remaining and open_classes:
        share = max(1, remaining // len(open_classes))
        for k in list(open_classes):
            take = min(share, len(pools[k]) - quota[k], remaining)
            quota[k] += take
            remaining -= take
            if quota[k] == len(pools[k]):
                open_classes.remove(k)
            if not remaining:
                break
    chosen = np.concatenate([pools[k][: quota[k]] for k in quota]) if quota else np.array([], dtype=int)
    return np.sort(chosen.astype(int))
