"""The benchmark teachers: train any that are missing (configs/teacher-<task>.yaml), score each on its
evaluation data, print a table and write JSON.

    python benchmarks/teachers.py                      # all four tasks
    python benchmarks/teachers.py --tasks sst2,trec --teachers-dir runs/teachers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import eval_splits, save_results
from zskd.config import load_config
from zskd.evaluate import evaluate
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher
from zskd.train_teacher import TeacherTrainConfig, train_teacher

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="sst2,trec,mrpc,rte", help="comma-separated named tasks")
    parser.add_argument("--teachers-dir", default="runs/teachers",
                        help="where teachers are kept (reused when present)")
    parser.add_argument("--data-root", help="benchmark data root")
    parser.add_argument("--json", default="runs/bench/teachers.json", help="where to write the results")
    args = parser.parse_args()

    rows, results = [], []
    for name in args.tasks.split(","):
        task = get_task(name)
        out = Path(args.teachers_dir) / name
        trained_now = not out.exists()
        if trained_now:
            config = load_config(TeacherTrainConfig, CONFIGS / f"teacher-{name}.yaml",
                                 {"out": str(out), "data_root": args.data_root})
            train_teacher(config)
        run = json.loads((out / "run.json").read_text())
        teacher = Teacher.from_pretrained(out, bf16=False)  # exact float32 scores
        for split in eval_splits(name):
            scores = evaluate(teacher, load_split(task, split, args.data_root), task.metric)
            results.append({"task": name, "split": split, "scores": scores, "train_seconds": run["total_seconds"],
                            "train_examples": run["train_examples"], "steps": run["steps"], "config": run["config"]})
            rows.append([name, split, scores["n"], scores["accuracy"], scores["macro_f1"],
                         f"{scores['task_metric']:.2f} ({task.metric})", run["train_examples"], run["steps"],
                         round(run["total_seconds"] / 60, 1)])
    table = markdown_table(["task", "split", "n", "accuracy", "macro-F1", "task metric", "train examples", "steps",
                            "train minutes"], rows)
    machine = machine_description()
    print(table)
    print(f"\n{machine}")
    save_results(args.json, "teachers", machine, results=results, table=table)


if __name__ == "__main__":
    main()
