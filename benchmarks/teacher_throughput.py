"""Teacher labelling throughput: zskd's `Teacher.logits` in each runtime (PyTorch float32 and bfloat16, ONNX Runtime
float32 and int8) against transformers' default text-classification pipeline, same model, same inputs (SST-2 dev +
test sentences), measured in the same run, with the share of labels that differ from PyTorch float32.

    python benchmarks/teacher_throughput.py --model runs/teachers/sst2 [--repeats 3] [--json runs/bench/throughput.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np

from common import eval_inputs
from zskd.config import write_json
from zskd.report import markdown_table
from zskd.runinfo import machine_description, versions
from zskd.teacher import Teacher


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="runs/teachers/sst2", help="teacher directory")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the median is reported")
    parser.add_argument("--data-root", help="benchmark data root")
    parser.add_argument("--json", default="runs/bench/teacher_throughput.json", help="where to write the results")
    args = parser.parse_args()

    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    texts = eval_inputs("sst2", args.data_root)  # SST-2 dev + test, as the distillation benchmarks score it
    classify = pipeline("text-classification", model=args.model, device=-1)
    exact = Teacher.from_pretrained(args.model, bf16=False)
    fast = Teacher(exact.model, exact.tokenizer, bf16=True)
    default_bf16 = Teacher(exact.model, exact.tokenizer).bf16  # what a teacher picks here when not told

    onnx_dir = Path(args.json).parent / "teacher-onnx"
    onnx = Teacher(exact.model, exact.tokenizer, bf16=False).use_onnx_runtime(onnx_dir)
    onnx_int8 = Teacher(exact.model, exact.tokenizer, bf16=False).use_onnx_runtime(onnx_dir, int8=True)

    pipeline_seconds, pipeline_out = timed(lambda: classify(texts), args.repeats)
    label_of = {name: i for i, name in enumerate(exact.label_names)}
    pipeline_labels = np.array([label_of[o["label"]] for o in pipeline_out])
    reference = exact.logits(texts).argmax(-1)  # PyTorch float32
    rows = [["transformers pipeline (default, float32)", len(texts), round(pipeline_seconds, 2),
             round(len(texts) / pipeline_seconds, 1), 1.0,
             f"{100 * float(np.mean(pipeline_labels != reference)):.2f}"]]
    measured = {"pipeline_seconds": pipeline_seconds}
    for name, teacher in (("float32", exact), ("bfloat16 autocast", fast), ("ONNX Runtime float32", onnx),
                          ("ONNX Runtime int8", onnx_int8)):
        seconds, logits = timed(lambda: teacher.logits(texts), args.repeats)
        differ = 100 * float(np.mean(reference != logits.argmax(-1)))
        rows.append([f"zskd Teacher.logits ({name})", len(texts), round(seconds, 2), round(len(texts) / seconds, 1),
                     round(pipeline_seconds / seconds, 2), f"{differ:.2f}"])
        measured[name] = {"seconds": seconds, "speedup": pipeline_seconds / seconds,
                          "labels_differing_from_float32_percent": differ}
    headers = ["labeller", "sentences", "median seconds", "sentences/s", "speed-up", "labels differing from float32 %"]
    table = markdown_table(headers, rows)
    machine = machine_description()
    print(table)
    print(f"\nmedian of {args.repeats} runs; bfloat16 is the default where the CPU is known to run it faster "
          f"(here: {default_bf16}); {machine}")
    results = {"benchmark": "teacher_throughput", "date": date.today().isoformat(), "machine": machine,
               "versions": versions(), "model": args.model, "repeats": args.repeats, "sentences": len(texts),
               "default_bf16": default_bf16, **measured, "table": table}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
