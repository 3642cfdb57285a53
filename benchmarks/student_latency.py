"""Batch-1 CPU latency of students against their teacher, in PyTorch and in ONNX Runtime, measured in one run.

    python benchmarks/student_latency.py --students runs/sst2-ood[,DIR...] --teacher runs/teachers/sst2 [--repeats 5]

Each model answers one SST-2 dev sentence per call (`zskd.evaluate.measure_latency`: 400 calls, each on the next
sentence, after 20 warm-up calls; tokenising included); the reported time is the median of `--repeats` such
medians. Students run in ONNX Runtime after `zskd export` (done here when model.onnx is missing). The teacher is
exported too (a temporary file), so each ratio can be read within one runtime: student / teacher in PyTorch,
student in ONNX Runtime / teacher in PyTorch (what a user who deploys the student sees against the teacher as
transformers runs it), and both in ONNX Runtime. ONNX Runtime runs the teacher on 1 and on all threads; the
faster is kept.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import save_results
from zskd.data import tokenize
from zskd.evaluate import measure_latency
from zskd.export import ONNX_FILE, OnnxStudent, export_onnx, save_onnx
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import load_student
from zskd.tasks import load_split
from zskd.teacher import Teacher


class OnnxTeacher:
    """The teacher's classifier exported for one input of any length, run by ONNX Runtime (benchmark only)."""

    def __init__(self, teacher: Teacher, directory: Path, threads: int):
        import onnxruntime

        self.tokenizer, self.max_length = teacher.tokenizer, teacher.max_length
        path = directory / "teacher.onnx"
        if not path.is_file():
            encoded = teacher.tokenizer(["a sentence long enough to export with"], return_tensors="pt")
            example = {name: encoded[name] for name in ("input_ids", "attention_mask", "token_type_ids")}
            length = torch.export.Dim("length", min=1, max=teacher.max_length)
            save_onnx(_LogitsOnly(teacher.model).eval(), example, path, tuple({1: length} for _ in example))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, inputs) -> np.ndarray:
        encoded = tokenize(self.tokenizer, inputs, self.max_length)
        out = []
        for ids, segments in zip(encoded["input_ids"], encoded["token_type_ids"]):
            ids = np.array([ids], dtype=np.int64)
            out.append(self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                               "token_type_ids": np.array([segments], dtype=np.int64)})[0][0])
        return np.stack(out)


class _LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def batch1_ms(model, inputs, repeats: int) -> dict:
    medians = [measure_latency(model, inputs, 1, repeats=400, warmup=20)["median_ms"] for _ in range(repeats)]
    return {"median_ms": round(statistics.median(medians), 3), "medians_ms": medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", required=True, help="student directories, comma-separated")
    parser.add_argument("--teacher", default="runs/teachers/sst2", help="teacher directory")
    parser.add_argument("--repeats", type=int, default=5, help="medians of 400 calls; their median is reported")
    parser.add_argument("--data-root", help="benchmark data root")
    parser.add_argument("--json", default="runs/bench/student_latency.json", help="where to write the results")
    args = parser.parse_args()

    inputs = load_split("sst2", "dev", args.data_root).texts
    teacher = Teacher.from_pretrained(args.teacher, bf16=False)
    with tempfile.TemporaryDirectory() as scratch:
        candidates = {threads: batch1_ms(OnnxTeacher(teacher, Path(scratch), threads), inputs, args.repeats)
                      for threads in sorted({1, torch.get_num_threads()})}
    onnx_threads = min(candidates, key=lambda t: candidates[t]["median_ms"])
    onnx_name = f"teacher, ONNX Runtime ({onnx_threads} thread{'s' if onnx_threads > 1 else ''})"
    measured = {"teacher, PyTorch": batch1_ms(teacher, inputs, args.repeats), onnx_name: candidates[onnx_threads]}
    teacher_torch, teacher_onnx = (m["median_ms"] for m in measured.values())
    rows = [[name, m["median_ms"], "", "", ""] for name, m in measured.items()]
    for directory in args.students.split(","):
        if not (Path(directory) / ONNX_FILE).is_file():
            export_onnx(directory)
        student = load_student(directory)
        name = f"{Path(directory).name} ({student.student_type}, {student.num_parameters():,} parameters)"
        torch_ms = batch1_ms(student, inputs, args.repeats)
        onnx_ms = batch1_ms(OnnxStudent(directory), inputs, args.repeats)
        measured[f"{name}, PyTorch"], measured[f"{name}, ONNX Runtime"] = torch_ms, onnx_ms
        rows.append([f"{name}, PyTorch", torch_ms["median_ms"], round(teacher_torch / torch_ms["median_ms"], 1),
                     "", ""])
        rows.append([f"{name}, ONNX Runtime", onnx_ms["median_ms"], "",
                     round(teacher_torch / onnx_ms["median_ms"], 1), round(teacher_onnx / onnx_ms["median_ms"], 1)])
    headers = ["model", "batch 1 ms", "teacher (PyTorch) / student (PyTorch)",
               "teacher (PyTorch) / student (ONNX Runtime)", "teacher (ONNX Runtime) / student (ONNX Runtime)"]
    table = markdown_table(headers, rows)
    machine = machine_description()
    print(table)
    print(f"\nSST-2 dev sentences, one per call; median of {args.repeats} medians of 400 calls; {machine}")
    save_results(args.json, "student_latency", machine, args=vars(args), measured=measured, table=table)


if __name__ == "__main__":
    main()
