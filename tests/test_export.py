"""ONNX export: ONNX Runtime gives each student's logits, through the library and the CLI."""

import numpy as np
import pytest
import torch

from conftest import FACTORISED_TRANSFORMER, SMALL_STUDENTS
from zskd.cli import main
from zskd.export import OnnxStudent, export_onnx
from zskd.students import STUDENTS, create_student, parse_student_options
from zskd.students.base import build_vocabulary
from zskd.teacher import Teacher

TEXTS = ["the movie was good", "awful", "a very boring film , and the plot was bad", ("a cat sat", "on the mat")]


def saved_student(kind, teacher_dir, directory, options=None):
    """A student of `kind` (`options`: the small ones of conftest) with every parameter moved off its initial value
    (as after training), saved."""
    teacher = Teacher.from_pretrained(teacher_dir, bf16=False)
    counts = {t: 1 for ids in teacher.encode(TEXTS[:3])["input_ids"] for t in ids}
    torch.manual_seed(0)
    student = create_student(kind, teacher, build_vocabulary(teacher.tokenizer, counts, None),
                             parse_student_options(kind, options or SMALL_STUDENTS[kind]))
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    student.save_pretrained(directory)
    return student


@pytest.mark.parametrize("kind, options", [(kind, None) for kind in STUDENTS]
                         + [("transformer", FACTORISED_TRANSFORMER)])
def test_exported_graph_gives_the_students_logits(tmp_path, tiny_model, kind, options):
    student = saved_student(kind, tiny_model, tmp_path, options)
    result = export_onnx(tmp_path)
    assert result["max_abs_difference"] < 1e-4 and not list(tmp_path.glob("*.partial"))
    onnx_student = OnnxStudent(tmp_path)
    texts = [*TEXTS, "dog", "the plot " * 40]  # an unknown word; a text longer than the export example
    np.testing.assert_allclose(onnx_student.logits(texts), student.logits(texts), atol=1e-4)
    assert onnx_student.num_parameters() == student.num_parameters()
    assert onnx_student.label_names == student.label_names


def test_export_then_eval_through_the_cli(tmp_path, tiny_model, sentiment_tsv, capsys):
    saved_student("bilstm", tiny_model, tmp_path / "student")
    assert main(["eval", "--model", str(tmp_path / "student"), "--onnx", "--data", str(sentiment_tsv)]) == 2
    assert "zskd export --model" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path / "student")]) == 0
    assert "model.onnx" in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "student"), "--onnx", "--data", str(sentiment_tsv),
                 "--teacher", str(tiny_model), "--latency"]) == 0
    out = capsys.readouterr().out
    assert "batch-1 latency: model" in out and "agreement with teacher" in out
    assert main(["export", "--model", str(tiny_model)]) == 2  # a teacher is not a student
    assert "not a zskd student directory" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_int8_quantises_embeddings_and_linear_layers_and_keeps_convolutions_float(tmp_path, tiny_model, kind):
    import onnx

    from zskd.export import ONNX_INT8_FILE, export_int8

    student = saved_student(kind, tiny_model, tmp_path)
    export_int8(tmp_path)
    ops = {node.op_type for node in onnx.load(tmp_path / ONNX_INT8_FILE).graph.node}
    assert "DequantizeLinear" in ops and "MatMulInteger" in ops and "ConvInteger" not in ops
    assert ("Conv" in ops) == (kind == "cnn")
    np.testing.assert_allclose(OnnxStudent(tmp_path, int8=True).logits(TEXTS), student.logits(TEXTS), atol=0.2)
