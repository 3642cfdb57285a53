"""Out-of-domain text (the first half of Zero-Shot KD, Rashid et al.): sentences from general corpora, their
lengths kept in a target range, balanced across the classes the teacher predicts for them.

A sentiment teacher may call most encyclopaedic sentences one class; without balancing the student would learn
little about the others. So a pool of candidates is labelled (cached: it costs once per teacher), and the transfer
set takes an equal share of each predicted class where the pool allows. For sentence-pair tasks, each sentence is
paired with a second one made by rules (`zskd/methods/pairs.py`: a neighbour, an unrelated sentence, a near-copy,
a part of it, it negated, a question it answers).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from zskd.data import DataError, read_unlabelled
from zskd.labelling import label_with_teacher
from zskd.methods.base import Method
from zskd.methods.common import TransferSet, balanced_selection, class_histogram, word_count
from zskd.methods.pairs import (
    in_other_words,
    lowercase_first,
    make_pairs,
    near_copy,
    negated,
    on_another_topic,
    pair_kind,
    part,
    question,
    topic_words,
    wh_question,
)
from zskd.resources import ResourceError, find_data_root

log = logging.getLogger(__name__)

DEFAULT_CORPORA = ("ood/brown.txt", "ood/wikitext2-valid.txt", "ood/wikitext2-test.txt")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_WIKITEXT_MARKUP = {" @-@ ": "-", " @,@ ": ",", " @.@ ": "."}
_DOUBLED_PUNCTUATION = re.compile(r"([;:?!]) \1")  # the Brown corpus writes "? ?" and "; ;"


def corpus_files(config) -> list[Path]:
    """`config.ood` (comma-separated files), else the out-of-domain corpora in the data root."""
    if config.ood:
        return [Path(p) for p in config.ood.split(",") if p]
    root = find_data_root(config.data_root)
    if root is None:
        raise ResourceError("no out-of-domain corpus: pass --ood FILE[,FILE] (text, one example a line) or --data-root")
    return [root / name for name in DEFAULT_CORPORA if (root / name).is_file()]


def split_sentences(line: str, max_words: int = 40) -> list[str]:
    """Sentences of a line: the line itself when it has at most `max_words` words (a corpus with one sentence a
    line), else split at sentence ends (a paragraph). WikiText markup undone, headings dropped."""
    line = _DOUBLED_PUNCTUATION.sub(r"\1", line.strip())
    if not line or line.startswith("="):
        return []
    for markup, plain in _WIKITEXT_MARKUP.items():
        line = line.replace(markup, plain)
    if len(line.split()) <= max_words:
        return [line]
    return [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]


def read_sentences(files: list[Path], min_words: int, max_words: int) -> list[str]:
    """Distinct sentences of the corpora, in corpus order, with [min_words, max_words] words and no <unk>."""
    if not files:
        raise DataError("no out-of-domain corpus files found; pass --ood FILE[,FILE]")
    sentences: dict[str, None] = {}
    for path in files:
        for line in read_unlabelled(path):
            for sentence in split_sentences(line, max_words):
                if "<unk>" not in sentence and min_words <= len(sentence.split()) <= max_words:
                    sentences.setdefault(sentence)
    return list(sentences)


def nearest_sentences(sentences: list[str], sample: list[str], fraction: float) -> list[str]:
    """The `fraction` of `sentences` that read most like `sample`, in their original order. Moore-Lewis selection:
    a sentence's score is its per-word log-probability under a unigram model of the sample minus that under one
    of all the sentences; words the sample uses fewer than twice count as one unknown word, so that rare names
    (unseen in a small sample, rare in the corpus) do not win."""
    if fraction >= 1.0 or not sentences:
        return list(sentences)
    counts = Counter(w for s in sample for w in s.lower().split())
    known = {w for w, c in counts.items() if c >= 2}

    def words(sentence: str) -> list[str]:
        return [w if w in known else "<unk>" for w in sentence.lower().split()]

    tokenized = [words(s) for s in sentences]
    near = Counter(w for s in sample for w in words(s))
    far = Counter(w for ws in tokenized for w in ws)
    size = len(far.keys() | near.keys())  # add-one smoothing over both models' words
    near_total, far_total = sum(near.values()) + size, sum(far.values()) + size

    def score(ws: list[str]) -> float:
        return sum(math.log((near[w] + 1) / near_total) - math.log((far[w] + 1) / far_total) for w in ws) / len(ws)

    scores = np.array([score(ws) for ws in tokenized])
    keep = max(1, round(fraction * len(sentences)))
    chosen = np.sort(np.argsort(-scores, kind="stable")[:keep])
    return [sentences[i] for i in chosen]


def corpus_words(sentences: list[str]) -> list[str]:
    """Alphabetic words of the first 5,000 sentences, sorted: the replacement words for `near_copy`."""
    return sorted({w for s in sentences[:5000] for w in s.split() if w.isalpha()})


def frequent_words(sentences: list[str], count: int) -> list[str]:
    """The `count` most frequent alphabetic words of `sentences`, lower-cased, most frequent first (ties in order of
    first use)."""
    return [w for w, _ in Counter(w.lower() for s in sentences for w in s.split() if w.isalpha()).most_common(count)]


AUGMENTATIONS = ("part", "near-copy", "question", "other-words", "negated", "joined", "other-topic")
CONNECTIVES = ("but", "yet", "although", "though", "while", "and")


def augmented(sentences: list[str], copies: int, rng: np.random.Generator, min_words: int,
              kinds: tuple[str, ...] = ("part", "near-copy")) -> list[str]:
    """`copies` variants of each sentence, the `kinds` in turn (copy k is kinds[k % len(kinds)]): more inputs near
    the corpus, each labelled by the teacher like the rest. `part` is a span of it and `near-copy` a perturbed copy
    (Tang et al., 2019); `question` a question in its words (half yes/no, half wh-: `pairs.wh_question`);
    `other-words` a copy with some words replaced by their nearest GloVe neighbours (`pairs.in_other_words`);
    `negated` the sentence with "not" added or removed at its first auxiliary (`pairs.negated`); `joined` a span of it
    and a span of another corpus sentence joined by a connective ("but", "although", ...), the contrasts whose
    second half often decides a reader's class; `other-topic` the sentence with its less frequent words replaced by
    other such words of the set (`pairs.on_another_topic`: the 300 most frequent words of `sentences` are its frame).
    """
    vocabulary = corpus_words(sentences)
    if "other-topic" in kinds[:copies]:
        frame = set(frequent_words(sentences, 300))
        replacements = topic_words(vocabulary, frame)
    if "other-words" in kinds[:copies]:
        from zskd.glove import neighbours_of_corpus

        neighbours = neighbours_of_corpus(sentences)
    variants = []
    for copy in range(copies):
        kind = kinds[copy % len(kinds)]
        for sentence in sentences:
            if kind == "part":
                variants.append(part(sentence, rng, min_words))
            elif kind == "near-copy":
                variants.append(near_copy(sentence, rng, vocabulary))
            elif kind == "other-words":
                variants.append(in_other_words(sentence, rng, neighbours))
            elif kind == "negated":
                variants.append(negated(sentence))
            elif kind == "other-topic":
                variants.append(on_another_topic(sentence, rng, frame, replacements))
            elif kind == "joined":
                other = sentences[int(rng.integers(len(sentences)))]
                connective = CONNECTIVES[int(rng.integers(len(CONNECTIVES)))]
                variants.append(f"{part(sentence, rng, min_words).rstrip(' .!?')} , {connective} "
                                f"{lowercase_first(part(other, rng, min_words))}")
            else:
                variants.append(question(sentence) if rng.random() < 0.5 else wh_question(sentence, rng))
    return variants


def augment_kinds(config) -> tuple[str, ...]:
    """The `--augment-kinds` of a config, checked."""
    kinds = tuple(config.augment_kinds.split(","))
    unknown = set(kinds) - set(AUGMENTATIONS)
    if unknown or not config.augment_kinds:
        raise DataError(f"unknown --augment-kinds {', '.join(sorted(unknown)) or '(none given)'}: choose from "
                        f"{', '.join(AUGMENTATIONS)}")
    return kinds


def grow_rare_classes(inputs: list[str], logits: np.ndarray, config, teacher,
                      rng: np.random.Generator) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """The pool with variants (`augmented`) of the inputs of each rare class, one the teacher gives less than
    `config.rare_class_fraction` of its even share of `config.transfer_size`: up to `config.rare_class_variants` of
    each, as many as fill the share. Corpora seldom hold what a rare class looks like (TREC's abbreviation questions:
    84 of 56,024 sentences), and variants of the few that do often keep it; the teacher labels them, and balancing
    then draws from them as from the rest. Classes merely under their share are left alone: growing them takes
    room from the classes that fill theirs (TREC: LOC and NUM, at 35-40% of their share, grew by ~30k variants
    each and DESC's agreement fell 4 points). Returns the pool, its logits and the variants added per class."""
    share = config.transfer_size // logits.shape[1]
    predicted = logits.argmax(-1)
    known = set(inputs)
    kinds = augment_kinds(config)
    added: dict[str, int] = {}
    new: list[str] = []
    for k, name in enumerate(teacher.label_names):
        members = [inputs[i] for i in np.flatnonzero(predicted == k)]
        if not members or len(members) >= config.rare_class_fraction * share:
            continue
        copies = min(config.rare_class_variants, math.ceil((share - len(members)) / len(members)))
        variants = [x for x in dict.fromkeys(augmented(members, copies, rng, config.min_words, kinds))
                    if x not in known]
        known.update(variants)
        new += variants
        added[name] = len(variants)
    if not new:
        return inputs, logits, added
    new_logits, _ = label_with_teacher(teacher, new, config.cache_dir)
    log.info("variants of the rarest classes' inputs added to the pool: %s", added)
    return inputs + new, np.concatenate([logits, new_logits]), added


CONTRAST_TEMPLATES = ("{a} , but {b}", "{a} , yet {b}", "although {a} , {b}", "{a} , although {b}",
                      "{a} ; however , {b}", "while {a} , {b}")


def contrasting_inputs(inputs: list[str], logits: np.ndarray, count: int, rng: np.random.Generator,
                       min_confidence: float = 0.9, max_words: int = 20) -> list[str]:
    """`count` inputs each joining two pool inputs the teacher gives different classes, both with at least
    `min_confidence`, by a connective that weighs one part against the other ("A , but B", "although A , B", ...).
    The teacher's label says which part it lets decide: what out-of-domain text, which seldom holds two opposed
    parts, never shows a student (the SST-2 sentences the default student gets wrong against a confident teacher
    are mostly such: "what it lacks in originality it makes up for in intelligence")."""
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    predicted = probabilities.argmax(-1)
    short = np.array([len(x.split()) <= max_words for x in inputs])
    by_class = [np.flatnonzero((predicted == k) & (probabilities[:, k] >= min_confidence) & short)
                for k in range(logits.shape[1])]
    classes = [k for k, members in enumerate(by_class) if len(members)]
    if len(classes) < 2:
        return []
    made = []
    for _ in range(count):
        first, second = rng.choice(classes, 2, replace=False)
        a = inputs[by_class[first][rng.integers(len(by_class[first]))]].rstrip(" .!?")
        b = inputs[by_class[second][rng.integers(len(by_class[second]))]].rstrip(" .!?")
        template = CONTRAST_TEMPLATES[int(rng.integers(len(CONTRAST_TEMPLATES)))]
        a = a if template.startswith("{a}") else lowercase_first(a)  # after a connective: not a sentence's start
        made.append(template.format(a=a, b=lowercase_first(b)) + " .")
    return list(dict.fromkeys(made))


def ood_transfer_set(config, teacher, near: list[str] | None = None) -> TransferSet:
    """Up to `config.transfer_size` out-of-domain inputs, class-balanced by the teacher when `config.balance`.
    With `near` (texts of the task's kind, e.g. generated ones), only the `config.ood_nearest` fraction of the
    corpus sentences that read most like them is used."""
    files = corpus_files(config)
    rng = np.random.default_rng([config.seed, 3])
    sentences = read_sentences(files, config.min_words, config.max_words)
    if near and config.ood_nearest < 1.0:
        sentences = nearest_sentences(sentences, near, config.ood_nearest)
    info: dict = {"corpora": [str(f) for f in files], "sentences": len(sentences)}
    corpus = sentences
    if config.augment:
        sentences = list(dict.fromkeys(sentences + augmented(sentences, config.augment, rng, config.min_words,
                                                               augment_kinds(config))))
    if config.word_inputs:  # `distill` refuses it for pairs
        # what each word means to the teacher, alone: the sentences use most words too seldom to teach it
        words = frequent_words(corpus, config.word_inputs)
        sentences = list(dict.fromkeys(sentences + words))
        info["word_inputs"] = len(words)
    if config.pairs:
        kinds = tuple(config.pair_kinds.split(","))
        inputs = make_pairs(sentences, rng, corpus_words(sentences), config.min_words, kinds, corpus)
        info["pair_kinds"] = list(kinds)
    else:
        inputs = list(sentences)
    wanted = config.transfer_size * (config.pool_factor if config.balance else 1)
    pool_size = min(len(inputs), wanted)
    if config.balance and len(inputs) < wanted:
        log.info("the corpora give %d distinct inputs, fewer than --pool-factor %d x --transfer-size %d: balancing "
                 "has only %d to drop (more corpus text, or more --augment variants, give it room)",
                 len(inputs), config.pool_factor, config.transfer_size, max(0, len(inputs) - config.transfer_size))
    order = rng.permutation(len(inputs))[:pool_size]
    inputs = [inputs[i] for i in order]
    info["pool"] = len(inputs)
    if config.balance:
        logits, _ = label_with_teacher(teacher, inputs, config.cache_dir)
        info["classes_before"] = class_histogram(logits, teacher.label_names)
        if config.rare_class_variants and not config.pairs:
            inputs, logits, info["rare_class_variants"] = grow_rare_classes(inputs, logits, config, teacher, rng)
        if config.contrast_inputs and not config.pairs:
            known = set(inputs)
            contrasts = [x for x in contrasting_inputs(inputs, logits, config.contrast_inputs, rng) if x not in known]
            if contrasts:
                inputs, logits = inputs + contrasts, np.concatenate([logits, label_with_teacher(
                    teacher, contrasts, config.cache_dir)[0]])
            info["contrast_inputs"] = len(contrasts)
        made_as = np.array([pair_kind(i, kinds) for i in order]) if config.pairs else None
        chosen = balanced_selection(logits, config.transfer_size, config.seed,
                                    made_as if config.balance_by_kind else None)
        inputs = [inputs[i] for i in chosen]
        info["classes_after"] = class_histogram(logits[chosen], teacher.label_names)
        if config.pairs:
            info["classes_by_kind"] = {
                kind: {"before": class_histogram(logits[made_as == kind], teacher.label_names),
                       "after": class_histogram(logits[chosen][made_as[chosen] == kind], teacher.label_names)}
                for kind in dict.fromkeys(kinds)}
        log.info("teacher classes before balancing %s, after %s", info["classes_before"], info["classes_after"])
    mean_words = float(np.mean([word_count(x) for x in inputs])) if inputs else 0.0
    kind = "sentence pairs" if config.pairs else "sentences"
    return TransferSet(inputs, f"ood: {len(inputs)} {kind} from {', '.join(f.name for f in files)} "
                               f"({config.min_words}-{config.max_words} words, mean {mean_words:.1f})", info=info)


METHOD = Method(transfer_set=ood_transfer_set)
