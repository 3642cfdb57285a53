"""Pair-aware BiLSTM student, the default when the teacher reads sentence pairs: each sentence is encoded alone by
one shared BiLSTM, and the two pooled encodings u, v are compared through [u; v; |u - v|; u * v] (the features
Tang et al. 2019 gave the BiLSTM students they distilled from BERT for MNLI and QQP). The single-sequence `bilstm`
reads [CLS] a [SEP] b [SEP] as one text and, distilled on pairs, learned to answer one class (issue 19).

With `cross_attention`, before pooling, each sentence's states also attend over the other's and are compared with
what they align to, [h; a; h - a; h * a] projected back to the states' width (ESIM's local inference, Chen et
al. 2017): pooled encodings alone blur the one changed word or number that separates a paraphrase from a near miss.

With `overlap_features`, the classifier also reads how well each sentence's words are covered by the other's: for
each word, its best cosine similarity (of word embeddings) to a word of the other sentence, averaged and at its
worst, in both directions (4 numbers). A soft form of the word overlap that paraphrase and entailment baselines
rest on; the worst-covered word is the one new fact a near miss adds.

With `word_match` (on by default), each token's input to the BiLSTM also says whether its word stands in the other
sentence (1) or not (0), the exact-match feature of DrQA (Chen et al. 2017): the encoder can then tell where the
unmatched words are, a changed number or subject among them, before anything is pooled (on MRPC over 3 seeds it
lifted the in-domain ceiling from 97.3% to 98.7% of the teacher's F1 and the zero-shot student by 2.6 points,
the most on the pairs the teacher calls not_paraphrase: BENCHMARKS.md).

Each branch reads its segment left-aligned and, for the backward direction, reversed within its own length, so
that no state sees padding, nor the other segment but through these options. The same code is the batched path,
the one-input path and the ONNX graph (where every shape follows the input's length, none the data).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zskd.students.base import Student, gather_rows, lstm_direction


@dataclass
class PairBiLSTMConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 32
    hidden_size: int = 64
    classifier_size: int = 64
    cross_attention: bool = False
    overlap_features: bool = False
    word_match: bool = True
    dropout: float = 0.2


class PairBiLSTMStudent(Student):
    student_type = "pair-bilstm"
    config_class = PairBiLSTMConfig
    default_lr = 4e-3
    width_options = ("embedding_dim", "hidden_size", "classifier_size")
    single_input_threads = 1
    saved_before = {"word_match": False}  # on by default since session 20

    def __init__(self, config: PairBiLSTMConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        lstm_inputs = config.embedding_dim + config.word_match
        self.forward_lstm = nn.LSTM(lstm_inputs, config.hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(lstm_inputs, config.hidden_size, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        if config.cross_attention:
            self.compare = nn.Linear(8 * config.hidden_size, 2 * config.hidden_size)
        self.classifier = nn.Sequential(
            nn.Linear(16 * config.hidden_size + 4 * config.overlap_features, config.classifier_size), nn.Tanh(),
            nn.Dropout(config.dropout),
            nn.Linear(config.classifier_size, config.num_labels),
        )

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None) -> torch.Tensor:
        """[B, K] logits from [B, L] student ids (or [B, L, E] `inputs_embeds`) laid out as [CLS] a [SEP] b [SEP]:
        segment 0 is the first branch's, segment 1 the second's. Without `attention_mask`, nothing is padded."""
        embeds = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        real = torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device) if attention_mask is None \
            else attention_mask.bool()
        second = real & (token_type_ids == 1) if token_type_ids is not None else torch.zeros_like(real)
        first_length, second_length = (real & ~second).sum(1), second.sum(1)
        inputs = torch.cat([embeds, word_matches(embeds, real & ~second, second)], dim=-1) \
            if self.config.word_match else embeds
        first, second = self.both_segment_states(inputs, first_length, second_length)
        if self.config.cross_attention:
            first, second = self.aligned(first, second)
        u, v = pooled(*first), pooled(*second)
        features = [u, v, (u - v).abs(), u * v]
        if self.config.overlap_features:
            features.append(overlap(*self.segment_embeddings(embeds, torch.zeros_like(first_length), first_length),
                                    *self.segment_embeddings(embeds, first_length, second_length)))
        return self.classifier(self.dropout(torch.cat(features, dim=-1)))

    def encode_segment(self, embeds: torch.Tensor, start: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """[B, 4H] mean and max of the BiLSTM states over the `length` [B] tokens of each row of `embeds` [B, L, E]
        from `start` [B]: that segment alone (zeros for an empty one: a single sentence has no second segment)."""
        return pooled(*self.segment_states(embeds, start, length))

    def both_segment_states(self, embeds: torch.Tensor, first_length: torch.Tensor, second_length: torch.Tensor,
                            ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """`segment_states` of each row's first segment (its first `first_length` [B] tokens) and second (the
        `second_length` after them), read as one batch of 2B rows: one LSTM pass a direction for both segments, half
        the sequential steps of reading them in turn."""
        batch = embeds.shape[0]
        states, inside = self.segment_states(torch.cat([embeds, embeds]),
                                             torch.cat([torch.zeros_like(first_length), first_length]),
                                             torch.cat([first_length, second_length]))
        return (states[:batch], inside[:batch]), (states[batch:], inside[batch:])

    def segment_states(self, embeds: torch.Tensor, start: torch.Tensor, length: torch.Tensor,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """The BiLSTM states [B, S, 2H] of the `length` [B] tokens of each row of `embeds` [B, L, E] from `start`
        [B], read as that segment alone, and which of the S steps are inside it, [B, S] bool."""
        ahead, behind, inside = segment_positions(embeds, start, length)
        # a state at step t depends only on steps before t: the tokens read past the segment's end change nothing
        # that is pooled or attended to
        forward_states = run_lstm(self.forward_lstm, self.dropout(gather_rows(embeds, ahead)))
        backward_states = run_lstm(self.backward_lstm, self.dropout(gather_rows(embeds, behind)))
        return torch.cat([forward_states, backward_states], dim=-1), inside

    @staticmethod
    def segment_embeddings(embeds: torch.Tensor, start: torch.Tensor, length: torch.Tensor,
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings [B, S, E] of each row's segment (`start`, `length` [B]) and which steps are inside it."""
        ahead, _, inside = segment_positions(embeds, start, length)
        return gather_rows(embeds, ahead), inside

    def aligned(self, first: tuple[torch.Tensor, torch.Tensor], second: tuple[torch.Tensor, torch.Tensor],
                ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Each segment's states [B, S, 2H] compared with the other segment's states they attend to (`compared`).
        Inside-masks pass through; an empty segment offers nothing to attend to (zeros)."""
        (a, inside_a), (b, inside_b) = first, second
        scores = a @ b.transpose(1, 2)  # [B, Sa, Sb]
        to_b = scores.masked_fill(~inside_b.unsqueeze(1), -1e4).softmax(-1) * inside_b.any(1).view(-1, 1, 1)
        to_a = scores.transpose(1, 2).masked_fill(~inside_a.unsqueeze(1), -1e4).softmax(-1) \
            * inside_a.any(1).view(-1, 1, 1)
        a_aligned, b_aligned = to_b @ b, to_a @ a
        return (self.compared(a, a_aligned), inside_a), (self.compared(b, b_aligned), inside_b)

    def compared(self, states: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
        """ReLU of `compare` on [h; a; h - a; h * a], [B, S, 2H]. The rows are flattened by hand with S left as -1:
        the export fixes the example's length wherever a shape is spelled out (a linear layer on a 3-D input)."""
        features = torch.cat([states, aligned, states - aligned, states * aligned], dim=-1)
        compared = torch.relu(self.compare(features.reshape(-1, features.shape[-1])))
        return compared.view(states.shape[0], -1, compared.shape[-1])


def pooled(states: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """[B, 2D] mean and max of `states` [B, S, D] over the steps `inside` [B, S]; zeros where none is."""
    length = inside.sum(1, keepdim=True)
    mask = inside.unsqueeze(-1)
    mean = (states * mask).sum(1) / length.clamp_min(1)
    maximum = states.masked_fill(~mask, -1e4).max(1).values
    return torch.cat([mean, maximum], dim=-1) * (length > 0)


def overlap(a: torch.Tensor, inside_a: torch.Tensor, b: torch.Tensor, inside_b: torch.Tensor) -> torch.Tensor:
    """[B, 4] how well each segment's words are covered by the other's: per word of `a` [B, Sa, E] its best cosine
    similarity to a word of `b` [B, Sb, E], averaged over `a` and at its lowest, then the same from `b`. Zeros where
    either segment is empty."""
    similarity = nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).transpose(1, 2)
    both = inside_a.any(1, keepdim=True) & inside_b.any(1, keepdim=True)  # [B, 1]
    features = []
    for scores, inside, other in ((similarity, inside_a, inside_b), (similarity.transpose(1, 2), inside_b, inside_a)):
        best = scores.masked_fill(~other.unsqueeze(1), -1.0).max(-1).values  # [B, S]: each word's best match
        mean = (best * inside).sum(1, keepdim=True) / inside.sum(1, keepdim=True).clamp_min(1)
        lowest = best.masked_fill(~inside, 1.0).min(1, keepdim=True).values
        features += [mean, lowest]
    return torch.cat(features, dim=-1) * both


def word_matches(embeds: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """[B, L, 1]: 1 where a token of one segment (`first`, `second` [B, L] bool) has the same embedding as a token of
    the other (the same word), else 0; 0 outside both. A feature, not a path for gradients."""
    unit = nn.functional.normalize(embeds.detach(), dim=-1)
    same = unit @ unit.transpose(1, 2) > 0.999  # [B, L, L]
    across = first.unsqueeze(2) & second.unsqueeze(1) | second.unsqueeze(2) & first.unsqueeze(1)
    return (same & across).any(-1, keepdim=True).to(embeds.dtype)


def segment_positions(embeds: torch.Tensor, start: torch.Tensor, length: torch.Tensor,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each row's segment (`start`, `length` [B]) lies in `embeds` [B, L, E]: positions [B, S] read forward
    from its first token and backward from its last (clamped into the row), and which of the S steps are inside it.
    Eager code reads to the longest segment; an exported graph to the row's length (no shape follows the data)."""
    last = embeds.shape[1] - 1
    exported = torch.compiler.is_compiling() or torch.compiler.is_exporting()
    steps = embeds.shape[1] if exported else int(length.max().clamp_min(1))
    positions = torch.arange(steps, device=embeds.device).unsqueeze(0)  # [1, steps]
    ahead = (start.unsqueeze(1) + positions).clamp(0, last)
    behind = (start.unsqueeze(1) + length.clamp_min(1).unsqueeze(1) - 1 - positions).clamp(0, last)
    return ahead, behind, positions < length.unsqueeze(1)


def run_lstm(lstm: nn.LSTM, inputs: torch.Tensor) -> torch.Tensor:
    """[B, S, H] states of a one-layer, one-direction `lstm` over [B, S, E] `inputs` from zero state."""
    return lstm_direction(inputs, lstm._flat_weights, lstm.hidden_size, lstm.bias, lstm.training)
