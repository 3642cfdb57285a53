"""Adversarial perturbation of out-of-domain text (Zero-Shot KD, Rashid et al.): method `adversarial`.

Out-of-domain text alone leaves the student blind where the teacher's decision boundary lies. A small generator
reads an out-of-domain input with about 30% of its tokens masked and proposes a replacement token at each masked
position. Hard Gumbel-softmax with the straight-through estimator turns its logits into one-hot rows; one-hot x
embedding matrix gives `inputs_embeds` for the teacher and for the student, so the teacher-student divergence is
differentiable with respect to the generator. The generator takes `generator_steps` steps to maximise that
divergence every `every` student steps, and on those steps the student also minimises it on a fresh perturbation of
the first `batch_size` inputs of its batch (weight `weight`), besides the cached clean `ood` targets every step.
The method is the `ood` transfer set plus `AdversarialObjective`; its options are `DistillConfig.adversarial`
(flags `--adversarial-*`).

Teacher and student share the teacher's WordPiece vocabulary: the generator proposes student-vocabulary tokens
(the transfer set's), and `kept_token_ids` maps them to teacher rows. Special tokens and segment ids are never
changed, so sentence pairs keep their [CLS]/[SEP] layout; `segments` picks which segment(s) change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zskd import losses
from zskd.config import append_jsonl, option
from zskd.data import DataError, check_share
from zskd.methods.base import Batch, Method, Objective, Setup, last_before_evaluation
from zskd.methods.ood import ood_transfer_set
from zskd.students.base import pca_embeddings

PAIR_SEGMENTS = ("any", "both", "first", "second")


@dataclass
class AdversarialOptions:
    mask_rate: float = option(0.3, "fraction of tokens the generator replaces")
    tau: float = option(1.0, "Gumbel-softmax temperature")
    lr: float = option(1e-3, "generator learning rate")
    generator_steps: int = option(1, "generator steps (k) each time it trains")
    every: int = option(2, "student steps (n) between generator updates and perturbed batches")
    batch_size: int = option(16, "inputs of each batch the generator perturbs (the teacher's backward pass dominates "
                                 "the cost)")
    diversity: float = option(0.2, "weight of the entropy of the generator's mean proposal (keeps it from collapsing "
                                   "onto one token)")
    weight: float = option(1.0, "weight of the perturbed batch's KL against the clean one's")
    segments: str = option("any", "pairs: segment(s) to perturb: any, both, first, second")


@dataclass
class GeneratorConfig:
    vocab_size: int
    embedding_dim: int = 64
    hidden_size: int = 128


class PerturbationGenerator(nn.Module):
    """BiLSTM over masked student ids that proposes a token for each masked position: [M, V] logits."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.segments = nn.Embedding(2, config.embedding_dim)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * config.hidden_size, config.vocab_size)

    def forward(self, masked_ids: torch.Tensor, token_type_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, L] ids (masked positions hold [MASK]), [B, L] segments, [B, L] bool mask -> [M, V] proposal logits,
        one row per True in `mask`, in row-major order."""
        states, _ = self.lstm(self.word_embeddings(masked_ids) + self.segments(token_type_ids))
        return self.output(states[mask])


def choose_positions(special: torch.Tensor, token_type_ids: torch.Tensor, rate: float,
                     segments: str = "any") -> torch.Tensor:
    """[B, L] bool: the positions to perturb. About `rate` of the ordinary tokens (never special or padding ones),
    at least one per input that has any. For pairs, `segments` says which segment may change: `any` picks the
    first, the second or both at random per input."""
    allowed = ~special
    is_pair = bool((token_type_ids == 1).any())
    if is_pair and segments != "both":
        if segments == "any":
            choice = torch.randint(0, 3, (special.shape[0], 1), device=special.device)  # 0 first, 1 second, 2 both
        else:
            choice = torch.full((special.shape[0], 1), 0 if segments == "first" else 1, device=special.device)
        allowed &= (choice == 2) | (token_type_ids == choice)
    chosen = allowed & (torch.rand(special.shape, device=special.device) < rate)
    # an input left with no chosen position gets one at random among its allowed positions
    empty = ~chosen.any(1) & allowed.any(1)
    if empty.any():
        scores = torch.rand(special.shape, device=special.device).masked_fill(~allowed, -1.0)
        chosen[empty, scores[empty].argmax(1)] = True
    return chosen


class Adversary:
    """The generator, its optimiser, and what `AdversarialObjective` asks of it: a generator step and a freshly
    perturbed batch with the teacher's logits. Batches are in the student's vocabulary."""

    def __init__(self, options: AdversarialOptions, temperature: float, teacher, student, kept_token_ids: list[int],
                 token_counts: dict[int, int]):
        self.options = options
        self.temperature = temperature
        self.teacher = teacher
        self.student = student
        self.kept = torch.tensor(kept_token_ids)
        self.mask_id = (student.teacher_to_student[teacher.tokenizer.mask_token_id].item()
                        if teacher.tokenizer.mask_token_id is not None else 1)
        tokenizer = teacher.tokenizer
        layout = [tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id]
        self.special_student_ids = torch.tensor([int(student.teacher_to_student[i]) for i in layout if i is not None])
        # never proposed: layout tokens, [UNK] and [MASK]
        banned = [*layout, tokenizer.unk_token_id, tokenizer.mask_token_id]
        self.banned_student_ids = torch.tensor(sorted({int(student.teacher_to_student[i])
                                                       for i in banned if i is not None}))
        for p in teacher.model.parameters():
            p.requires_grad_(False)
        teacher.model.eval()
        self.teacher_rows = teacher.embedding_matrix.detach()[self.kept].float()  # [V_student, D]
        self.generator = PerturbationGenerator(GeneratorConfig(len(kept_token_ids)))
        with torch.no_grad():
            self.generator.word_embeddings.weight.copy_(pca_embeddings(teacher.embedding_matrix, kept_token_ids,
                                                                       self.generator.config.embedding_dim))
            # start from the transfer set's unigram distribution: early proposals look like ordinary text
            counts = torch.tensor([float(token_counts.get(t, 0)) for t in kept_token_ids])
            self.generator.output.bias.copy_(torch.log(counts + 1.0) - torch.log(counts.sum() + len(counts)))
            self.generator.output.weight.mul_(0.1)
        self.optimizer = torch.optim.AdamW(self.generator.parameters(), lr=options.lr)

    # --- perturbation ------------------------------------------------------------------------------------------
    def _positions(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        special = torch.isin(input_ids, self.special_student_ids)
        return choose_positions(special, token_type_ids, self.options.mask_rate, self.options.segments)

    def _proposal_logits(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions [B, L] bool, proposal logits [M, V_student]; banned tokens at -1e4)."""
        positions = self._positions(inputs["input_ids"], inputs["token_type_ids"])
        masked = inputs["input_ids"].masked_fill(positions, self.mask_id)
        logits = self.generator(masked, inputs["token_type_ids"], positions)
        return positions, logits.index_fill(1, self.banned_student_ids, -1e4)

    def propose(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions [B, L] bool, one-hot proposals [M, V_student] with straight-through gradients)."""
        positions, logits = self._proposal_logits(inputs)
        return positions, F.gumbel_softmax(logits, tau=self.options.tau, hard=True)

    def _divergence(self, inputs: dict[str, torch.Tensor], positions: torch.Tensor,
                    one_hot: torch.Tensor) -> torch.Tensor:
        """KL(teacher || student) on the perturbed inputs, differentiable with respect to `one_hot`."""
        teacher_embeds = self.teacher_rows[inputs["input_ids"]].index_put((positions,), one_hot @ self.teacher_rows)
        student_table = self.student.word_embeddings.weight
        student_embeds = student_table[inputs["input_ids"]].index_put((positions,), one_hot @ student_table)
        with torch.autocast(device_type=one_hot.device.type, dtype=torch.bfloat16, enabled=self.teacher.bf16):
            teacher_logits = self.teacher.logits_from_embeddings(teacher_embeds, inputs["attention_mask"],
                                                                 inputs["token_type_ids"])
        student_logits = self.student(inputs_embeds=student_embeds, attention_mask=inputs["attention_mask"],
                                      token_type_ids=inputs["token_type_ids"])
        return losses.kl_divergence(student_logits, teacher_logits.float(), self.temperature)

    def generator_step(self, inputs: dict[str, torch.Tensor]) -> float:
        """One step of the generator up the teacher-student divergence plus `diversity` x the entropy
        of the batch's mean proposal distribution (without it the generator collapses onto one token that the
        student gets wrong, and writes it everywhere); returns the divergence before the step. Only the
        generator's parameters change (the student's gradients are not touched)."""
        self.generator.train()
        positions, logits = self._proposal_logits(inputs)
        one_hot = F.gumbel_softmax(logits, tau=self.options.tau, hard=True)
        divergence = self._divergence(inputs, positions, one_hot)
        objective = divergence + self.options.diversity * losses.marginal_entropy(logits)
        params = list(self.generator.parameters())
        grads = torch.autograd.grad(-objective, params)
        for p, g in zip(params, grads):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return divergence.item()

    @torch.no_grad()
    def perturb(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch with a fresh sample of proposals in place (student ids), and the teacher's logits for it."""
        positions, one_hot = self.propose(inputs)
        ids = inputs["input_ids"].index_put((positions,), one_hot.argmax(-1))
        teacher_ids = self.kept[ids]
        with torch.autocast(device_type=ids.device.type, dtype=torch.bfloat16, enabled=self.teacher.bf16):
            teacher_logits = self.teacher.model(input_ids=teacher_ids, attention_mask=inputs["attention_mask"],
                                                token_type_ids=inputs["token_type_ids"]).logits.float()
        return {**inputs, "input_ids": ids, "teacher_logits": teacher_logits, "positions": positions}

    def to(self, device: torch.device) -> "Adversary":
        """Move the generator and the lookup tables to `device` (the optimiser follows its parameters)."""
        self.generator.to(device)
        self.teacher_rows = self.teacher_rows.to(device)
        self.kept = self.kept.to(device)
        self.special_student_ids = self.special_student_ids.to(device)
        self.banned_student_ids = self.banned_student_ids.to(device)
        return self

    # --- state and inspection ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"generator": self.generator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])

    def decode(self, perturbed: dict[str, torch.Tensor], student_logits: torch.Tensor, limit: int = 8) -> list[dict]:
        """The first `limit` perturbed inputs for a person to read: text with the changed tokens in [[ ]], and the
        teacher's and the student's labels."""
        tokenizer, names = self.teacher.tokenizer, self.teacher.label_names
        lines = []
        for row in range(min(limit, perturbed["input_ids"].shape[0])):
            length = int(perturbed["attention_mask"][row].sum())
            ids = self.kept[perturbed["input_ids"][row, :length]].tolist()
            changed = perturbed["positions"][row, :length].tolist()
            tokens = [f"[[{t}]]" if c else t for t, c in zip(tokenizer.convert_ids_to_tokens(ids), changed)]
            text = " ".join(tokens).replace(" ##", "")
            lines.append({"text": text, "teacher_label": names[int(perturbed["teacher_logits"][row].argmax())],
                          "student_label": names[int(student_logits[row].argmax())]})
        return lines


