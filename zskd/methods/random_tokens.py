"""The floor every method must beat: sequences of random whole-word tokens from the teacher's vocabulary."""

from __future__ import annotations

import numpy as np

from zskd.data import DataError
from zskd.methods.base import Method
from zskd.methods.common import TransferSet


def whole_words(tokenizer) -> list[tuple[str, int]]:
    """(word, token id), sorted by word, for each vocabulary entry that is a whole ASCII word: the word typed after a
    space tokenizes to exactly that entry. Not a WordPiece "##" piece, a BPE or SentencePiece continuation,
    punctuation or a special token, whatever the tokenizer marks them with."""
    special = set(tokenizer.all_special_ids)
    candidates = []
    for token, i in tokenizer.get_vocab().items():
        word = tokenizer.convert_tokens_to_string([token]).strip()
        if i not in special and word.isalpha() and word.isascii():
            candidates.append((word, i))
    if not candidates:
        return []
    encoded = tokenizer([" " + word for word, _ in candidates], add_special_tokens=False)["input_ids"]
    return sorted((word, i) for (word, i), ids in zip(candidates, encoded) if ids == [i])


def random_transfer_set(config, teacher) -> TransferSet:
    """`config.transfer_size` inputs of uniformly random length in [min_words, max_words] (pairs: two of them)."""
    rng = np.random.default_rng([config.seed, 1])
    words = [word for word, _ in whole_words(teacher.tokenizer)]
    if not words:
        raise DataError("the teacher's vocabulary has no whole words for method random to draw")

    def sentence() -> str:
        length = rng.integers(config.min_words, config.max_words + 1)
        return " ".join(words[i] for i in rng.integers(0, len(words), size=length))

    inputs = [(sentence(), sentence()) if config.pairs else sentence() for _ in range(config.transfer_size)]
    return TransferSet(inputs, f"random: {len(inputs)} sequences of random vocabulary words")


METHOD = Method(transfer_set=random_transfer_set)
