"""Where a pair student parts from its teacher: a pair task's evaluation pairs in four bands of word overlap (the
share of the second sentence's words found in the first, as in a run's `pair_profile`), and in each band the
teacher's class mix, the student's, and their agreement on each of the teacher's classes.

    python benchmarks/pair_overlap.py --task rte --student runs/bench/s38/pairs/rte-...-s0
    python benchmarks/pair_overlap.py --task mrpc --student DIR --teacher runs/teachers/mrpc --json out.json

A student that leans on overlap more than its teacher shows as class mixes that differ most at one end of the bands.
The teacher labels in float32 (`bf16=False`), so its answers do not depend on whether the machine labels in
bfloat16.
"""

from __future__ import annotations

import argparse

import numpy as np

from common import save_results
from zskd.methods.pairs import second_words_in_first
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import load_student
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher


def overlap_bands(overlap: np.ndarray, teacher: np.ndarray, student: np.ndarray, label_names: list[str],
                  bands: int = 4) -> list[dict]:
    """For each band of `overlap` (equal counts, lowest first): its range, how many pairs, the % of them the teacher
    and the student give each class, and the student's agreement on the pairs the teacher gives each class."""
    order = np.argsort(overlap, kind="stable")
    rows = []
    for chosen in np.array_split(order, bands):
        row = {"overlap": f"{overlap[chosen].min():.2f}-{overlap[chosen].max():.2f}", "pairs": len(chosen),
               "agreement": round(100 * float((teacher[chosen] == student[chosen]).mean()), 1)}
        for k, name in enumerate(label_names):
            given = chosen[teacher[chosen] == k]
            row[f"teacher {name}"] = round(100 * float((teacher[chosen] == k).mean()), 1)
            row[f"student {name}"] = round(100 * float((student[chosen] == k).mean()), 1)
            row[f"agreement on teacher's {name}"] = round(100 * float((student[given] == k).mean()), 1) \
                if len(given) else None
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="a pair task: mrpc, rte")
    parser.add_argument("--student", required=True, help="a finished pair run's directory")
    parser.add_argument("--teacher", help="the teacher's directory (default: runs/teachers/<task>)")
    parser.add_argument("--data-root")
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--json", help="where to write the results (default: runs/bench/pair_overlap-<task>.json)")
    args = parser.parse_args()

    task = get_task(args.task)
    if not task.is_pair:
        parser.error(f"--task {task.name} reads single sentences: give a pair task (mrpc, rte)")
    examples = load_split(task, None, args.data_root)
    pairs = list(zip(examples.texts, examples.texts2))
    teacher = Teacher.from_pretrained(args.teacher or f"runs/teachers/{task.name}", bf16=False)
    student = load_student(args.student)
    teacher_answers = teacher.logits(pairs).argmax(-1)
    student_answers = student.logits(pairs).argmax(-1)
    overlap = np.array([second_words_in_first(a, b) for a, b in pairs])
    rows = overlap_bands(overlap, teacher_answers, student_answers, teacher.label_names, args.bands)
    table = markdown_table(list(rows[0]), [list(row.values()) for row in rows])
    print(f"{task.name} {examples.source}: {len(pairs)} pairs, student {args.student}\n\n{table}\n\n"
          f"{machine_description()}")
    save_results(args.json or f"runs/bench/pair_overlap-{task.name}.json", "pair_overlap", machine_description(),
                 args=vars(args), results=rows, table=table)


if __name__ == "__main__":
    main()
