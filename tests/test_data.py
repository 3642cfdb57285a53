import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SENTIMENT, write_tsv
from zskd.data import DataError, read_labelled, read_unlabelled, tokenize

ROWS = [{"text": t, "label": y} for t, y in SENTIMENT]


def write(path, rows):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        sep = "\t" if path.suffix == ".tsv" else ","
        header = list(rows[0])
        path.write_text("\n".join([sep.join(header)] + [sep.join(str(r[c]) for c in header) for r in rows]) + "\n")
    return path


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl", ".parquet"])
def test_every_labelled_format_reads_the_same_examples(tmp_path, suffix):
    examples = read_labelled(write(tmp_path / f"d{suffix}", ROWS), text_col="text")
    assert examples.texts == [t for t, _ in SENTIMENT]
    assert examples.labels == [y for _, y in SENTIMENT]
    assert examples.label_names == ["0", "1"]
    assert not examples.is_pair and examples.bad_rows == 0


def test_label_names_map_names_and_ids(tmp_path):
    rows = [{"text": "good", "label": "positive"}, {"text": "bad", "label": "negative"}, {"text": "ok", "label": "1"}]
    examples = read_labelled(write(tmp_path / "d.jsonl", rows), text_col="text", label_names=["negative", "positive"])
    assert examples.labels == [1, 0, 1]


def test_sentence_pairs(tmp_path):
    rows = [{"s1": "a cat sat", "s2": "a cat ran", "label": 0}, {"s1": "the dog", "s2": "a dog", "label": 1}]
    examples = read_labelled(write(tmp_path / "p.csv", rows), text_col="s1", text_col2="s2")
    assert examples.is_pair
    assert examples.inputs() == [("a cat sat", "a cat ran"), ("the dog", "a dog")]


def test_quoted_tsv_fields_keep_their_quotes(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text('label\tsentence\n1\t"He said "" hello "" ."\n0\tplain\n')
    assert read_labelled(path).texts == ['He said " hello " .', "plain"]


def test_bad_rows_are_reported_with_file_and_line_and_counted(tmp_path, caplog):
    path = tmp_path / "bad.tsv"
    good = "".join(f"1\tgood text {i}\n" for i in range(6))
    path.write_bytes(b"label\tsentence\n" + good.encode() + b"7\tunknown label\n1\t\n0\tbad \xff\xfe bytes\n")
    with caplog.at_level(logging.WARNING):
        examples = read_labelled(path, label_names=["neg", "pos"])
    assert len(examples) == 6 and examples.bad_rows == 3
    log = caplog.text
    assert f"{path}:8: unknown label '7'" in log
    assert f"{path}:9: missing text" in log
    assert f"{path}:10: undecodable bytes" in log
    assert "skipped 3 of 9 rows" in log


def test_mostly_bad_file_is_refused(tmp_path):
    path = write_tsv(tmp_path / "bad.tsv", [(5, "x"), (6, "y"), (1, "fine")], ("label", "sentence"))
    with pytest.raises(DataError, match="2 of 3 rows are bad"):
        read_labelled(path, label_names=["neg", "pos"])


def test_wrong_column_name_names_the_columns(tmp_path, sentiment_tsv):
    with pytest.raises(DataError, match="no column 'text' \\(columns: label, sentence\\)"):
        read_labelled(sentiment_tsv, text_col="text")


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown format"):
        read_labelled(tmp_path / "d.xlsx")
    with pytest.raises(DataError, match="no such file"):
        read_labelled(tmp_path / "missing.tsv")


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".parquet"])
def test_unlabelled_formats(tmp_path, suffix):
    texts = ["first sentence .", "second one", "third"]
    path = tmp_path / f"u{suffix}"
    if suffix == ".txt":
        path.write_text("\n".join(texts[:2]) + "\n\n" + texts[2] + "\n")
    else:
        write(path, [{"text": t} for t in texts])
    assert read_unlabelled(path) == texts


def test_unlabelled_undecodable_lines_are_skipped(tmp_path):
    path = tmp_path / "u.txt"
    path.write_bytes(b"one\ntwo\n\xff three\nfour\n")
    assert read_unlabelled(path) == ["one", "two", "four"]


@pytest.mark.parametrize("chunk", [4096, 2])  # 2: the inputs cross chunks, as a transfer set's do
def test_tokenize_matches_the_tokenizers_own_call(tiny_model, chunk, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setattr("zskd.data.TOKENIZE_CHUNK", chunk)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = ["the movie was good", "a very very very long and boring plot , not fun at all !", "cat"]
    pairs = [("the movie was good", "it was fine"), ("what city", "a cat sat on the mat and the dog ran in the city")]
    for max_length in (128, 8):
        expected = tokenizer(texts, truncation=True, max_length=max_length)
        assert tokenize(tokenizer, texts, max_length) == {k: expected[k] for k in ("input_ids", "token_type_ids")}
        expected = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first",
                             max_length=max_length)
        # the students' segments of a BERT pair are its token_type_ids
        assert tokenize(tokenizer, pairs, max_length) == {"segments": expected["token_type_ids"],
                                                          **{k: expected[k] for k in ("input_ids", "token_type_ids")}}
    assert tokenizer(texts, truncation=True, max_length=8)["input_ids"] == tokenize(tokenizer, texts, 8)["input_ids"]


def test_a_tsv_field_that_opens_a_quote_swallows_no_rows(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text('label\tsentence\n1\t"an opening quote with no end\n0\tbad\n1\tfine\n0\t"quoted" then text\n')
    examples = read_labelled(path)
    assert examples.texts == ['"an opening quote with no end', "bad", "fine", '"quoted" then text']
    assert examples.labels == [1, 0, 1, 0] and examples.bad_rows == 0


def test_labels_are_one_class_however_written_and_odd_ids_are_kept(tmp_path, caplog):
    path = tmp_path / "l.tsv"
    path.write_text("label\tsentence\n1\ta\n1.0\tb\n+1\tc\n-1\td\n")
    examples = read_labelled(path)
    assert examples.label_names == ["-1", "1"] and examples.labels == [1, 1, 1, 0]  # none dropped
    assert "not the ids 0..1: read as names in numeric order (-1 -> 0, 1 -> 1)" in caplog.text
