"""Fidelity ablations: each change to the default recipe alone against it, same teacher, student and budget, on
every single-sentence task, so a change that helps one task only shows as such.

    python benchmarks/fidelity_table.py                                  # SST-2 and TREC, seed 0, every variant
    python benchmarks/fidelity_table.py --variants default,hard-rows --seeds 0,1,2
    python benchmarks/fidelity_table.py --steps 10000 --transfer-size 250000    # the default recipe's own budget
    python benchmarks/fidelity_table.py --variants generated-ood --generated sst2=runs/gen/sst2.parquet

Teachers come from benchmarks/teachers.py (runs/teachers/<task>). SST-2 is scored on dev + test. A finished run
whose configuration matches is reused; anything else is run again.
"""

from __future__ import annotations

from pathlib import Path

from common import default_corpora, run_generate, variant_table
from zskd.methods.generate import GenerateConfig


def generated_beside_ood(task: str, args) -> dict:
    """Method `generate`: text the packaged LM wrote in the task's register from its label names alone (`zskd
    generate --task T --count 2000`, seed 0: written once and shared by every seed, like the corpora; or the file
    `--generated T=FILE` names), with out-of-domain sentences filling the rest of the budget."""
    given = dict(item.split("=", 1) for item in args.generated)
    out = Path(given.get(task) or Path(args.runs_dir) / f"{task}-generated-s0.parquet")
    if task not in given:
        config = GenerateConfig(teacher=str(Path(args.teachers_dir) / task), out=str(out), task=task, count=2000,
                                seed=0, cache_dir=args.cache_dir, data_root=args.data_root)
        run_generate(config)
    return dict(method="generate", generated=str(out), ood=default_corpora(args.data_root))


def half_corpora(task: str, args) -> dict:
    """The out-of-domain corpora with every other line (sentence, or WikiText paragraph) left out, written once under
    the runs directory: how much the student owes to the corpora's size."""
    halves = []
    for path in default_corpora(args.data_root).split(","):
        half = Path(args.runs_dir) / "half-corpora" / Path(path).name
        if not half.is_file():
            half.parent.mkdir(parents=True, exist_ok=True)
            lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
            partial = half.with_suffix(".tmp")
            partial.write_text("".join(lines[::2]), encoding="utf-8")
            partial.rename(half)
        halves.append(str(half))
    return dict(ood=",".join(halves))


