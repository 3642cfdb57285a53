"""Tiny random models built inside the tests: a 2-layer, hidden-32 BERT classifier with a small WordPiece vocab, and a
2-layer Llama with a word-level tokenizer for generation."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny models: threads cost more than they give


@pytest.fixture(autouse=True)
def float32_labelling_by_default(monkeypatch):
    """Teachers label in float32 unless a test asks: the same logits on every CPU, and tiny models only lose time
    to bf16 autocast (on an AMD EPYC the suite took 483 s with it, 213 s without)."""
    import zskd.teacher

    monkeypatch.setattr(zskd.teacher, "cpu_bf16_pays", lambda cpuinfo=None: False)


@pytest.fixture(scope="session")
def tiny_glove_directory(tmp_path_factory) -> Path:
    """A GloVe in the packaged files' format: 150 filler words (the range `glove_neighbours` skips as too frequent),
    then the tiny vocabulary's words, with random 8-d vectors."""
    import itertools

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = tmp_path_factory.mktemp("glove")
    fillers = ["zz" + "".join(letters) for letters in itertools.product("abcdefghijklm", repeat=2)][:150]
    words = fillers + [w for w in WORDS if w.isalpha()]
    pq.write_table(pa.table({"index": words}), directory / "glove_6B_index.parquet")
    np.save(directory / "glove_6B_50d_emb.npy", np.random.default_rng(0).normal(size=(len(words), 8)).astype("f4"))
    return directory


@pytest.fixture(autouse=True)
def tiny_glove(request, tiny_glove_directory, monkeypatch):
    """Every fast test, and the processes it starts, read the tiny GloVe (through $ZSKD_GLOVE), not the packaged one:
    the default `--augment-kinds` has other-words. `slow` tests read the packaged one."""
    import zskd.glove

    if not request.node.get_closest_marker("slow"):
        monkeypatch.setenv("ZSKD_GLOVE", str(tiny_glove_directory))
    zskd.glove._glove.cache_clear()
    yield
    zskd.glove._glove.cache_clear()


