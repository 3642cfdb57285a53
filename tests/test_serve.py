"""`zskd serve`: /predict answers Hugging Face's text-classification JSON with the student's probabilities, /health
says what it serves, oversized requests get 413 and malformed ones 422, and a served student is a teacher another
run can distil from."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from zskd.black_box_teacher import BlackBoxTeacher, EndpointScorer
from zskd.students import load_student

uvicorn = pytest.importorskip("uvicorn", reason="zskd[serve] is not installed")


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):
    """(base URL, student) of a tiny student served on a free loopback port for the module."""
    from zskd.cli import main
    from zskd.serve import ServeConfig, build_app
    from zskd.students import load_classifier

    out = tmp_path_factory.mktemp("serve") / "s"
    corpus = out.parent / "ood.txt"
    corpus.write_text("".join(f"the movie number {i} was {'good' if i % 2 else 'bad'} .\n" for i in range(80)))
    assert main(["distill", "--teacher", str(tiny_model), "--ood", str(corpus), "--transfer-size", "40", "--steps", "2",
                 "--batch-size", "8", "--heldout", "8", "--no-teacher-bf16", "--cache-dir", str(out.parent / "c"),
                 "--student-options", "embedding_dim=8,hidden_size=8", "--out", str(out)]) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServeConfig(model=str(out), port=port, max_batch=8, max_body_bytes=2000)
    app = build_app(load_classifier(config.model), config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", load_student(out), str(out)
    server.should_exit = True
    thread.join(timeout=10)


def post(url: str, body: bytes) -> tuple[int, object]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_predict_and_health(served):
    url, student, directory = served
    texts = ["the movie was good", "awful"]
    code, answer = post(url + "/predict", json.dumps({"inputs": texts, "parameters": {"top_k": None}}).encode())
    assert code == 200 and len(answer) == 2
    for scores, expected in zip(answer, student.predict(texts)):
        assert scores[0]["label"] == expected["label"] and {s["label"] for s in scores} == set(student.label_names)
        assert [s["score"] for s in scores] == sorted((s["score"] for s in scores), reverse=True)
        assert abs(scores[0]["score"] - expected["score"]) < 1e-5
    code, answer = post(url + "/predict", json.dumps({"inputs": [{"text": "a cat", "text_pair": "sat"}]}).encode())
    assert code == 200 and len(answer) == 1
    with urllib.request.urlopen(url + "/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok", "model": directory, "labels": student.label_names}
    with urllib.request.urlopen(url + "/openapi.json", timeout=10) as response:
        assert "/predict" in json.loads(response.read())["paths"]


def test_limits_and_malformed_requests(served):
    url, _, _ = served
    assert post(url + "/predict", json.dumps({"inputs": ["x" * 3000]}).encode())[0] == 413  # body over 2,000 bytes
    assert post(url + "/predict", json.dumps({"inputs": ["a"] * 9}).encode())[0] == 413  # over 8 inputs
    assert post(url + "/predict", b"{not json")[0] == 422
    assert post(url + "/predict", json.dumps({"inputs": "a text, not a list"}).encode())[0] == 422
    assert post(url + "/predict", json.dumps({"texts": ["a"]}).encode())[0] == 422
    assert post(url + "/predict", json.dumps({"inputs": [{"text": "no pair"}]}).encode())[0] == 422
    code, answer = post(url + "/predict", json.dumps({"inputs": ["still answers"]}).encode())
    assert code == 200 and len(answer) == 1


def test_a_served_student_is_a_teacher(served):
    url, student, _ = served
    remote = BlackBoxTeacher(EndpointScorer(url + "/predict", timeout=10), url, base=student)  # base: unused here
    assert remote.label_names == sorted(student.label_names)
    texts = ["the movie was good", "awful", "a cat sat"]
    labels = [remote.label_names[i] for i in remote.logits(texts).argmax(-1)]
    assert labels == [p["label"] for p in student.predict(texts)]


def test_raw_scores_give_a_served_students_logits(served):
    """With --endpoint-raw-scores the client asks for `function_to_apply: none` and reads the logits themselves:
    what a distillation in process would fit, where probabilities give them only up to a constant per input."""
    from zskd.black_box_teacher import EndpointOptions
    from zskd.teacher_options import TeacherOptions, load_teacher

    url, student, _ = served
    texts = ["the movie was good", "awful", "a cat sat"]

    def remote_teacher(raw_scores: bool):
        options = TeacherOptions(teacher_url=url + "/predict", endpoint=EndpointOptions(timeout=10,
                                                                                         raw_scores=raw_scores))
        return load_teacher(options, pairs=False, label_names=student.label_names)

    remote = remote_teacher(raw_scores=True)
    np.testing.assert_allclose(remote.logits(texts), student.logits(texts), atol=1e-6)
    plain = remote_teacher(raw_scores=False)
    assert plain.fingerprint() != remote.fingerprint()  # the two kinds of answer never share a label cache
    centred = student.logits(texts) - student.logits(texts).mean(-1, keepdims=True)
    np.testing.assert_allclose(plain.logits(texts), centred, atol=1e-5)
