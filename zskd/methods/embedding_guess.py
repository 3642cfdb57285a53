"""Data-free distillation from guessed embeddings (AS-DFD, Ma et al.): method `embedding-guess`.

    zskd distill --teacher runs/teachers/sst2 --method embedding-guess --eval-task sst2 --out runs/sst2-guess
    zskd distill ... --method embedding-guess --embedding-guess-text ood      # mixed with out-of-domain text

For a user with no text at all. Every `every` student steps the objective guesses a batch of inputs in the
teacher's embedding space, with no discrete text:

1. **Plug & play embedding guessing.** `batch_size` sequences of pseudo word-embeddings, `min_tokens` to
   `max_tokens` long (one length per batch), start from the per-dimension mean and spread of the teacher's
   embedding matrix and sit between the teacher's real [CLS] and [SEP] rows (pairs: [CLS] a [SEP] b [SEP], two
   segments); the teacher adds its own position and segment embeddings. Each sequence gets a target class
   (balanced over the batch), and `guess_steps` Adam steps lower the teacher's cross-entropy for it, plus
   `diversity` x the mean cosine similarity between the batch's mean pseudo-embeddings, so that the batch does
   not collapse onto one point per class.
2. **Adversarial self-supervised module.** The self-supervised task is consistency under masking: the student
   should give the same prediction when `mask_rate` of the pseudo-embeddings are replaced by its [MASK] row
   (KL(student(clean) || student(masked)), clean side detached). It needs no extra head, so every student can do
   it from its logits, and where it is high the student's decision rests on single positions: the fragile part of
   the input space. `adversarial_steps` steps move the pseudo-embeddings up that loss while keeping the teacher's
   cross-entropy for the target class (the difference of the two is what is descended).
3. **Distillation.** The student learns the teacher's soft labels on the final pseudo-inputs (KL at
   `temperature`, weight `weight`) and the self-supervised task itself (weight `ssl_weight`). Students read the
   pseudo-embeddings through `StudentView`: at the teacher's width directly; narrower ones (`bilstm`, `cnn`)
   through the PCA basis of the teacher's rows that initialised their embeddings (fixed). After training a
   student serves on token ids as usual.

Every batch also trains on a text batch as every method does: `text` chooses random vocabulary words (no data at
all, the default) or the out-of-domain corpora (`ood`); the held-out agreement that picks the best checkpoint is
measured on that text. At each evaluation interval a few pseudo-inputs are decoded to their nearest teacher
tokens, with the teacher's label and confidence, into `embedding_guesses.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zskd import losses
from zskd.config import append_jsonl, option
from zskd.data import DataError
from zskd.methods.base import Batch, Method, Objective, Setup, last_before_evaluation
from zskd.methods.ood import ood_transfer_set
from zskd.methods.random_tokens import random_transfer_set
from zskd.students.base import pca_basis

TEXTS = {"random": random_transfer_set, "ood": ood_transfer_set}


@dataclass
class EmbeddingGuessOptions:
    text: str = option("random", "the text batches the guessed ones mix with: random (vocabulary words: no data at "
                                 "all) or ood (the out-of-domain corpora)")
    batch_size: int = option(32, "pseudo-inputs per guessed batch")
    min_tokens: int = option(4, "shortest pseudo-input, in pseudo word-embeddings")
    max_tokens: int = option(24, "longest pseudo-input, in pseudo word-embeddings")
    guess_steps: int = option(3, "Adam steps toward the target class for each guessed batch")
    lr: float = option(0.3, "step size of the pseudo-embeddings, in standard deviations of the teacher's "
                            "embedding matrix")
    diversity: float = option(1.0, "weight of the mean cosine similarity between a batch's pseudo-inputs (0: off)")
    adversarial_steps: int = option(1, "steps up the student's self-supervised loss, the teacher kept confident "
                                       "(0: off)")
    mask_rate: float = option(0.15, "self-supervised task: fraction of pseudo-embeddings masked")
    ssl_weight: float = option(1.0, "weight of the self-supervised consistency loss the student learns")
    weight: float = option(1.0, "weight of the guessed batch's KL against the text batch's loss")
    every: int = option(2, "student steps between guessed batches")


class EmbeddingGuesser:
    """Batches of pseudo word-embeddings the teacher is confident about: white-box, the teacher's weights frozen."""

    def __init__(self, options: EmbeddingGuessOptions, teacher, pairs: bool):
        self.options, self.teacher, self.pairs = options, teacher, pairs
        for p in teacher.model.parameters():
            p.requires_grad_(False)
        teacher.model.eval()
        table = teacher.embedding_matrix.detach().float()  # [V, D]
        self.table = table
        self.mean, self.spread = table.mean(0), table.std(0)
        self.step_size = options.lr * float(table.std())
        tokenizer = teacher.tokenizer
        self.cls, self.sep = table[tokenizer.cls_token_id], table[tokenizer.sep_token_id]

    def targets(self, count: int) -> torch.Tensor:
        """[count] target classes, as even as the count allows, in random order."""
        classes = torch.arange(count, device=self.mean.device) % self.teacher.num_labels
        return classes[torch.randperm(count, device=self.mean.device)]

    def initial(self, count: int, length: int) -> torch.Tensor:
        """[count, length, D] pseudo-embeddings drawn from the embedding matrix's per-dimension statistics."""
        return self.mean + self.spread * torch.randn(count, length, self.mean.shape[0], device=self.mean.device)

    def layout(self, pseudo: torch.Tensor, cls: torch.Tensor, sep: torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[CLS] pseudo [SEP] (pairs: [CLS] first half [SEP] second half [SEP]) with the given [CLS]/[SEP] rows:
        (embeddings [B, L', width], token_type_ids [B, L'], is_pseudo [B, L'] bool)."""
        count, length, width = pseudo.shape
        cls, sep = cls.expand(count, 1, width), sep.expand(count, 1, width)
        if self.pairs:
            half = max(1, length // 2)
            parts = [cls, pseudo[:, :half], sep, pseudo[:, half:], sep]
            segments = [0] * (half + 2) + [1] * (length - half + 1)
            flags = [False] + [True] * half + [False] + [True] * (length - half) + [False]
        else:
            parts, segments = [cls, pseudo, sep], [0] * (length + 2)
            flags = [False] + [True] * length + [False]
        embeds = torch.cat(parts, dim=1)
        token_type_ids = torch.tensor(segments, device=pseudo.device).expand(count, -1)
        is_pseudo = torch.tensor(flags, device=pseudo.device).expand(count, -1)
        return embeds, token_type_ids, is_pseudo

    def teacher_logits(self, pseudo: torch.Tensor) -> torch.Tensor:
        """[B, K] float32 teacher logits, differentiable with respect to `pseudo` [B, L, D]."""
        embeds, token_type_ids, _ = self.layout(pseudo, self.cls, self.sep)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        with torch.autocast(device_type=embeds.device.type, dtype=torch.bfloat16, enabled=self.teacher.bf16):
            return self.teacher.logits_from_embeddings(embeds, mask, token_type_ids).float()

    def guess(self, targets: torch.Tensor, length: int) -> torch.Tensor:
        """Pseudo-embeddings [B, length, D] after `guess_steps` steps down the teacher's cross-entropy for
        `targets` plus the diversity term."""
        pseudo = self.initial(len(targets), length).requires_grad_(True)
        optimizer = torch.optim.Adam([pseudo], lr=self.step_size)
        for _ in range(self.options.guess_steps):
            loss = F.cross_entropy(self.teacher_logits(pseudo), targets)
            if self.options.diversity:
                loss = loss + self.options.diversity * mean_similarity(pseudo.mean(1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return pseudo.detach()

    def to(self, device: torch.device) -> "EmbeddingGuesser":
        for name in ("table", "mean", "spread", "cls", "sep"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def decode(self, pseudo: torch.Tensor, teacher_logits: torch.Tensor, limit: int = 8) -> list[dict]:
        """The first `limit` pseudo-inputs as their nearest teacher tokens (cosine), with the teacher's label and
        confidence, for a person to read."""
        rows = F.normalize(self.table, dim=-1)
        nearest = (F.normalize(pseudo[:limit], dim=-1) @ rows.T).argmax(-1)  # [limit, L]
        probabilities = torch.softmax(teacher_logits[:limit], -1)
        names, tokenizer = self.teacher.label_names, self.teacher.tokenizer
        return [{"text": " ".join(tokenizer.convert_ids_to_tokens(ids.tolist())).replace(" ##", ""),
                 "teacher_label": names[int(p.argmax())], "confidence": round(float(p.max()), 4)}
                for ids, p in zip(nearest, probabilities)]


def mean_similarity(vectors: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between distinct rows of [B, D] `vectors` (0 for a single row): scalar."""
    if vectors.shape[0] < 2:
        return vectors.sum() * 0.0
    unit = F.normalize(vectors, dim=-1)
    similarity = unit @ unit.T
    count = vectors.shape[0]
    return (similarity.sum() - similarity.diagonal().sum()) / (count * (count - 1))


class StudentView:
    """Pseudo-embeddings in the student's embedding space: the teacher's [D] rows as they are when the student is
    as wide, else through the fixed `PCABasis` of the kept teacher rows that initialised its embeddings."""

    def __init__(self, teacher, student, vocabulary: list[int]):
        self.student = student
        width = student.word_embeddings.weight.shape[1]
        self.identity = width == teacher.embedding_matrix.shape[1]
        self.basis = None if self.identity else pca_basis(teacher.embedding_matrix, vocabulary, width)
        tokenizer = teacher.tokenizer
        self.special = {name: int(student.teacher_to_student[getattr(tokenizer, f"{name}_token_id")])
                        for name in ("cls", "sep", "mask")}

    def __call__(self, pseudo: torch.Tensor) -> torch.Tensor:
        return pseudo if self.identity else self.basis.project(pseudo)

    def row(self, name: str) -> torch.Tensor:
        """The student's current embedding of [CLS], [SEP] or [MASK] (trained with it)."""
        table = self.student.word_embeddings.weight
        return table[self.special[name]]

    def to(self, device: torch.device) -> "StudentView":
        if not self.identity:
            self.basis = self.basis.to(device)
        return self


class EmbeddingGuessObjective(Objective):
    """Every `every` steps: guess a batch, push it toward the student's self-supervised difficulty, and return the
    student's KL against the teacher on it plus the self-supervised loss."""

    name = "embedding_guess"
    artefacts = ("embedding_guesses.jsonl",)

    def __init__(self, setup: Setup):
        config = setup.config
        self.options, self.temperature, self.eval_every = config.embedding_guess, config.temperature, config.eval_every
        self.guesser = EmbeddingGuesser(self.options, setup.teacher, bool(config.pairs))
        self.view = StudentView(setup.teacher, setup.student, setup.vocabulary)
        self.samples_path = setup.work / self.artefacts[0] if setup.is_main_process else None

    def student_inputs(self, pseudo: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The student's keyword arguments for pseudo-embeddings [B, L, D], and which positions are pseudo."""
        embeds, token_type_ids, is_pseudo = self.guesser.layout(self.view(pseudo), self.view.row("cls"),
                                                                self.view.row("sep"))
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        return {"inputs_embeds": embeds, "attention_mask": mask, "token_type_ids": token_type_ids}, is_pseudo

    def consistency(self, student, pseudo: torch.Tensor) -> torch.Tensor:
        """The self-supervised loss: KL(student(clean) || student(masked)), `mask_rate` of the pseudo positions
        (at least one per input) replaced by the student's [MASK] row; the clean side detached."""
        inputs, is_pseudo = self.student_inputs(pseudo)
        chosen = is_pseudo & (torch.rand(is_pseudo.shape, device=pseudo.device) < self.options.mask_rate)
        empty = ~chosen.any(1)
        if empty.any():  # one random pseudo position for inputs left with none
            scores = torch.rand(is_pseudo.shape, device=pseudo.device).masked_fill(~is_pseudo, -1.0)
            chosen[empty, scores[empty].argmax(1)] = True
        masked = torch.where(chosen.unsqueeze(-1), self.view.row("mask"), inputs["inputs_embeds"])
        clean_logits = student(**inputs)
        masked_logits = student(**{**inputs, "inputs_embeds": masked})
        return losses.kl_divergence(masked_logits, clean_logits.detach())

    def adversarial_step(self, student, pseudo: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """`adversarial_steps` Adam steps of the pseudo-embeddings up the self-supervised loss and down the teacher's
        cross-entropy for `targets`; only the pseudo-embeddings change."""
        pseudo = pseudo.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([pseudo], lr=self.guesser.step_size)
        for _ in range(self.options.adversarial_steps):
            objective = (F.cross_entropy(self.guesser.teacher_logits(pseudo), targets)
                         - self.consistency(student, pseudo))
            (pseudo.grad,) = torch.autograd.grad(objective, [pseudo])
            optimizer.step()
        return pseudo.detach()

    def loss(self, step: int, batch: Batch) -> torch.Tensor | None:
        options = self.options
        if step % options.every:
            return None
        length = int(torch.randint(options.min_tokens, options.max_tokens + 1, ()))
        targets = self.guesser.targets(options.batch_size)
        pseudo = self.guesser.guess(targets, length)
        if options.adversarial_steps:
            pseudo = self.adversarial_step(batch.student, pseudo, targets)
        with torch.no_grad():
            teacher_logits = self.guesser.teacher_logits(pseudo)
        inputs, _ = self.student_inputs(pseudo)
        student_logits = batch.student(**inputs)
        loss = options.weight * losses.kl_divergence(student_logits, teacher_logits, self.temperature)
        if options.ssl_weight:
            loss = loss + options.ssl_weight * self.consistency(batch.student, pseudo)
        if self.samples_path is not None and last_before_evaluation(step, options.every, self.eval_every):
            # decoded pseudo-inputs, so a user can see what the teacher was shown
            append_jsonl(self.samples_path, ({"step": step + 1, **guess}
                                             for guess in self.guesser.decode(pseudo, teacher_logits)))
        return loss

    def to(self, device: torch.device) -> "EmbeddingGuessObjective":
        self.guesser.to(device)
        self.view.to(device)
        return self


def embedding_guess_text(config, teacher):
    """The text batches: `random` or `ood`, as `--embedding-guess-text` says."""
    return TEXTS[config.embedding_guess.text](config, teacher)


def validate(config) -> None:
    options = config.embedding_guess
    if options.text not in TEXTS:
        raise DataError(f"unknown --embedding-guess-text {options.text!r}: choose one of {', '.join(TEXTS)}")
    if not 1 <= options.min_tokens <= options.max_tokens:
        raise DataError(f"--embedding-guess-min-tokens {options.min_tokens} and --embedding-guess-max-tokens "
                        f"{options.max_tokens}: give 1 <= min <= max")
    for flag, value in (("every", options.every), ("batch-size", options.batch_size)):
        if value < 1:
            raise DataError(f"--embedding-guess-{flag} {value} must be at least 1")
    if not 0.0 < options.mask_rate <= 1.0:
        raise DataError(f"--embedding-guess-mask-rate {options.mask_rate} is not a fraction: give a number in (0, 1]")


METHOD = Method(transfer_set=embedding_guess_text, validate=validate,
                objectives=lambda setup: [EmbeddingGuessObjective(setup)])