class AdversarialObjective(Objective):
    """Every `every` steps: `generator_steps` generator steps up the divergence on the first `batch_size` inputs of
    the batch, then the student's KL against the teacher on a fresh perturbation of them. At each evaluation
    interval the decoded perturbations go to `adversarial_samples.jsonl`."""

    name = "adversarial"
    artefacts = ("adversarial_samples.jsonl",)

    def __init__(self, setup: Setup):
        self.options, self.temperature = setup.config.adversarial, setup.config.temperature
        self.eval_every = setup.config.eval_every
        self.adversary = Adversary(self.options, self.temperature, setup.teacher, setup.student, setup.vocabulary,
                                   setup.token_counts)
        self.samples_path = setup.work / self.artefacts[0] if setup.is_main_process else None

    def loss(self, step: int, batch: Batch) -> torch.Tensor | None:
        options = self.options
        if step % options.every:
            return None
        seeds = {k: v[: options.batch_size] for k, v in batch.inputs.items()}
        divergence = [self.adversary.generator_step(seeds) for _ in range(options.generator_steps)][-1]
        perturbed = self.adversary.perturb(seeds)
        perturbed_logits = batch.student(**{k: perturbed[k] for k in seeds})
        loss = options.weight * losses.kl_divergence(perturbed_logits, perturbed["teacher_logits"], self.temperature)
        if self.samples_path is not None and last_before_evaluation(step, options.every, self.eval_every):
            # decoded perturbed inputs, so a user can see what the generator found
            append_jsonl(self.samples_path, ({"step": step + 1, "divergence": round(divergence, 5), **sample}
                                             for sample in self.adversary.decode(perturbed, perturbed_logits)))
        return loss

    def state_dict(self) -> dict:
        return self.adversary.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.adversary.load_state_dict(state)

    def to(self, device: torch.device) -> "AdversarialObjective":
        self.adversary.to(device)
        return self


def validate(config) -> None:
    options = config.adversarial
    if options.segments not in PAIR_SEGMENTS:
        raise DataError(f"unknown --adversarial-segments {options.segments!r}: "
                        f"choose one of {', '.join(PAIR_SEGMENTS)}")
    check_share("--adversarial-mask-rate", options.mask_rate)
    for flag, value in (("every", options.every), ("generator-steps", options.generator_steps),
                        ("batch-size", options.batch_size)):
        if value < 1:
            raise DataError(f"--adversarial-{flag} {value} must be at least 1")


METHOD = Method(transfer_set=ood_transfer_set, validate=validate, needs_weights=True,
                objectives=lambda setup: [AdversarialObjective(setup)], options_group="adversarial")
