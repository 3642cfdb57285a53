"""Pairs made by rules for pair teachers: each kind is what it promises, and the ood pair set is class-balanced."""

import json
import shutil

import numpy as np
import pytest

from conftest import write_tsv
from zskd.cli import main
from zskd.methods.pairs import (
    PAIR_VARIANTS,
    SENTENCE_PAIR_KINDS,
    changed_detail,
    gapped_span,
    make_pairs,
    near_copy,
    negated,
    pair_profile,
    pair_variants,
    part,
    passage_and_claim,
    question,
    redrawn_digits,
    similar_sentences,
    spliced,
)

SENTENCES = [f"The film number {i} was long and the plot was thin ." for i in range(12)]


def test_each_kind_of_second_sentence_is_what_it_promises():
    pairs = make_pairs(SENTENCES, np.random.default_rng(0), ["x", "y", "Anna", "Bob"], min_words=3,
                       kinds=SENTENCE_PAIR_KINDS)
    assert [a for a, _ in pairs] == SENTENCES
    kinds = {kind: [(i, b) for i, (_, b) in enumerate(pairs)
                    if SENTENCE_PAIR_KINDS[i % len(SENTENCE_PAIR_KINDS)] == kind] for kind in SENTENCE_PAIR_KINDS}
    assert kinds["neighbour"] == [(i, SENTENCES[i + 1]) for i, _ in kinds["neighbour"]]
    assert all(b in SENTENCES for _, b in kinds["unrelated"])
    assert all(b != SENTENCES[i] and len(set(SENTENCES[i].split()) & set(b.split())) >= 8
               for i, b in kinds["near-copy"])
    for i, b in kinds["detail"]:  # the sentence itself with one number redrawn, or with a span of another added
        a = SENTENCES[i].split()
        changed = [(x, y) for x, y in zip(a, b.split()) if x != y]
        assert (len(b.split()) == len(a) and len(changed) == 1 and changed[0][0] == str(i)) or \
            (b.startswith(SENTENCES[i][:-2] + " , and ") and b.endswith(" ."))
    assert all(b in SENTENCES[i] and len(b.split()) < len(SENTENCES[i].split()) for i, b in kinds["part"])
    i, b = kinds["negated"][0]
    assert b == f"The film number {i} was not long and the plot was thin ."
    i, b = kinds["question"][0]
    assert b == f"Was the film number {i} long and the plot was thin ?"


def test_a_gapped_span_leaves_out_one_run_of_words_inside_a_span():
    sentence = " ".join(f"w{i}" for i in range(30))
    rng = np.random.default_rng(0)
    for _ in range(100):
        words = gapped_span(sentence, rng, min_words=4).split()
        indices = [int(w[1:]) for w in words]
        jumps = [b - a for a, b in zip(indices, indices[1:])]
        assert len(words) >= 4 and sorted(jumps)[:-1] == [1] * (len(jumps) - 1) and 3 <= max(jumps) <= 9
    assert gapped_span("too short here", rng, min_words=4) == "too short here"


