"""Every common encoder family as a local teacher: a tiny random model of each, built offline with its own kind of
tokenizer (WordPiece, byte-level BPE, SentencePiece-style Unigram), labels texts and pairs and is distilled with
`ood` and `adversarial` (white-box), the pair student reading its sentences apart."""

import json

import pytest
import torch
import transformers as T
from tokenizers import ByteLevelBPETokenizer, SentencePieceUnigramTokenizer

from conftest import OOD_SENTENCES, WORDS
from zskd.data import tokenize
from zskd.distill import DistillConfig, distill
from zskd.methods.random_tokens import whole_words
from zskd.teacher import Teacher

SENTENCES = [" ".join(WORDS[i : i + 7]) for i in range(0, len(WORDS), 3)] * 5
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def wordpiece(tokenizer_class):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    return tokenizer_class(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)


def byte_level_bpe(tokenizer_class):
    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator([" " + s for s in SENTENCES], vocab_size=400, min_frequency=1,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    model = json.loads(trained._tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return tokenizer_class(vocab=model["vocab"], merges=merges)


def unigram(tokenizer_class):
    trained = SentencePieceUnigramTokenizer()
    trained.train_from_iterator(SENTENCES, vocab_size=300, unk_token="<unk>",
                                special_tokens=["<pad>", "<s>", "</s>", "<unk>", "<mask>", "[CLS]", "[SEP]", "[MASK]"])
    return tokenizer_class(vocab=[tuple(x) for x in json.loads(trained._tokenizer.to_str())["model"]["vocab"]])


ROBERTA_IDS = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2)
FAMILIES = {  # name: (config, model, tokenizer class, tokenizer builder, config options)
    "bert": ("BertConfig", "BertForSequenceClassification", "BertTokenizerFast", wordpiece, SMALL),
    "distilbert": ("DistilBertConfig", "DistilBertForSequenceClassification", "DistilBertTokenizerFast", wordpiece,
                   dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64)),
    "electra": ("ElectraConfig", "ElectraForSequenceClassification", "ElectraTokenizerFast", wordpiece,
                dict(SMALL, embedding_size=16)),
    "roberta": ("RobertaConfig", "RobertaForSequenceClassification", "RobertaTokenizerFast", byte_level_bpe,
                dict(SMALL, **ROBERTA_IDS)),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification", "XLMRobertaTokenizerFast", unigram,
                    dict(SMALL, pad_token_id=0)),
    "deberta-v2": ("DebertaV2Config", "DebertaV2ForSequenceClassification", "DebertaV2TokenizerFast", unigram,
                   dict(SMALL, type_vocab_size=0)),
    "modernbert": ("ModernBertConfig", "ModernBertForSequenceClassification", "RobertaTokenizerFast", byte_level_bpe,
                   dict(SMALL, cls_token_id=0, sep_token_id=2, global_attn_every_n_layers=1, **ROBERTA_IDS)),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_teacher(request, tmp_path_factory):
    """(family, directory) of a tiny random classifier of that family with its tokenizer (64 positions)."""
    config_name, model_name, tokenizer_name, build_tokenizer, options = FAMILIES[request.param]
    if not hasattr(T, model_name):
        pytest.skip(f"this transformers ({T.__version__}) has no {model_name}")
    directory = tmp_path_factory.mktemp(request.param)
    tokenizer = build_tokenizer(getattr(T, tokenizer_name))
    torch.manual_seed(0)
    config = getattr(T, config_name)(vocab_size=len(tokenizer), num_labels=2, max_position_embeddings=64,
                                     id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}, **options)
    getattr(T, model_name)(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return request.param, directory


def test_each_family_labels_texts_and_pairs_and_splits_pairs_for_the_student(family_teacher):
    family, directory = family_teacher
    teacher = Teacher.from_pretrained(directory, bf16=False)
    long_pair = (" ".join(WORDS * 2), " ".join(WORDS * 2))  # truncated to the positions the model has
    assert teacher.logits(["the movie was good", "awful"]).shape == (2, 2)
    assert teacher.logits([("a cat sat", "on the mat"), long_pair]).shape == (2, 2)
    encoded = tokenize(teacher.tokenizer, [("the cat", "sat on the mat")], 64)
    tokens = teacher.tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    flags = encoded["segments"][0]
    first_second = flags.index(1)  # the second sentence, for the students, starts with its first word
    assert set(flags[:first_second]) == {0} and set(flags[first_second:]) == {1}
    assert "sat" in teacher.tokenizer.convert_tokens_to_string(tokens[first_second:])
    assert "cat" not in teacher.tokenizer.convert_tokens_to_string(tokens[first_second:])
    words = dict(whole_words(teacher.tokenizer))
    assert all(teacher.tokenizer.tokenize(" " + word) == [teacher.tokenizer.convert_ids_to_tokens(i)]
               for word, i in words.items())


@pytest.mark.parametrize("method,student,pairs", [("ood", "bilstm", False), ("adversarial", "bilstm", False),
                                                  ("ood", "transformer", False), ("ood", "pair-bilstm", True)])
def test_each_family_distils(family_teacher, tmp_path, method, student, pairs):
    family, directory = family_teacher
    corpus = tmp_path / "ood.txt"
    corpus.write_text("\n".join(OOD_SENTENCES) + "\n")
    options = "num_layers=1" if student == "transformer" else "embedding_dim=8,hidden_size=8"
    _, report = distill(DistillConfig(
        teacher=str(directory), out=str(tmp_path / "student"), method=method, student=student, ood=str(corpus),
        pairs=pairs, cache_dir=str(tmp_path / "cache"), transfer_size=40, min_words=2, max_words=12, steps=2,
        batch_size=8, heldout=8, teacher_bf16=False, student_options=options))
    assert report["student"] == student and 0.0 <= report["heldout_agreement"] <= 100.0


@pytest.mark.parametrize("family", list(FAMILIES))
def test_one_sentence_gets_the_tokenizers_ids_from_the_word_cache_or_the_tokenizer(family):
    """`tokenize` of one sentence (served by `WordCache` for WordPiece tokenizers) equals the tokenizer's own
    batch path, for every family, on text the cache serves and text it leaves to the tokenizer."""
    from zskd.word_cache import word_cache

    _, _, tokenizer_name, build_tokenizer, _ = FAMILIES[family]
    if not hasattr(T, tokenizer_name):
        pytest.skip(f"this transformers ({T.__version__}) has no {tokenizer_name}")
    tokenizer = build_tokenizer(getattr(T, tokenizer_name))
    texts = [*SENTENCES[:5], "The  Movie was GOOD!!", "boring,awful...plot?", "a zzzqqq unknownword of", "x" * 150,
             "tabs\tand\nnewlines", "café naïve", " ".join(WORDS), ""]
    for max_length in (64, 8):
        for text in texts:
            alone = tokenize(tokenizer, [text], max_length)
            in_a_batch = tokenize(tokenizer, [text, "padding sentence"], max_length)
            assert alone == {key: value[:1] for key, value in in_a_batch.items()}, (family, text, max_length)
    served = [word_cache(tokenizer).ids(text, 64) is not None for text in texts]
    if family in ("bert", "distilbert", "electra"):  # WordPiece: plain ASCII is served, tabs and accents are not
        assert served[:9] == [True] * 9 and served[9:11] == [False, False]
    else:
        assert not word_cache(tokenizer).enabled and not any(served)
