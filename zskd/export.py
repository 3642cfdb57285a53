"""A saved student as an ONNX graph, run by ONNX Runtime: the same logits, a third of the batch-1 time on a CPU.

    zskd export --model runs/sst2-ood          # writes runs/sst2-ood/model.onnx
    zskd eval --model runs/sst2-ood --onnx --task sst2 --teacher runs/teachers/sst2 --latency

The graph takes one unpadded input, `input_ids` and `token_type_ids` of shape [1, L] in the student's vocabulary,
and returns [1, K] logits: what `Student.logits` computes for one input. `OnnxStudent` puts the student's
tokenizer and vocabulary in front of it and runs inputs one at a time. Needs `pip install 'zskd[onnx]'`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from zskd.data import Examples, TextInput, segment_ids, tokenize
from zskd.resources import ResourceError
from zskd.students.base import STUDENT_CONFIG_FILE, finite_logits, is_student_directory, predictions, student_id_map

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model-int8.onnx"
CHECK_TEXTS = ("a short one", "a longer sentence , with a few more words in it than the first one had .")


class _OneInput(torch.nn.Module):
    """The student's single-input forward as a module with positional inputs, for the exporter."""

    def __init__(self, student):
        super().__init__()
        self.student = student

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.student._forward_one(input_ids, token_type_ids)


def _require_onnx() -> None:
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ResourceError(f"ONNX export needs onnx, onnxscript and onnxruntime ({error.name} is missing): "
                            "pip install 'zskd[onnx]'") from None


def save_onnx(module: torch.nn.Module, example: dict[str, torch.Tensor], path: Path,
              dynamic_shapes: tuple[dict[int, torch.export.Dim], ...]) -> None:
    """Export `module(*example.values())` -> logits to `path` through the dynamo exporter, each input's axes free
    as `dynamic_shapes` says, without the exporter's notes and deprecation warnings."""
    # the exporter keeps aten.lstm whole (ONNX has an LSTM operator) but leaves a stale dispatch entry behind, so
    # that the next export in the process decomposes it and fixes the sequence length: start each one afresh
    for overload in (torch.ops.aten.lstm.input, torch.ops.aten.lstm.data):
        overload._dispatch_cache.clear()
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, tuple(example.values()), input_names=list(example),
                                        output_names=["logits"], dynamic_shapes=dynamic_shapes, dynamo=True,
                                        verbose=False)
    finally:
        exporter_log.setLevel(level)
    program.save(str(path))


def export_onnx(directory: str | Path) -> dict:
    """Write `directory/model.onnx` for the saved student in `directory` (atomically), check that ONNX Runtime
    gives its logits, and return the largest difference seen."""
    from zskd.students import load_student

    _require_onnx()
    directory = Path(directory)
    student = load_student(directory)
    encoded = student.encode([CHECK_TEXTS[1]])
    example = {"input_ids": torch.tensor(encoded["input_ids"]),
               "token_type_ids": torch.tensor(encoded["token_type_ids"])}
    partial = directory / (ONNX_FILE + ".partial")
    length = torch.export.Dim("length", min=1, max=student.max_length)
    save_onnx(_OneInput(student).eval(), example, partial, tuple({1: length} for _ in example))
    check_inputs = [*CHECK_TEXTS, tuple(CHECK_TEXTS)]
    difference = float(np.abs(OnnxStudent(directory, graph=partial).logits(check_inputs)
                              - student.logits(check_inputs)).max())
    if not np.isfinite(difference) or difference > 1e-3:
        partial.unlink()
        raise RuntimeError(f"the exported graph's logits differ from the student's by {difference:.2g}; "
                           "nothing written")
    os.replace(partial, directory / ONNX_FILE)
    return {"path": str(directory / ONNX_FILE), "max_abs_difference": difference}


