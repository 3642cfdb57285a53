import numpy as np
import pytest
import torch

import zskd.teacher as teacher_module
from zskd.resources import ResourceError
from zskd.teacher import Teacher, cpu_bf16_pays


def reference_logits(teacher, inputs):
    """One input at a time, no padding: what batching by length must reproduce."""
    out = []
    for item in inputs:
        enc = teacher.tokenizer(*(item if isinstance(item, tuple) else (item,)), return_tensors="pt")
        with torch.no_grad():
            out.append(teacher.model(**enc).logits[0].numpy())
    return np.stack(out)


def test_logits_batched_by_length_match_one_at_a_time(tiny_model):
    teacher = Teacher.from_pretrained(tiny_model, batch_size=3, bf16=False)
    inputs = ["the movie was good", "bad", "what a very very boring and awful film it was", "fun", "i loved it", "ok"]
    logits = teacher.logits(inputs)
    assert logits.dtype == np.float32 and logits.shape == (6, 2)
    np.testing.assert_allclose(logits, reference_logits(teacher, inputs), atol=1e-5)


def test_pairs_use_segment_ids(tiny_model):
    teacher = Teacher.from_pretrained(tiny_model, bf16=False)
    pairs = [("a cat sat", "on the mat"), ("the dog ran", "a dog sat on a very very long mat")]
    encoded = teacher.encode(pairs)
    assert encoded["token_type_ids"][0] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(teacher.logits(pairs), reference_logits(teacher, pairs), atol=1e-5)


def test_text_longer_than_the_model_has_positions_is_truncated_to_fit(tiny_model):
    teacher = Teacher.from_pretrained(tiny_model, bf16=False)  # 64 positions, fewer than the default max_length
    long_text = " ".join(["the movie was very good"] * 30)
    assert len(teacher.encode([long_text])["input_ids"][0]) == 64
    first_words = " ".join(long_text.split()[:62])  # 62 words + [CLS] + [SEP]: what the model sees
    np.testing.assert_allclose(teacher.logits([long_text]), reference_logits(teacher, [first_words]), atol=1e-5)


def test_metadata_and_embedding_forward(tiny_model_3way):
    teacher = Teacher.from_pretrained(tiny_model_3way, bf16=False)
    assert teacher.num_labels == 3 and teacher.label_names == ["label0", "label1", "label2"]
    ids = teacher.encode(["the cat sat"])["input_ids"]
    input_ids = torch.tensor(ids)
    embeds = teacher.embedding_matrix[input_ids].detach().requires_grad_(True)
    logits = teacher.logits_from_embeddings(embeds, torch.ones_like(input_ids))
    np.testing.assert_allclose(logits.detach().numpy(), teacher.logits(["the cat sat"]), atol=1e-5)
    logits.sum().backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


def test_refuses_pickle_weights(tmp_path, tiny_model):
    """Only safetensors are loaded: a directory with only pytorch_model.bin is refused."""
    from safetensors.torch import load_file

    torch.save(load_file(tiny_model / "model.safetensors"), tmp_path / "pytorch_model.bin")
    for f in tiny_model.glob("*"):
        if f.name != "model.safetensors":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ResourceError, match="cannot load a classifier from .*model.safetensors"):
        Teacher.from_pretrained(tmp_path)


def test_bf16_labelling_stays_close_and_has_its_own_cache_key(tiny_model):
    exact = Teacher.from_pretrained(tiny_model, bf16=False)
    fast = Teacher(exact.model, exact.tokenizer, bf16=True)
    inputs = ["the movie was good", "bad", "what a boring film"]
    np.testing.assert_allclose(fast.logits(inputs), exact.logits(inputs), atol=0.05)
    assert fast.fingerprint() != exact.fingerprint()


AMD = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse avx512f avx512_bf16\n"
INTEL_NO_AMX = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse avx512f avx512_bf16\n"
INTEL_AMX = "vendor_id\t: GenuineIntel\nflags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\n"


@pytest.mark.parametrize("cpuinfo, expected", [(AMD, True), (INTEL_NO_AMX, False), (INTEL_AMX, True),
                                               ("vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2\n", False)])
def test_bf16_pays_on_amx_and_on_amd_with_native_bf16_only(cpuinfo, expected):
    assert cpu_bf16_pays(cpuinfo) is expected


def test_default_precision_follows_the_hardware_not_a_timing(tiny_model, monkeypatch):
    monkeypatch.setattr(teacher_module, "bf16_supported", lambda: True)
    monkeypatch.setattr(teacher_module, "cpu_bf16_pays", lambda: True)
    monkeypatch.setattr(Teacher, "_forward", lambda *a: pytest.fail("the default precision must not be timed"))
    assert Teacher.from_pretrained(tiny_model).bf16 is True
    assert Teacher.from_pretrained(tiny_model, bf16=False).bf16 is False  # asked for
    monkeypatch.setattr(teacher_module, "cpu_bf16_pays", lambda: False)
    assert Teacher.from_pretrained(tiny_model).bf16 is False
    monkeypatch.setattr(teacher_module, "cpu_bf16_pays", lambda: True)
    monkeypatch.setattr(teacher_module, "bf16_supported", lambda: False)  # torch cannot use it
    assert Teacher.from_pretrained(tiny_model).bf16 is False
