"""The packaged GloVe 6B vectors (50-d, 400k lowercase words, most frequent first): each word's nearest neighbours,
from which `ood` writes variants of its sentences in other words."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from zskd.resources import GLOVE, ResourceError, loading


@functools.lru_cache(maxsize=1)
def _glove() -> tuple[list[str], np.ndarray]:
    """The index (words, most frequent first) and the [400k, 50] float32 table, memory-mapped; from $ZSKD_GLOVE, a
    directory holding the two files, when it is set, else from the packaged GloVe."""
    import pyarrow.parquet as pq

    without = ("variants in other words read it; or leave other-words out of --augment-kinds (part,near-copy) and "
               "--pair-kinds")
    if os.environ.get("ZSKD_GLOVE"):
        directory = Path(os.environ["ZSKD_GLOVE"])
        if not (directory / "glove_6B_index.parquet").is_file():
            raise ResourceError(f"no glove_6B_index.parquet in {directory}: point $ZSKD_GLOVE at a directory holding "
                                f"it and glove_6B_50d_emb.npy, or unset it to use the packaged GloVe ({without})")
    else:
        try:
            directory = GLOVE.path()
        except ResourceError as error:
            raise ResourceError(f"{error} ({without})") from None
    with loading("GloVe vectors", directory):
        words = pq.read_table(directory / "glove_6B_index.parquet").column(0).to_pylist()
        table = np.load(directory / "glove_6B_50d_emb.npy", mmap_mode="r")
    return words, table


def glove_neighbours(words: Iterable[str], count: int = 10, skip_most_frequent: int = 150,
                     vocabulary: int = 30_000) -> dict[str, list[str]]:
    """The `count` nearest alphabetic words (by cosine) of each of `words` that GloVe ranks among its `vocabulary`
    most frequent, past the `skip_most_frequent` first (function words: "the", "of", "said"), drawn from the same
    range, nearest first. Words out of that range are left out of the mapping."""
    index, table = _glove()
    candidates = [row for row in range(skip_most_frequent, min(vocabulary, len(index))) if index[row].isalpha()]
    vectors = np.asarray(table[candidates], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-8)
    position = {index[row]: i for i, row in enumerate(candidates)}
    asked = sorted({position[w] for w in words if w in position})
    neighbours: dict[str, list[str]] = {}
    for start in range(0, len(asked), 2048):  # [2048, C] similarities at a time: ~250 MB
        rows = np.asarray(asked[start:start + 2048])
        similarity = vectors[rows] @ vectors.T
        similarity[np.arange(len(rows)), rows] = -np.inf  # not itself
        nearest = np.argpartition(-similarity, count, axis=1)[:, :count]
        order = np.argsort(-np.take_along_axis(similarity, nearest, axis=1), axis=1)
        for row, chosen in zip(rows, np.take_along_axis(nearest, order, axis=1)):
            neighbours[index[candidates[row]]] = [index[candidates[j]] for j in chosen]
    return neighbours


def neighbours_of_corpus(sentences: Iterable[str]) -> dict[str, list[str]]:
    """`glove_neighbours` of the lower-case words of `sentences` (capitalised words, mostly names, are kept as they
    are): what `pairs.in_other_words` draws from."""
    return glove_neighbours({w for sentence in sentences for w in sentence.split() if w.islower()})
