"""Data-free distillation from guessed embeddings (AS-DFD): `embedding-guess` against `random` and `ood`, with and
without out-of-domain text, and its ablations, at one student and step budget (the suite's `--full` budget).

    python benchmarks/embedding_guess_table.py                              # SST-2, seed 0, every variant
    python benchmarks/embedding_guess_table.py --tasks sst2,trec --seeds 0,1,2
    python benchmarks/embedding_guess_table.py --variants random,embedding-guess --steps 1500 --transfer-size 12000

Teachers come from benchmarks/teachers.py (runs/teachers/<task>). SST-2 is scored on dev + test. A finished run
whose configuration matches is reused; anything else is run again.
"""

from __future__ import annotations

from common import variant_table
from zskd.methods.embedding_guess import EmbeddingGuessOptions

VARIANTS = {
    "random": dict(method="random"),
    "ood": dict(method="ood"),
    "embedding-guess": dict(method="embedding-guess"),
    "embedding-guess+ood": dict(method="embedding-guess", embedding_guess=EmbeddingGuessOptions(text="ood")),
    "embedding-guess-no-adversarial-ssl": dict(method="embedding-guess", embedding_guess=EmbeddingGuessOptions(
        adversarial_steps=0, ssl_weight=0.0)),
    "embedding-guess-no-diversity": dict(method="embedding-guess",
                                         embedding_guess=EmbeddingGuessOptions(diversity=0.0)),
    "embedding-guess-uniform": dict(method="embedding-guess",
                                    embedding_guess=EmbeddingGuessOptions(word_prior="uniform")),
}


if __name__ == "__main__":
    variant_table(__doc__, "embedding_guess_table", VARIANTS, tasks="sst2")
