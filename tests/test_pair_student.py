"""The pair-aware student: each branch reads its own sentence alone, and it is the default for pair teachers."""

import json

import numpy as np
import pytest
import torch

from zskd.students import create_student, load_student, parse_student_options
from zskd.students.pair_bilstm import overlap, word_matches
from zskd.teacher import Teacher


@pytest.fixture(scope="module")
def student(tiny_model):
    teacher = Teacher.from_pretrained(tiny_model)
    torch.manual_seed(0)
    options = "embedding_dim=8,hidden_size=8,classifier_size=8,cross_attention=true,overlap_features=true," \
              "word_match=false"
    student = create_student("pair-bilstm", teacher, list(range(len(teacher.tokenizer))),
                             parse_student_options("pair-bilstm", options))  # what each branch reads: no word_match
    return student.eval()


def branches(student, pairs):
    """The two branches' encodings [N, 4H] of `pairs`, padded into one batch."""
    encoded = student.encode(pairs)
    batch = student.collate(encoded["input_ids"], encoded["token_type_ids"])
    embeds = student.word_embeddings(batch["input_ids"])
    real, second = batch["attention_mask"].bool(), batch["token_type_ids"] == 1
    first_length, second_length = (real & ~second).sum(1), (real & second).sum(1)
    with torch.no_grad():
        return (student.encode_segment(embeds, torch.zeros_like(first_length), first_length),
                student.encode_segment(embeds, first_length, second_length))


def test_each_branch_sees_only_its_own_sentence(student):
    pairs = [("the movie was good", "it was awful"), ("the movie was good", "a very boring film , and the plot"),
             ("awful", "it was awful"), ("the plot was bad and boring", "it was awful")]
    first, second = branches(student, pairs)
    # the same first sentence beside other second sentences (and other padding): the same first encoding
    torch.testing.assert_close(first[0], first[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(second[0], second[2], atol=1e-6, rtol=0)
    torch.testing.assert_close(second[0], second[3], atol=1e-6, rtol=0)
    assert not torch.allclose(first[0], first[2]) and not torch.allclose(second[0], second[1])


def test_the_order_of_the_sentences_matters(student):
    logits = student.logits([("the movie was good", "it was awful"), ("it was awful", "the movie was good")])
    assert not np.allclose(logits[0], logits[1])


def test_overlap_features_against_a_hand_computed_reference():
    torch.manual_seed(0)
    a, b = torch.randn(2, 4, 3), torch.randn(2, 5, 3)
    inside_a = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]).bool()
    inside_b = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]).bool()  # the second row has no second sentence
    features = overlap(a, inside_a, b, inside_b)

    def covered(x, y):  # each word of x: its best cosine similarity to a word of y
        return [max(float(torch.cosine_similarity(w, v, dim=0)) for v in y) for w in x]

    first, second = covered(a[0, :3], b[0]), covered(b[0], a[0, :3])
    expected = [np.mean(first), min(first), np.mean(second), min(second)]
    np.testing.assert_allclose(features[0].numpy(), expected, atol=1e-6)
    assert features[1].abs().sum() == 0
    same = overlap(a[:1], inside_a[:1], a[:1], inside_a[:1])  # a sentence beside itself is covered word for word
    np.testing.assert_allclose(same.numpy(), np.ones((1, 4)), atol=1e-6)


def test_word_matches_marks_the_words_both_sentences_share(tiny_model):
    teacher = Teacher.from_pretrained(tiny_model)
    # word_match is on by default
    student = create_student("pair-bilstm", teacher, list(range(len(teacher.tokenizer))),
                             parse_student_options("pair-bilstm", "embedding_dim=8,hidden_size=8"))
    pairs = [("the movie was good", "the film was awful"), ("good", "")]
    encoded = student.encode(pairs)
    batch = student.collate(encoded["input_ids"], encoded["token_type_ids"])
    real, second = batch["attention_mask"].bool(), batch["token_type_ids"] == 1
    flags = word_matches(student.word_embeddings(batch["input_ids"]), real & ~second, second).squeeze(-1)
    tokens = [teacher.tokenizer.convert_ids_to_tokens(encoded["input_ids"][row]) for row in range(2)]

    def expected(row):  # by hand: a token is flagged when the other segment holds the same token
        segment = encoded["token_type_ids"][row]
        return [float(any(t == u and s != z for u, z in zip(tokens[row], segment)))
                for t, s in zip(tokens[row], segment)] + [0.0] * (flags.shape[1] - len(tokens[row]))

    assert expected(0)[:6] == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]  # [CLS] the movie was good [SEP]: the, was, [SEP]
    assert flags[0].tolist() == expected(0) and flags[1].tolist() == expected(1)
    # the flags reach the encoder: its input weights on them, set to zero, change the logits
    student.eval()
    before = student.logits(pairs[:1])
    with torch.no_grad():
        for lstm in (student.forward_lstm, student.backward_lstm):
            lstm.weight_ih_l0[:, -1] = 0
    assert not np.allclose(before, student.logits(pairs[:1]))


def test_a_pair_student_saved_before_word_match_loads_as_it_was(tmp_path, student):
    student.save_pretrained(tmp_path)  # the fixture's student has word_match off
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["config"]["word_match"]  # as a student saved before the option existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = load_student(tmp_path)
    assert loaded.config.word_match is False
    pairs = [("the movie was good", "the film was awful")]
    np.testing.assert_allclose(loaded.logits(pairs), student.logits(pairs), atol=1e-6)
