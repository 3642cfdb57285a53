import time

import numpy as np

from zskd.evaluate import agreement, agreement_by_class, best_constant_answer, classification_metrics, measure_latency


def test_metrics_against_hand_computation():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 1, 0, 1, 0, 2]
    m = classification_metrics(y_true, y_pred, 3, metric="macro_f1")
    assert m["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert m["accuracy"] == round(100 * 4 / 6, 2)
    f1 = [2 * 2 / (3 + 3), 2 * 1 / (2 + 2), 1.0]  # 2TP / (predicted + actual) per class
    assert m["macro_f1"] == round(100 * float(np.mean(f1)), 2)
    assert m["f1"] == 50.0 and m["task_metric"] == m["macro_f1"] and m["n"] == 6


def test_class_never_predicted_or_present_has_f1_zero():
    m = classification_metrics([0, 0], [0, 0], 2, metric="f1")
    assert m["f1"] == 0.0 and m["accuracy"] == 100.0


def test_agreement():
    assert agreement([0, 1, 1, 0], [0, 1, 0, 0]) == 75.0


def test_agreement_by_class_exposes_a_student_that_answers_one_class():
    teacher = [0, 0, 0, 1, 1, 2]
    assert agreement_by_class([0, 0, 0, 0, 0, 0], teacher, ["a", "b", "c"]) == {"a": 100.0, "b": 0.0, "c": 0.0}
    assert agreement_by_class([0, 1, 0, 1, 1, 0], teacher, ["a", "b", "c", "d"]) == {
        "a": round(200 / 3, 2), "b": 100.0, "c": 0.0, "d": None}


def test_best_constant_answer_is_the_majority_for_accuracy_and_can_be_the_positive_class_for_f1():
    labels = [1, 1, 0, 0, 0]  # 3 of 5 negative: answering "no" is 60% accurate; answering "yes" has F1 2*2/(5+2)
    assert best_constant_answer(labels, ["no", "yes"]) == {"label": "no", "task_metric": 60.0}
    assert best_constant_answer(labels, ["no", "yes"], metric="f1") == {"label": "yes", "task_metric": 57.14}


def test_latency_reports_median_over_repeats():
    class Fake:
        """Each call sleeps longer than the one before: 2 warm-up calls, then 1, 2, 3, 4 and 50 ms."""

        label_names = ["a", "b"]
        calls = []
        sleeps_ms = [0, 0, 1, 2, 3, 4, 50]

        def logits(self, inputs):
            time.sleep(self.sleeps_ms[len(self.calls)] / 1000)
            self.calls.append(len(inputs))
            return np.zeros((len(inputs), 2))

    fake = Fake()
    result = measure_latency(fake, ["x", "y", "z"], batch_size=4, repeats=5, warmup=2)
    assert fake.calls == [4] * 7
    assert result["batch_size"] == 4 and result["repeats"] == 5
    assert 3.0 <= result["median_ms"] < 40.0  # the third of five sorted times, not the outlier or the mean (12 ms)
    assert result["p90_ms"] > 4.0
