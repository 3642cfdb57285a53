"""Data-free distillation from guessed embeddings (AS-DFD): `embedding-guess` against `random` and `ood`, with and
without out-of-domain text, and its ablations, at one student and step budget (the suite's `--full` budget).

    python benchmarks/embedding_guess_table.py                              # SST-2, seed 0, every variant
    python benchmarks/embedding_guess_table.py --tasks sst2,trec --seeds 0,1,2
    python benchmarks/embedding_guess_table.py --variants random,embedding-guess --steps 1500 --transfer-size 12000

Teachers come from benchmarks/teachers.py (runs/teachers/<task>). SST-2 is scored on dev + test. A finished run
whose configuration matches is reused; anything else is run again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import SUMMARY_HEADERS, eval_split_option, reuse_or_run, run_grid, save_results, summary_row
from zskd.distill import DistillConfig, distill
from zskd.methods.embedding_guess import EmbeddingGuessOptions
from zskd.report import markdown_table
from zskd.runinfo import machine_description

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


def run_one(task: str, variant: str, seed: int, args) -> dict:
    out = Path(args.runs_dir) / f"{task}-{variant}-{args.student}-s{seed}"
    config = DistillConfig(
        teacher=str(Path(args.teachers_dir) / task), out=str(out), student=args.student, eval_task=task,
        eval_split=eval_split_option(task), data_root=args.data_root, transfer_size=args.transfer_size,
        steps=args.steps, seed=seed, cache_dir=args.cache_dir, **VARIANTS[variant],
    )
    return reuse_or_run(out, config, lambda: distill(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="sst2")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; rows show mean and spread")
    parser.add_argument("--student", default="bilstm")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--transfer-size", type=int, default=40000)
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default="runs/bench/embedding-guess")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/embedding_guess_table.json")
    args = parser.parse_args()

    groups, results = run_grid(args.tasks, args.variants, args.seeds,
                               lambda task, variant, seed: run_one(task, variant, seed, args), "variant")
    rows = [summary_row(task, variant, reports) for task, variant, reports in groups]
    table = markdown_table(SUMMARY_HEADERS, rows)
    machine = machine_description()
    print(table)
    print(f"\nmetric: accuracy; SST-2 on dev+test; label s = building + teacher labelling (0 when cached); {machine}")
    save_results(args.json, "embedding_guess_table", machine, args=vars(args), results=results, table=table)


if __name__ == "__main__":
    main()
