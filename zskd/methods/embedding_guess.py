"""Data-free distillation from guessed embeddings (AS-DFD, Ma et al.): method `embedding-guess`.

    zskd distill --teacher runs/teachers/sst2 --method embedding-guess --eval-task sst2 --out runs/sst2-guess
    zskd distill ... --method embedding-guess --embedding-guess-text ood      # mixed with out-of-domain text

For a user with no text at all. Every `every` student steps the objective guesses a batch of inputs in the
teacher's embedding space:

1. **Plug & play embedding guessing.** `batch_size` pseudo-inputs, `min_tokens` to `max_tokens` positions long
   (one length per batch), between the teacher's real [CLS] and [SEP] rows (pairs: [CLS] a [SEP] b [SEP], two
   segments); the teacher adds its own position and segment embeddings. Each position holds `candidates` whole
   words drawn at random from the vocabulary (so the start samples the embedding matrix itself) with learnable
   scores, and reads the row of its top-scoring word; gradients reach the scores through their softmax
   (straight-through). So the guess moves between real token rows: free vectors anywhere in the space (a first
   version) and soft mixtures of the candidates' rows (a second) let the teacher be convinced by points no text
   reaches, and the student learned less it could use on real tokens (BENCHMARKS.md). Each pseudo-input gets a
   target class (balanced over the batch), and `guess_steps` normalised gradient steps of the scores lower the
   teacher's cross-entropy for it, plus `diversity` x the mean cosine similarity between the batch's mean
   pseudo-embeddings, so that the batch does not collapse onto one point per class.
2. **Adversarial self-supervised module.** The self-supervised task is consistency under masking: the student
   should give the same prediction when `mask_rate` of the pseudo positions are replaced by its [MASK] row
   (KL(student(clean) || student(masked)), clean side detached). It needs no extra head, so every student can do
   it from its logits, and where it is high the student's decision rests on single positions: the fragile part of
   the input space. `adversarial_steps` steps move the scores up that loss, for one draw of masked positions, while
   keeping the teacher's cross-entropy for the target class down (each term's gradient normalised on its own, so
   neither drowns the other); the student then learns consistency on the same masks. With a fresh draw at every
   evaluation the ascent did not carry over from one draw to the next.
3. **Distillation.** The student learns the teacher's soft labels on the final pseudo-inputs (KL at
   `temperature`, weight `weight`) and the self-supervised task itself (weight `ssl_weight`). Every student reads
   a pseudo-input through its own embedding table, as the tokens it is (its rows of those words learn from it,
   whatever the student's width), so what it learns serves on token ids as usual.

Every batch also trains on a text batch as every method does: `text` chooses random vocabulary words (no data at
all, the default) or the out-of-domain corpora (`ood`); the held-out agreement that picks the best checkpoint is
measured on that text. At each evaluation interval a few pseudo-inputs are decoded to their words, with
the teacher's label and confidence, into `embedding_guesses.jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zskd import losses
from zskd.config import append_jsonl, option
from zskd.data import DataError, check_share
from zskd.methods.base import Batch, Method, Objective, Setup, last_before_evaluation
from zskd.methods.ood import ood_transfer_set
from zskd.methods.random_tokens import random_transfer_set, whole_words

TEXTS = {"random": random_transfer_set, "ood": ood_transfer_set}


@dataclass
class EmbeddingGuessOptions:
    text: str = option("random", "the text batches the guessed ones mix with: random (vocabulary words: no data at "
                                 "all) or ood (the out-of-domain corpora)")
    batch_size: int = option(32, "pseudo-inputs per guessed batch")
    min_tokens: int = option(4, "shortest pseudo-input, in pseudo word-embeddings")
    max_tokens: int = option(24, "longest pseudo-input, in pseudo word-embeddings")
    candidates: int = option(16, "candidate words at each pseudo-input position, drawn at random; guessing moves the "
                                 "position between them")
    init_spread: float = option(1.0, "standard deviation of the candidates' initial scores")
    word_prior: str = option("zipf", "how candidate words are drawn: zipf (by rank in the tokenizer's vocabulary, "
                                     "which most tokenizers number from frequent to rare; single letters left out) or "
                                     "uniform")
    guess_steps: int = option(3, "steps toward the target class for each guessed batch")
    lr: float = option(0.3, "step size of the candidates' scores, in mean gradient magnitudes")
    diversity: float = option(1.0, "weight of the mean cosine similarity between a batch's pseudo-inputs (0: off)")
    adversarial_steps: int = option(1, "steps up the student's self-supervised loss, the teacher kept confident "
                                       "(0: off)")
    mask_rate: float = option(0.15, "self-supervised task: fraction of pseudo-embeddings masked")
    ssl_weight: float = option(1.0, "weight of the self-supervised consistency loss the student learns")
    weight: float = option(1.0, "weight of the guessed batch's KL against the text batch's loss")
    every: int = option(2, "student steps between guessed batches")


@dataclass
class PseudoWords:
    """A batch of pseudo-inputs: at each of [B, L] positions, K candidate words (student ids) and learnable scores.
    Forward passes read each position's top-scoring word alone, so a pseudo-input is a real token sequence;
    gradients reach the scores through the softmax of the scores (straight-through)."""

    candidates: torch.Tensor  # [B, L, K] student ids
    scores: torch.Tensor  # [B, L, K]

    def weights(self) -> torch.Tensor:
        """[B, L, K]: one-hot at each position's top candidate in value, the softmax of the scores in gradient."""
        soft = self.scores.softmax(-1)
        return F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype) + soft - soft.detach()

    def embeddings(self, table: torch.Tensor) -> torch.Tensor:
        """[B, L, D] pseudo word-embeddings, the top words' rows of a [V_student, D] table (the teacher's rows or the
        student's own)."""
        return torch.einsum("blk,blkd->bld", self.weights(), table[self.candidates])

    def top_words(self) -> torch.Tensor:
        """[B, L] student ids of each position's top-scoring candidate: the tokens the pseudo-input reads."""
        return self.candidates.gather(-1, self.scores.argmax(-1, keepdim=True)).squeeze(-1)


