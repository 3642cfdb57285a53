"""Reading text classification data: labelled examples (single sentences or pairs) and unlabelled text.

Formats: .tsv, .csv, .jsonl, .parquet (and .txt for unlabelled text, one example a line). Bad rows (missing text,
unknown label, undecodable bytes) are skipped, reported with file and line, and counted; a file where most rows
are bad is refused, since it is almost certainly read with the wrong columns or format.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from zskd.word_cache import word_cache

log = logging.getLogger(__name__)

LABELLED_FORMATS = (".tsv", ".csv", ".jsonl", ".parquet")
UNLABELLED_FORMATS = (".txt", ".jsonl", ".parquet", ".tsv", ".csv")
MAX_BAD_FRACTION = 0.5
SHOWN_BAD_ROWS = 5

csv.field_size_limit(sys.maxsize)


class DataError(ValueError):
    """Input data that cannot be used; the message names the file and the fix."""


def check_share(flag: str, value: float) -> None:
    """Refuse an option that is a share of something unless it is in (0, 1]: `flag` as the user types it."""
    if not 0.0 < value <= 1.0:
        raise DataError(f"{flag} {value} is not a fraction: give a number in (0, 1]")


TextInput = str | tuple[str, str]
TOKENIZE_CHUNK = 4096  # inputs `tokenize` hands the fast tokenizer at once


def tokenize(tokenizer, inputs: Sequence[TextInput], max_length: int) -> dict[str, list[list[int]]]:
    """Token ids (and segment ids, where the model takes them) for texts or (first, second) pairs, truncated to
    `max_length` (pairs: longest segment first), not padded. The one tokenisation teacher and student share.
    Fast tokenizers are called through their Rust backend, as transformers does, without the per-call wrapper
    (most of the time of tokenising one sentence); one sentence alone comes from `WordCache` where it can."""
    pairs = bool(inputs) and isinstance(inputs[0], (tuple, list))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        if pairs:
            return tokenizer([a for a, _ in inputs], [b for _, b in inputs], truncation="longest_first",
                             max_length=max_length)
        return tokenizer(list(inputs), truncation=True, max_length=max_length)
    truncation = {"max_length": max_length, "stride": 0, "strategy": "longest_first",
                  "direction": getattr(tokenizer, "truncation_side", "right")}
    if backend.truncation != truncation or backend.padding is not None:  # set once, as transformers does per call
        backend.enable_truncation(**truncation)
        backend.no_padding()
    if len(inputs) == 1 and not pairs:  # one sentence (the latency path): from cached words where that is exact
        ids = word_cache(tokenizer).ids(inputs[0], max_length)
        if ids is not None:
            out = {"input_ids": [ids]}
            if "token_type_ids" in tokenizer.model_input_names:
                out["token_type_ids"] = [[0] * len(ids)]
            return out
    out = {"input_ids": []}
    if "token_type_ids" in tokenizer.model_input_names:
        out["token_type_ids"] = []
    if pairs:  # for the students, whatever the teacher takes: RoBERTa-style tokenizers give no segment ids
        out["segments"] = []
    # A chunk at a time: an Encoding holds its tokens' strings, offsets and masks besides the ids, and the memory of
    # 250,000 of them at once is not given back (1.9 GB of peak for a transfer set of pairs, 0.6 GB in chunks).
    for start in range(0, len(inputs), TOKENIZE_CHUNK):
        chunk = inputs[start : start + TOKENIZE_CHUNK]
        encodings = backend.encode_batch([tuple(x) for x in chunk] if pairs else list(chunk))
        out["input_ids"].extend(e.ids for e in encodings)
        if "token_type_ids" in out:
            out["token_type_ids"].extend(e.type_ids for e in encodings)
        if pairs:
            out["segments"].extend(second_segment_flags(e.sequence_ids) for e in encodings)
    return out


def second_segment_flags(sequence_ids: Sequence[int | None]) -> list[int]:
    """Per token of a pair, 1 from the second sentence's first token on (its special tokens included), else 0:
    BERT's token_type_ids, for every tokenizer."""
    flags, second = [], 0
    for sequence in sequence_ids:
        second = second or int(sequence == 1)
        flags.append(second)
    return flags


def segment_ids(encoded: dict[str, list[list[int]]]) -> list[list[int]]:
    """The students' segment ids of `tokenize`'s output: the second sentence's flags for pairs, else zeros."""
    return encoded.get("segments") or encoded.get("token_type_ids") or [[0] * len(x) for x in encoded["input_ids"]]


@dataclass
class Examples:
    """Texts (and second segments for pair tasks) with integer labels indexing `label_names` (None: unlabelled)."""

    texts: list[str]
    texts2: list[str] | None = None
    labels: list[int] | None = None
    label_names: list[str] | None = None
    source: str = ""
    bad_rows: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pair(self) -> bool:
        return self.texts2 is not None

    def inputs(self) -> list[TextInput]:
        """What a classifier reads: plain strings, or (first, second) tuples for sentence pairs."""
        if self.texts2 is None:
            return list(self.texts)
        return list(zip(self.texts, self.texts2))

    def subset(self, indices: Sequence[int]) -> "Examples":
        pick = lambda xs: None if xs is None else [xs[i] for i in indices]  # noqa: E731
        return Examples(pick(self.texts), pick(self.texts2), pick(self.labels), self.label_names, self.source)


