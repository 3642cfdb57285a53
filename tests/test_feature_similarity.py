"""`--feature-weight`: the student's features relate a batch's inputs as the teacher's do (zskd/objectives.py)."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import OOD_SENTENCES, assert_resuming_changes_nothing
from zskd.cli import main
from zskd.data import segment_ids
from zskd.distill import distill
from zskd.objectives import logit_layer, teacher_features
from zskd.teacher import Teacher


def test_teacher_features_are_what_its_logit_layer_reads(tiny_model):
    teacher = Teacher.from_pretrained(str(tiny_model), bf16=False)
    texts = OOD_SENTENCES[:10]
    encoded = teacher.encode(texts)
    features = teacher_features(teacher, encoded["input_ids"], segment_ids(encoded))
    assert features.shape == (10, teacher.model.config.hidden_size)
    with torch.no_grad():
        pooled = teacher.model.bert(**teacher.tokenizer(texts[3], return_tensors="pt")).pooler_output[0]
        from_features = logit_layer(teacher.model, teacher.num_labels)(features.float())
    assert torch.allclose(features[3].float(), pooled, atol=2e-3)  # stored as float16
    assert torch.allclose(from_features, torch.from_numpy(teacher.logits(texts)), atol=1e-2)


def test_feature_weight_changes_the_student_and_resumes_exactly(tmp_path, tiny_distill_config):
    distill(tiny_distill_config("plain"))
    assert_resuming_changes_nothing(tiny_distill_config, tmp_path, feature_weight=10.0)
    plain = load_file(tmp_path / "plain" / "last" / "model.safetensors")
    with_features = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    assert not torch.equal(plain["lstm.weight_hh_l0"], with_features["lstm.weight_hh_l0"])


@pytest.mark.parametrize("student", ["cnn", "pair-bilstm"])
def test_feature_weight_reads_any_student(tmp_path, tiny_distill_config, student):
    _, report = distill(tiny_distill_config(student, student=student, student_options=None, feature_weight=1.0))
    assert report["config"]["feature_weight"] == 1.0 and report["steps"] == 12


def test_feature_weight_needs_the_teachers_weights(tmp_path, capsys):
    assert main(["distill", "--teacher-url", "http://127.0.0.1:9/predict", "--feature-weight", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--feature-weight reads the teacher's weights, and --teacher-url gives only its answers" in \
        capsys.readouterr().err
