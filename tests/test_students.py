"""Each student: built from a teacher, saved and loaded back with identical outputs, and reading embeddings."""


import numpy as np
import pytest
import torch

from conftest import FACTORISED_TRANSFORMER, SMALL_STUDENTS
from zskd.data import DataError
from zskd.distill import distill
from zskd.students import STUDENTS, create_student, fit_to_budget, load_student, parse_student_options
from zskd.students.base import build_vocabulary, pca_embeddings
from zskd.teacher import Teacher

TEXTS = ["the movie was good", "awful", "a very boring film , and the plot was bad", ("a cat sat", "on the mat")]


@pytest.fixture(scope="module")
def teacher(tiny_model):
    return Teacher.from_pretrained(tiny_model)


def make(kind, teacher, options=None):
    """A student of `kind` over the tokens of TEXTS, with `options` (default: the small ones of conftest)."""
    counts = {t: 1 for ids in teacher.encode(TEXTS[:3])["input_ids"] for t in ids}
    kept = build_vocabulary(teacher.tokenizer, counts, max_vocab=None)
    return create_student(kind, teacher, kept, parse_student_options(kind, options or SMALL_STUDENTS[kind]))


@pytest.mark.parametrize("kind", list(STUDENTS))
def test_save_load_round_trip(tmp_path, teacher, kind):
    torch.manual_seed(0)
    student = make(kind, teacher)
    student.save_pretrained(tmp_path / kind)
    loaded = load_student(tmp_path / kind)
    assert type(loaded) is type(student) and loaded.config == student.config
    for texts in (TEXTS[:3], TEXTS[3:]):
        np.testing.assert_allclose(loaded.logits(texts), student.logits(texts), atol=1e-6)
    assert loaded.num_parameters() == student.num_parameters()


@pytest.mark.parametrize("kind", list(STUDENTS))
@pytest.mark.parametrize("inputs", [TEXTS[:3], [TEXTS[3], ("the film", "was a very boring film")]],
                         ids=["texts", "pairs"])
def test_batched_logits_match_one_at_a_time(teacher, kind, inputs):
    """The padded batch path and the single-input latency path compute the same function."""
    torch.manual_seed(0)
    student = make(kind, teacher)
    with torch.no_grad():  # as after training: no parameter left at zero (segment embeddings start there)
        for parameter in student.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    batched = student.logits(inputs, batch_size=3)
    alone = np.concatenate([student.logits([t]) for t in inputs])
    np.testing.assert_allclose(batched, alone, atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2])
