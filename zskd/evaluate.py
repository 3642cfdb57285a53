"""How good and how fast a classifier is: accuracy, macro-F1, the task metric, confusion matrix, agreement with
the teacher, and CPU latency at batch 1 and 64."""

from __future__ import annotations

import statistics
import time
from typing import Protocol, Sequence

import numpy as np
import torch

from zskd.data import Examples, TextInput


class Classifier(Protocol):
    """Anything that gives [N, K] logits for texts or pairs: a Teacher or a student."""

    label_names: list[str]

    def logits(self, inputs: Sequence[TextInput]) -> np.ndarray: ...


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """[K, K] counts; row = true label, column = predicted label."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def f1_per_class(matrix: np.ndarray) -> np.ndarray:
    true_pos = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(0), matrix.sum(1)
    denominator = predicted + actual
    return np.divide(2 * true_pos, denominator, out=np.zeros_like(true_pos), where=denominator > 0)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int,
                           metric: str = "accuracy") -> dict:
    """Accuracy, macro-F1, F1 of label 1 (the positive class of binary tasks), the task metric (`metric` names
    one of those), and the confusion matrix. Scores are percentages."""
    matrix = confusion_matrix(y_true, y_pred, num_labels)
    f1 = f1_per_class(matrix)
    scores = {
        "accuracy": 100.0 * np.trace(matrix) / max(matrix.sum(), 1),
        "macro_f1": 100.0 * float(f1.mean()),
        "f1": 100.0 * float(f1[1]) if num_labels > 1 else float("nan"),
    }
    if metric not in scores:
        raise ValueError(f"unknown metric {metric!r}: choose one of {', '.join(scores)}")
    return {**{k: round(float(v), 2) for k, v in scores.items()}, "metric": metric,
            "task_metric": round(float(scores[metric]), 2), "n": int(matrix.sum()), "confusion": matrix.tolist()}


def agreement(pred_a: Sequence[int], pred_b: Sequence[int]) -> float:
    """Percentage of inputs on which two classifiers predict the same label."""
    return round(100.0 * float(np.mean(np.asarray(pred_a) == np.asarray(pred_b))), 2)


def agreement_by_class(student_pred: Sequence[int], teacher_pred: Sequence[int],
                       label_names: Sequence[str]) -> dict[str, float | None]:
    """For each label, the percentage of the inputs the teacher gives it on which the student gives it too (None
    where the teacher never does): a student that answers one class scores 100 there and 0 elsewhere."""
    student_pred, teacher_pred = np.asarray(student_pred), np.asarray(teacher_pred)
    return {name: agreement(student_pred[teacher_pred == i], teacher_pred[teacher_pred == i])
            if (teacher_pred == i).any() else None for i, name in enumerate(label_names)}


def best_constant_answer(y_true: Sequence[int], label_names: Sequence[str], metric: str = "accuracy") -> dict:
    """The trivial baseline a score must beat: the label whose constant answer scores best on `metric` (the
    majority class for accuracy; for F1, often the positive class), and that score."""
    y_true = np.asarray(y_true)
    scores = [classification_metrics(y_true, np.full_like(y_true, label), len(label_names), metric)["task_metric"]
              for label in range(len(label_names))]
    best = int(np.argmax(scores))
    return {"label": label_names[best], "task_metric": scores[best]}


def percent_of_teacher(student_score: float, teacher_score: float) -> float:
    """The student's score as a percentage of the teacher's."""
    return round(100.0 * student_score / max(teacher_score, 1e-9), 2)


def teacher_comparison(y_true: Sequence[int], predictions: Sequence[int], teacher_predictions: Sequence[int],
                       label_names: Sequence[str], metric: str, student_score: float) -> dict:
    """The teacher's scores on the same examples, the agreement (overall and on each class the teacher predicts),
    and the student's `metric` `student_score` as a percentage of the teacher's."""
    teacher = classification_metrics(y_true, teacher_predictions, len(label_names), metric)
    return {"teacher": teacher, "agreement": agreement(predictions, teacher_predictions),
            "agreement_by_class": agreement_by_class(predictions, teacher_predictions, label_names),
            "percent_of_teacher": percent_of_teacher(student_score, teacher["task_metric"])}


def evaluate(model: Classifier, examples: Examples, metric: str = "accuracy",
             teacher: Classifier | None = None) -> dict:
    """Score `model` on labelled `examples` beside the best constant answer; with a teacher, also the teacher's
    score and the agreement, overall and on each class the teacher predicts."""
    if examples.labels is None:
        raise ValueError("evaluation needs labelled examples")
    inputs = examples.inputs()
    predictions = model.logits(inputs).argmax(-1)
    result = classification_metrics(examples.labels, predictions, len(model.label_names), metric)
    result["constant_answer"] = best_constant_answer(examples.labels, model.label_names, metric)
    if teacher is not None:
        result.update(teacher_comparison(examples.labels, predictions, teacher.logits(inputs).argmax(-1),
                                         model.label_names, metric, result["task_metric"]))
    return result


def measure_latency(model: Classifier, inputs: Sequence[TextInput], batch_size: int, repeats: int = 20,
                    warmup: int = 3) -> dict:
    """Median and spread of wall time of one `logits` call on `batch_size` inputs, over `repeats` calls, each on
    a different slice of `inputs` (cycled)."""
    if not inputs:
        raise ValueError("latency needs at least one input")
    times = []
    for call in range(warmup + repeats):
        start = (call * batch_size) % len(inputs)
        batch = [inputs[(start + i) % len(inputs)] for i in range(batch_size)]
        begin = time.perf_counter()
        model.logits(batch)
        if call >= warmup:
            times.append(time.perf_counter() - begin)
    return {
        "batch_size": batch_size,
        "median_ms": round(1000 * statistics.median(times), 3),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 3),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
    }
