"""Words outside a student's vocabulary read as [UNK] against their stand-ins (the nearest kept word in the teacher's
embedding space), on finished distillation runs: the same weights scored both ways on each run's evaluation data.

    python benchmarks/stand_in_table.py --runs runs/bench/s24/fidelity/trec-default-bilstm-s0[,DIR...] \
        [--data-root ../shared/data] [--json runs/bench/stand_in_table.json]

Stand-ins change nothing in training where the student's vocabulary holds every transfer-set token (`--max-vocab
0`, the default; runs with a capped vocabulary are refused): the transfer set and held-out inputs, which choose
the checkpoint, hold no word outside it. So a run made before stand-ins, scored with them, is the run the current
code makes with the same seed, and its score with [UNK] is the run as it was. Each run is scored on the data its
run.json names (`--eval-task` and `--eval-split`, or `--eval-data`), beside its teacher.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from common import save_results
from zskd.distill import DistillConfig, load_eval_data
from zskd.evaluate import evaluate
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import load_student
from zskd.students.base import nearest_kept_tokens
from zskd.teacher import Teacher


class FixedAnswers:
    """The teacher's logits on one evaluation set, computed once and given back for every student scored on it."""

    def __init__(self, logits: np.ndarray):
        self._logits = logits

    def logits(self, inputs) -> np.ndarray:
        return self._logits


def run_config(run: Path) -> DistillConfig:
    """The resolved config a finished run wrote, as a `DistillConfig` (options it predates at their defaults)."""
    stored = json.loads((run / "run.json").read_text())["config"]
    known = DistillConfig.__dataclass_fields__
    return DistillConfig(**{k: v for k, v in stored.items() if k in known})


def score_run(run: Path, data_root: str | None, teachers: dict, answers: dict) -> dict:
    config = run_config(run)
    if config.max_vocab:
        raise SystemExit(f"{run}: --max-vocab {config.max_vocab} put words outside the vocabulary in training; "
                         "scoring it with stand-ins is not the run the current code makes")
    if data_root:
        config.data_root = data_root
    examples, metric = load_eval_data(config)
    if examples is None:
        raise SystemExit(f"{run}: its run names no evaluation data (--eval-task or --eval-data)")
    if config.teacher not in teachers:
        teachers[config.teacher] = Teacher.from_pretrained(config.teacher, bf16=False)
    teacher = teachers[config.teacher]
    key = (config.teacher, examples.source)
    if key not in answers:
        answers[key] = FixedAnswers(teacher.logits(examples.inputs()))
    student = load_student(run)
    stand_ins = student.stand_in_ids or nearest_kept_tokens(teacher.embedding_matrix, teacher.tokenizer,
                                                            student.kept_token_ids)
    student.use_stand_ins(None)
    encoded = student.encode(examples.inputs())["input_ids"]
    unknown, tokens = sum(ids.count(1) for ids in encoded), sum(len(ids) for ids in encoded)
    with_unk = evaluate(student, examples, metric, answers[key])
    student.use_stand_ins(stand_ins)
    with_stand_ins = evaluate(student, examples, metric, answers[key])
    return {"run": str(run), "eval": examples.source, "metric": metric, "unknown_tokens": unknown, "tokens": tokens,
            "unk": with_unk, "stand_ins": with_stand_ins}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="finished distillation run directories, comma-separated")
    parser.add_argument("--data-root", help="where the tasks' data is, if not where the runs read it")
    parser.add_argument("--json", default="runs/bench/stand_in_table.json")
    args = parser.parse_args()

    teachers, answers = {}, {}
    results = [score_run(Path(run), args.data_root, teachers, answers) for run in args.runs.split(",")]
    headers = ["run", "tokens outside the vocabulary", "[UNK]: score", "% of teacher", "agreement",
               "stand-ins: score", "% of teacher", "agreement", "change (points of the teacher)"]
    rows = [[Path(r["run"]).name, f"{r['unknown_tokens']} ({100 * r['unknown_tokens'] / r['tokens']:.2f}%)",
             r["unk"]["task_metric"], r["unk"]["percent_of_teacher"], r["unk"]["agreement"],
             r["stand_ins"]["task_metric"], r["stand_ins"]["percent_of_teacher"], r["stand_ins"]["agreement"],
             round(r["stand_ins"]["percent_of_teacher"] - r["unk"]["percent_of_teacher"], 2)] for r in results]
    changes = [row[-1] for row in rows]
    rows.append(["mean", "", "", "", "", "", "", "", round(statistics.mean(changes), 2)])
    table = markdown_table(headers, rows)
    machine = machine_description()
    print(f"Machine: {machine}\n\n{table}")
    save_results(args.json, "stand_in_table", machine, results=results, table=table)


if __name__ == "__main__":
    main()
