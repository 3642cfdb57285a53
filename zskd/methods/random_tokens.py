"""The floor every method must beat: sequences of random whole-word tokens from the teacher's vocabulary."""

from __future__ import annotations

import numpy as np

from zskd.methods.base import Method
from zskd.methods.common import TransferSet


def is_whole_word(token: str) -> bool:
    """A vocabulary entry that is a whole ASCII word: not a "##" piece, punctuation or a [SPECIAL] token."""
    return token.isalpha() and token.isascii() and not token.startswith("[")


def random_transfer_set(config, teacher) -> TransferSet:
    """`config.transfer_size` inputs of uniformly random length in [min_words, max_words] (pairs: two of them)."""
    rng = np.random.default_rng([config.seed, 1])
    words = [w for w in teacher.tokenizer.get_vocab() if is_whole_word(w)]
    words.sort()

    def sentence() -> str:
        length = rng.integers(config.min_words, config.max_words + 1)
        return " ".join(words[i] for i in rng.integers(0, len(words), size=length))

    inputs = [(sentence(), sentence()) if config.pairs else sentence() for _ in range(config.transfer_size)]
    return TransferSet(inputs, f"random: {len(inputs)} sequences of random vocabulary words")


METHOD = Method(transfer_set=random_transfer_set)