VARIANTS = {
    "default": {},
    "hard-rows": dict(hard_fraction=0.5),
    "hard-rows-quarter": dict(hard_fraction=0.25),
    "mse-centred": dict(mse_centred=True),
    "class-weighting": dict(class_weighting=1.0),  # every teacher class weighs the same in the loss
    "class-weighting-half": dict(class_weighting=0.5),
    "questions": dict(augment_kinds="part,near-copy,question"),
    "rare-variants": dict(rare_class_variants=16),  # the default since session 25: variants of the rare classes' inputs
    "no-rare-variants": dict(rare_class_variants=0),  # the default before session 25
    "ema": dict(ema_decay=0.999),  # the moving average of the weights is the student kept: the default at 10k steps
    "no-ema": dict(ema_decay=0.0),  # the default before session 33: the student kept is its weights
    "attention": dict(student_options="attention_pooling=true"),  # a learned weighted sum in place of the mean
    "words-20k": dict(word_inputs=20000),  # the corpora's 20,000 most frequent words, each alone, join the pool
    "generated-ood": generated_beside_ood,  # the task's register without its text
    "half-corpora": half_corpora,  # every other line of the out-of-domain corpora: the pool half as large
    # variants in other words (GloVe neighbours) in place of the near-copies, or beside them
    "other-words": dict(augment_kinds="part,other-words"),
    "other-words-beside": dict(augment_kinds="part,near-copy,other-words"),  # the default since session 37
    "no-other-words": dict(augment_kinds="part,near-copy"),  # the default before session 37
    "other-words-twice": dict(augment_kinds="part,near-copy,other-words,other-words"),  # two of the four
    # the fourth variant on another topic (the set's 300 most frequent words kept, others swapped) in place of a span
    "other-topic": dict(augment_kinds="part,near-copy,other-words,other-topic"),
    # a fifth variant: negated, or joined to a span of another sentence by a connective ("but", "although", ...)
    "negated-5": dict(augment=5, augment_kinds="part,near-copy,other-words,part,negated"),
    "joined-5": dict(augment=5, augment_kinds="part,near-copy,other-words,part,joined"),
    "five-variants": dict(augment=5, augment_kinds="part,near-copy,other-words,part,near-copy"),  # the control
    # the batch's inputs related in the student's features as in the teacher's (similarity-preserving KD)
    "features-1": dict(feature_weight=1.0),
    "features-10": dict(feature_weight=10.0),
    # no dropout in the student, which fits only ~90% of its own training rows at the default budget (session 38)
    "dropout-0": dict(student_options="dropout=0.0"),
    # inputs joining two the teacher gives different classes with confidence ("A , but B"), added to the pool
    "contrasts-25k": dict(contrast_inputs=25000),
    # twice the inputs a step: what the faster BiLSTM step (session 39) buys at the old default's training time
    "batch-128": dict(batch_size=128),
    "augment-6": dict(augment=6),  # two variants of each kind in place of 4 variants; with a larger --transfer-size
    # each two inputs of a batch mixed in embedding space, labelled by the teacher online (MixKD), every step
    "mixup": dict(mixup_weight=1.0),
    "adversarial": dict(method="adversarial"),  # the ood set, plus inputs a generator perturbs against the student
    # shapes at one size: the default student's at this budget (0.79M), spent differently
    "size-790k": dict(max_parameters=790_000),
    "two-layers-790k": dict(max_parameters=790_000, student_options="num_layers=2"),
    "vocab-8k-790k": dict(max_parameters=790_000, max_vocab=8000),
    "attention-790k": dict(max_parameters=790_000, student_options="attention_pooling=true"),
    # every transfer-set token kept, narrower embeddings, the rest of the budget spent on the LSTM's width
    "narrow-24-790k": dict(max_parameters=790_000, student_options="embedding_dim=24"),
    "narrow-16-790k": dict(max_parameters=790_000, student_options="embedding_dim=16"),
    # the 8,000 most frequent transfer-set tokens at the default budget: at its student's size (0.876M), the rest spent
    # on width; and at the default widths (32-d, 96 units), fewer parameters
    "vocab-8k": dict(max_parameters=876_000, max_vocab=8000),
    "vocab-8k-default-shape": dict(max_vocab=8000),
    "indomain": dict(method="indomain"),  # the ceiling: the task's own text, with variants of it in the room left
    "indomain-plain": dict(method="indomain", augment=0),  # the ceiling before: the text alone
    "indomain-790k": dict(method="indomain", max_parameters=790_000),  # the ceiling at the zero-shot student's size
    "indomain-790k-other-words": dict(method="indomain", max_parameters=790_000,
                                      augment_kinds="part,near-copy,other-words"),
    "indomain-790k-no-other-words": dict(method="indomain", max_parameters=790_000,
                                         augment_kinds="part,near-copy"),  # the ceiling's variants before session 37
    "indomain-790k-ema": dict(method="indomain", max_parameters=790_000, ema_decay=0.999),  # the ceiling, averaged
    "indomain-790k-aug4": dict(method="indomain", max_parameters=790_000, augment=4),  # before session 23: 4 variants
    "indomain-790k-aug8": dict(method="indomain", max_parameters=790_000, augment=8),  # before session 24: 8 variants
}


if __name__ == "__main__":
    variant_table(__doc__, "fidelity_table", VARIANTS, tasks="sst2,trec", reads_generated=True)
