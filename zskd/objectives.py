"""Objectives every method can use, added to the base loss when their options are set (see `zskd.methods.base`).

- `FewShotCrossEntropy` (`--few-shot FILE`): low-data runs also learn the few labelled examples' gold labels.
- `HiddenStateMSE` (`--hidden-weight`): a student that takes hidden-state targets (the transformer at the teacher's
  width) matches the teacher layer each of its layers was initialised from.
- `FeatureSimilarity` (`--feature-weight`): any student's features (what its last layer reads) relate the inputs of
  a batch to one another as the teacher's do: hundreds of numbers per input where the logits give one to five.
- `EmbeddingMixup` (`--mixup-weight`): inputs between those of the transfer set, each two of a batch mixed word by word
  in embedding space and labelled by the teacher online (MixKD, Liang et al. 2021).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from tqdm.auto import tqdm

from zskd import losses
from zskd.batching import pad, sorted_batches
from zskd.data import DataError, segment_ids
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


def logit_layer(model: nn.Module, num_labels: int) -> nn.Linear:
    """The layer that writes a classifier's logits: its last `nn.Linear` with `num_labels` outputs."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_labels]
    if not layers:
        raise DataError(f"{type(model).__name__} has no linear layer with {num_labels} outputs to read features from; "
                        "leave --feature-weight at 0")
    return layers[-1]


@contextmanager
def inputs_of(layer: nn.Module):
    """Within the block, the list holds what `layer` was called on: [B, D] features, last call last."""
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        yield seen
    finally:
        handle.remove()


@torch.inference_mode()
def teacher_features(teacher, teacher_ids: list[list[int]], segments: list[list[int]]) -> torch.Tensor:
    """[N, D] float16: what the teacher's logit layer reads for each row (BERT: the pooled [CLS] state), batched
    as the teacher labels."""
    layer = logit_layer(teacher.model, teacher.num_labels)
    out = None
    batches = sorted_batches([len(x) for x in teacher_ids], teacher.batch_size, teacher.max_tokens)
    takes_segments = "token_type_ids" in teacher.tokenizer.model_input_names  # not RoBERTa's or DistilBERT's
    with inputs_of(layer) as seen:
        for batch in tqdm(batches, desc="teacher features", unit="batch"):
            teacher.model_output([teacher_ids[i] for i in batch],
                                 [segments[i] for i in batch] if takes_segments else None)
            features = seen.pop().float().cpu()
            if out is None:
                out = torch.zeros(len(teacher_ids), features.shape[-1], dtype=torch.float16)
            out[batch] = features.half()
    return out


class FeatureSimilarity(Objective):
    """`losses.similarity_mse` between the student's features of the batch and the teacher's (computed once for
    every training row, before training)."""

    name = "feature_similarity"
    needs_features = True

    def __init__(self, setup: Setup):
        self.targets = teacher_features(setup.teacher, setup.teacher_ids, setup.segments)
        self.weight = setup.config.feature_weight

    def loss(self, step: int, batch: Batch) -> torch.Tensor:
        teacher = self.targets[batch.rows].to(batch.student_features.device)
        return self.weight * losses.similarity_mse(batch.student_features, teacher)


def mixed_embeddings(table: torch.Tensor, ids: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Row b of the batch mixed with row partner[b], position by position: lam[b] x table[ids[b]] + (1 - lam[b]) x
    table[ids[partner[b]]] (padding ids read their own row). [V, D], [B, L], [B], [B, 1, 1] -> [B, L, D]."""
    return lam * table[ids] + (1 - lam) * table[ids[partner]]


class EmbeddingMixup(Objective):
    """Every `mixup_every` steps, each input of the batch mixed with another of it: position by position,
    lam x its word embedding + (1 - lam) x the other's, lam uniform in [0, 1] per pair, over the longer of the two.
    The teacher labels the mix from its embeddings (one forward pass, no gradients), the student reads the same mix
    of its own embeddings, and the loss is the base loss (KL + logit MSE) on the mixes. Batches group inputs of
    similar length, so the two inputs of a mix are about as long. Draws come from the run's seed and the step, so a
    resumed run mixes as an uninterrupted one."""

    name = "mixup"

    def __init__(self, setup: Setup):
        config = setup.config
        self.config, self.teacher = config, setup.teacher
        kept = torch.tensor(setup.vocabulary)  # student id -> teacher id
        self.teacher_rows = setup.teacher.embedding_matrix.detach()[kept].float()  # [V_student, D_teacher]
        self.student_table = setup.student.word_embeddings  # trained: its rows learn from the mixes too

    def loss(self, step: int, batch: Batch) -> torch.Tensor | None:
        config = self.config
        if step % config.mixup_every:
            return None
        ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
        draw = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        partner = torch.randperm(len(ids), generator=draw).to(ids.device)
        lam = torch.rand(len(ids), 1, 1, generator=draw).to(ids.device)  # [B, 1, 1]
        mixed_mask = torch.maximum(mask, mask[partner])
        segments = torch.zeros_like(ids)
        with torch.no_grad(), torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16,
                                             enabled=self.teacher.bf16):
            teacher_logits = self.teacher.logits_from_embeddings(mixed_embeddings(self.teacher_rows, ids, partner, lam),
                                                                 mixed_mask, segments).float()
        student_logits = batch.student(inputs_embeds=mixed_embeddings(self.student_table.weight, ids, partner, lam),
                                       attention_mask=mixed_mask, token_type_ids=segments)
        loss, _ = losses.distillation_loss(student_logits, teacher_logits, config.temperature, config.kl_weight,
                                           config.mse_weight, config.mse_centred)
        return config.mixup_weight * loss

    def to(self, device: torch.device) -> EmbeddingMixup:
        self.teacher_rows = self.teacher_rows.to(device)
        return self


def shared_objectives(setup: Setup) -> list[Objective]:
    """The objectives the run's options ask for, whatever the method."""
    objectives: list[Objective] = []
    if setup.config.hidden_weight > 0:
        objectives.append(HiddenStateMSE(setup))
    if setup.config.feature_weight > 0:
        objectives.append(FeatureSimilarity(setup))
    if setup.config.mixup_weight > 0:
        objectives.append(EmbeddingMixup(setup))
    if setup.shots is not None:
        objectives.append(FewShotCrossEntropy(setup))
    return objectives
