"""Each loss against a hand-written reference on fixed numbers."""

import math

import pytest
import torch

from zskd import losses

STUDENT = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
TEACHER = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


def softmax(row, t):
    exps = [math.exp(v / t) for v in row]
    return [e / sum(exps) for e in exps]


def test_kl_divergence_matches_reference():
    t = 2.0
    expected = 0.0
    for s_row, t_row in zip(STUDENT.tolist(), TEACHER.tolist()):
        p, q = softmax(t_row, t), softmax(s_row, t)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    expected = expected / 2 * t * t
    assert math.isclose(losses.kl_divergence(STUDENT, TEACHER, t).item(), expected, rel_tol=1e-5)
    assert losses.kl_divergence(TEACHER, TEACHER, 3.0).abs().item() < 1e-6


def test_logit_mse_matches_reference():
    diffs = [(a - b) ** 2 for sr, tr in zip(STUDENT.tolist(), TEACHER.tolist()) for a, b in zip(sr, tr)]
    assert math.isclose(losses.logit_mse(STUDENT, TEACHER).item(), sum(diffs) / 6, rel_tol=1e-6)


def test_cross_entropy_matches_reference():
    labels = torch.tensor([0, 2])
    expected = -(math.log(softmax(STUDENT[0].tolist(), 1)[0]) + math.log(softmax(STUDENT[1].tolist(), 1)[2])) / 2
    assert math.isclose(losses.cross_entropy(STUDENT, labels).item(), expected, rel_tol=1e-6)


def test_hidden_mse_ignores_padding():
    student = torch.zeros(1, 3, 2)
    teacher = torch.tensor([[[1.0, 1.0], [3.0, 1.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert math.isclose(losses.hidden_mse(student, teacher, mask).item(), (1 + 1 + 9 + 1) / 4, rel_tol=1e-6)


def test_marginal_entropy_matches_reference():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.5]])
    p = [[math.exp(v) for v in row] for row in logits.tolist()]
    p = [[v / sum(row) for v in row] for row in p]
    mean = [(a + b) / 2 for a, b in zip(*p)]
    assert losses.marginal_entropy(logits).item() == pytest.approx(-sum(m * math.log(m) for m in mean), rel=1e-5)
    same = torch.tensor([[9.0, 0.0, 0.0]] * 4)  # every row picks class 0: little marginal entropy
    spread = torch.tensor([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 9.0]])
    assert losses.marginal_entropy(same) < 0.01 < 1.0 < losses.marginal_entropy(spread)


def test_kl_per_example_is_each_row_alone():
    rows = losses.kl_per_example(STUDENT, TEACHER, 2.0)
    assert rows.shape == (2,)
    for i in range(2):
        assert math.isclose(rows[i].item(), losses.kl_divergence(STUDENT[i:i + 1], TEACHER[i:i + 1], 2.0).item(),
                            rel_tol=1e-6)
    assert math.isclose(rows.mean().item(), losses.kl_divergence(STUDENT, TEACHER, 2.0).item(), rel_tol=1e-6)


def test_centred_logit_mse_ignores_a_constant_per_row():
    shifted = TEACHER + torch.tensor([[5.0], [-3.0]])
    assert math.isclose(losses.logit_mse(STUDENT, shifted, centred=True).item(),
                        losses.logit_mse(STUDENT, TEACHER, centred=True).item(), rel_tol=1e-6)
    centre = lambda x: x - x.mean(-1, keepdim=True)  # noqa: E731
    diffs = (centre(STUDENT) - centre(TEACHER)) ** 2
    assert math.isclose(losses.logit_mse(STUDENT, TEACHER, centred=True).item(), diffs.mean().item(), rel_tol=1e-6)


def test_logit_mse_per_example_is_each_row_alone():
    rows = losses.logit_mse_per_example(STUDENT, TEACHER)
    for i in range(2):
        assert math.isclose(rows[i].item(), losses.logit_mse(STUDENT[i:i + 1], TEACHER[i:i + 1]).item(), rel_tol=1e-6)


def test_class_balance_weights_match_reference():
    # teacher classes of six rows: four of class 0, two of class 2, none of class 1
    logits = torch.tensor([[1.0, 0, 0]] * 4 + [[0, 0, 1.0]] * 2)
    assert torch.equal(losses.class_balance_weights(logits, 0.0), torch.ones(6))
    weights = losses.class_balance_weights(logits, 1.0)
    raw = [1 / (4 / 6)] * 4 + [1 / (2 / 6)] * 2  # each row: 1 / its class's share
    expected = [w / (sum(raw) / 6) for w in raw]
    assert torch.allclose(weights, torch.tensor(expected))
    assert math.isclose(weights[:4].sum().item(), weights[4:].sum().item(), rel_tol=1e-6)  # each class weighs the same
    half = losses.class_balance_weights(logits, 0.5)
    assert math.isclose(half.mean().item(), 1.0, rel_tol=1e-6) and 1 < (half[4] / half[0]).item() < 2


def test_similarity_mse_matches_reference():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3), torch.randn(5, 7)

    def cosines(rows):
        rows = [[v - sum(col) / len(rows) for v, col in zip(row, zip(*rows))] for row in rows.tolist()]
        norms = [math.sqrt(sum(v * v for v in row)) for row in rows]
        return [[sum(a * b for a, b in zip(r, s)) / (nr * ns) for s, ns in zip(rows, norms)]
                for r, nr in zip(rows, norms)]

    expected = sum((a - b) ** 2 for ra, rb in zip(cosines(student), cosines(teacher)) for a, b in zip(ra, rb)) / 25
    assert math.isclose(losses.similarity_mse(student, teacher).item(), expected, rel_tol=1e-5)


def test_similarity_mse_ignores_a_rotation_scale_and_shift_of_the_features():
    torch.manual_seed(0)
    teacher = torch.randn(8, 6)
    rotation = torch.linalg.qr(torch.randn(6, 6))[0]
    assert losses.similarity_mse(3.0 * teacher @ rotation + 5.0, teacher).item() < 1e-10
    assert losses.similarity_mse(torch.randn(8, 6), teacher).item() > 0.1


def test_distillation_loss_is_the_weighted_kl_and_mse():
    torch.manual_seed(0)
    student, teacher, weights = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0.5, 1.0, 1.5, 1.0])
    kl = losses.kl_per_example(student, teacher, 2.0)
    mse = ((student - teacher) ** 2).mean(-1)
    loss, per_row = losses.distillation_loss(student, teacher, 2.0, kl_weight=0.7, mse_weight=0.3, weights=weights)
    assert torch.allclose(loss, 0.7 * (weights * kl).mean() + 0.3 * (weights * mse).mean())
    assert torch.equal(per_row, kl)
    unweighted, _ = losses.distillation_loss(student, teacher, 2.0, kl_weight=1.0, mse_weight=0.0)
    assert torch.allclose(unweighted, losses.kl_divergence(student, teacher, 2.0))
