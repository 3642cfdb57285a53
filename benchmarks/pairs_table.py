"""Sentence pairs (issue 19): the pair-aware student and the rule-made pair kinds, alone and together, against the
old single-sequence student on the old three kinds, on MRPC and RTE; beside the trivial answer and with the
student's agreement with the teacher on each class.

    python benchmarks/pairs_table.py                                   # MRPC and RTE, seed 0, every variant
    python benchmarks/pairs_table.py --tasks mrpc --seeds 0,1,2 --variants pair-bilstm-match+half-passage,\
        indomain-pair-bilstm-match                                     # the defaults, zero-shot and the ceiling
    python benchmarks/pairs_table.py --tasks mrpc --variants pair-bilstm+generated --generate-count 2000

Teachers come from benchmarks/teachers.py (runs/teachers/<task>). A finished run whose configuration matches is
reused; anything else is run again. The `generated` variant first writes `--generate-count` pairs with `zskd
generate --pairs` (the packaged SmolLM2), and rule-made pairs of the out-of-domain corpora fill the rest of the
transfer set. `pair-bilstm` variants without `-match` are the student as it was before `word_match` (session 20).
Every `ood` variant balances the teacher's classes within each pair kind (the default since session 28) except
`+one-balance`, which balances the pool as one (as before).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import SUMMARY_HEADERS, eval_split_option, reuse_or_run, run_generate, run_grid, save_results, summary_row
from zskd.distill import DistillConfig, distill
from zskd.methods.generate import GenerateConfig
from zskd.methods.ood import corpus_files
from zskd.methods.pairs import DEFAULT_PAIR_KINDS, PAIR_KINDS, SENTENCE_PAIR_KINDS
from zskd.report import markdown_table
from zskd.runinfo import machine_description

OLD_KINDS = "neighbour,unrelated,near-copy"  # the pairs ood made before issue 19
SIX_KINDS = "neighbour,unrelated,near-copy,part,negated,question"  # issue 19's first set, before `detail`
SEVEN_KINDS = ",".join(SENTENCE_PAIR_KINDS)  # the default in sessions 13-25
NINE_KINDS = ",".join(PAIR_KINDS[:9])  # every kind before `passage` (session 21)
HALF_PASSAGE = ",".join(DEFAULT_PAIR_KINDS)  # every other pair a passage: the default since session 26
OTHER_WORDS = HALF_PASSAGE.replace("near-copy", "other-words")  # paraphrases by GloVe neighbours, not random words
OTHER_WORDS_ADDED = HALF_PASSAGE + ",other-words,passage"
DETAIL_TWICE = HALF_PASSAGE + ",detail,passage"  # two changed-detail pairs in 16: high overlap, either class
NO_MATCH = "word_match=false"  # the pair student before session 20 (word_match on by default since)
# cross-encoders from scratch (session 45): 2 transformer layers reading [CLS] a [SEP] b [SEP], each token attending
# over both sentences; 64 wide (22x at RTE's vocabulary), 128 wide (10x)
TRANSFORMER_64 = "hidden_size=64,num_layers=2,num_heads=2,intermediate_size=256"
TRANSFORMER_128 = "hidden_size=128,num_layers=2,num_heads=4,intermediate_size=512"
# the same at 25x: 32-wide word embeddings projected to 128 (ALBERT's factorisation), 128 positions (max_length)
TRANSFORMER_128_E32 = TRANSFORMER_128 + ",embedding_dim=32,max_position_embeddings=128"
VARIANTS = {
    "bilstm+3-kinds": dict(method="ood", student="bilstm", pair_kinds=OLD_KINDS),  # before issue 19
    "pair-bilstm+3-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=OLD_KINDS,  # before word_match
                                student_options=NO_MATCH),
    "pair-bilstm-match+3-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=OLD_KINDS,  # new student alone
                                      student_options="word_match=true"),
    "bilstm+6-kinds": dict(method="ood", student="bilstm", pair_kinds=SIX_KINDS),
    "pair-bilstm+6-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=SIX_KINDS, student_options=NO_MATCH),
    "bilstm+7-kinds": dict(method="ood", student="bilstm", pair_kinds=SEVEN_KINDS),  # new pairs alone
    "pair-bilstm+7-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS,  # both, sessions 13-19
                                student_options=NO_MATCH),
    "pair-bilstm-match+7-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS,  # sessions 20-25
                                      student_options="word_match=true"),
    "pair-bilstm+similar": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS + ",similar",
                                student_options=NO_MATCH),
    "pair-bilstm+spliced": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS + ",spliced",
                                student_options=NO_MATCH),
    "pair-bilstm-match+spliced": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS + ",spliced",
                                      student_options="word_match=true"),
    "pair-bilstm-match+passage": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS + ",passage",
                                      student_options="word_match=true"),
    "pair-bilstm-match+passage-only": dict(method="ood", student="pair-bilstm", pair_kinds="passage",
                                           student_options="word_match=true"),
    "pair-bilstm-match+half-passage": dict(method="ood", student="pair-bilstm", pair_kinds=HALF_PASSAGE,
                                           student_options="word_match=true"),
    "pair-bilstm-match+half-passage+ema": dict(method="ood", student="pair-bilstm", pair_kinds=HALF_PASSAGE,
                                               student_options="word_match=true", ema_decay=0.999),
    "pair-bilstm-match+half-passage+no-ema": dict(method="ood", student="pair-bilstm", pair_kinds=HALF_PASSAGE,
                                                  student_options="word_match=true", ema_decay=0.0),  # before s33
    "features-10": dict(method="ood", student="pair-bilstm", pair_kinds=HALF_PASSAGE,  # the default, + --feature-weight
                        student_options="word_match=true", ema_decay=0.999, feature_weight=10.0),
    "other-words": dict(method="ood", student="pair-bilstm", pair_kinds=OTHER_WORDS),  # against the default
    "detail-twice": dict(method="ood", student="pair-bilstm", pair_kinds=DETAIL_TWICE,
                         student_options="word_match=true", ema_decay=0.999),  # against the default
    "other-words-added": dict(method="ood", student="pair-bilstm", pair_kinds=OTHER_WORDS_ADDED),
    "pair-bilstm-match+half-passage+one-balance": dict(method="ood", student="pair-bilstm", pair_kinds=HALF_PASSAGE,
                                                       student_options="word_match=true", balance_by_kind=False),
    "pair-bilstm+9-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=NINE_KINDS, student_options=NO_MATCH),
    "pair-bilstm-cross+7-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS,
                                      student_options="cross_attention=true," + NO_MATCH),
    "pair-bilstm-overlap+7-kinds": dict(method="ood", student="pair-bilstm", pair_kinds=SEVEN_KINDS,
                                        student_options="overlap_features=true," + NO_MATCH),
    "pair-bilstm+generated": dict(method="generate", student="pair-bilstm", pair_kinds=SEVEN_KINDS,
                                  student_options=NO_MATCH),
    # the LM's pairs beside today's rule-made ones: RTE's low-overlap hypotheses are statements in other words
    "generated+half-passage": dict(method="generate", student="pair-bilstm", pair_kinds=HALF_PASSAGE),
    "pair-bilstm-overlap+generated": dict(method="generate", student="pair-bilstm", pair_kinds=SEVEN_KINDS,
                                          student_options="overlap_features=true," + NO_MATCH),
    "indomain-bilstm": dict(method="indomain", student="bilstm"),
    # the task's pairs and variants of them
    "indomain-pair-bilstm": dict(method="indomain", student="pair-bilstm", student_options=NO_MATCH),
    "indomain-pair-bilstm-match": dict(method="indomain", student="pair-bilstm", student_options="word_match=true"),
    "indomain-pair-bilstm-match-aug8": dict(method="indomain", student="pair-bilstm", augment=8,  # twice the variants
                                            student_options="word_match=true"),
    "indomain-pair-bilstm-match-aug8-857k": dict(method="indomain", student="pair-bilstm", augment=8,  # widths grown
                                                 max_parameters=857_000,  # to the zero-shot student's size
                                                 student_options="word_match=true"),
    "indomain-pair-bilstm-match-aug8-cross": dict(method="indomain", student="pair-bilstm", augment=8,  # + ESIM
                                                  student_options="word_match=true,cross_attention=true"),
    "indomain-pair-bilstm-match-aug16": dict(method="indomain", student="pair-bilstm", augment=16,
                                             student_options="word_match=true"),
    # the task's pairs and variants, read by a cross-encoder (a small transformer from scratch) in place of pair-bilstm
    "indomain-transformer-64-aug8": dict(method="indomain", student="transformer", augment=8, lr=1e-3,
                                         student_options=TRANSFORMER_64),
    "indomain-transformer-128-aug8": dict(method="indomain", student="transformer", augment=8, lr=1e-3,
                                          student_options=TRANSFORMER_128),
    "indomain-transformer-128-e32-aug8": dict(method="indomain", student="transformer", augment=8, lr=1e-3,
                                              student_options=TRANSFORMER_128_E32),
    # the task's pairs alone, before session 19
    "indomain-pair-bilstm-plain": dict(method="indomain", student="pair-bilstm", augment=0, student_options=NO_MATCH),
    "indomain-pair-bilstm-weighted": dict(method="indomain", student="pair-bilstm", class_weighting=1.0,
                                          student_options=NO_MATCH),
    "indomain-pair-bilstm-cross": dict(method="indomain", student="pair-bilstm",
                                       student_options="cross_attention=true," + NO_MATCH),
    "indomain-pair-bilstm-overlap": dict(method="indomain", student="pair-bilstm",
                                         student_options="overlap_features=true," + NO_MATCH),
}


def run_one(task: str, variant: str, seed: int, args) -> dict:
    out = Path(args.runs_dir) / f"{task}-{variant}-s{seed}"
    config = DistillConfig(
        teacher=str(Path(args.teachers_dir) / task), out=str(out), eval_task=task,
        eval_split=eval_split_option(task), data_root=args.data_root, transfer_size=args.transfer_size,
        steps=args.steps, seed=seed, cache_dir=args.cache_dir, **VARIANTS[variant],
    )
    if config.method == "generate":  # the LM's pairs, rule-made pairs of the corpora filling the rest
        config.generated = generated_pairs(task, seed, args)
        config.ood = ",".join(str(f) for f in corpus_files(config))
    return reuse_or_run(out, config, lambda: distill(config))


def generated_pairs(task: str, seed: int, args) -> str:
    """The file of `args.generate_count` LM-written pairs for `task`'s teacher: the one already written, or new."""
    out = Path(args.runs_dir) / f"{task}-generated-pairs-s{seed}.parquet"
    config = GenerateConfig(teacher=str(Path(args.teachers_dir) / task), out=str(out), pairs=True,
                            count=args.generate_count, seed=seed, cache_dir=args.cache_dir, data_root=args.data_root)
    run_generate(config)
    return str(out)