@pytest.fixture
def fake_glove(tmp_path, monkeypatch):
    """A function that installs a GloVe of the given words and [n, d] vectors in place of the packaged one, in its
    files' format."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import zskd.glove

    def install(words, vectors):
        pq.write_table(pa.table({"index": list(words)}), tmp_path / "glove_6B_index.parquet")
        np.save(tmp_path / "glove_6B_50d_emb.npy", vectors)
        zskd.glove._glove.cache_clear()

    monkeypatch.setenv("ZSKD_GLOVE", str(tmp_path))
    return install


WORDS = (
    "the a movie film was is good great fine bad awful boring fun loved hated it plot acting what who where when "
    "how why many city name of in and not very , . ? ! cat dog ran sat on mat".split()
)


def make_tiny_classifier(directory: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """Save a random BertForSequenceClassification (2 layers, hidden 32) with its tokenizer to `directory`."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, num_labels=num_labels,
        id2label={i: f"label{i}" for i in range(num_labels)}, label2id={f"label{i}": i for i in range(num_labels)},
    )
    BertForSequenceClassification(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_model_3way(tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp("tiny3") / "model", num_labels=3)


SENTIMENT = [
    ("the movie was good", 1), ("great fun", 1), ("i loved the acting", 1), ("a fine film", 1),
    ("the plot was boring", 0), ("awful acting", 0), ("i hated it", 0), ("a bad movie", 0),
]


def write_tsv(path: Path, rows: list[tuple], header: tuple) -> Path:
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def sentiment_tsv(tmp_path) -> Path:
    """label<TAB>sentence rows, 8 of them, both classes."""
    return write_tsv(tmp_path / "train.tsv", [(label, text) for text, label in SENTIMENT], ("label", "sentence"))


LM_VOCAB = ["<pad>", "<eos>", *WORDS, "write", "review", "that", "is", "positive", "negative", "example", "one",
            "sentence", "only", "about", "give", "an", "answer", "with", "alone", "short", "label0", "label1"]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A random 2-layer Llama with a word-level tokenizer, saved as a transformers directory."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("lm") / "lm"
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(LM_VOCAB)}, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(LM_VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         eos_token_id=1, pad_token_id=0, bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


_rng = random.Random(0)
# every student, small enough for a test
SMALL_STUDENTS = {"bilstm": "embedding_dim=8,hidden_size=8", "cnn": "embedding_dim=8,num_filters=4,widths=2:3",
                  "transformer": "num_layers=1",
                  "pair-bilstm": "embedding_dim=8,hidden_size=8,classifier_size=8,cross_attention=true,"
                                 "overlap_features=true,word_match=true"}
# the transformer narrower than the tiny teacher, its word embeddings factorised (a 4-wide table projected to 16)
FACTORISED_TRANSFORMER = "hidden_size=16,num_heads=2,embedding_dim=4"
OOD_SENTENCES = [" ".join(_rng.choices(WORDS[:34], k=4 + i % 6)) + " ." for i in range(120)]


@pytest.fixture
def ood_file(tmp_path) -> Path:
    """120 random sentences of the tiny vocabulary's first 34 words, one a line: an out-of-domain corpus."""
    path = tmp_path / "ood.txt"
    path.write_text("\n".join(OOD_SENTENCES) + "\n")
    return path


@pytest.fixture
def tiny_distill_config(tmp_path, tiny_model, ood_file, sentiment_tsv):
    """`make(name, **overrides)`: a DistillConfig for a 12-step run of a tiny student, output in tmp_path/name."""
    from zskd.distill import DistillConfig

    def make(name: str, **overrides) -> DistillConfig:
        options = dict(teacher=str(tiny_model), out=str(tmp_path / name), ood=str(ood_file),
                       eval_data=str(sentiment_tsv), cache_dir=str(tmp_path / "cache"), transfer_size=60, min_words=2,
                       max_words=20, steps=12, batch_size=8, eval_every=4, checkpoint_every=4, heldout=10, max_vocab=40,
                       student_options="embedding_dim=16,hidden_size=16", teacher_bf16=False)
        return DistillConfig(**{**options, **overrides})

    return make


@pytest.fixture(scope="session")
def rule_teacher(tmp_path_factory):
    """A tiny teacher that learned a rule (positive when a sentence has one of five words), so that its decisions
    on out-of-domain text carry information a student can learn."""
    from zskd.train_teacher import TeacherTrainConfig, train_teacher

    tmp = tmp_path_factory.mktemp("rule")
    rng = random.Random(1)
    positive = {"good", "great", "fine", "fun", "loved"}
    sentences = [rng.choices(WORDS[:34], k=rng.randint(3, 9)) for _ in range(400)]
    rows = [(int(bool(positive & set(words))), " ".join(words)) for words in sentences]
    train = write_tsv(tmp / "rule.tsv", rows, ("label", "sentence"))
    report = train_teacher(TeacherTrainConfig(out=str(tmp / "teacher"), train=str(train), dev=str(train),
                                              base=str(make_tiny_classifier(tmp / "base")), epochs=10, batch_size=16,
                                              lr=1e-3, freeze_embeddings=False, bf16=False))
    assert report["eval"]["accuracy"] == 100.0
    return tmp / "teacher"


def assert_resuming_changes_nothing(make_config, tmp_path: Path, artefact: str | None = None, **options) -> None:
    """Distil with `options` straight through, and again stopped after step 8 and resumed: the same last student
    to the bit, and the same `artefact` file (a method's JSONL) when one is named."""
    from safetensors.torch import load_file

    from zskd.distill import distill

    distill(make_config("straight", **options))
    assert distill(make_config("resumed", **options), stop_after_steps=8) == (None, {})
    distill(make_config("resumed", **options))
    straight = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "last" / "model.safetensors")
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    if artefact:
        assert (tmp_path / "straight" / artefact).read_text() == (tmp_path / "resumed" / artefact).read_text()
