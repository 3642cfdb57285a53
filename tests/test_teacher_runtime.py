"""The teacher in ONNX Runtime: the same logits as PyTorch (float32), close ones in int8, its own label cache, the
graph exported once, and `distill` / `label` through `--teacher-runtime`."""

import json

import numpy as np

from zskd.cli import main
from zskd.teacher import Teacher

TEXTS = ["the movie was good", "a very boring film , and the plot was bad , not fun at all", "cat",
         ("a cat sat", "on the mat")]


def test_onnx_runtime_gives_the_teachers_logits(tmp_path, tiny_model):
    torch_teacher = Teacher.from_pretrained(tiny_model, bf16=False)
    expected = [torch_teacher.logits(TEXTS[:3]), torch_teacher.logits(TEXTS[3:])]
    onnx_teacher = Teacher.from_pretrained(tiny_model, bf16=False).use_onnx_runtime(tmp_path / "onnx")
    for inputs, want in zip((TEXTS[:3], TEXTS[3:]), expected):
        np.testing.assert_allclose(onnx_teacher.logits(inputs), want, atol=1e-5)
    graphs = list((tmp_path / "onnx").glob("*/model.onnx"))
    assert len(graphs) == 1 and onnx_teacher.fingerprint() != torch_teacher.fingerprint()
    made = graphs[0].stat().st_mtime_ns
    int8 = Teacher.from_pretrained(tiny_model, bf16=False).use_onnx_runtime(tmp_path / "onnx", int8=True)
    assert graphs[0].stat().st_mtime_ns == made  # exported once
    np.testing.assert_allclose(int8.logits(TEXTS[:3]), expected[0], atol=0.1)
    assert len({int8.fingerprint(), onnx_teacher.fingerprint(), torch_teacher.fingerprint()}) == 3


def test_distill_and_label_with_the_onnx_runtime(tmp_path, tiny_model, ood_file, capsys):
    assert main(["distill", "--teacher", str(tiny_model), "--ood", str(ood_file), "--teacher-runtime", "onnx",
                 "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "40", "--min-words", "2", "--steps", "2",
                 "--batch-size", "8", "--heldout", "8", "--no-teacher-bf16", "--out", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "s" / "run.json").read_text())["config"]["teacher_runtime"] == "onnx"
    assert main(["label", "--teacher", str(tiny_model), "--inputs", str(ood_file), "--teacher-runtime", "onnx",
                 "--cache-dir", str(tmp_path / "cache"), "--no-teacher-bf16"]) == 0
    assert "shard 0/1: 120 inputs" in capsys.readouterr().out
    assert main(["label", "--teacher", str(tiny_model), "--inputs", str(ood_file), "--teacher-runtime", "tpu",
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "unknown --teacher-runtime 'tpu': choose torch, onnx, onnx-int8" in capsys.readouterr().err
