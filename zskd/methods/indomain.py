"""The ceiling a zero-shot user never has: the task's own training text, without its labels. Benchmark only.

Like `ood`, it adds `--augment` variants of each text (of `--augment-kinds`: spans, perturbed copies; for sentence
pairs, `pairs.pair_variants`: one side perturbed, or the two swapped), labelled by the teacher too (Tang et al., 2019),
but only in the room the texts leave in `--transfer-size`: the real texts come first."""

from __future__ import annotations

import numpy as np

from zskd.data import DataError, read_labelled, read_unlabelled
from zskd.methods.base import Method
from zskd.methods.common import TransferSet
from zskd.methods.ood import augment_kinds, augmented, corpus_words
from zskd.methods.pairs import pair_variants
from zskd.tasks import load_split


def indomain_transfer_set(config, teacher) -> TransferSet:
    """Up to `config.transfer_size` training inputs of `config.indomain_data` (a file) or `config.eval_task`."""
    if config.indomain_data:
        if config.eval_text_col2:
            examples = read_labelled(config.indomain_data, config.eval_text_col, config.eval_label_col,
                                     config.eval_text_col2)
            inputs = examples.inputs()
        else:
            inputs = read_unlabelled(config.indomain_data, config.eval_text_col)
        source = config.indomain_data
    elif config.eval_task:
        inputs = load_split(config.eval_task, "train", config.data_root).inputs()
        source = f"{config.eval_task} train split"
    else:  # `validate` has refused this
        raise DataError("method indomain needs --indomain-data FILE or --eval-task NAME (whose train split it reads)")
    inputs = list(dict.fromkeys(inputs))
    rng = np.random.default_rng([config.seed, 2])
    if len(inputs) > config.transfer_size:
        keep = rng.permutation(len(inputs))[: config.transfer_size]
        inputs = [inputs[i] for i in sorted(keep)]
    room = config.transfer_size - len(inputs)
    variants = []
    if config.augment and room > 0:
        if isinstance(inputs[0], tuple):
            vocabulary = corpus_words([sentence for pair in inputs for sentence in pair])
            candidates = pair_variants(inputs, config.augment, rng, vocabulary, config.min_words)
        else:
            candidates = augmented(inputs, config.augment, rng, config.min_words, augment_kinds(config))
        originals = set(inputs)
        variants = [v for v in dict.fromkeys(candidates) if v not in originals]
        variants = [variants[i] for i in sorted(rng.permutation(len(variants))[:room])]
    return TransferSet(inputs + variants, f"indomain (benchmark ceiling, the task's own text): {len(inputs)} "
                                          f"unlabelled inputs from {source}, {len(variants)} variants of them",
                       in_domain=True, info={"originals": len(inputs), "variants": len(variants)})


def validate(config) -> None:
    if not (config.indomain_data or config.eval_task):
        raise DataError("method indomain needs --indomain-data FILE or --eval-task NAME (whose train split it reads)")


METHOD = Method(transfer_set=indomain_transfer_set, validate=validate)
