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
import json
import shutil
import statistics
from datetime import date
from pathlib import Path

from zskd.config import made_with, write_json
from zskd.distill import DistillConfig, distill
from zskd.report import markdown_table
from zskd.runinfo import machine_description, versions

EVAL_SPLIT = {"sst2": "dev+test"}


SUMMARY_HEADERS = ["task", "method", "seeds", "teacher", "student", "% of teacher", "agreement", "params", "compression",
                   "transfer set", "steps", "label s", "train s", "ms/step"]


def summary_row(task: str, method: str, reports: list[dict]) -> list:
    """One table row for the runs of a task and method: means and spreads over seeds, medians of times."""
    evals = [r["eval"] for r in reports]
    spread = lambda xs: f"{statistics.mean(xs):.2f}" + (f" ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else "")  # noqa: E731
    return [
        task, method + (" (in-domain ceiling)" if reports[0]["in_domain"] else ""), len(reports),
        f"{evals[0]['teacher']['task_metric']:.2f}", spread([e["student"]["task_metric"] for e in evals]),
        spread([e["percent_of_teacher"] for e in evals]), spread([e["agreement"] for e in evals]),
        f"{reports[0]['student_parameters'] / 1e6:.2f}M", f"{reports[0]['compression']}x",
        reports[0]["transfer_size"], reports[0]["steps"],
        f"{statistics.median(r['transfer_seconds'] for r in reports):.0f}",
        f"{statistics.median(r['train_seconds_this_session'] for r in reports):.0f}",
        f"{1000 * statistics.median(r['train_seconds_this_session'] / r['steps'] for r in reports):.0f}",
    ]


def run_one(task: str, method: str, seed: int, args) -> dict:
    out = Path(args.runs_dir) / f"{task}-{method}-{args.student}-s{seed}"
    config = DistillConfig(
        teacher=str(Path(args.teachers_dir) / task), out=str(out), method=method, student=args.student,
        eval_task=task, eval_split=EVAL_SPLIT.get(task), data_root=args.data_root, transfer_size=args.transfer_size,
        steps=args.steps, seed=seed, cache_dir=args.cache_dir,
    )
    if (out / "run.json").is_file():
        report = json.loads((out / "run.json").read_text())
        if made_with(config, report["config"]):
            return report
        shutil.rmtree(out)
    return distill(config)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="sst2,trec,mrpc,rte")
    parser.add_argument("--methods", default="indomain,ood,random", help="comma-separated: adversarial, indomain, ood, random")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; rows show mean and spread")
    parser.add_argument("--student", default="bilstm")
    parser.add_argument("--steps", type=int, default=DistillConfig.steps)
    parser.add_argument("--transfer-size", type=int, default=DistillConfig.transfer_size)
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default="runs/bench/distill")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/distill_table.json")
    args = parser.parse_args()

    rows, results = [], []
    for task in args.tasks.split(","):
        for method in args.methods.split(","):
            reports = [run_one(task, method, int(seed), args) for seed in args.seeds.split(",")]
            results.extend({"task": task, "method": method, "seed": r["config"]["seed"], **r} for r in reports)
            rows.append(summary_row(task, method, reports))
    table = markdown_table(SUMMARY_HEADERS, rows)
    machine = machine_description()
    print(table)
    print(f"\nmetric: accuracy (MRPC: F1); SST-2 on dev+test; label s = building + teacher labelling (0 when cached); {machine}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, {"benchmark": "distill_table", "date": date.today().isoformat(), "machine": machine,
                           "versions": versions(), "args": vars(args), "results": results, "table": table})


if __name__ == "__main__":
    main()
