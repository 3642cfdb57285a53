import time

import numpy as np

from zskd.evaluate import agreement, classification_metrics, measure_latency


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
