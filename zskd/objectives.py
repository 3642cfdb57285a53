"""Objectives every method can use, added to the base loss when their options are set (see `zskd.methods.base`).

- `FewShotCrossEntropy` (`--few-shot FILE`): low-data runs also learn the few labelled examples' gold labels.
- `HiddenStateMSE` (`--hidden-weight`): a student that takes hidden-state targets (the transformer at the teacher's
  width) matches the teacher layer each of its layers was initialised from.
"""

from __future__ import annotations

import torch

from zskd import losses
from zskd.batching import pad
from zskd.data import segment_ids
from zskd.methods.base import Batch, Objective, Setup


class FewShotCrossEntropy(Objective):
    """Cross-entropy on a random draw of the labelled examples (at most a batch of them) at every step."""

    name = "few_shot"

    def __init__(self, setup: Setup):
        encoded = setup.teacher.encode(setup.shots.texts)
        self.ids = setup.student.from_teacher_ids(encoded["input_ids"])
        self.segments = segment_ids(encoded)
        self.labels = torch.tensor(setup.shots.labels)
        self.collate = setup.student.collate
        self.batch_size, self.weight = setup.config.batch_size, setup.config.few_shot_weight

    def loss(self, step: int, batch: Batch) -> torch.Tensor:
        pick = torch.randint(len(self.ids), (min(self.batch_size, len(self.ids)),)).tolist()
        inputs = self.collate([self.ids[i] for i in pick], [self.segments[i] for i in pick])
        device = batch.student_logits.device
        logits = batch.student(**{k: v.to(device) for k, v in inputs.items()})
        return self.weight * losses.cross_entropy(logits, self.labels[pick].to(device))


class HiddenStateMSE(Objective):
    """MSE between each student layer and the teacher layer it was initialised from (`config.teacher_layers` of
    the student), at the batch's real positions; the teacher runs on the same tokens without gradients."""

    name = "hidden_states"
    needs_hidden_states = True

    def __init__(self, setup: Setup):
        self.teacher, self.teacher_ids = setup.teacher, setup.teacher_ids
        self.teacher_layers = setup.student.config.teacher_layers
        self.weight = setup.config.hidden_weight

    def loss(self, step: int, batch: Batch) -> torch.Tensor:
        mask = batch.inputs["attention_mask"]
        with torch.no_grad():
            teacher_ids = pad([self.teacher_ids[i] for i in batch.rows], self.teacher.tokenizer.pad_token_id or 0)
            teacher_out = self.teacher.model(input_ids=teacher_ids.to(mask.device), attention_mask=mask,
                                             token_type_ids=batch.inputs["token_type_ids"], output_hidden_states=True)
        pairs = [(batch.hidden_states[i + 1], teacher_out.hidden_states[t + 1])
                 for i, t in enumerate(self.teacher_layers)]
        return self.weight * (sum(losses.hidden_mse(s, t, mask) for s, t in pairs) / max(1, len(pairs)))


def shared_objectives(setup: Setup) -> list[Objective]:
    """The objectives the run's options ask for, whatever the method."""
    objectives: list[Objective] = []
    if setup.config.hidden_weight > 0:
        objectives.append(HiddenStateMSE(setup))
    if setup.shots is not None:
        objectives.append(FewShotCrossEntropy(setup))
    return objectives
