"""`make demo`: the main job end to end on the packaged defaults, quick enough for a fresh machine.

    python -m zskd.demo --out runs/demo

1. A teacher: the benchmark SST-2 teacher in runs/teachers/sst2 when it is there, else a quick one (packaged
   MiniLM-L6 on 8,000 SST-2 training phrases for one epoch; the benchmark teacher uses all 67,349 for four).
2. Zero-shot distillation into a BiLSTM student from the out-of-domain corpora only (no SST-2 text).
3. Teacher against student on SST-2 dev: accuracy, agreement, size and CPU latency.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zskd.cli import main as zskd_main

BENCHMARK_TEACHER = Path("runs/teachers/sst2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo", help="where the demo writes (default: runs/demo)")
    parser.add_argument("--data-root", help="benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    parser.add_argument("--seed", default="0", help="seed for every step")
    args = parser.parse_args(argv)
    out = Path(args.out)
    root = ["--data-root", args.data_root] if args.data_root else []
    seed = ["--seed", args.seed]

    teacher = BENCHMARK_TEACHER if (BENCHMARK_TEACHER / "run.json").is_file() else out / "teacher"
    if teacher.exists():
        print(f"[demo] 1/3 using the teacher in {teacher}")
    else:
        print("[demo] 1/3 training a quick SST-2 teacher "
              "(8,000 phrases, 1 epoch; the benchmark teacher uses all 67,349)")
        code = zskd_main(["teacher-train", "--task", "sst2", "--max-train-examples", "8000", "--epochs", "1",
                          "--lr", "1e-4", "--out", str(teacher), *root, *seed])
        if code:
            return code

    student = out / "student"
    if student.exists():
        print(f"[demo] 2/3 using the student in {student}")
    else:
        print("[demo] 2/3 zero-shot distillation from out-of-domain text (Brown + WikiText-2) into a BiLSTM")
        code = zskd_main(["distill", "--teacher", str(teacher), "--method", "ood", "--student", "bilstm",
                          "--transfer-size", "12000", "--steps", "1500", "--eval-task", "sst2", "--out", str(student),
                          "--cache-dir", str(out / "cache"), *root, *seed])
        if code:
            return code

    print("[demo] 3/3 student against teacher on SST-2 dev, with CPU latency")
    return zskd_main(["eval", "--model", str(student), "--teacher", str(teacher), "--task", "sst2", "--latency",
                      "--json", str(out / "eval.json"), *root])


if __name__ == "__main__":
    sys.exit(main())