class EmbeddingGuesser:
    """Batches of pseudo-inputs the teacher is confident about: white-box, the teacher's weights frozen."""

    def __init__(self, options: EmbeddingGuessOptions, teacher, vocabulary: list[int], pairs: bool):
        self.options, self.teacher, self.pairs = options, teacher, pairs
        for p in teacher.model.parameters():
            p.requires_grad_(False)
        teacher.model.eval()
        self.table = teacher.embedding_matrix.detach().float()[vocabulary]  # [V_student, D]: student id order
        tokenizer = teacher.tokenizer
        student_id = {teacher_id: i for i, teacher_id in enumerate(vocabulary)}
        self.special = {name: student_id[getattr(tokenizer, f"{name}_token_id")] for name in ("cls", "sep", "mask")}
        word_of = {student_id[i]: word for word, i in whole_words(tokenizer) if i in student_id}
        # whole words, as `random` draws; a vocabulary without any (a tiny test one) offers all its tokens
        self.words = torch.tensor(sorted(word_of) or sorted(set(range(len(vocabulary))) - set(self.special.values())))
        self.word_weights = None  # uniform
        if options.word_prior == "zipf":  # P ~ 1 / rank in the tokenizer's vocabulary, numbered frequent to rare
            # WordPiece vocabularies number the single letters before every word; ranked first, they took a third of
            # the draws ("a d a shards d gail he forget"), so the prior leaves them out
            letters = torch.tensor([len(word_of.get(i, "")) == 1 for i in self.words.tolist()])
            rank = torch.tensor([vocabulary[i] for i in self.words.tolist()]).masked_fill(letters, len(tokenizer))
            rank = rank.argsort().argsort()
            self.word_weights = (1.0 / (rank + 1.0)).masked_fill(letters, 0.0)

    def targets(self, count: int) -> torch.Tensor:
        """[count] target classes, as even as the count allows, in random order."""
        classes = torch.arange(count, device=self.table.device) % self.teacher.num_labels
        return classes[torch.randperm(count, device=self.table.device)]

    def initial(self, count: int, length: int) -> PseudoWords:
        """`candidates` words drawn by `word_prior` at each position, their scores Gaussian with spread
        `init_spread`."""
        options, device = self.options, self.table.device
        shape = (count, length, options.candidates)
        if self.word_weights is None:
            drawn = torch.randint(len(self.words), shape, device=device)
        else:
            drawn = torch.multinomial(self.word_weights.to(device), count * length * options.candidates,
                                      replacement=True).view(shape)
        candidates = self.words.to(device)[drawn]
        scores = options.init_spread * torch.randn(candidates.shape, device=device)
        return PseudoWords(candidates, scores)

    def positions(self, count: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Of [CLS] pseudo [SEP] (pairs: [CLS] first half [SEP] second half [SEP]) for `length` pseudo positions:
        (token_type_ids [count, L'], is_pseudo [count, L'] bool)."""
        if self.pairs:
            half = first_sentence_length(length)
            segments = [0] * (half + 2) + [1] * (length - half + 1)
            flags = [False] + [True] * half + [False] + [True] * (length - half) + [False]
        else:
            segments, flags = [0] * (length + 2), [False] + [True] * length + [False]
        return (torch.tensor(segments, device=device).expand(count, -1),
                torch.tensor(flags, device=device).expand(count, -1))

    def layout(self, pseudo: torch.Tensor, cls: torch.Tensor, sep: torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`pseudo` [B, L, width] between the given [CLS]/[SEP] rows, as `positions` lays them out:
        (embeddings [B, L', width], token_type_ids [B, L'], is_pseudo [B, L'] bool)."""
        count, length, width = pseudo.shape
        cls, sep = cls.expand(count, 1, width), sep.expand(count, 1, width)
        if self.pairs:
            half = first_sentence_length(length)
            parts = [cls, pseudo[:, :half], sep, pseudo[:, half:], sep]
        else:
            parts = [cls, pseudo, sep]
        return torch.cat(parts, dim=1), *self.positions(count, length, pseudo.device)

    def teacher_logits(self, pseudo: PseudoWords) -> torch.Tensor:
        """[B, K] float32 teacher logits, differentiable with respect to the pseudo-inputs' scores."""
        table = self.table
        embeds, token_type_ids, _ = self.layout(pseudo.embeddings(table), table[self.special["cls"]],
                                                table[self.special["sep"]])
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        with torch.autocast(device_type=embeds.device.type, dtype=torch.bfloat16, enabled=self.teacher.bf16):
            return self.teacher.logits_from_embeddings(embeds, mask, token_type_ids).float()

    def guess(self, targets: torch.Tensor, length: int) -> PseudoWords:
        """Pseudo-inputs [B, length] after `guess_steps` steps of their scores down the teacher's cross-entropy for
        `targets` plus the diversity term."""
        pseudo = self.initial(len(targets), length)
        for _ in range(self.options.guess_steps):
            pseudo.scores.requires_grad_(True)
            loss = F.cross_entropy(self.teacher_logits(pseudo), targets)
            if self.options.diversity:
                loss = loss + self.options.diversity * mean_similarity(pseudo.embeddings(self.table).mean(1))
            pseudo = normalised_step(pseudo, [loss], self.options.lr)
        return pseudo

    def to(self, device: torch.device) -> "EmbeddingGuesser":
        self.table = self.table.to(device)
        return self

    def decode(self, pseudo: PseudoWords, teacher_logits: torch.Tensor, vocabulary: list[int],
               limit: int = 8) -> list[dict]:
        """The first `limit` pseudo-inputs as words, with the mean softmax weight of those words among their
        candidates, the teacher's label and its confidence, for a person to read."""
        words = pseudo.top_words()[:limit]
        weight = pseudo.scores[:limit].softmax(-1).max(-1).values.mean(-1)
        probabilities = torch.softmax(teacher_logits[:limit], -1)
        names, tokenizer = self.teacher.label_names, self.teacher.tokenizer
        return [{"text": tokenizer.decode([vocabulary[i] for i in ids.tolist()]), "top_weight": round(float(w), 4),
                 "teacher_label": names[int(p.argmax())], "confidence": round(float(p.max()), 4)}
                for ids, w, p in zip(words, weight, probabilities)]


def first_sentence_length(length: int) -> int:
    """How many of a pair's `length` pseudo positions go to its first sentence."""
    return max(1, length // 2)


def normalised_step(pseudo: PseudoWords, losses: list[torch.Tensor], lr: float) -> PseudoWords:
    """The pseudo-inputs after one step of their scores down the sum of `losses`, each one's gradient divided by its
    mean magnitude over the batch: each term pulls as hard whatever its scale, and scores that hardly matter hardly
    move (Adam's per-score normalisation moved every score by `lr`, reshuffling words the teacher did not care
    about)."""
    step = torch.zeros_like(pseudo.scores)
    for loss in losses:
        (gradient,) = torch.autograd.grad(loss, [pseudo.scores], retain_graph=True)
        step += gradient / gradient.abs().mean().clamp_min(1e-12)
    return PseudoWords(pseudo.candidates, pseudo.scores.detach() - lr * step)


def mean_similarity(vectors: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between distinct rows of [B, D] `vectors` (0 for a single row): scalar."""
    if vectors.shape[0] < 2:
        return vectors.sum() * 0.0
    unit = F.normalize(vectors, dim=-1)
    similarity = unit @ unit.T
    count = vectors.shape[0]
    return (similarity.sum() - similarity.diagonal().sum()) / (count * (count - 1))


class EmbeddingGuessObjective(Objective):
    """Every `every` steps: guess a batch, push it toward the student's self-supervised difficulty, and return the
    student's KL against the teacher on it plus the self-supervised loss."""

    name = "embedding_guess"
    artefacts = ("embedding_guesses.jsonl",)

    def __init__(self, setup: Setup):
        config = setup.config
        self.options, self.temperature, self.eval_every = config.embedding_guess, config.temperature, config.eval_every
        self.vocabulary, self.bare_student = setup.vocabulary, setup.student  # its embedding table is read directly
        self.guesser = EmbeddingGuesser(self.options, setup.teacher, setup.vocabulary, bool(config.pairs))
        self.samples_path = setup.work / self.artefacts[0] if setup.is_main_process else None

    def student_inputs(self, pseudo: PseudoWords) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The student's keyword arguments for the pseudo-inputs, read through its own embedding table (which
        learns from them), and which positions are pseudo."""
        table, special = self.bare_student.word_embeddings.weight, self.guesser.special
        embeds, token_type_ids, is_pseudo = self.guesser.layout(pseudo.embeddings(table), table[special["cls"]],
                                                                table[special["sep"]])
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        return {"inputs_embeds": embeds, "attention_mask": mask, "token_type_ids": token_type_ids}, is_pseudo

    def masked_positions(self, pseudo: PseudoWords) -> torch.Tensor:
        """[B, L'] bool, over the student's layout: `mask_rate` of the pseudo positions, at least one per input."""
        count, length, _ = pseudo.candidates.shape
        _, is_pseudo = self.guesser.positions(count, length, pseudo.candidates.device)
        chosen = is_pseudo & (torch.rand(is_pseudo.shape, device=is_pseudo.device) < self.options.mask_rate)
        empty = ~chosen.any(1)
        if empty.any():  # one random pseudo position for inputs left with none
            scores = torch.rand(is_pseudo.shape, device=is_pseudo.device).masked_fill(~is_pseudo, -1.0)
            chosen[empty, scores[empty].argmax(1)] = True
        return chosen

    def consistency(self, student, pseudo: PseudoWords, chosen: torch.Tensor) -> torch.Tensor:
        """The self-supervised loss: KL(student(clean) || student(masked)), the `chosen` positions replaced by the
        student's [MASK] row; the clean side detached."""
        inputs, _ = self.student_inputs(pseudo)
        mask_row = self.bare_student.word_embeddings.weight[self.guesser.special["mask"]]
        masked = torch.where(chosen.unsqueeze(-1), mask_row, inputs["inputs_embeds"])
        clean_logits = student(**inputs)
        masked_logits = student(**{**inputs, "inputs_embeds": masked})
        return losses.kl_divergence(masked_logits, clean_logits.detach())

    def adversarial_step(self, student, pseudo: PseudoWords, targets: torch.Tensor, chosen: torch.Tensor,
                         ) -> PseudoWords:
        """`adversarial_steps` steps of the pseudo-inputs' scores up the self-supervised loss with the `chosen`
        positions masked, and down the teacher's cross-entropy for `targets`; only the scores change."""
        for _ in range(self.options.adversarial_steps):
            pseudo.scores.requires_grad_(True)
            confidence = F.cross_entropy(self.guesser.teacher_logits(pseudo), targets)
            pseudo = normalised_step(pseudo, [confidence, -self.consistency(student, pseudo, chosen)], self.options.lr)
        return pseudo

    def loss(self, step: int, batch: Batch) -> torch.Tensor | None:
        options = self.options
        if step % options.every:
            return None
        length = int(torch.randint(options.min_tokens, options.max_tokens + 1, ()))
        targets = self.guesser.targets(options.batch_size)
        pseudo = self.guesser.guess(targets, length)
        chosen = self.masked_positions(pseudo)  # the adversary and the student work on the same masks
        if options.adversarial_steps:
            pseudo = self.adversarial_step(batch.student, pseudo, targets, chosen)
        with torch.no_grad():
            teacher_logits = self.guesser.teacher_logits(pseudo)
        inputs, _ = self.student_inputs(pseudo)
        student_logits = batch.student(**inputs)
        loss = options.weight * losses.kl_divergence(student_logits, teacher_logits, self.temperature)
        if options.ssl_weight:
            loss = loss + options.ssl_weight * self.consistency(batch.student, pseudo, chosen)
        if self.samples_path is not None and last_before_evaluation(step, options.every, self.eval_every):
            # decoded pseudo-inputs, so a user can see what the teacher was shown
            append_jsonl(self.samples_path, ({"step": step + 1, **guess} for guess in
                                             self.guesser.decode(pseudo, teacher_logits, self.vocabulary)))
        return loss

    def to(self, device: torch.device) -> "EmbeddingGuessObjective":
        self.guesser.to(device)
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
    if options.word_prior not in ("uniform", "zipf"):
        raise DataError(f"unknown --embedding-guess-word-prior {options.word_prior!r}: choose uniform or zipf")
    check_share("--embedding-guess-mask-rate", options.mask_rate)


METHOD = Method(transfer_set=embedding_guess_text, validate=validate, needs_weights=True,
                objectives=lambda setup: [EmbeddingGuessObjective(setup)], options_group="embedding_guess")