@dataclass
class _BadRows:
    """Collects skipped rows of one file and refuses the file when most of it is bad."""

    path: Path
    reasons: list[str] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.reasons.append(f"{self.path}:{line}: {reason}")

    def check(self, total: int) -> None:
        if not self.reasons:
            return
        for reason in self.reasons[:SHOWN_BAD_ROWS]:
            log.warning("skipped %s", reason)
        log.warning("%s: skipped %d of %d rows", self.path, len(self.reasons), total)
        if total == 0 or len(self.reasons) / total > MAX_BAD_FRACTION:
            raise DataError(
                f"{self.path}: {len(self.reasons)} of {total} rows are bad "
                f"(first: {self.reasons[0].split(': ', 1)[1]});"
                " check the file format and the --text-col/--label-col names"
            )


def _undecodable(value: str) -> bool:
    # Files are opened with errors="surrogateescape": bytes that are not UTF-8 become lone surrogates.
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _read_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row dict) from a tsv/csv/jsonl/parquet file."""
    suffix = path.suffix.lower()
    if suffix != ".parquet":
        _refuse_binary(path)
    if suffix in (".tsv", ".csv"):
        # TSV: one row a line, always; a field wholly in quotes with its inner quotes doubled (as pandas writes
        # one) is unquoted, any other quote is text (a field that began with one used to swallow the rows up to
        # the next). CSV: RFC 4180 quoting, a quoted field may hold commas and line breaks, but not whole rows
        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {"delimiter": ","}
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            reader = csv.DictReader(handle, **dialect)
            if suffix == ".tsv" and reader.fieldnames:
                reader.fieldnames = [_unquoted(name) for name in reader.fieldnames]
            start = 2
            for row in reader:
                if suffix == ".tsv":
                    row = {key: _unquoted(value) if isinstance(value, str) else value for key, value in row.items()}
                if suffix == ".csv" and reader.line_num > start and _swallowed_rows(row, len(reader.fieldnames)):
                    raise DataError(f"{path}:{start}: a quote opened here is closed only at line {reader.line_num}, "
                                    "taking the rows between into one field; close it, or double the quotes inside")
                yield start, row
                start = reader.line_num + 1
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    yield number, {"__error__": f"invalid JSON ({error.msg})"}
                    continue
                yield number, row if isinstance(row, dict) else {"__error__": "not a JSON object"}
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(error).split())[:120]})") from None
        for number, row in enumerate(rows, start=1):
            yield number, row
    else:
        raise DataError(f"{path}: unknown format {suffix!r}; use one of {', '.join(LABELLED_FORMATS)}")


def _unquoted(field: str) -> str:
    """A TSV field without its enclosing quotes, when it is wholly quoted with its inner quotes doubled."""
    inner = field[1:-1]
    if len(field) >= 2 and field[0] == field[-1] == '"' and '"' not in inner.replace('""', ""):
        return inner.replace('""', '"')
    return field


def _swallowed_rows(row: dict, columns: int) -> bool:
    """Whether a CSV row's field spans lines that look like rows of their own (as many commas as a row has)."""
    return any(isinstance(v, str) and any(line.count(",") >= columns - 1 for line in v.split("\n")[1:])
               for v in row.values())


def _refuse_binary(path: Path) -> None:
    """A text format given a binary file (NUL bytes at its start) is refused before it is parsed."""
    with open(path, "rb") as handle:
        if b"\x00" in handle.read(8192):
            raise DataError(f"{path}: binary data where text was expected; give a UTF-8 text file "
                            "(.txt/.tsv/.csv/.jsonl) or a .parquet file")


def _columns(path: Path) -> list[str]:
    for _, row in _read_rows(path):
        return [c for c in row if isinstance(c, str) and c != "__error__"]  # not csv's None key of extra fields
    return []


def _check_columns(path: Path, wanted: list[str]) -> None:
    present = _columns(path)
    missing = [c for c in wanted if c not in present]
    if present and missing:
        raise DataError(f"{path}: no column {missing[0]!r} (columns: {', '.join(present)}); "
                        "pass the right --text-col/--label-col")