def class_columns(reports: list[dict]) -> list[str]:
    """The best constant answer's score, and the mean agreement on each class the teacher predicts."""
    evals = [r["eval"] for r in reports]
    by_class = {name: [e["agreement_by_class"][name] for e in evals if e["agreement_by_class"][name] is not None]
                for name in evals[0]["agreement_by_class"]}
    trivial = evals[0]["constant_answer"]
    return [f"{trivial['task_metric']:.2f} ({trivial['label']})",
            ", ".join(f"{name} {statistics.mean(values):.1f}" for name, values in by_class.items() if values)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="mrpc,rte")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; rows show mean and spread")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--transfer-size", type=int, default=40000)
    parser.add_argument("--generate-count", type=int, default=2000, help="pairs the LM writes (variant generated)")
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default="runs/bench/pairs")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/pairs_table.json")
    args = parser.parse_args()

    groups, results = run_grid(args.tasks, args.variants, args.seeds,
                               lambda task, variant, seed: run_one(task, variant, seed, args), "variant")
    rows = [summary_row(task, variant, reports) + class_columns(reports) for task, variant, reports in groups]
    table = markdown_table(SUMMARY_HEADERS + ["constant answer", "agreement by teacher class"], rows)
    machine = machine_description()
    print(table)
    print(f"\nmetric: MRPC F1, RTE accuracy, on dev; label s = building + teacher labelling (0 when cached); {machine}")
    save_results(args.json, "pairs_table", machine, args=vars(args), results=results, table=table)


if __name__ == "__main__":
    main()
