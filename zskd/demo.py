"""`make demo`: the main job end to end on the packaged defaults, quick enough for a fresh machine.

    python -m zskd.demo --out runs/demo

Trains a quick SST-2 teacher (packaged MiniLM-L6 on 8,000 training phrases, one epoch; the benchmark teacher
uses the full set for three epochs) unless one is already in <out>/teacher, then scores it on SST-2 dev with CPU
latency.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zskd.cli import main as zskd_main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo", help="where the demo writes (default: runs/demo)")
    parser.add_argument("--data-root", help="benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    teacher = out / "teacher"
    root = ["--data-root", args.data_root] if args.data_root else []
    if teacher.exists():
        print(f"[demo] reusing the teacher in {teacher}")
    else:
        print("[demo] 1/2 training a quick SST-2 teacher (8,000 phrases, 1 epoch; the benchmark teacher uses all 67,349)")
        code = zskd_main(["teacher-train", "--task", "sst2", "--max-train-examples", "8000", "--epochs", "1",
                          "--lr", "1e-4", "--out", str(teacher), *root])
        if code:
            return code
    print("[demo] 2/2 scoring the teacher on SST-2 dev, with CPU latency")
    return zskd_main(["eval", "--model", str(teacher), "--task", "sst2", "--latency", "--json", str(out / "eval.json"), *root])


if __name__ == "__main__":
    sys.exit(main())