def _text(row: dict, column: str) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def read_labelled(
    path: str | Path,
    text_col: str = "sentence",
    label_col: str = "label",
    text_col2: str | None = None,
    label_names: Sequence[str] | None = None,
) -> Examples:
    """Read labelled examples. Labels may be integer ids or label names. With `label_names` given, anything else
    is a bad row; without, the names are inferred (ids 0..max, or the sorted distinct names)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    _check_columns(path, [text_col, label_col] + ([text_col2] if text_col2 else []))
    bad = _BadRows(path)
    raw: list[tuple[str, str | None, str, int]] = []
    total = 0
    for line, row in _read_rows(path):
        total += 1
        if "__error__" in row:
            bad.add(line, row["__error__"])
            continue
        text, text2, label = _text(row, text_col), _text(row, text_col2) if text_col2 else None, _text(row, label_col)
        values = [v for v in (text, text2, label) if v is not None]
        if text is None or (text_col2 and text2 is None):
            bad.add(line, "missing text")
        elif label is None:
            bad.add(line, "missing label")
        elif any(_undecodable(v) for v in values):
            bad.add(line, "undecodable bytes (not UTF-8)")
        else:
            raw.append((text, text2, label, line))
    raw = [(text, text2, normalised_label(label), line) for text, text2, label, line in raw]
    names = list(label_names) if label_names else _infer_label_names(path, [(r[2], r[3]) for r in raw])
    by_name = {name: i for i, name in enumerate(names)}
    texts, texts2, labels = [], [], []
    for text, text2, label, line in raw:
        label_id = _label_id(label, names, by_name)
        if label_id is None:
            bad.add(line, f"unknown label {label!r} (labels: {', '.join(names)})")
            continue
        texts.append(text)
        texts2.append(text2)
        labels.append(label_id)
    bad.check(total)
    if not texts:
        raise DataError(f"{path}: no examples in it (an empty file, or a header alone); give a file with rows")
    return Examples(texts, texts2 if text_col2 else None, labels, names, str(path), len(bad.reasons))


def normalised_label(value: str) -> str:
    """One spelling per label value: a whole number however written ("1", "1.0", "+1", "01" -> "1"), booleans in
    lower case ("True" -> "true"), names as they are."""
    try:
        number = float(value)
    except ValueError:
        return value.lower() if value.lower() in ("true", "false") else value
    return str(int(number)) if number.is_integer() else value


def _is_id(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _infer_label_names(path: Path, values: list[tuple[str, int]]) -> list[str]:
    """Class names from the (normalised label, line) of every row: ids 0..K-1 as they are; other whole numbers
    (negative, or with gaps) as names in numeric order, said in a warning; names sorted. Numbers mixed with names
    are refused, with a line of each."""
    distinct = sorted({v for v, _ in values})
    ids = [v for v in distinct if _is_id(v)]
    if ids and len(ids) < len(distinct):
        number = next(f"{v!r} at line {line}" for v, line in values if _is_id(v))
        name = next(f"{v!r} at line {line}" for v, line in values if not _is_id(v))
        raise DataError(f"{path}: labels mix numbers and names ({number}, {name}): give every label one way")
    if not ids:
        return distinct
    ordered = sorted(ids, key=int)
    if [int(v) for v in ordered] != list(range(len(ordered))):
        log.warning("%s: labels %s are not the ids 0..%d: read as names in numeric order (%s)", path,
                    ", ".join(ordered), len(ordered) - 1, ", ".join(f"{v} -> {i}" for i, v in enumerate(ordered)))
    return ordered


def _label_id(value: str, names: list[str], by_name: dict[str, int]) -> int | None:
    if value in by_name:
        return by_name[value]
    if value.isdigit() and int(value) < len(names):
        return int(value)
    return None


def read_unlabelled(path: str | Path, text_col: str = "text") -> list[str]:
    """Read unlabelled text: .txt has one example a line; tabular formats read `text_col`."""
    return list(iter_unlabelled(path, text_col))


def iter_unlabelled(path: str | Path, text_col: str = "text", text_col2: str | None = None) -> Iterator[TextInput]:
    """Unlabelled inputs of a file one at a time, read as a stream (Parquet excepted): .txt has one text a line;
    tabular formats give `text_col` (with `text_col2`, (first, second) pairs). Bad rows are skipped with a warning,
    and the file refused at its end when most of it was bad."""
    return (item for _, item in iter_numbered(path, text_col, text_col2))


def iter_numbered(path: str | Path, text_col: str = "text", text_col2: str | None = None, id_col: str | None = None,
                  ) -> Iterator[tuple[object, TextInput]]:
    """`iter_unlabelled`, each input with its line number in the file, or its `id_col` value where it has one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    bad = _BadRows(path)
    total = 0
    if path.suffix.lower() == ".txt":
        _refuse_binary(path)
        if text_col2:
            raise DataError(f"{path}: a .txt file holds one text a line, not pairs; give a tsv/csv/jsonl/parquet file")
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.strip()
                if not line:
                    continue
                total += 1
                if _undecodable(line):
                    bad.add(number, "undecodable bytes (not UTF-8)")
                else:
                    yield number, line
    else:
        _check_columns(path, [text_col] + ([text_col2] if text_col2 else []))
        for number, row in _read_rows(path):
            total += 1
            texts = [_text(row, c) if "__error__" not in row else None for c in [text_col, text_col2] if c]
            if any(t is None for t in texts):
                bad.add(number, row.get("__error__", "missing text"))
            elif any(_undecodable(t) for t in texts):
                bad.add(number, "undecodable bytes (not UTF-8)")
            else:
                identifier = row.get(id_col) if id_col else None
                yield (number if identifier in (None, "") else identifier), \
                    ((texts[0], texts[1]) if text_col2 else texts[0])
    bad.check(total)
