"""Teachers known only by their answers: an HTTP endpoint (a loopback server the test starts, well-behaved or
hostile) and a Python function, labelling with retries, a budget and the label cache, and distilled through the CLI."""

import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from conftest import SENTIMENT
from zskd.black_box_teacher import BlackBoxTeacher, EndpointOptions, EndpointScorer
from zskd.cli import main
from zskd.data import DataError
from zskd.labelling import label_with_teacher
from zskd.resources import ResourceError
from zskd.teacher import Teacher


class Endpoint:
    """A loopback text-classification server around a local teacher. Hostile on request: `fail` of the requests
    answer 500, `stall` of them hang past the client's timeout and are dropped unanswered, and more than `burst`
    requests within 50 ms get 429. `answered` counts each text in the answers actually delivered."""

    def __init__(self, teacher: Teacher, fail: float = 0.0, stall: float = 0.0, stall_seconds: float = 0.0,
                 burst: int = 0, seed: int = 0):
        self.teacher, self.fail, self.stall, self.stall_seconds, self.burst = teacher, fail, stall, stall_seconds, burst
        self.rng, self.lock = random.Random(seed), threading.Lock()
        self.answered, self.requests, self.recent = Counter(), 0, []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with endpoint.lock:
                    endpoint.requests += 1
                    now = time.monotonic()
                    endpoint.recent = [t for t in endpoint.recent if now - t < 0.05] + [now]
                    roll = endpoint.rng.random()
                    crowded = endpoint.burst and len(endpoint.recent) > endpoint.burst
                if crowded:
                    return self.reply(429, {"error": "slow down"}, {"Retry-After": "0"})
                if roll < endpoint.fail:
                    return self.reply(500, {"error": "internal"})
                if roll < endpoint.fail + endpoint.stall:
                    time.sleep(endpoint.stall_seconds)  # the client has given up: nothing is delivered
                    self.close_connection = True
                    return
                inputs = [(x["text"], x["text_pair"]) if isinstance(x, dict) else x for x in body["inputs"]]
                probabilities = torch.softmax(torch.from_numpy(endpoint.teacher.logits(inputs)), -1).tolist()
                names = endpoint.teacher.label_names
                self.reply(200, [[{"label": n, "score": p} for n, p in sorted(zip(names, row), key=lambda x: -x[1])]
                                 for row in probabilities])
                with endpoint.lock:
                    endpoint.answered.update(x if isinstance(x, str) else tuple(x) for x in inputs)

            def reply(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/predict"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def teacher(rule_teacher):
    return Teacher.from_pretrained(rule_teacher, bf16=False)


TEXTS = [f"the movie number {i} was {'good' if i % 3 else 'boring'} ." for i in range(200)]


def test_the_endpoints_answers_are_the_teachers_probabilities(teacher):
    with Endpoint(teacher) as endpoint:
        remote = BlackBoxTeacher(EndpointScorer(endpoint.url, timeout=5), endpoint.url, base=teacher,
                                 options=EndpointOptions(batch_size=16, concurrency=3))
        assert remote.label_names == teacher.label_names  # learned from a first answer, sorted
        pairs = [("a good film", "it was fun"), ("awful", "the plot")]
        for inputs in (TEXTS[:50], pairs):
            expected = teacher.logits(inputs) - teacher.logits(inputs).mean(-1, keepdims=True)  # the logits, centred
            np.testing.assert_allclose(remote.logits(inputs), expected, atol=1e-5)
    assert remote.cost["requests"] == 1 + 4 + 1 and remote.cost["retries"] == 0


def test_labelling_survives_a_hostile_endpoint_and_pays_for_each_text_once(tmp_path, teacher):
    options = EndpointOptions(batch_size=8, concurrency=4, timeout=1.0, retries=8, backoff=0.01)
    with Endpoint(teacher, fail=0.3, stall=0.1, stall_seconds=1.5, burst=3) as endpoint:
        remote = BlackBoxTeacher(EndpointScorer(endpoint.url, options.timeout), endpoint.url, base=teacher,
                                 options=options, label_names=teacher.label_names)
        logits, fresh = label_with_teacher(remote, TEXTS + TEXTS[:20], tmp_path / "cache", progress=False)
        delivered = dict(endpoint.answered)
    expected = teacher.logits(TEXTS + TEXTS[:20])
    expected -= expected.mean(-1, keepdims=True)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert fresh == len(TEXTS) and set(delivered) == set(TEXTS) and set(delivered.values()) == {1}
    batches = len(TEXTS) // options.batch_size
    cost = remote.cost
    assert cost["retries"] > 0 and cost["texts"] == len(TEXTS)
    assert batches < cost["requests"] <= batches * (options.retries + 1)  # bounded: every retry is counted
    again = BlackBoxTeacher(lambda batch: pytest.fail("a cached text was asked again"), endpoint.url, base=teacher,
                            label_names=teacher.label_names)
    cached, fresh = label_with_teacher(again, TEXTS, tmp_path / "cache", progress=False)
    assert fresh == 0 and again.cost["requests"] == 0
    np.testing.assert_array_equal(cached, logits[: len(TEXTS)])


def test_the_call_budget_stops_labelling_and_a_rerun_continues(tmp_path, teacher):
    options = EndpointOptions(batch_size=10, concurrency=1)
    with Endpoint(teacher) as endpoint:
        def remote(max_calls):
            return BlackBoxTeacher(EndpointScorer(endpoint.url, 5), endpoint.url, base=teacher, options=options,
                                   label_names=teacher.label_names, max_calls=max_calls)

        with pytest.raises(DataError, match="--max-teacher-calls 5 spent"):
            label_with_teacher(remote(5), TEXTS[:100], tmp_path / "cache", progress=False)
        _, fresh = label_with_teacher(remote(0), TEXTS[:100], tmp_path / "cache", progress=False)
        # the budget's answers were kept: a chunk (one request at concurrency 1) is stored as it completes
        assert fresh == 50 and max(endpoint.answered.values()) == 1


def test_a_dead_endpoint_fails_with_one_clear_error(teacher):
    options = EndpointOptions(retries=2, backoff=0.0, timeout=0.2)
    dead = BlackBoxTeacher(EndpointScorer("http://127.0.0.1:9/predict", options.timeout), "dead", base=teacher,
                           options=options, label_names=teacher.label_names)
    with pytest.raises(ResourceError, match="failed 3 times in a row on one batch"):
        dead.logits(["a film"])
    assert dead.cost["requests"] == 3 and dead.cost["retries"] == 2
    for answer, message in (({"error": "model loading"}, "expected, per input, a list of {label, score}"),
                            ([[0.5, 0.4, 0.1]], r"array of shape \(1, 3\) for 1 inputs and 2 labels"),
                            ([[{"label": teacher.label_names[0], "score": 1.0}]],
                             rf"lacks label\(s\) {teacher.label_names[1]}:"),
                            ([[-0.5, 1.5]], "not probabilities")):
        odd = BlackBoxTeacher(lambda batch: answer, "odd", base=teacher, label_names=teacher.label_names)
        with pytest.raises(ResourceError, match=message):
            odd.logits(["a film"])


def test_distilling_from_an_endpoint_and_from_a_function(tmp_path, monkeypatch, teacher, rule_teacher, ood_file,
                                                         sentiment_tsv, capsys):
    common = ["distill", "--ood", str(ood_file), "--eval-data", str(sentiment_tsv), "--transfer-size", "60",
              "--min-words", "2", "--steps", "4", "--batch-size", "8", "--heldout", "8",
              "--student-base", str(rule_teacher), "--student-options", "embedding_dim=8,hidden_size=8"]
    with Endpoint(teacher) as endpoint:
        assert main([*common, "--teacher-url", endpoint.url, "--cache-dir", str(tmp_path / "c1"),
                     "--out", str(tmp_path / "remote")]) == 0
        assert "teacher calls: {'requests'" in capsys.readouterr().out
        # zskd eval compares the student with the same endpoint
        assert main(["eval", "--model", str(tmp_path / "remote"), "--data", str(sentiment_tsv), "--teacher-url",
                     endpoint.url, "--json", str(tmp_path / "eval-remote.json")]) == 0
    assert "agreement with teacher" in capsys.readouterr().out
    run = json.loads((tmp_path / "remote" / "run.json").read_text())
    assert json.loads((tmp_path / "eval-remote.json").read_text())["agreement"] == run["eval"]["agreement"]
    assert run["teacher"] == endpoint.url and run["compression"] is None and run["teacher_cost"]["texts"] > 60
    assert "unknown (answers only" in (tmp_path / "remote" / "README.md").read_text()
    texts, labels = zip(*[(text, label) for text, label in SENTIMENT])
    accuracy = 100.0 * float(np.mean(teacher.logits(list(texts)).argmax(-1) == np.array(labels)))
    assert run["eval"]["teacher"]["task_metric"] == pytest.approx(accuracy)  # scored through the endpoint too

    module = tmp_path / "my_teacher.py"
    module.write_text("import numpy as np\n"
                      "def classify(inputs):\n"
                      "    return np.array([[0.2, 0.8] if 'good' in x else [0.9, 0.1] for x in inputs])\n")
    monkeypatch.chdir(tmp_path)
    assert main([*common, "--teacher-function", "my_teacher:classify", "--teacher-labels", "bad,good",
                 "--cache-dir", str(tmp_path / "c2"), "--out", str(tmp_path / "function")]) == 0
    run = json.loads((tmp_path / "function" / "run.json").read_text())
    assert run["transfer_info"]["classes_before"].keys() == {"bad", "good"}
    assert main(["eval", "--model", str(tmp_path / "function"), "--data", str(sentiment_tsv), "--teacher-function",
                 "my_teacher:classify", "--json", str(tmp_path / "eval-function.json")]) == 0
    assert json.loads((tmp_path / "eval-function.json").read_text())["agreement"] == run["eval"]["agreement"]
    assert main(["eval", "--model", str(tmp_path / "function"), "--data", str(sentiment_tsv), "--teacher-function",
                 "my_teacher:classify", "--teacher", str(rule_teacher)]) == 2
    assert "give one teacher" in capsys.readouterr().err


def test_white_box_methods_and_bad_teacher_options_are_refused(tmp_path, tiny_model, capsys, monkeypatch):
    out = ["--out", str(tmp_path / "x")]
    url = ["--teacher-url", "http://127.0.0.1:9/predict"]
    for extra, message in (
        (["--method", "adversarial"], "method adversarial reads the teacher's weights, and --teacher-url gives only"),
        (["--method", "embedding-guess"], "method embedding-guess reads the teacher's weights"),
        (["--teacher", str(tiny_model)], "give one teacher (--teacher DIR, --teacher-url URL"),
        (["--endpoint-concurrency", "0"], "--endpoint-concurrency 0 must be at least 1"),
    ):
        assert main(["distill", *url, *extra, *out]) == 2
        assert message in capsys.readouterr().err
    assert main(["distill", "--teacher", str(tiny_model), "--teacher-labels", "a,b", *out]) == 2
    assert "--teacher-labels is for a teacher known by its answers" in capsys.readouterr().err
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    assert main(["distill", *url, "--endpoint-token-env", "NO_SUCH_TOKEN", "--student-base", str(tiny_model),
                 *out]) == 2
    assert "NO_SUCH_TOKEN: the environment variable is not set" in capsys.readouterr().err


def test_labelling_asks_for_inputs_of_about_one_length_at_a_time(tmp_path, teacher):
    """Uncached inputs go to the teacher shortest first, so each batch pads little; the logits keep input order."""
    rng = random.Random(0)
    inputs = ["word " * n + str(n) for n in range(1, 65)]
    rng.shuffle(inputs)
    asked = []

    def score(batch):
        asked.append([len(x) for x in batch])
        return np.array([[len(x), 1.0] for x in batch])  # the score of class 0 is the input's length

    remote = BlackBoxTeacher(score, "lengths", base=teacher, options=EndpointOptions(batch_size=8, concurrency=1),
                             label_names=["long", "short"])
    logits, fresh = label_with_teacher(remote, inputs, tmp_path / "cache", progress=False)
    assert fresh == 64 and [length for batch in asked for length in batch] == sorted(len(x) for x in inputs)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probabilities[:, 0] / probabilities[:, 1], [len(x) for x in inputs], rtol=1e-4)
