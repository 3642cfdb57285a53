"""Predicting with a student: `Student.predict` and the ONNX student's, and `zskd predict` on files and standard
input, streaming, with bad lines reported and skipped."""

import io
import json
import logging

import numpy as np
import pytest

from zskd.cli import main
from zskd.export import OnnxStudent, export_onnx
from zskd.students import load_student

TEXTS = ["the movie was good", "awful", "a very boring film , and the plot was bad"]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, tiny_model, ood_file_module):
    out = tmp_path_factory.mktemp("student") / "s"
    assert main(["distill", "--teacher", str(tiny_model), "--ood", str(ood_file_module), "--transfer-size", "40",
                 "--min-words", "2", "--steps", "2", "--batch-size", "8", "--heldout", "8", "--no-teacher-bf16",
                 "--cache-dir", str(out.parent / "cache"), "--student-options", "embedding_dim=8,hidden_size=8",
                 "--out", str(out)]) == 0
    export_onnx(out)
    return out


@pytest.fixture(scope="module")
def ood_file_module(tmp_path_factory):
    from conftest import OOD_SENTENCES

    path = tmp_path_factory.mktemp("ood") / "ood.txt"
    path.write_text("\n".join(OOD_SENTENCES) + "\n")
    return path


def test_predict_gives_labels_and_probabilities_in_pytorch_and_onnx(student_dir):
    student = load_student(student_dir)
    predicted = student.predict(TEXTS)
    logits = student.logits(TEXTS)
    assert [p["label"] for p in predicted] == [student.label_names[i] for i in logits.argmax(-1)]
    for p in predicted:
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-5 and p["score"] == max(p["probabilities"].values())
    onnx = OnnxStudent(student_dir).predict(TEXTS)
    assert [p["label"] for p in onnx] == [p["label"] for p in predicted]
    np.testing.assert_allclose([p["score"] for p in onnx], [p["score"] for p in predicted], atol=1e-4)


def test_predict_a_file_with_a_bad_line_and_ids(tmp_path, student_dir, capsys, caplog):
    texts = tmp_path / "in.txt"
    texts.write_bytes(b"the movie was good\n\nbad \xff\xfe bytes\nawful\n")
    with caplog.at_level(logging.WARNING):
        assert main(["predict", "--model", str(student_dir), str(texts), "--batch-size", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [1, 4]  # line numbers; the bad line 3 skipped
    assert f"{texts}:3: undecodable bytes" in caplog.text
    table = tmp_path / "in.tsv"
    table.write_text("id\treview\nr1\tthe movie was good\nr2\tawful\n")
    out = tmp_path / "labels.jsonl"
    assert main(["predict", "--model", str(student_dir), str(table), "--text-col", "review", "--onnx",
                 "--out", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["r1", "r2"]
    assert not list(tmp_path.glob("*.partial"))


def test_predict_standard_input(student_dir, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("the movie was good\nawful\n"))
    assert main(["predict", "--model", str(student_dir)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [1, 2] and all(line["label"] for line in lines)
    assert main(["predict", "--model", str(student_dir), "--batch-size", "0"]) == 2


def test_int8_export_measures_its_accuracy_change_and_runs(student_dir, sentiment_tsv, capsys):
    assert main(["export", "--model", str(student_dir), "--quantize", "int8", "--check-data",
                 str(sentiment_tsv)]) == 0
    out = capsys.readouterr().out
    assert "model-int8.onnx" in out and "in int8" in out
    assert "## int8 (`model-int8.onnx`" in (student_dir / "README.md").read_text()
    int8 = OnnxStudent(student_dir, int8=True)
    np.testing.assert_allclose(int8.logits(TEXTS), OnnxStudent(student_dir).logits(TEXTS), atol=0.2)
    assert main(["eval", "--model", str(student_dir), "--onnx", "--int8", "--data", str(sentiment_tsv)]) == 0
    assert main(["predict", "--model", str(student_dir), "--int8", str(sentiment_tsv)]) == 2
    assert "--int8 runs the quantised ONNX graph: add --onnx" in capsys.readouterr().err
