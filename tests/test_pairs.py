"""Pairs made by rules for pair teachers: each kind is what it promises, and the ood pair set is class-balanced."""

import json

import numpy as np

from zskd.cli import main
from zskd.methods.pairs import PAIR_KINDS, make_pairs, near_copy, negated, part, question

SENTENCES = [f"The film number {i} was long and the plot was thin ." for i in range(12)]


def test_each_kind_of_second_sentence_is_what_it_promises():
    pairs = make_pairs(SENTENCES, np.random.default_rng(0), ["x", "y"], min_words=3)
    assert [a for a, _ in pairs] == SENTENCES
    kinds = {kind: [b for (_, b), k in zip(pairs, PAIR_KINDS * 2) if k == kind] for kind in PAIR_KINDS}
    assert kinds["neighbour"] == [SENTENCES[1], SENTENCES[7]]
    assert all(b in SENTENCES for b in kinds["unrelated"])
    near_copies = zip(SENTENCES[2::6], kinds["near-copy"])
    assert all(b != a and len(set(a.split()) & set(b.split())) >= 8 for a, b in near_copies)
    assert all(b in a and len(b.split()) < len(a.split()) for a, b in zip(SENTENCES[3::6], kinds["part"]))
    assert kinds["negated"][0] == "The film number 4 was not long and the plot was thin ."
    assert kinds["question"][0] == "Was the film number 5 long and the plot was thin ?"


def test_negation_flips_and_falls_back():
    assert negated("it was n't good .") == "it was good ."
    assert negated("she can not swim") == "she can swim"
    assert negated("Birds fly south .") == "It is not true that birds fly south ."
    assert negated("NASA launched it") == "It is not true that NASA launched it"


def test_questions_front_the_auxiliary_or_ask_if_it_is_true():
    assert question("The cat is on the mat .") == "Is the cat on the mat ?"
    assert question("Birds fly south .") == "Is it true that birds fly south ?"


def test_near_copies_and_parts():
    rng = np.random.default_rng(0)
    sentence = " ".join(f"w{i}" for i in range(40))
    changed = near_copy(sentence, rng, ["x", "y"])
    assert changed != sentence and 30 <= len(changed.split()) <= 40
    for _ in range(20):
        span = part(" ".join(f"w{i}" for i in range(20)), rng, min_words=4)
        assert span in sentence and 4 <= len(span.split()) <= 16


def test_the_ood_pair_set_is_balanced_over_the_teachers_classes(tmp_path, rule_teacher, ood_file):
    out = tmp_path / "pairs"
    code = main(["distill", "--teacher", str(rule_teacher), "--out", str(out), "--pairs", "--ood", str(ood_file),
                 "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "40", "--min-words", "2", "--steps", "2",
                 "--batch-size", "8", "--heldout", "8", "--no-teacher-bf16"])
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["student"] == "pair-bilstm"  # chosen for a pair teacher
    before, after = run["transfer_info"]["classes_before"], run["transfer_info"]["classes_after"]
    # as even as the pool allows: the scarcer class gets half the set, or all the pool has of it
    scarce = min(before, key=before.get)
    assert sum(after.values()) == 40 and after[scarce] == min(before[scarce], 20), (before, after)


def test_pair_kinds_choose_the_second_sentences(tmp_path, tiny_model, ood_file, capsys):
    pairs = make_pairs(SENTENCES, np.random.default_rng(0), ["x"], min_words=3, kinds=("negated", "question"))
    assert [b for _, b in pairs[:2]] == [negated(SENTENCES[0]), question(SENTENCES[1])]
    base = ["distill", "--teacher", str(tiny_model), "--out", str(tmp_path / "x"), "--pairs", "--ood", str(ood_file)]
    assert main([*base, "--pair-kinds", "negated,paraphrase"]) == 2
    assert "unknown --pair-kinds paraphrase: choose from neighbour" in capsys.readouterr().err
