"""Distillation losses as pure functions. Shapes: B batch, L length, K classes, D hidden."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions, times T^2 (Hinton et al.) so that the
    gradient scale does not change with T. [B, K], [B, K] -> scalar, mean over the batch."""
    return kl_per_example(student_logits, teacher_logits, temperature).mean()


def kl_per_example(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """`kl_divergence` of each row on its own. [B, K], [B, K] -> [B]."""
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    return (log_teacher.exp() * (log_teacher - log_student)).sum(-1) * temperature**2


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, centred: bool = False) -> torch.Tensor:
    """Mean squared error between raw logits (Ba & Caruana; Tang et al. for BiLSTM students). `centred`: each row
    less its mean first, so that only what the softmax reads is matched (a classifier's logits are defined up to a
    constant per input, which a teacher known by its probabilities cannot give). [B, K] -> scalar."""
    return logit_mse_per_example(student_logits, teacher_logits, centred).mean()


def logit_mse_per_example(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                          centred: bool = False) -> torch.Tensor:
    """`logit_mse` of each row on its own. [B, K], [B, K] -> [B]."""
    if centred:
        student_logits = student_logits - student_logits.mean(-1, keepdim=True)
        teacher_logits = teacher_logits - teacher_logits.mean(-1, keepdim=True)
    return ((student_logits - teacher_logits) ** 2).mean(-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                      kl_weight: float, mse_weight: float, mse_centred: bool = False,
                      weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The base loss of every step: `kl_weight` x KL + `mse_weight` x logit MSE, each the mean over the rows of
    `weights` x the row's term (every row 1 without weights). Returns it with each row's KL, which replay's priorities
    read. [B, K], [B, K], [B] -> (scalar, [B])."""
    def mean(per_row: torch.Tensor) -> torch.Tensor:
        return per_row.mean() if weights is None else (weights * per_row).mean()

    kl = kl_per_example(student_logits, teacher_logits, temperature)
    loss = kl_weight * mean(kl)
    if mse_weight:
        loss = loss + mse_weight * mean(logit_mse_per_example(student_logits, teacher_logits, mse_centred))
    return loss, kl


def class_balance_weights(teacher_logits: torch.Tensor, power: float) -> torch.Tensor:
    """A weight for each row: its teacher class's share of the rows to the power -`power`, scaled so the rows'
    weights average 1. 0 weighs every row alike; 1 gives every class the same total weight, however rare.
    [N, K] -> [N]."""
    predicted = teacher_logits.argmax(-1)
    share = torch.bincount(predicted, minlength=teacher_logits.shape[-1]).double() / len(predicted)
    weights = share[predicted] ** -power
    return (weights / weights.mean()).float()


def cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against gold labels, for the few labelled examples. [B, K], [B] -> scalar."""
    return F.cross_entropy(student_logits, labels)


def hidden_mse(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
               attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between hidden states at real (unpadded) positions. [B, L, D], [B, L, D], [B, L] -> scalar."""
    mask = attention_mask.unsqueeze(-1).to(student_hidden.dtype)
    squared = ((student_hidden - teacher_hidden) ** 2 * mask).sum()
    return squared / (mask.sum() * student_hidden.shape[-1]).clamp_min(1)


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean of the rows' softmax distributions: high when the rows choose different classes,
    whatever each row's own confidence. [M, V] -> scalar, in nats."""
    mean = F.softmax(logits, dim=-1).mean(0)
    return -(mean * torch.log(mean.clamp_min(1e-12))).sum()


def similarity_mse(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the batch's [B, B] cosine similarities in the student's features and in the
    teacher's, each centred on its batch mean first (similarity-preserving KD, Tung & Mori 2019): which inputs the
    teacher reads alike, at any two widths, with nothing to learn in between. [B, Ds], [B, Dt] -> scalar."""
    def similarities(features: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(features.float() - features.float().mean(0, keepdim=True), dim=-1)
        return unit @ unit.T

    return ((similarities(student_features) - similarities(teacher_features)) ** 2).mean()