def test_passages_are_whole_neighbouring_sentences_and_claims_are_short():
    sentences = [f"Sentence {i} says that the river rose by {i} metres overnight ." for i in range(30)]  # 12 words
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        i = int(rng.integers(len(sentences)))
        passage, claim = passage_and_claim(sentences, i, rng, min_words=3, vocabulary=["x"])
        taken = [sentences[(i + k) % len(sentences)] for k in range(len(passage.split()) // 12)]
        assert passage == " ".join(taken) and 1 <= len(taken) <= 3 and len(passage.split()) <= 60
        words = claim.split()
        if claim in passage:
            seen.add("entailed span")
            assert 4 <= len(words) <= 12
        elif " not " in f" {claim} " or claim.startswith("It is not true that"):
            seen.add("negated")
        elif any(claim in s for s in sentences):
            seen.add("unrelated span")
        elif set(words) <= set(passage.split()) | {"x"}:
            seen.add("gapped or reworded")
        else:
            seen.add("half replaced")
            assert 4 <= len(words) <= 12 and len(set(words) & set(passage.split())) > 0
    assert seen == {"entailed span", "negated", "unrelated span", "gapped or reworded", "half replaced"}
    pairs = make_pairs(sentences, np.random.default_rng(0), ["x"], min_words=3, kinds=("passage", "part"))
    assert pairs[0][0].startswith(sentences[0]) and pairs[1][0] == sentences[1]
    by_default = make_pairs(sentences, np.random.default_rng(0), ["x"], min_words=3)  # every other pair a passage
    assert all(len(a.split()) >= 24 > len(b.split()) for a, b in by_default[1::2])
    assert [a for a, _ in by_default[0::2]] == sentences[0::2]


def test_similar_sentences_share_rare_words_but_are_not_copies():
    sentences = ["The senator from Ohio voted against the farm bill today .",
                 "The farm bill passed the Senate , though the senator from Ohio voted no .",  # shares the most
                 "The senator from Ohio voted against the farm bill .",  # a part of the first: not taken
                 "Rain fell over the harbour all night .",
                 "Ships left the harbour before the storm .",
                 "A cat slept ."]  # shares no word with anything
    sentences += [f"Filler sentence number {i} about the weather ." for i in range(10)]
    assert similar_sentences([sentences[i] for i in (0, 3, 5)], sentences) == [sentences[1], sentences[4], None]
    pairs = make_pairs(sentences, np.random.default_rng(0), ["x"], min_words=3, kinds=("similar",))
    assert pairs[0] == (sentences[0], sentences[1]) and pairs[5][1] in sentences  # no partner: a random sentence


def test_pairs_in_other_words_replace_words_by_their_glove_neighbours(monkeypatch):
    neighbours = {"quiet": ["calm"], "town": ["village", "city"]}
    monkeypatch.setattr("zskd.glove.glove_neighbours", lambda words: neighbours)
    sentences = ["The quiet town slept under the snow ."] * 40
    pairs = make_pairs(sentences, np.random.default_rng(0), ["x"], min_words=3, kinds=("other-words",))
    seconds = {second for first, second in pairs}
    assert all(first == sentences[0] for first, _ in pairs)
    assert seconds <= {f"The {q} {t} slept under the snow ." for q in ("quiet", "calm")
                       for t in ("town", "village", "city")}
    assert len(seconds) > 3  # replaced at random, each word on its own


def test_spliced_sentences_keep_both_ends_and_take_a_span_of_the_other():
    rng = np.random.default_rng(0)
    sentence, other = " ".join(f"a{i}" for i in range(20)), " ".join(f"b{i}" for i in range(30))
    for _ in range(20):
        words = spliced(sentence, other, rng).split()
        taken = [w for w in words if w.startswith("b")]
        assert len(words) == 20 and 5 <= len(taken) <= 10 and " ".join(taken) in other
        kept = [w for w in words if w.startswith("a")]
        assert " ".join(kept) == " ".join(w for w in sentence.split() if w in kept)  # the rest, in order
        start = words.index(taken[0])
        assert words[start : start + len(taken)] == taken  # one contiguous span


def test_changed_details_are_numbers_names_or_added_spans():
    rng = np.random.default_rng(0)
    sentence = "Shares of Acme rose 12 percent on Monday ."
    seen = set()
    for _ in range(60):
        b = changed_detail(sentence, rng, ["Acme", "Globex", "Friday"], "The board met in Paris last week .", 3)
        a_words, b_words = sentence.split(), b.split()
        if len(b_words) == len(a_words):
            (i, x, y), = [(i, x, y) for i, (x, y) in enumerate(zip(a_words, b_words)) if x != y]
            kind = "number" if x == "12" else "name"
            assert (y.isdigit() and len(y) == 2) if kind == "number" else y in ("Acme", "Globex", "Friday")
        else:
            kind = "added"
            assert b.startswith("Shares of Acme rose 12 percent on Monday , and ") and b.endswith(" .")
            assert b[len("Shares of Acme rose 12 percent on Monday , and "):-2] in "The board met in Paris last week"
        seen.add(kind)
    assert seen == {"number", "name", "added"}
    assert redrawn_digits("$12", rng) != "$12" and redrawn_digits("$12", rng)[0] == "$"


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


def test_the_ood_pair_set_is_balanced_over_the_teachers_classes_within_each_kind(tmp_path, rule_teacher, ood_file):
    out = tmp_path / "pairs"
    task_pairs = write_tsv(tmp_path / "task.tsv", [("good fun movie", "good movie", 1), ("a cat ran", "a dog", 0)],
                           ("sentence1", "sentence2", "label"))
    code = main(["distill", "--teacher", str(rule_teacher), "--out", str(out), "--pairs", "--ood", str(ood_file),
                 "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "40", "--min-words", "2", "--steps", "2",
                 "--batch-size", "8", "--heldout", "8", "--no-teacher-bf16", "--eval-data", str(task_pairs),
                 "--eval-text-col", "sentence1", "--eval-text-col2", "sentence2"])
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["student"] == "pair-bilstm"  # chosen for a pair teacher
    info = run["transfer_info"]
    # each kind keeps its share of the pool and is as even as it allows: each class gets half the kind's share,
    # or all the kind has of it
    for kind, counts in info["classes_by_kind"].items():
        before, after = counts["before"], counts["after"]
        share = sum(after.values())
        assert share - 1 <= 40 * sum(before.values()) / info["pool"] <= share + 1, (kind, counts)
        assert all(after[c] == before[c] or after[c] >= share // 2 for c in before), (kind, counts)
    assert sum(info["classes_after"].values()) == 40
    # the report sets the transfer pairs beside the task's own: here a copy of a sentence beside itself
    profile = run["pair_profile"]
    assert set(profile) == {"transfer", "eval"} and profile["transfer"]["pairs"] == 40
    assert profile["eval"] == {"pairs": 2, "words_first": 3.0, "words_second": 2.0, "second_words_in_first": 75.0,
                               "teacher_classes": profile["eval"]["teacher_classes"]}
    assert sum(profile["transfer"]["teacher_classes"].values()) == pytest.approx(100, abs=0.2)
    readme = (out / "README.md").read_text()
    assert "What the pairs looked like" in readme and "The teacher's classes by how the pairs were made" in readme


def test_pair_variants_change_one_side_or_swap_the_two():
    pairs = [(f"Shares of Acme rose {i} percent on Monday .", f"Acme shares were up {i} percent on Monday .")
             for i in range(10, 30)]
    variants = pair_variants(pairs, 4, np.random.default_rng(0), ["gained", "Globex", "Friday"], min_words=3)
    assert len(variants) == 4 * len(pairs)
    for copy, kind in enumerate(PAIR_VARIANTS):
        for (a, b), (x, y) in zip(pairs, variants[copy * len(pairs):(copy + 1) * len(pairs)]):
            if kind == "swapped":
                assert (x, y) == (b, a)
                continue
            assert (x == a) != (y == b), (kind, x, y)  # exactly one side changed
            kept, changed = (a, y) if x == a else (b, x)
            original = b if x == a else a
            if kind == "part":
                assert changed in original and len(changed.split()) < len(original.split())
            elif kind == "near-copy":
                assert len(set(original.split()) & set(changed.split())) >= 4
            else:  # detail: one word redrawn or replaced, or a span of another sentence added
                words, new = original.split(), changed.split()
                assert (len(new) == len(words) and sum(u != v for u, v in zip(words, new)) == 1) or \
                    changed.startswith(original[:-2] + " , and ")
    sides = {x == a for (a, _), (x, _) in zip(pairs * 3, variants[: 3 * len(pairs)])}
    assert sides == {True, False}  # either side may be the one changed


def test_indomain_pairs_add_variants_of_the_tasks_own_pairs(tmp_path, rule_teacher):
    rows = [(f"the film number {i} was long", f"a film number {i} that was long", i % 2) for i in range(6)]
    task_pairs = write_tsv(tmp_path / "task.tsv", rows, ("sentence1", "sentence2", "label"))
    out = tmp_path / "indomain"
    code = main(["distill", "--teacher", str(rule_teacher), "--out", str(out), "--method", "indomain", "--pairs",
                 "--indomain-data", str(task_pairs), "--eval-data", str(task_pairs), "--eval-text-col", "sentence1",
                 "--eval-text-col2", "sentence2", "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "20",
                 "--min-words", "2", "--steps", "2", "--batch-size", "4", "--heldout", "4", "--no-teacher-bf16"])
    assert code == 0
    info = json.loads((out / "run.json").read_text())["transfer_info"]
    assert info == {"originals": 6, "variants": 14}  # the real pairs first, variants in the room left


def test_pair_profile_by_hand():
    profile = pair_profile([("The cat sat", "the dog sat"), ("a b c d", "a b")], np.array([1, 1]), ["no", "yes"])
    assert profile == {"pairs": 2, "words_first": 3.5, "words_second": 2.5, "second_words_in_first": 83.3,
                       "teacher_classes": {"no": 0.0, "yes": 100.0}}


@pytest.mark.parametrize("trained_on", [{"task": "mrpc", "text_col2": None}, {"task": None, "text_col2": "question"},
                                        {"task": "sst2", "text_col2": None}, None])
def test_a_teacher_trained_on_pairs_gets_pairs_and_their_variants_unasked(tmp_path, tiny_model, ood_file, trained_on):
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_model, teacher)
    if trained_on is not None:  # what `zskd teacher-train` records
        (teacher / "run.json").write_text(json.dumps({"config": trained_on}))
    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher), "--out", str(out), "--ood", str(ood_file), "--transfer-size",
                 "20", "--min-words", "2", "--steps", "2", "--batch-size", "4", "--heldout", "4", "--no-teacher-bf16",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    run = json.loads((out / "run.json").read_text())
    reads_pairs = trained_on is not None and trained_on != {"task": "sst2", "text_col2": None}
    assert run["config"]["pairs"] is reads_pairs and ("pair_kinds" in run["transfer_info"]) is reads_pairs
    assert run["config"]["augment"] == (2 if reads_pairs else 4)  # a pair costs the teacher two sentences' time


def test_pair_kinds_choose_the_second_sentences(tmp_path, tiny_model, ood_file, capsys):
    pairs = make_pairs(SENTENCES, np.random.default_rng(0), ["x"], min_words=3, kinds=("negated", "question"))
    assert [b for _, b in pairs[:2]] == [negated(SENTENCES[0]), question(SENTENCES[1])]
    base = ["distill", "--teacher", str(tiny_model), "--out", str(tmp_path / "x"), "--pairs", "--ood", str(ood_file)]
    assert main([*base, "--pair-kinds", "negated,paraphrase"]) == 2
    assert "unknown --pair-kinds paraphrase: choose from neighbour" in capsys.readouterr().err