def test_bilstm_padded_states_are_those_of_packed_sequences(teacher, layers):
    """The BiLSTM reads a padded batch with the unpadded kernel, each row's words reversed in place for the backward
    direction: at every word, the states of packing the rows (nn.utils.rnn), values and gradients."""
    torch.manual_seed(0)
    student = create_student("bilstm", teacher, list(range(50)), parse_student_options(
        "bilstm", f"embedding_dim=8,hidden_size=6,num_layers={layers},dropout=0.0"))
    embeds = torch.randn(4, 7, 8, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1])
    words = (torch.arange(7).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)  # [4, 7, 1]
    packed = torch.nn.utils.rnn.pack_padded_sequence(embeds, lengths, batch_first=True, enforce_sorted=False)
    reference, _ = torch.nn.utils.rnn.pad_packed_sequence(student.lstm(packed)[0], batch_first=True, total_length=7)
    states = student._lstm_padded(embeds, lengths)
    torch.testing.assert_close(states * words, reference * words, atol=1e-5, rtol=1e-5)
    (reference_grad,) = torch.autograd.grad((reference * words).sum(), embeds)
    (grad,) = torch.autograd.grad((states * words).sum(), embeds)
    torch.testing.assert_close(grad, reference_grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", list(STUDENTS))
def test_inputs_embeds_give_the_same_logits_as_ids(teacher, kind):
    torch.manual_seed(0)
    student = make(kind, teacher).eval()
    encoded = student.encode(TEXTS[:1])
    batch = student.collate(encoded["input_ids"], encoded["token_type_ids"])
    with torch.no_grad():
        from_ids = student(**batch)
        embeds = student.word_embeddings(batch["input_ids"])
        from_embeds = student(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                              token_type_ids=batch["token_type_ids"])
    np.testing.assert_allclose(from_ids.numpy(), from_embeds.numpy(), atol=1e-6)


def test_pruned_vocabulary_maps_unused_tokens_to_unk(teacher):
    student = make("bilstm", teacher)
    kept = set(student.kept_token_ids)
    ids = student.encode(["dog"])["input_ids"][0]  # "dog" is not in the vocabulary the student was built from
    assert teacher.tokenizer.convert_tokens_to_ids("dog") not in kept
    assert ids[1] == 1  # [UNK]
    assert student.kept_token_ids[:2] == [teacher.tokenizer.pad_token_id, teacher.tokenizer.unk_token_id]


def test_vocabulary_keeps_the_most_frequent_tokens(teacher):
    counts = {10: 5, 11: 9, 12: 1, 13: 9}
    kept = build_vocabulary(teacher.tokenizer, counts, max_vocab=7)
    assert kept[5:] == [11, 13]


def test_pca_embeddings_keep_the_main_directions():
    torch.manual_seed(0)
    direction = torch.randn(1, 16)
    matrix = torch.randn(50, 1) * 5 * direction + 0.01 * torch.randn(50, 16)
    projected = pca_embeddings(matrix, list(range(50)), 2)
    assert projected.shape == (50, 2)
    # the first component carries almost all the variance of this rank-1 matrix
    assert projected[:, 0].var() > 100 * projected[:, 1].var()
    assert torch.equal(pca_embeddings(matrix, [3, 4], 16), matrix[[3, 4]])


def test_transformer_starts_from_the_teachers_layers(teacher):
    student = make("transformer", teacher)
    assert student.config.teacher_layers == [0]
    np.testing.assert_array_equal(
        student.bert.bert.encoder.layer[0].attention.self.query.weight.detach().numpy(),
        teacher.model.bert.encoder.layer[0].attention.self.query.weight.detach().numpy())


def test_unknown_student_option_is_named():
    with pytest.raises(ValueError, match="student bilstm has no option 'depth'"):
        parse_student_options("bilstm", "depth=3")


def test_boolean_student_options_read_true_and_false_only():
    assert parse_student_options("pair-bilstm", "cross_attention=False") == {"cross_attention": False}
    assert parse_student_options("pair-bilstm", "cross_attention=true") == {"cross_attention": True}
    with pytest.raises(ValueError, match="cross_attention='yes please': give true or false"):
        parse_student_options("pair-bilstm", "cross_attention=yes please")


def test_a_factorised_transformer_reads_narrow_embeddings_through_a_projection(teacher):
    torch.manual_seed(0)
    kept = list(range(60))
    wide = create_student("transformer", teacher, kept, {"hidden_size": 16, "num_heads": 2})
    narrow = create_student("transformer", teacher, kept, {"hidden_size": 16, "num_heads": 2, "embedding_dim": 4})
    assert narrow.word_embeddings.weight.shape == (60, 4)
    # the [60, 16] table becomes [60, 4] and a 4 -> 16 projection; BERT keeps a 1-row stand-in of 16
    assert wide.num_parameters() - narrow.num_parameters() == 60 * 16 - (60 * 4 + 4 * 16 + 16 + 16)
    ids = torch.tensor([[2, 7, 9, 3]])
    narrow.eval()
    by_ids = narrow(input_ids=ids)
    by_embeds = narrow(inputs_embeds=narrow.word_embeddings(ids))  # what adversarial methods hand it
    torch.testing.assert_close(by_ids, by_embeds)


@pytest.mark.parametrize("options", [SMALL_STUDENTS["transformer"], FACTORISED_TRANSFORMER])
def test_a_transformer_student_loads_in_plain_transformers(tmp_path, teacher, options):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.manual_seed(0)
    student = make("transformer", teacher, options).eval()
    student.save_pretrained(tmp_path / "s")
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "s" / "transformers", use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "s" / "transformers")
    texts = [*TEXTS[:3], "dog ran on the cat mat"]  # tokens the student dropped read as its [UNK]
    with torch.no_grad():
        logits = plain(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(logits, student.logits(texts), atol=1e-5)
    classify = pipeline("text-classification", model=plain, tokenizer=tokenizer)
    assert [answer["label"] for answer in classify(texts)] == [p["label"] for p in student.predict(texts)]


@pytest.mark.parametrize("kind", ["bilstm", "cnn", "pair-bilstm"])
def test_a_size_budget_picks_the_widest_shape_within_it(teacher, kind):
    kept = list(range(60))
    for budget in (6_000, 40_000):
        options = fit_to_budget(kind, teacher, kept, {}, budget)
        student = create_student(kind, teacher, kept, options)
        assert student.num_parameters() <= budget
        wider = {name: value + 1 for name, value in options.items()}  # one unit wider everywhere: over it
        assert create_student(kind, teacher, kept, wider).num_parameters() > budget


def test_a_size_budget_keeps_the_options_given_and_refuses_what_cannot_fit(teacher):
    kept = list(range(60))
    options = fit_to_budget("bilstm", teacher, kept, {"embedding_dim": 8, "dropout": 0.0}, 20_000)
    assert options["embedding_dim"] == 8 and options["dropout"] == 0.0 and options["hidden_size"] > 8
    with pytest.raises(DataError, match="--max-parameters 100 is under the smallest bilstm student"):
        fit_to_budget("bilstm", teacher, kept, {}, 100)
    with pytest.raises(DataError, match="no width to fit"):
        fit_to_budget("transformer", teacher, kept, {}, 10**6)
    with pytest.raises(DataError, match="sets them all"):
        fit_to_budget("cnn", teacher, kept, {"embedding_dim": 8, "num_filters": 8}, 10**6)


def test_distill_builds_the_student_the_budget_allows(tiny_distill_config):
    _, report = distill(tiny_distill_config("budget", student_options=None, max_parameters=3000))
    assert report["student_parameters"] <= 3000
    assert report["student_config"]["hidden_size"] != 96  # not the default shape


def test_attention_pooling_weighs_only_real_positions_and_exports(tmp_path, teacher):
    """`attention_pooling`: the batched (padded) path, the single-input path and the ONNX graph give the same
    logits, so padding gets no weight; and the learned weights change the answer that the mean would give."""
    from zskd.export import OnnxStudent, export_onnx

    counts = {t: 1 for ids in teacher.encode(TEXTS[:3])["input_ids"] for t in ids}
    kept = build_vocabulary(teacher.tokenizer, counts, max_vocab=None)
    torch.manual_seed(0)
    student = create_student("bilstm", teacher, kept, parse_student_options(
        "bilstm", "embedding_dim=8,hidden_size=8,attention_pooling=true"))
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        student.attention.weight.normal_(0, 10.0)  # weights far from uniform
    batched = student.logits(TEXTS[:3], batch_size=3)
    np.testing.assert_allclose(batched, np.concatenate([student.logits([t]) for t in TEXTS[:3]]), atol=1e-5)
    student.save_pretrained(tmp_path)
    assert load_student(tmp_path).config.attention_pooling
    export_onnx(tmp_path)
    np.testing.assert_allclose(OnnxStudent(tmp_path).logits(TEXTS[:3]), batched, atol=1e-4)
    attention = student.attention
    student.attention = None  # the same weights pooled by the mean
    assert not np.allclose(student.logits(TEXTS[:3]), batched, atol=1e-3)
    student.attention = attention
