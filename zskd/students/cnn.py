"""Kim-style CNN student: pruned WordPiece embeddings (PCA of the teacher's), parallel convolutions of several
widths, max-pooling over time, a linear classifier. The fastest student at batch 1."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from zskd.students.base import Student


@dataclass
class CNNConfig:
    vocab_size: int
    num_labels: int
    embedding_dim: int = 32
    num_filters: int = 96
    widths: list[int] = field(default_factory=lambda: [2, 3, 4, 5])
    dropout: float = 0.1


class CNNStudent(Student):
    student_type = "cnn"
    config_class = CNNConfig
    default_lr = 2e-3
    width_options = ("embedding_dim", "num_filters")
    single_input_threads = 1  # one sentence's convolutions are too small to split across threads

    def __init__(self, config: CNNConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.segments = nn.Embedding(2, config.embedding_dim)
        nn.init.zeros_(self.segments.weight)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.num_filters, width, padding=width - 1) for width in config.widths
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(len(config.widths) * config.num_filters, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None) -> torch.Tensor:
        """[B, K] logits from [B, L] student ids, or from [B, L, E] `inputs_embeds` in the student's space.
        Without `attention_mask`, nothing is padded."""
        embeds = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if token_type_ids is not None:
            embeds = embeds + self.segments(token_type_ids)
        padded = attention_mask is not None and not bool(attention_mask.all())  # never so for one input: no masks
        embeds = self.dropout(embeds)
        if padded:
            embeds = embeds * attention_mask.unsqueeze(-1)
            lengths = attention_mask.sum(1, keepdim=True)
        embeds = embeds.transpose(1, 2)  # [B, E, L]
        pooled = []
        for conv, width in zip(self.convolutions, self.config.widths):
            features = torch.relu(conv(embeds))  # [B, F, L + width - 1]
            if padded:  # windows that see only padding are zeroed, so a batch scores each input as it would alone
                reaches_text = torch.arange(features.shape[2], device=features.device) < lengths + width - 1
                features = features * reaches_text.unsqueeze(1)
            pooled.append(features.max(dim=2).values)
        return self.classifier(self.dropout(torch.cat(pooled, dim=-1)))
