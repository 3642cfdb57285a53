"""Sentence pairs made from single sentences, by rules, for teachers that read pairs (paraphrase, entailment,
question answering). Each kind aims at a relation such teachers separate; the teacher labels every pair, and the
transfer set is balanced over the classes it predicts within each kind (`ood`'s `--balance-by-kind`), as far as the
kind has both; a kind that lands in one class keeps its share of the set in that class.

    neighbour   the next sentence of the corpus                 related, rarely the same meaning
    unrelated   a random sentence                               unrelated
    near-copy   words dropped, replaced or swapped (~15%)       a paraphrase, or nearly
    detail      a copy with one detail changed: a number or a   the same topic and wording, a different
                name replaced, or a span of another sentence    statement: the hard negatives of paraphrase
                added                                           teachers
    part        a contiguous span of 30-80% of it               entailed
    negated     "not" added or removed at the first auxiliary   contradicted
    question    the first auxiliary moved to the front, or      a yes/no question it answers
                "Is it true that ...?"
    similar     the other corpus sentence sharing most of its   two sentences written apart on one topic: how
                informative words, not a copy or part of it     paraphrase corpora were mined (Dolan and
                                                                Brockett, 2005); an option, off by default
    spliced     a span of 25-50% of its words replaced by a     half the same statement, half another: the
                span of another sentence                        other hard negative of paraphrase corpora; an
                                                                option, off by default
    other-words 3 in 10 of its lower-case words replaced by     a paraphrase in other words, or a statement
                their nearest GloVe neighbours                  changed in one (neighbours may be opposites);
                                                                an option, off by default
    passage     first the sentence and the ones after it (25-   the shape of entailment and reading tasks (a
                60 words), second a claim of 4-12 words: a span premise of ~40 words, a hypothesis of ~8, as in
                of one of them, with a run of words left out,   RTE), where the other kinds pair two sentences
                reworded as a near copy, negated, half          of one length; every other pair by default
                replaced, or a span of an unrelated sentence

By default the first seven kinds are taken in turn, each followed by a `passage`: half the pairs two sentences of
about one length (paraphrase tasks), half a passage and a short claim (entailment tasks).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

AUXILIARIES = frozenset("is are was were am be been can could will would shall should may might must do does did has "
                        "have had".split())
NEGATIONS = frozenset(("not", "n't", "never"))


def negated(sentence: str) -> str:
    """`sentence` with its first auxiliary negated ("was" -> "was not"), or un-negated where "not" follows it;
    without an auxiliary, "It is not true that ...". """
    words = sentence.split()
    for i, word in enumerate(words):
        if word.lower() in AUXILIARIES:
            if i + 1 < len(words) and words[i + 1].lower() in NEGATIONS:
                return " ".join(words[: i + 1] + words[i + 2 :])
            return " ".join(words[: i + 1] + ["not"] + words[i + 1 :])
    return f"It is not true that {lowercase_first(sentence)}"


def question(sentence: str) -> str:
    """A yes/no question `sentence` answers: its first auxiliary moved to the front ("the film was long ." ->
    "Was the film long ?"), else "Is it true that ... ?"."""
    words = sentence.rstrip(" .!?").split()
    for i, word in enumerate(words):
        if word.lower() in AUXILIARIES and 0 < i <= 6:  # an auxiliary of the main clause, near the start
            rest = [lowercase_first(words[0])] + words[1:i] + words[i + 1 :]
            return " ".join([word.capitalize()] + rest) + " ?"
    return f"Is it true that {lowercase_first(' '.join(words))} ?"


OBJECT_WH = ("What", "Why", "How", "Which")
PREPOSITIONS = frozenset("in at on from near of to by for with about into".split())
PRONOUNS = frozenset("i you he she it we they this that there these those".split())


def wh_question(sentence: str, rng: np.random.Generator) -> str:
    """A wh-question in the words of `sentence`, the register of question-classification and FAQ tasks that general
    corpora rarely show. After an auxiliary near the start, either its subject is asked for ("Washington was the
    first president ." -> "Who was the first president ?") or a part of the rest: the first year ("When was the film
    released ?"), number before a word ("How many children has he ?") or capitalised place after in/at/from/near
    ("Where can it be found ?"), else its end, cut at random (What, Why, How, Which). Without an auxiliary,
    "<wh> did ... ?". Rough grammar: the teacher labels what it reads."""
    words = sentence.rstrip(" .!?").split()
    aux = next((i for i, word in enumerate(words[:7]) if i > 0 and word.lower() in AUXILIARIES), None)
    if aux is None:  # also an empty sentence
        return f"{OBJECT_WH[int(rng.integers(len(OBJECT_WH)))]} did {lowercase_first(' '.join(words))} ?"
    subject, verb, rest = words[:aux], words[aux].lower(), words[aux + 1 :]
    if not rest or rng.random() < 0.4:
        named = any(word[:1].isupper() for word in subject[1:]) or \
            len(subject) == 1 and subject[0][:1].isupper() and subject[0].lower() not in PRONOUNS
        return " ".join(["Who" if named else "What", verb, *rest]) + " ?"
    asker = lowercase_first(" ".join(subject))
    for j, word in enumerate(rest):
        if len(word) == 4 and word.isdigit() and word[:2] in ("17", "18", "19", "20"):  # a year: when
            return " ".join(["When", verb, asker, *without_preposition(rest[:j])]) + " ?"
        if any(c.isdigit() for c in word) and j + 1 < len(rest) and rest[j + 1].isalpha():  # 12 children
            return " ".join(["How many", rest[j + 1], verb, asker, *rest[:j]]) + " ?"
        if j and rest[j - 1].lower() in ("in", "at", "from", "near") and word[:1].isupper():  # in Boston
            return " ".join(["Where", verb, asker, *without_preposition(rest[:j])]) + " ?"
    keep = without_preposition(rest[: int(rng.integers(1, len(rest) + 1))])
    return " ".join([OBJECT_WH[int(rng.integers(len(OBJECT_WH)))], verb, asker, *keep]) + " ?"


def without_preposition(words: list[str]) -> list[str]:
    """`words` less a preposition left at their end ("released in" -> "released"), one word kept at least."""
    while len(words) > 1 and words[-1].lower() in PREPOSITIONS:
        words = words[:-1]
    return words


def lowercase_first(text: str) -> str:
    """`text` with its first letter lower-cased, unless the first word looks like a name or acronym ("I", "NASA")."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[1:].islower():
        return text[:1].lower() + text[1:]
    return text


def near_copy(sentence: str, rng: np.random.Generator, vocabulary: list[str]) -> str:
    """About 15% of words dropped, replaced by corpus words, or swapped with a neighbour."""
    words = sentence.split()
    out = []
    for word in words:
        roll = rng.random()
        if roll < 0.05:
            continue
        out.append(vocabulary[rng.integers(len(vocabulary))] if roll < 0.10 else word)
    for _ in range(max(1, len(out) // 20)):
        if len(out) > 2:
            i = int(rng.integers(len(out) - 1))
            out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out) if out else sentence


def in_other_words(sentence: str, rng: np.random.Generator, neighbours: dict[str, list[str]],
                   rate: float = 0.3) -> str:
    """Each word that has `neighbours` replaced, with probability `rate`, by one of them drawn at random: the same
    sentence in words the corpus may seldom use ("a pleasant town" -> "a charming village")."""
    words = sentence.split()
    for i, word in enumerate(words):
        if word in neighbours and rng.random() < rate:
            choices = neighbours[word]
            words[i] = choices[int(rng.integers(len(choices)))]
    return " ".join(words)


def word_shape(word: str) -> tuple[bool, str]:
    """What a replacement word keeps of the word it replaces, a rough part of speech without a tagger: whether it is
    capitalised, and its ending among -ing, -ed, -ly, -s."""
    ending = next((e for e in ("ing", "ed", "ly", "s") if word.endswith(e) and len(word) > len(e) + 2), "")
    return word[:1].isupper(), ending


def topic_words(vocabulary: list[str], frame: set[str]) -> dict[tuple[bool, str], list[str]]:
    """The alphabetic words of `vocabulary` outside `frame` (lower-case), by `word_shape`: `on_another_topic`'s
    replacements."""
    by_shape: dict[tuple[bool, str], list[str]] = defaultdict(list)
    for word in vocabulary:
        if word.isalpha() and word.lower() not in frame:
            by_shape[word_shape(word)].append(word)
    return dict(by_shape)


def on_another_topic(sentence: str, rng: np.random.Generator, frame: set[str],
                     replacements: dict[tuple[bool, str], list[str]], rate: float = 0.5) -> str:
    """Its alphabetic words outside `frame` (lower-case; the set's most frequent words) replaced, each with
    probability `rate` and at least one, by a word of `replacements` of the same `word_shape` drawn at random: the
    same frame about something else ("What is caffeine ?" -> "What is sandstone ?"), so that the student learns what
    the frame says rather than what the topic's words said in other sentences."""
    words = sentence.split()
    topical = [i for i, w in enumerate(words) if w.isalpha() and w.lower() not in frame
               and replacements.get(word_shape(w))]
    if not topical:
        return sentence
    chosen = [i for i in topical if rng.random() < rate] or [topical[int(rng.integers(len(topical)))]]
    for i in chosen:
        choices = replacements[word_shape(words[i])]
        words[i] = choices[int(rng.integers(len(choices)))]
    return " ".join(words)


def changed_detail(sentence: str, rng: np.random.Generator, names: list[str], other: str, min_words: int) -> str:
    """`sentence` with one detail changed, chosen at random among those it offers: a number's digits redrawn, a
    name (a capitalised word past the first) replaced by another of `names`, or a span of `other` added at the
    end."""
    words = sentence.split()
    numbers = [i for i, w in enumerate(words) if any(c.isdigit() for c in w)]
    capitalised = [i for i, w in enumerate(words) if i > 0 and w[:1].isupper() and w.isalpha()]
    changes = ["added"] + (["number"] if numbers else []) + (["name"] if capitalised and len(names) > 1 else [])
    change = changes[int(rng.integers(len(changes)))]
    if change == "number":
        i = numbers[int(rng.integers(len(numbers)))]
        words[i] = redrawn_digits(words[i], rng)
    elif change == "name":
        i = capitalised[int(rng.integers(len(capitalised)))]
        j = int(rng.integers(len(names)))
        words[i] = names[j] if names[j] != words[i] else names[(j + 1) % len(names)]
    else:
        end = words.pop() if words and words[-1] in ".!?" else ""
        words += [",", "and", part(other, rng, min_words).rstrip(" .!?")] + ([end] if end else [])
    return " ".join(words)


def redrawn_digits(word: str, rng: np.random.Generator) -> str:
    """`word` with its digits redrawn at random, never all as they were ("1998" -> "1974", "$12" -> "$85")."""
    while True:
        out = "".join(str(int(rng.integers(10))) if c.isdigit() else c for c in word)
        if out != word:
            return out


def spliced(sentence: str, other: str, rng: np.random.Generator) -> str:
    """`sentence` with a random span of 25-50% of its words replaced by a span of `other` as long."""
    words, others = sentence.split(), other.split()
    length = max(1, int(len(words) * rng.uniform(0.25, 0.5)))
    start = int(rng.integers(0, len(words) - length + 1))
    source = int(rng.integers(0, max(1, len(others) - length + 1)))
    return " ".join(words[:start] + others[source : source + length] + words[start + length :])


def part(sentence: str, rng: np.random.Generator, min_words: int) -> str:
    """A random contiguous span of 30-80% of the sentence's words (at least `min_words`)."""
    words = sentence.split()
    length = max(min(min_words, len(words)), int(len(words) * rng.uniform(0.3, 0.8)))
    start = int(rng.integers(0, len(words) - length + 1))
    return " ".join(words[start : start + length])


def passage_and_claim(sentences: list[str], i: int, rng: np.random.Generator, min_words: int,
                      vocabulary: list[str]) -> tuple[str, str]:
    """A passage from sentence `i` on (whole sentences, up to a length drawn from 25-60 words, at most 3 sentences,
    wrapping at the end of the list) and a short claim about it: a span of 4-12 words of one of its sentences, as
    it is or with a run of words inside it left out (entailed), reworded as a near copy (mostly entailed),
    negated (contradicted) or with part of it replaced by another sentence's words, or else a span of an unrelated
    sentence (neither)."""
    budget, taken, words = int(rng.integers(25, 61)), [], 0
    for k in range(3):
        sentence = sentences[(i + k) % len(sentences)]
        if taken and words + len(sentence.split()) > budget:
            break
        taken.append(sentence)
        words += len(sentence.split())
    other = sentences[int(rng.integers(len(sentences)))]
    claim_kind = int(rng.integers(6))
    if claim_kind == 3:
        return " ".join(taken), short_span(other, rng, min_words)
    source = taken[int(rng.integers(len(taken)))]
    if claim_kind == 4:
        return " ".join(taken), gapped_span(source, rng, min_words)
    claim = short_span(source, rng, min_words)
    if claim_kind == 1:
        claim = negated(claim)
    elif claim_kind == 2:
        claim = spliced(claim, other, rng)
    elif claim_kind == 5:
        claim = near_copy(claim, rng, vocabulary)
    return " ".join(taken), claim


def short_span(sentence: str, rng: np.random.Generator, min_words: int) -> str:
    """A contiguous span of 4-12 words of `sentence` (at least `min_words`; all of a shorter sentence): half the
    time its opening words (subject and verb, as a claim reads), else from anywhere."""
    words = sentence.split()
    length = min(len(words), max(min_words, int(rng.integers(4, 13))))
    start = 0 if rng.random() < 0.5 else int(rng.integers(0, len(words) - length + 1))
    return " ".join(words[start : start + length])


def gapped_span(sentence: str, rng: np.random.Generator, min_words: int) -> str:
    """A span of `sentence` with a run of 2-8 words inside it left out, at least `min_words` kept ("A, who did B,
    said C" -> "A said C"): a claim whose words all come from one sentence, but not as one piece."""
    words, least = sentence.split(), max(min_words, 2)
    if len(words) < least + 3:
        return short_span(sentence, rng, min_words)
    length = int(rng.integers(least + 3, min(len(words), 20) + 1))
    start = 0 if rng.random() < 0.5 else int(rng.integers(0, len(words) - length + 1))
    span = words[start : start + length]
    gap = int(rng.integers(2, min(8, length - least) + 1))
    at = int(rng.integers(1, length - gap))  # the first and last words stay
    return " ".join(span[:at] + span[at + gap :])


def similar_sentences(queries: list[str], corpus: list[str], max_df: int = 200,
                      max_shared: float = 0.8) -> list[str | None]:
    """For each query, the sentence of `corpus` sharing the most of its informative words (words of 3 letters or more,
    each weighing log(N / df); those in more than `max_df` sentences say little and are skipped), but not a copy or
    part of it: neither holds more than `max_shared` of the other's words. None where no sentence shares one."""
    def informative(sentence: str) -> frozenset[str]:
        return frozenset(w for w in sentence.lower().split() if w.isalpha() and len(w) > 2)

    postings = defaultdict(list)
    for i, sentence in enumerate(corpus):
        for word in informative(sentence):
            postings[word].append(i)
    partners = []
    for query in queries:
        scores = Counter()
        for word in informative(query):
            ids = postings.get(word, ())
            if 0 < len(ids) <= max_df:
                for j in ids:
                    scores[j] += math.log(len(corpus) / len(ids))
        words, partner = frozenset(query.lower().split()), None
        for j, _ in scores.most_common():
            other = frozenset(corpus[j].lower().split())
            if len(words & other) <= max_shared * min(len(words), len(other)):
                partner = corpus[j]
                break
        partners.append(partner)
    return partners


PAIR_KINDS = ("neighbour", "unrelated", "near-copy", "detail", "part", "negated", "question", "similar", "spliced",
              "passage", "other-words")
SENTENCE_PAIR_KINDS = PAIR_KINDS[:7]  # two sentences of about one length: the default until session 26
DEFAULT_PAIR_KINDS = tuple(k for kind in SENTENCE_PAIR_KINDS for k in (kind, "passage"))


def pair_kind(i: int, kinds: tuple[str, ...]) -> str:
    """The kind of the `i`-th pair `make_pairs` writes."""
    return kinds[i % len(kinds)]


def make_pairs(sentences: list[str], rng: np.random.Generator, vocabulary: list[str], min_words: int,
               kinds: tuple[str, ...] = DEFAULT_PAIR_KINDS, corpus: list[str] | None = None) -> list[tuple[str, str]]:
    """One pair per sentence, (sentence, second), the `kinds` in turn (`passage`: (passage from the sentence on,
    claim)); `similar` partners come from `corpus` (default: `sentences`; give the corpus before augmentation, or a
    sentence finds its own variants)."""
    names = sorted({w for w in vocabulary if w[:1].isupper()})
    asked = [i for i in range(len(sentences)) if pair_kind(i, kinds) == "similar"]
    similar = dict(zip(asked, similar_sentences([sentences[i] for i in asked], corpus or sentences))) if asked else {}
    if "other-words" in kinds:
        from zskd.glove import neighbours_of_corpus

        neighbours = neighbours_of_corpus(sentences)
    pairs = []
    for i, sentence in enumerate(sentences):
        kind = pair_kind(i, kinds)
        if kind == "passage":
            pairs.append(passage_and_claim(sentences, i, rng, min_words, vocabulary))
            continue
        if kind == "neighbour":
            second = sentences[(i + 1) % len(sentences)]
        elif kind == "similar" and similar[i] is not None:
            second = similar[i]
        elif kind in ("unrelated", "similar"):  # similar: a random sentence where none shares a word
            second = sentences[int(rng.integers(len(sentences)))]
        elif kind == "near-copy":
            second = near_copy(sentence, rng, vocabulary)
        elif kind == "other-words":
            second = in_other_words(sentence, rng, neighbours)
        elif kind == "detail":
            second = changed_detail(sentence, rng, names, sentences[int(rng.integers(len(sentences)))], min_words)
        elif kind == "part":
            second = part(sentence, rng, min_words)
        elif kind == "spliced":
            second = spliced(sentence, sentences[int(rng.integers(len(sentences)))], rng)
        elif kind == "negated":
            second = negated(sentence)
        else:
            second = question(sentence)
        pairs.append((sentence, second))
    return pairs


PAIR_VARIANTS = ("near-copy", "detail", "part", "swapped")


def pair_variants(pairs: list[tuple[str, str]], copies: int, rng: np.random.Generator, vocabulary: list[str],
                  min_words: int) -> list[tuple[str, str]]:
    """`copies` variants of each of a task's own pairs, the `PAIR_VARIANTS` in turn (copy k is kind k % 4): one side,
    drawn at random, made a near-copy, given a changed detail or cut to a part, the other kept as it is; or the two
    swapped. The pair form of `ood.augmented` (Tang et al., 2019, augmented both sentences of MNLI and QQP pairs):
    more pairs in the task's register, on both sides of the teacher's boundary, each labelled by the teacher."""
    sentences = [sentence for pair in pairs for sentence in pair]
    names = sorted({w for w in vocabulary if w[:1].isupper()})
    variants = []
    for copy in range(copies):
        kind = PAIR_VARIANTS[copy % len(PAIR_VARIANTS)]
        for first, second in pairs:
            if kind == "swapped":
                variants.append((second, first))
                continue
            side = int(rng.integers(2))
            sentence = (first, second)[side]
            if kind == "near-copy":
                changed = near_copy(sentence, rng, vocabulary)
            elif kind == "detail":
                changed = changed_detail(sentence, rng, names, sentences[int(rng.integers(len(sentences)))], min_words)
            else:
                changed = part(sentence, rng, min_words)
            variants.append((first, changed) if side else (changed, second))
    return variants


def second_words_in_first(first: str, second: str) -> float:
    """The share of `second`'s words (lowercased) found among `first`'s: how much of a claim or paraphrase the
    first sentence already says, word for word (0 for an empty second)."""
    words, asked = set(first.lower().split()), second.lower().split()
    return sum(w in words for w in asked) / max(len(asked), 1)


def pair_profile(pairs: list[tuple[str, str]], predicted: np.ndarray, label_names: list[str]) -> dict:
    """What a set of pairs looks like to a reader comparing transfer pairs with a task's own: mean words in each
    sentence, the mean share of the second sentence's words found in the first (lowercased), and the teacher's
    class mix (% of pairs by predicted class)."""
    if not pairs:
        return {"pairs": 0}
    first = [a.lower().split() for a, _ in pairs]
    second = [b.lower().split() for _, b in pairs]
    covered = [second_words_in_first(a, b) for a, b in pairs if b.split()]
    mix = np.bincount(predicted, minlength=len(label_names)) / len(pairs)
    return {"pairs": len(pairs), "words_first": round(float(np.mean([len(a) for a in first])), 1),
            "words_second": round(float(np.mean([len(b) for b in second])), 1),
            "second_words_in_first": round(100 * float(np.mean(covered)) if covered else 0.0, 1),
            "teacher_classes": {name: round(100 * float(share), 1) for name, share in zip(label_names, mix)}}
