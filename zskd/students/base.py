"""What every student shares: the teacher's tokenizer with a pruned vocabulary, save/load, and batched `logits`.

A student reads the teacher's WordPiece tokens, but keeps only the vocabulary the transfer set uses:
`kept_token_ids[i]` is the teacher id of student token i; every other teacher token maps to [UNK].
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from zskd.batching import pad, sorted_batches
from zskd.data import DataError, TextInput, segment_ids, tokenize

STUDENT_CONFIG_FILE = "config.json"


def _tokenizer_specials(tokenizer) -> list[int]:
    """Teacher ids that every student vocabulary keeps, [PAD] first and [UNK] second."""
    ids = [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
           tokenizer.mask_token_id]
    return list(dict.fromkeys(i for i in ids if i is not None))


def build_vocabulary(tokenizer, token_counts: dict[int, int], max_vocab: int | None) -> list[int]:
    """Teacher ids to keep: the special tokens, then the most frequent used tokens, at most `max_vocab` in all."""
    specials = _tokenizer_specials(tokenizer)
    ranked = sorted((t for t in token_counts if t not in specials), key=lambda t: (-token_counts[t], t))
    if max_vocab:
        ranked = ranked[: max(0, max_vocab - len(specials))]
    return specials + ranked


def student_id_map(teacher_vocab_size: int, kept_token_ids: Sequence[int]) -> np.ndarray:
    """[V_teacher] int64: the student id of every teacher token id, 1 ([UNK]) for tokens the student dropped."""
    mapping = np.ones(teacher_vocab_size, dtype=np.int64)
    mapping[np.asarray(kept_token_ids, dtype=np.int64)] = np.arange(len(kept_token_ids))
    return mapping


def pca_embeddings(teacher_embeddings: torch.Tensor, kept_token_ids: Sequence[int], dim: int) -> torch.Tensor:
    """[V_student, dim] initial embeddings: the kept rows of the teacher's [V, D] matrix, centred, projected on their
    top `dim` principal components (zero columns past their rank) and rescaled so that their average norm stays the
    teacher's. At the teacher's width, the rows themselves."""
    rows = teacher_embeddings[list(kept_token_ids)].detach().float()
    if dim == rows.shape[1]:
        return rows.clone()
    centred = rows - rows.mean(0, keepdim=True)
    _, _, components = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:dim].T
    if projected.shape[-1] < dim:  # wider than the teacher, or fewer kept tokens than dimensions
        projected = torch.nn.functional.pad(projected, (0, dim - projected.shape[-1]))
    return projected * (rows.norm(dim=1).mean() / projected.norm(dim=1).mean().clamp_min(1e-8))


def lstm_direction(inputs: torch.Tensor, weights: Sequence[torch.Tensor], hidden_size: int, bias: bool,
                   training: bool) -> torch.Tensor:
    """[B, L, H] states of one LSTM layer read in one direction over [B, L, E] `inputs` from zero state, `weights`
    (w_ih, w_hh[, b_ih, b_hh]) as nn.LSTM keeps them: the kernel call `nn.LSTM.forward` makes, without its argument
    checks."""
    zeros = inputs.new_zeros(1, inputs.shape[0], hidden_size)
    return torch.lstm(inputs, (zeros, zeros), list(weights), bias, 1, 0.0, training, False, True)[0]


def gather_rows(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[B, S, D] rows of `states` [B, L, D] at positions `index` [B, S]."""
    return states.gather(1, index.unsqueeze(-1).expand(-1, -1, states.shape[-1]))