def export_int8(directory: str | Path, check: Examples | None = None) -> dict:
    """`directory/model-int8.onnx`: ONNX Runtime's dynamic int8 quantisation of the student's `model.onnx`
    (exported first if missing). With labelled `check` examples, the accuracy of both graphs on them and the share
    of labels that change, also written into the model card."""
    directory = Path(directory)
    if not (directory / ONNX_FILE).is_file():
        export_onnx(directory)
    graph = quantised_int8(directory / ONNX_FILE, directory / ONNX_INT8_FILE)
    result = {"path": str(graph), "bytes_fp32": (directory / ONNX_FILE).stat().st_size,
              "bytes_int8": graph.stat().st_size}
    if check is not None:
        inputs = check.inputs()
        fp32 = OnnxStudent(directory).logits(inputs).argmax(-1)
        int8 = OnnxStudent(directory, int8=True).logits(inputs).argmax(-1)
        labels = np.array(check.labels)
        result.update(data=check.source, n=len(labels), accuracy_fp32=round(100 * float((fp32 == labels).mean()), 2),
                      accuracy_int8=round(100 * float((int8 == labels).mean()), 2),
                      labels_changed_percent=round(100 * float((fp32 != int8).mean()), 2))
        card = directory / "README.md"
        if card.is_file():
            text = card.read_text().split("\n## int8")[0].rstrip("\n")
            card.write_text(text + f"\n\n## int8 (`{ONNX_INT8_FILE}`, ONNX Runtime dynamic quantisation; "
                            "convolutions stay float32)\n\n"
                            f"On {check.source} ({len(labels)} labelled examples): accuracy "
                            f"{result['accuracy_fp32']:.2f} in float32, {result['accuracy_int8']:.2f} in int8 "
                            f"({result['accuracy_int8'] - result['accuracy_fp32']:+.2f} points); "
                            f"{result['labels_changed_percent']:.2f}% of the labels change. Run it with "
                            f"`zskd predict --model DIR --onnx --int8` or `OnnxStudent(DIR, int8=True)`.\n")
    return result


def quantised_int8(graph: Path, path: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantisation of `graph` at `path` (weights int8, activations quantised on the
    fly), unless one is there; written under a temporary name and renamed. Convolutions stay float32: at one
    sentence's size ONNX Runtime's ConvInteger took 2.7x the time of the float convolution it replaces, and the CNN
    student's weights are mostly its embedding table, which is quantised."""
    if not path.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.registry import IntegerOpsRegistry

        partial = path.with_name(path.name + ".partial")
        quantize_dynamic(str(graph), str(partial), weight_type=QuantType.QInt8,
                         op_types_to_quantize=[op for op in IntegerOpsRegistry if op != "Conv"])
        partial.replace(path)
    return path


class OnnxStudent:
    """A student directory with `model.onnx`, run by ONNX Runtime on the CPU: `logits` as `Student.logits`."""

    def __init__(self, directory: str | Path, graph: str | Path | None = None, threads: int = 1, int8: bool = False):
        import onnxruntime
        from transformers import AutoTokenizer

        directory = Path(directory)
        if not is_student_directory(directory):
            raise FileNotFoundError(f"{directory} is not a zskd student directory: only students are exported to ONNX")
        graph = Path(graph) if graph else directory / (ONNX_INT8_FILE if int8 else ONNX_FILE)
        if not graph.is_file():
            raise FileNotFoundError(f"{graph} not found: write it with `zskd export --model {directory}"
                                    f"{' --quantize int8' if int8 else ''}`")
        meta = json.loads((directory / STUDENT_CONFIG_FILE).read_text())
        self.directory = directory
        self.label_names = meta["label_names"]
        self.max_length = meta["max_length"]
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self._teacher_to_student = student_id_map(len(self.tokenizer), meta["kept_token_ids"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one input's operations are too small to split
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def predict(self, inputs: Sequence[TextInput], batch_size: int = 64) -> list[dict]:
        """As `Student.predict`, run by ONNX Runtime."""
        return predictions(self.logits(inputs, batch_size), self.label_names)

    def logits(self, inputs: Sequence[TextInput], batch_size: int = 64) -> np.ndarray:
        """[N, K] float32 logits in the order of `inputs`, one input at a time (`batch_size` is ignored)."""
        encoded = tokenize(self.tokenizer, inputs, self.max_length)
        segments = segment_ids(encoded)
        out = np.zeros((len(inputs), len(self.label_names)), dtype=np.float32)
        for i, ids in enumerate(encoded["input_ids"]):
            input_ids = self._teacher_to_student[ids][None]
            token_type_ids = np.array([segments[i]], dtype=np.int64)
            out[i] = self.session.run(None, {"input_ids": input_ids, "token_type_ids": token_type_ids})[0][0]
        return finite_logits(out, "the student")

    def num_parameters(self) -> int:
        """The student's parameter count, read from its safetensors header."""
        from safetensors import safe_open

        with safe_open(self.directory / "model.safetensors", framework="np") as weights:
            return sum(int(np.prod(weights.get_slice(name).get_shape())) for name in weights.keys())
