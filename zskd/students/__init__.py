"""Students: small classifiers that read the teacher's tokens through a pruned vocabulary.

`create_student` builds one initialised from a teacher; `load_student` reads a saved student directory.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Sequence

import torch

from zskd.data import DataError
from zskd.resources import loading
from zskd.students.base import STUDENT_CONFIG_FILE, Student, is_student_directory
from zskd.students.bilstm import BiLSTMStudent
from zskd.students.cnn import CNNStudent
from zskd.students.pair_bilstm import PairBiLSTMStudent
from zskd.students.transformer import TransformerStudent

STUDENTS: dict[str, type[Student]] = {"bilstm": BiLSTMStudent, "cnn": CNNStudent, "transformer": TransformerStudent,
                                      "pair-bilstm": PairBiLSTMStudent}


def default_student(pairs: bool) -> str:
    """The student a run gets when it names none: `pair-bilstm` for a teacher that reads pairs, else `bilstm`."""
    return "pair-bilstm" if pairs else "bilstm"


def parse_student_options(student_type: str, options: str | dict | None) -> dict[str, Any]:
    """Options for the student's config dataclass, from a dict (YAML) or "name=value,name=value" (command line);
    a name or value that does not fit is a `DataError` naming it and what it takes."""
    if not options:
        return {}
    config_class = STUDENTS[student_type].config_class
    hints = typing.get_type_hints(config_class)
    if isinstance(options, str):
        items = [item for item in options.split(",") if item]
        malformed = [item for item in items if "=" not in item]
        if malformed:
            raise DataError(f"--student-options {options!r}: {malformed[0]!r} is not name=value; e.g. "
                            "hidden_size=64,dropout=0.1")
        options = dict(item.split("=", 1) for item in items)
    parsed = {}
    for name, value in options.items():
        if name not in hints or name in ("vocab_size", "num_labels"):
            allowed = [f.name for f in dataclasses.fields(config_class) if f.name not in ("vocab_size", "num_labels")]
            raise DataError(f"student {student_type} has no option {name!r}; options: {', '.join(allowed)}")
        kind = hints[name]
        if isinstance(value, str):
            try:
                if typing.get_origin(kind) is list:
                    value = [int(v) for v in value.split(":")]
                elif kind is bool:  # bool("false") is True
                    if value.lower() not in ("true", "false"):
                        raise ValueError
                    value = value.lower() == "true"
                else:
                    value = kind(value)
            except ValueError:
                wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(
                    kind, "whole numbers joined by ':'" if typing.get_origin(kind) is list else "text")
                raise DataError(f"student option {name}={value!r}: give {wanted}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise DataError(f"student option {name}={value}: must not be negative")
        parsed[name] = value
    return parsed


def create_student(student_type: str, teacher, kept_token_ids: Sequence[int],
                   options: dict[str, Any] | None = None) -> Student:
    """A new student of `student_type` for `teacher`'s labels and tokenizer, initialised from the teacher
    (`Student.from_teacher`: embeddings, and for the transformer at the teacher's width, its layers)."""
    if student_type not in STUDENTS:
        raise ValueError(f"unknown student {student_type!r}: choose one of {', '.join(STUDENTS)}")
    return STUDENTS[student_type].from_teacher(teacher, kept_token_ids, dict(options or {}))


def widths_to_fit(student_type: str, options: dict[str, Any]) -> list[str]:
    """The `width_options` of the student that `options` leave for `--max-parameters` to set; refused when none."""
    widths = STUDENTS[student_type].width_options
    free = [name for name in widths if name not in options]
    if not free:
        raise DataError(f"--max-parameters: student {student_type} has no width to fit to a budget"
                        + (" left: --student-options sets them all" if widths else
                           "; give its shape in --student-options instead"))
    return free


def fit_to_budget(student_type: str, teacher, kept_token_ids: Sequence[int], options: dict[str, Any],
                  max_parameters: int) -> dict[str, Any]:
    """`options` with the student's `width_options` that they leave unset scaled together from their defaults, by
    the largest factor (found by bisection; the size grows with it) at which the student has at most
    `max_parameters` parameters for this vocabulary and these labels: the user states the size, the shape follows."""
    cls = STUDENTS[student_type]
    free = widths_to_fit(student_type, options)
    defaults = {f.name: f.default for f in dataclasses.fields(cls.config_class) if f.name in free}

    def scaled(factor: float) -> dict[str, Any]:
        return {**options, **{name: max(1, round(value * factor)) for name, value in defaults.items()}}

    def size(factor: float) -> int:
        config = cls.config_class(vocab_size=len(kept_token_ids), num_labels=teacher.num_labels, **scaled(factor))
        with torch.device("meta"):  # shapes only: nothing allocated
            student = cls(config, teacher.tokenizer, kept_token_ids, teacher.label_names, teacher.max_length)
        return student.num_parameters()

    low, high = 1e-3, 100.0  # widths from 1 to 100x the defaults
    if size(low) > max_parameters:
        raise DataError(f"--max-parameters {max_parameters:,} is under the smallest {student_type} student for this "
                        f"vocabulary of {len(kept_token_ids):,} tokens ({size(low):,}): raise it, or cap the "
                        "vocabulary with --max-vocab")
    for _ in range(40):
        middle = (low * high) ** 0.5
        low, high = (middle, high) if size(middle) <= max_parameters else (low, middle)
    return scaled(low)


def load_student(directory: str | Path) -> Student:
    """A saved student, ready for `logits`; weights from safetensors only."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not is_student_directory(directory):
        raise FileNotFoundError(f"{directory} is not a zskd student directory "
                                f"(no {STUDENT_CONFIG_FILE} with zskd_student)")
    with loading("a student", directory):
        meta = json.loads((directory / STUDENT_CONFIG_FILE).read_text())
        cls = STUDENTS[meta["zskd_student"]]
        tokenizer = AutoTokenizer.from_pretrained(directory)
        config = cls.config_class(**{**cls.saved_before, **meta["config"]})
        student = cls(config, tokenizer, meta["kept_token_ids"], meta["label_names"], meta["max_length"])
        student.load_state_dict(load_file(directory / "model.safetensors"))
    return student.eval()


def load_classifier(path: str | Path, onnx: bool = False, int8: bool = False, trust_remote_code: bool = False):
    """What `eval` and `serve` score with: a student (in PyTorch, or its exported graph with `onnx`, the int8 one with
    `int8`), or else a transformers sequence-classification model in exact float32."""
    if int8 and not onnx:
        raise DataError("--int8 runs the quantised ONNX graph: add --onnx")
    if onnx:
        from zskd.export import OnnxStudent

        return OnnxStudent(path, int8=int8)
    if is_student_directory(path):
        return load_student(path)
    from zskd.teacher import Teacher

    return Teacher.from_pretrained(path, trust_remote_code=trust_remote_code, bf16=False)


__all__ = ["STUDENTS", "Student", "create_student", "default_student", "fit_to_budget", "load_classifier",
           "load_student", "parse_student_options", "widths_to_fit"]
