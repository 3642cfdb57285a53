"""Zero-shot distillation table: for each task and transfer method, the same student and step budget, distilled
from the benchmark teacher (benchmarks/teachers.py) and scored against it.

    python benchmarks/distill_table.py                                   # 4 tasks x (indomain, ood, random), seed 0
    python benchmarks/distill_table.py --tasks sst2 --methods ood --seeds 0,1,2
    python benchmarks/distill_table.py --methods adversarial,ood,random --steps 4000 --transfer-size 40000

SST-2 is scored on dev + test together (2,693 sentences); the others on their evaluation split. A finished run
whose configuration matches is reused; anything else is run again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import SUMMARY_HEADERS, eval_split_option, reuse_or_run, run_grid, save_results, summary_row
from zskd.distill import DistillConfig, distill
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import default_student
from zskd.tasks import TASKS


def run_one(task: str, method: str, seed: int, args) -> dict:
    student = args.student or default_student(TASKS[task].is_pair)
    out = Path(args.runs_dir) / f"{task}-{method}-{student}-s{seed}"
    config = DistillConfig(
        teacher=str(Path(args.teachers_dir) / task), out=str(out), method=method, student=student,
        eval_task=task, eval_split=eval_split_option(task), data_root=args.data_root,
        transfer_size=args.transfer_size, steps=args.steps, seed=seed, cache_dir=args.cache_dir,
    )
    return reuse_or_run(out, config, lambda: distill(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="sst2,trec,mrpc,rte")
    parser.add_argument("--methods", default="indomain,ood,random",
                        help="comma-separated: adversarial, embedding-guess, indomain, ood, random")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; rows show mean and spread")
    parser.add_argument("--student", help="default: pair-bilstm for pair tasks, else bilstm")
    parser.add_argument("--steps", type=int, default=DistillConfig.steps)
    parser.add_argument("--transfer-size", type=int, default=DistillConfig.transfer_size)
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default="runs/bench/distill")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/distill_table.json")
    args = parser.parse_args()

    groups, results = run_grid(args.tasks, args.methods, args.seeds,
                               lambda task, method, seed: run_one(task, method, seed, args), "method")
    rows = [summary_row(task, method, reports) for task, method, reports in groups]
    table = markdown_table(SUMMARY_HEADERS, rows)
    machine = machine_description()
    print(table)
    print(f"\nmetric: accuracy (MRPC: F1); SST-2 on dev+test; label s = building + teacher labelling (0 when cached); "
          f"{machine}")
    save_results(args.json, "distill_table", machine, args=vars(args), results=results, table=table)


if __name__ == "__main__":
    main()
