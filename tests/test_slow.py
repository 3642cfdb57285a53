"""Tests on the real packaged models (minutes, not seconds): `make test-slow`."""

import numpy as np
import pytest

from zskd.resources import MINILM, smollm2_gguf_file

pytestmark = pytest.mark.slow


def test_packaged_minilm_loads_as_a_teacher():
    from zskd.teacher import Teacher

    teacher = Teacher.from_pretrained("minilm-l6")
    assert teacher.num_parameters() > 22_000_000 and teacher.embedding_matrix.shape == (30522, 384)
    logits = teacher.logits(["a gripping film", ("a cat sat", "on the mat")][:1])
    assert logits.shape == (1, teacher.num_labels) and np.isfinite(logits).all()
    assert (MINILM.path() / "model.safetensors").is_file()


def test_packaged_generator_is_present():
    assert smollm2_gguf_file().stat().st_size > 50_000_000


def test_packaged_generator_saves_after_fine_tuning_and_loads_back(tmp_path):
    import torch

    from zskd.generation import LanguageModel

    lm = LanguageModel.load("smollm2-135m")
    lm.finetune(["Write a movie review that is positive."], ["A warm, funny film."], epochs=1)
    lm.save(tmp_path / "generator")
    reloaded = LanguageModel.load(str(tmp_path / "generator"))
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, reloaded.model(ids).logits, atol=1e-5)
