"""`--mixup-weight`: inputs mixed in embedding space, labelled by the teacher online (zskd/objectives.py)."""

import torch
from safetensors.torch import load_file

from conftest import assert_resuming_changes_nothing
from zskd.cli import main
from zskd.distill import distill
from zskd.objectives import mixed_embeddings


def test_mixed_embeddings_against_a_loop():
    torch.manual_seed(0)
    table, ids = torch.randn(10, 3), torch.tensor([[1, 2, 3], [4, 5, 0], [6, 0, 0]])
    partner, lam = torch.tensor([2, 0, 1]), torch.tensor([0.25, 1.0, 0.0]).view(3, 1, 1)
    expected = torch.zeros(3, 3, 3)
    for b in range(3):
        for position in range(3):
            weight = float(lam[b])
            expected[b, position] = (weight * table[ids[b, position]]
                                     + (1 - weight) * table[ids[partner[b], position]])
    mixed = mixed_embeddings(table, ids, partner, lam)
    assert torch.allclose(mixed, expected)
    assert torch.equal(mixed[1], table[ids[1]]) and torch.equal(mixed[2], table[ids[1]])  # lam 1 and 0


def test_mixup_weight_changes_the_student_and_resumes_exactly(tmp_path, tiny_distill_config):
    distill(tiny_distill_config("plain"))
    assert_resuming_changes_nothing(tiny_distill_config, tmp_path, mixup_weight=1.0, mixup_every=2)
    plain = load_file(tmp_path / "plain" / "last" / "model.safetensors")
    mixed = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    assert not torch.equal(plain["lstm.weight_hh_l0"], mixed["lstm.weight_hh_l0"])


def test_mixup_needs_the_teachers_weights(tmp_path, capsys):
    assert main(["distill", "--teacher-url", "http://127.0.0.1:9/predict", "--mixup-weight", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--mixup-weight reads the teacher's weights, and --teacher-url gives only its answers" in \
        capsys.readouterr().err
