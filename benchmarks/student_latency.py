"""CPU latency of students against their teacher, in PyTorch and in ONNX Runtime (students also in int8), at batch
1 and 64, with each one's SST-2 dev + test accuracy, measured in one run.

    python benchmarks/student_latency.py --students runs/sst2-ood[,DIR...] --teacher runs/teachers/sst2 [--repeats 5]

Each model answers one SST-2 dev sentence per call (`zskd.evaluate.measure_latency`: 400 calls, each on the next
sentence, after 20 warm-up calls; tokenising included); the reported time is the median of `--repeats` such
medians. Students run in ONNX Runtime after `zskd export` (done here when model.onnx is missing). The teacher is
exported too (a temporary file), so each ratio can be read within one runtime: student / teacher in PyTorch,
student in ONNX Runtime / teacher in PyTorch (what a user who deploys the student sees against the teacher as
transformers runs it), and both in ONNX Runtime. ONNX Runtime runs the teacher on 1 and on all threads; the
faster is kept. Batch 64: the median of `--repeats` x 5 calls on 64 sentences each (ONNX students still run one
input at a time: their graph takes one). Students also run the int8 graph of `zskd export --quantize int8` (made
here when missing).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from common import batch1_ms, save_results
from zskd.data import tokenize
from zskd.evaluate import measure_latency
from zskd.export import ONNX_FILE, ONNX_INT8_FILE, OnnxStudent, export_int8, export_onnx, save_onnx
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import load_student
from zskd.tasks import load_split
from zskd.teacher import ClassifierLogits, Teacher


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
            save_onnx(ClassifierLogits(teacher.model).eval(), example, path, tuple({1: length} for _ in example))
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


def measured_row(model, inputs, scored: tuple[list, np.ndarray], repeats: int) -> dict:
    """Batch-1 and batch-64 median ms, and accuracy on the scored (inputs, labels)."""
    texts, labels = scored
    accuracy = 100 * float((model.logits(texts).argmax(-1) == labels).mean())
    batch64 = measure_latency(model, inputs, 64, repeats=5 * repeats, warmup=2)["median_ms"]
    return {**batch1_ms(model, inputs, repeats), "batch64_ms": batch64, "accuracy": round(accuracy, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", required=True, help="student directories, comma-separated")
    parser.add_argument("--teacher", default="runs/teachers/sst2", help="teacher directory")
    parser.add_argument("--repeats", type=int, default=5, help="medians of 400 calls; their median is reported")
    parser.add_argument("--data-root", help="benchmark data root")
    parser.add_argument("--json", default="runs/bench/student_latency.json", help="where to write the results")
    args = parser.parse_args()

    inputs = load_split("sst2", "dev", args.data_root).texts
    scored_examples = [load_split("sst2", split, args.data_root) for split in ("dev", "test")]
    scored = ([t for e in scored_examples for t in e.texts], np.array([y for e in scored_examples for y in e.labels]))
    teacher = Teacher.from_pretrained(args.teacher, bf16=False)
    with tempfile.TemporaryDirectory() as scratch:
        candidates = {threads: OnnxTeacher(teacher, Path(scratch), threads) for threads in
                      sorted({1, torch.get_num_threads()})}
        timed = {threads: batch1_ms(model, inputs, args.repeats) for threads, model in candidates.items()}
        onnx_threads = min(timed, key=lambda t: timed[t]["median_ms"])
        onnx_name = f"teacher, ONNX Runtime ({onnx_threads} thread{'s' if onnx_threads > 1 else ''})"
        measured = {"teacher, PyTorch": measured_row(teacher, inputs, scored, args.repeats),
                    onnx_name: measured_row(candidates[onnx_threads], inputs, scored, args.repeats)}
    teacher_torch, teacher_onnx = (m["median_ms"] for m in measured.values())
    rows = [[name, m["median_ms"], m["batch64_ms"], m["accuracy"], "", "", ""] for name, m in measured.items()]
    for directory in args.students.split(","):
        if not (Path(directory) / ONNX_FILE).is_file():
            export_onnx(directory)
        if not (Path(directory) / ONNX_INT8_FILE).is_file():
            export_int8(directory)
        student = load_student(directory)
        name = f"{Path(directory).name} ({student.student_type}, {student.num_parameters():,} parameters)"
        for runtime, model in (("PyTorch", student), ("ONNX Runtime", OnnxStudent(directory)),
                               ("ONNX Runtime int8", OnnxStudent(directory, int8=True))):
            m = measured[f"{name}, {runtime}"] = measured_row(model, inputs, scored, args.repeats)
            torch_ratio = round(teacher_torch / m["median_ms"], 1)
            onnx_ratio = round(teacher_onnx / m["median_ms"], 1) if runtime != "PyTorch" else ""
            rows.append([f"{name}, {runtime}", m["median_ms"], m["batch64_ms"], m["accuracy"],
                         torch_ratio if runtime == "PyTorch" else "", torch_ratio if runtime != "PyTorch" else "",
                         onnx_ratio])
    headers = ["model", "batch 1 ms", "batch 64 ms", "SST-2 dev+test accuracy", "teacher (PyTorch) / student (PyTorch)",
               "teacher (PyTorch) / student (ONNX Runtime)", "teacher (ONNX Runtime) / student (ONNX Runtime)"]
    table = markdown_table(headers, rows)
    machine = machine_description()
    print(table)
    print(f"\nSST-2 dev sentences, one per call; median of {args.repeats} medians of 400 calls; {machine}")
    save_results(args.json, "student_latency", machine, args=vars(args), measured=measured, table=table)


if __name__ == "__main__":
    main()
