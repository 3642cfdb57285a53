"""BiLSTM student (default): pruned WordPiece embeddings initialised by PCA of the teacher's, a bidirectional LSTM,
mean+max pooling (`attention_pooling`: a learned weighted sum in place of the mean), and a small classifier. With
the defaults and the ~23k tokens of the out-of-domain corpora, 0.88M parameters: ~26x smaller than MiniLM-L6.
Narrow embeddings over a full vocabulary beat wide ones over a pruned one (BENCHMARKS.md): unknown words cost more
than embedding width."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from zskd.students.base import Student, gather_rows, lstm_direction


@dataclass
class BiLSTMConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 32
    hidden_size: int = 96
    num_layers: int = 1
    dropout: float = 0.2
    attention_pooling: bool = False  # a learned softmax over positions weighs the states, in place of their mean


class BiLSTMStudent(Student):
    student_type = "bilstm"
    config_class = BiLSTMConfig
    default_lr = 4e-3
    width_options = ("embedding_dim", "hidden_size")
    single_input_threads = 1

    def __init__(self, config: BiLSTMConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.segments = nn.Embedding(2, config.embedding_dim)
        nn.init.zeros_(self.segments.weight)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, config.num_layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.attention = nn.Linear(2 * config.hidden_size, 1) if config.attention_pooling else None
        self.classifier = nn.Sequential(
            nn.Linear(4 * config.hidden_size, config.hidden_size), nn.Tanh(), nn.Dropout(config.dropout),
            nn.Linear(config.hidden_size, config.num_labels),
        )

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None) -> torch.Tensor:
        """[B, K] logits from [B, L] student ids, or from [B, L, E] `inputs_embeds` in the student's space.
        Without `attention_mask`, nothing is padded."""
        embeds = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if token_type_ids is not None:
            embeds = embeds + self.segments(token_type_ids)
        if attention_mask is None or bool(attention_mask.all()):  # no padding: one call, no masks
            states = self._lstm_unpadded(self.dropout(embeds))
            return self.classifier(self.dropout(self._pool(states)))
        states = self._lstm_padded(self.dropout(embeds), attention_mask.sum(1))
        return self.classifier(self.dropout(self._pool(states, attention_mask)))

    def _pool(self, states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """[B, 4H] from [B, L, 2H] states: their mean (or attention-weighted sum) beside their maximum, over the
        positions `attention_mask` keeps (all of them without one)."""
        keep = None if attention_mask is None else attention_mask.unsqueeze(-1).bool()  # [B, L, 1]
        maximum = states.max(1).values if keep is None else states.masked_fill(~keep, -1e4).max(1).values
        if self.attention is not None:
            # a product and a sum, not a Linear call, which the ONNX export fixes to the example's length
            scores = (states * self.attention.weight).sum(-1, keepdim=True) + self.attention.bias  # [B, L, 1]
            if keep is not None:
                scores = scores.masked_fill(~keep, -1e4)
            first = (scores.softmax(1) * states).sum(1)
        elif keep is None:
            first = states.mean(1)
        else:
            first = (states * keep).sum(1) / keep.sum(1).clamp_min(1)
        return torch.cat([first, maximum], dim=-1)

    def _forward_one(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """`forward` (in eval mode) of one unpadded [1, L] input in functional calls: module calls cost 0.06 ms of
        a single review's 0.5 ms on a CPU (BENCHMARKS.md, latency). Tested equal to the batched path."""
        embeds = F.embedding(input_ids, self.word_embeddings.weight) + F.embedding(token_type_ids, self.segments.weight)
        pooled = self._pool(self._lstm_unpadded(embeds))
        hidden, output = self.classifier[0], self.classifier[3]
        return F.linear(torch.tanh(F.linear(pooled, hidden.weight, hidden.bias)), output.weight, output.bias)

    def _lstm_padded(self, embeds: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, L, 2H] states of the LSTM over right-padded [B, L, E] `embeds` whose rows hold `lengths` [B] tokens:
        at each row's tokens, those of packing the rows (padding states are left as they come). The forward
        direction reads a row as it is (its padding comes after its words); the backward one reads it with its
        words reversed in place (`reversed_in_place`). Each direction is one call of the unpadded kernel, which
        trains ~2x faster on a CPU than packed sequences (BENCHMARKS.md)."""
        lstm = self.lstm
        reverse = reversed_in_place(lengths, embeds.shape[1])
        weights, per_direction = lstm._flat_weights, len(lstm._flat_weights) // (2 * lstm.num_layers)
        states = embeds
        for layer in range(lstm.num_layers):
            if layer:
                states = F.dropout(states, lstm.dropout, self.training)  # between layers, as nn.LSTM
            forward_weights = weights[2 * layer * per_direction:(2 * layer + 1) * per_direction]
            backward_weights = weights[(2 * layer + 1) * per_direction:(2 * layer + 2) * per_direction]
            forward = lstm_direction(states, forward_weights, lstm.hidden_size, lstm.bias, self.training)
            backward = lstm_direction(gather_rows(states, reverse), backward_weights, lstm.hidden_size, lstm.bias,
                                      self.training)
            states = torch.cat([forward, gather_rows(backward, reverse)], dim=-1)
        return states

    def _lstm_unpadded(self, embeds: torch.Tensor) -> torch.Tensor:
        """[B, L, 2H] states of the LSTM from zero state: the kernel call `nn.LSTM.forward` makes, without its
        argument checks, which cost a sixth of a single review's forward on a CPU (BENCHMARKS.md, latency)."""
        lstm = self.lstm
        zeros = embeds.new_zeros(2 * lstm.num_layers, embeds.shape[0], lstm.hidden_size)
        return torch.lstm(embeds, (zeros, zeros), lstm._flat_weights, lstm.bias, lstm.num_layers, lstm.dropout,
                          self.training, True, True)[0]


def reversed_in_place(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """[B, width] positions that read each row's first `lengths` [B] tokens last to first and leave its padding
    where it is: gathering by them twice gives the row back."""
    positions = torch.arange(width, device=lengths.device).unsqueeze(0)  # [1, width]
    backwards = lengths.unsqueeze(1) - 1 - positions
    return torch.where(backwards >= 0, backwards, positions)
