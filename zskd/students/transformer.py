"""Small transformer student: a shallower (and optionally narrower) BERT. At the teacher's width it starts from
the teacher's embeddings and, for a teacher of BERT's shape (`BERT_SHAPED`), from evenly spaced teacher layers;
narrower, or from another family (DistilBERT, ELECTRA, DeBERTa, ModernBERT), its layers are random and its
embeddings start from a PCA of the teacher's. It can match the teacher's hidden states (`hidden_weight` in the
config).

With `embedding_dim` under the hidden size, the word embeddings are factorised as in ALBERT (Lan et al. 2020): a
[V, E] table and an E -> H projection, so that a vocabulary of ~20k tokens costs 0.7M parameters at E = 32 where it
costs 2.6M at H = 128, and a transformer at 25x fewer parameters than MiniLM-L6 can still be 128 wide (as a
cross-encoder of sentence pairs it lost to `pair-bilstm` on the RTE ceiling: BENCHMARKS.md, session 45)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from zskd.students.base import Student, student_id_map

# teacher families whose layers and embeddings have BERT's shapes, so that they load into the student's
BERT_SHAPED = ("bert", "roberta", "xlm-roberta", "camembert")


@dataclass
class TransformerConfig:
    vocab_size: int
    num_labels: int
    hidden_size: int = 384
    num_layers: int = 2
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    dropout: float = 0.1
    embedding_dim: int = 0  # word embeddings of this width, projected to hidden_size (0: hidden_size, none)
    teacher_layers: list[int] = field(default_factory=list)  # teacher layer each student layer starts from


class TransformerStudent(Student):
    student_type = "transformer"
    config_class = TransformerConfig
    default_lr = 1e-4
    takes_hidden_states = True

    @classmethod
    def from_teacher(cls, teacher, kept_token_ids, options) -> "TransformerStudent":
        """At the teacher's width (the default), the teacher's attention shape and evenly spaced teacher layers
        (first and last included); narrower, random layers. Embeddings as every student's."""
        options = dict(options)
        teacher_config = teacher.model.config
        options.setdefault("hidden_size", teacher_config.hidden_size)
        options.setdefault("max_position_embeddings", teacher_config.max_position_embeddings)
        if options["hidden_size"] == teacher_config.hidden_size:
            options.setdefault("num_heads", teacher_config.num_attention_heads)
            options.setdefault("intermediate_size", getattr(teacher_config, "intermediate_size",
                                                            4 * teacher_config.hidden_size))
            layers = options.setdefault("num_layers", 2)
            total = teacher_config.num_hidden_layers
            if teacher_config.model_type in BERT_SHAPED:  # other families' layers do not load into BERT's: random
                options.setdefault("teacher_layers",
                                   [round(i * (total - 1) / max(1, layers - 1)) for i in range(layers)])
        student = super().from_teacher(teacher, kept_token_ids, options)
        if student.config.teacher_layers:
            student.initialise_from_teacher(teacher.model)
        return student

    def __init__(self, config: TransformerConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        from transformers import BertConfig, BertForSequenceClassification

        self.bert = BertForSequenceClassification(BertConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_position_embeddings, num_labels=config.num_labels,
            hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout, pad_token_id=0,
        ))
        if self.factorised:
            # BERT's own [V, H] table is never read: inputs arrive as projected embeddings; a 1-row stand-in
            self.bert.bert.embeddings.word_embeddings = torch.nn.Embedding(1, config.hidden_size)
            self.factor_embeddings = torch.nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
            self.embedding_projection = torch.nn.Linear(config.embedding_dim, config.hidden_size)

    @property
    def factorised(self) -> bool:
        return 0 < self.config.embedding_dim != self.config.hidden_size

    def initialise_from_teacher(self, teacher_model) -> None:
        """Copy the teacher's position/segment embeddings, embedding LayerNorm and the layers in
        `config.teacher_layers` (same width only); word embeddings are set by the caller."""
        teacher_bert = teacher_model.base_model
        student_bert = self.bert.bert
        embeddings = teacher_bert.embeddings
        student_bert.embeddings.position_embeddings.load_state_dict(embeddings.position_embeddings.state_dict())
        student_bert.embeddings.token_type_embeddings.load_state_dict(embeddings.token_type_embeddings.state_dict())
        student_bert.embeddings.LayerNorm.load_state_dict(embeddings.LayerNorm.state_dict())
        for student_layer, teacher_index in zip(student_bert.encoder.layer, self.config.teacher_layers):
            student_layer.load_state_dict(teacher_bert.encoder.layer[teacher_index].state_dict())

    @property
    def word_embeddings(self) -> torch.nn.Embedding:
        """The table student ids index: [V, E] when factorised (what `inputs_embeds` then holds), else BERT's."""
        return self.factor_embeddings if self.factorised else self.bert.get_input_embeddings()

    def save_pretrained(self, directory: str | Path) -> None:
        """The student as every student saves, and in `directory/transformers/` as a plain transformers BERT
        classifier over the tokenizer's whole vocabulary (each token the row of its student id, so tokens the
        student dropped read as its [UNK]: the same function), for `AutoModelForSequenceClassification` and
        `pipeline("text-classification")` without zskd."""
        from transformers import BertConfig, BertForSequenceClassification

        super().save_pretrained(directory)
        names = list(self.label_names)
        config = BertConfig(**{**self.bert.config.to_dict(), "vocab_size": len(self.tokenizer),
                               "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)},
                               "pad_token_id": self.tokenizer.pad_token_id or 0})
        plain = BertForSequenceClassification(config)
        state = dict(self.bert.state_dict())
        rows = torch.from_numpy(student_id_map(len(self.tokenizer), self.kept_token_ids))
        table = self.embedding_projection(self.factor_embeddings.weight).detach() if self.factorised \
            else state["bert.embeddings.word_embeddings.weight"]  # the projection folded in: the same function
        state["bert.embeddings.word_embeddings.weight"] = table[rows]
        plain.load_state_dict(state)
        plain.eval()
        target = Path(directory) / "transformers"
        plain.save_pretrained(target, safe_serialization=True)
        self.tokenizer.model_max_length = self.max_length
        self.tokenizer.save_pretrained(target)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                output_hidden_states: bool = False):
        """[B, K] logits; with `output_hidden_states`, (logits, [num_layers + 1] x [B, L, D] hidden states).
        `inputs_embeds` [B, L, E] are rows of `word_embeddings`."""
        if self.factorised:
            embeds = self.factor_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
            input_ids, inputs_embeds = None, self.embedding_projection(embeds)
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        inputs_embeds=inputs_embeds, output_hidden_states=output_hidden_states)
        return (out.logits, out.hidden_states) if output_hidden_states else out.logits