def predictions(logits: np.ndarray, label_names: Sequence[str]) -> list[dict]:
    """Per input, the predicted label, its probability and every label's probability, from [N, K] logits."""
    shifted = logits - logits.max(-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    return [{"label": label_names[int(row.argmax())], "score": round(float(row.max()), 6),
             "probabilities": {name: round(float(p), 6) for name, p in zip(label_names, row)}}
            for row in probabilities]


def finite_logits(logits: np.ndarray, whose: str) -> np.ndarray:
    """`logits`, once every value is finite: a NaN or infinite logit means damaged weights, never a score."""
    if not np.isfinite(logits).all():
        bad = int((~np.isfinite(logits)).any(-1).sum())
        raise DataError(f"{whose} gave non-finite logits (NaN or infinite) for {bad} of {len(logits)} inputs: its "
                        "weights are damaged; train or distil it again")
    return logits


class Student(nn.Module):
    """Base of every student. Subclasses set `student_type`, `config_class`, `default_lr` and define `forward`;
    `from_teacher` builds one initialised from a teacher."""

    student_type: ClassVar[str]
    config_class: ClassVar[type]
    default_lr: ClassVar[float]  # peak learning rate of distillation when the user gives none
    takes_hidden_states: ClassVar[bool] = False  # forward(output_hidden_states=True) for `--hidden-weight`
    # CPU threads for a single input: a small recurrent student's steps are too small to split,
    # and extra threads cost more than they give (BENCHMARKS.md); None keeps the process's setting
    single_input_threads: ClassVar[int | None] = None
    # the config options `--max-parameters` scales together to fit a size budget (none: the budget is refused)
    width_options: ClassVar[tuple[str, ...]] = ()
    # options a config saved before they existed lacks, with the value such students had (they load unchanged)
    saved_before: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Any, tokenizer, kept_token_ids: Sequence[int], label_names: Sequence[str],
                 max_length: int = 128):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.kept_token_ids = list(kept_token_ids)
        self.label_names = list(label_names)
        self.max_length = max_length
        mapping = student_id_map(len(tokenizer), self.kept_token_ids)
        self.register_buffer("teacher_to_student", torch.from_numpy(mapping), persistent=False)
        self._teacher_to_student_array = mapping  # for mapping on the CPU without tensor overhead

    @classmethod
    def from_teacher(cls, teacher, kept_token_ids: Sequence[int], options: dict[str, Any]) -> "Student":
        """A new student for `teacher`'s labels and tokenizer, its embeddings the PCA of the teacher's kept rows."""
        config = cls.config_class(vocab_size=len(kept_token_ids), num_labels=teacher.num_labels, **options)
        student = cls(config, teacher.tokenizer, kept_token_ids, teacher.label_names, teacher.max_length)
        embedding = student.word_embeddings
        with torch.no_grad():
            embedding.weight.copy_(pca_embeddings(teacher.embedding_matrix, kept_token_ids, embedding.weight.shape[1]))
        return student

    # --- inputs ------------------------------------------------------------------------------------------------
    def encode(self, inputs: Sequence[TextInput]) -> dict[str, list[list[int]]]:
        """Student token ids (and segment ids) for texts or pairs, not padded."""
        enc = tokenize(self.tokenizer, inputs, self.max_length)
        return {"input_ids": self.from_teacher_ids(enc["input_ids"]),
                "token_type_ids": segment_ids(enc)}

    def from_teacher_ids(self, teacher_ids: Sequence[Sequence[int]]) -> list[list[int]]:
        """The student ids of teacher token-id sequences ([UNK] for tokens outside the pruned vocabulary)."""
        return [self._teacher_to_student_array[ids].tolist() for ids in teacher_ids]

    def collate(self, input_ids: Sequence[Sequence[int]],
                token_type_ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Padded [B, L] tensors: input_ids, attention_mask, token_type_ids."""
        if len({len(x) for x in input_ids}) == 1:  # nothing to pad (always so for one input): the cheap path
            ids = torch.tensor(input_ids)
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                    "token_type_ids": torch.tensor(token_type_ids)}
        return {"input_ids": pad(input_ids, 0), "attention_mask": pad([[1] * len(x) for x in input_ids], 0),
                "token_type_ids": pad(token_type_ids, 0)}

    @torch.inference_mode()
    def logits(self, inputs: Sequence[TextInput], batch_size: int = 64) -> np.ndarray:
        """[N, K] float32 logits in the order of `inputs` (the same interface as `Teacher.logits`)."""
        was_training = self.training
        if was_training:
            self.eval()
        try:
            encoded = self.encode(inputs)
            ids, segments = encoded["input_ids"], encoded["token_type_ids"]
            if len(ids) == 1:
                return finite_logits(self._logits_of_one(ids[0], segments[0]), "the student")
            device = self.teacher_to_student.device
            out = np.zeros((len(ids), len(self.label_names)), dtype=np.float32)
            for batch in sorted_batches([len(x) for x in ids], batch_size):
                tensors = self.collate([ids[i] for i in batch], [segments[i] for i in batch])
                out[batch] = self(**{k: v.to(device) for k, v in tensors.items()}).float().cpu().numpy()
            return finite_logits(out, "the student")
        finally:
            if was_training:
                self.train()

    def predict(self, inputs: Sequence[TextInput], batch_size: int = 64) -> list[dict]:
        """Per text or (first, second) pair: {"label", "score", "probabilities": {label: p}}."""
        return predictions(self.logits(inputs, batch_size), self.label_names)

    def _logits_of_one(self, ids: list[int], segments: list[int]) -> np.ndarray:
        """The latency path: one input, no batching machinery, on `single_input_threads` CPU threads."""
        device = self.teacher_to_student.device
        threads = torch.get_num_threads()
        if self.single_input_threads and device.type == "cpu":
            torch.set_num_threads(min(threads, self.single_input_threads))
        try:
            logits = self._forward_one(torch.tensor([ids], device=device), torch.tensor([segments], device=device))
        finally:
            torch.set_num_threads(threads)
        return logits.float().cpu().numpy()

    def _forward_one(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """[1, K] logits of one unpadded [1, L] input (no attention mask: nothing is padded)."""
        return self(input_ids=input_ids, token_type_ids=token_type_ids)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- saving ------------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """config.json, model.safetensors and the tokenizer files: all a user needs to run the student."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"zskd_student": self.student_type, "config": dataclasses.asdict(self.config),
                "label_names": self.label_names, "max_length": self.max_length, "kept_token_ids": self.kept_token_ids}
        (directory / STUDENT_CONFIG_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, directory / "model.safetensors")
        self.tokenizer.save_pretrained(directory)


def is_student_directory(directory: str | Path) -> bool:
    """Whether `directory` holds a zskd student (its config.json names the student type)."""
    path = Path(directory) / STUDENT_CONFIG_FILE
    try:
        return path.is_file() and "zskd_student" in json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return False  # not readable as a student's: loading it as a model says what is wrong
