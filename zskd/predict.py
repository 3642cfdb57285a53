"""`zskd predict`: a student's labels for your own text, as JSON lines.

    zskd predict --model runs/sst2-ood reviews.txt                    # one text a line
    zskd predict --model runs/sst2-ood reviews.tsv --text-col review --out labels.jsonl
    cat reviews.txt | zskd predict --model runs/sst2-ood --onnx      # standard input; the exported graph

Each output line: {"id", "label", "score", "probabilities"}, where id is the input's "id" column when it has one,
else its line number. Inputs are read as a stream and predicted `batch_size` at a time, so memory stays bounded
on any file; a bad line (no text, undecodable bytes) is reported with its file and line and skipped. With `--out`,
the file appears complete, in one rename, or not at all.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

from tqdm.auto import tqdm

from zskd.config import option
from zskd.data import DataError, TextInput, iter_numbered


@dataclass
class PredictConfig:
    model: str = option("", "the student directory (`zskd distill --out`)")
    inputs: str | None = option(None, "file to label (.txt one text a line; tsv/csv/jsonl/parquet columns); "
                                      "default: standard input, one text a line")
    text_col: str = option("text", "text column of tabular input")
    text_col2: str | None = option(None, "second text column, for sentence pairs")
    id_col: str = option("id", "column whose value identifies a row in the output (default: its line number)")
    out: str | None = option(None, "JSONL file to write (default: standard output)")
    onnx: bool = option(False, "run the exported graph (model.onnx) with ONNX Runtime")
    int8: bool = option(False, "with --onnx: run model-int8.onnx (`zskd export --quantize int8`)")
    batch_size: int = option(64, "inputs predicted together")


def numbered_stdin(stream: TextIO) -> Iterator[tuple[int, TextInput]]:
    """(line number, text) of each non-empty line of `stream`."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line.strip()


def predict_to(config: PredictConfig, sink: TextIO) -> int:
    """Writes one JSON line per input to `sink`; returns how many."""
    from zskd.export import OnnxStudent
    from zskd.students import load_student

    if config.batch_size < 1:
        raise DataError(f"--batch-size {config.batch_size} must be at least 1")
    if config.int8 and not config.onnx:
        raise DataError("--int8 runs the quantised ONNX graph: add --onnx")
    model = OnnxStudent(config.model, int8=config.int8) if config.onnx else load_student(config.model)
    rows = iter_numbered(config.inputs, config.text_col, config.text_col2, config.id_col) if config.inputs \
        else numbered_stdin(sys.stdin)
    written, batch = 0, []
    progress = tqdm(desc="predict", unit="input", disable=not sys.stderr.isatty())

    def flush() -> None:
        nonlocal written
        for (identifier, _), prediction in zip(batch, model.predict([item for _, item in batch], config.batch_size)):
            sink.write(json.dumps({"id": identifier, **prediction}) + "\n")
        written += len(batch)
        progress.update(len(batch))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) == config.batch_size:
            flush()
    if batch:
        flush()
    progress.close()
    return written


def predict_command(config: PredictConfig) -> int:
    """`zskd predict`: to `--out` (a temporary name, renamed when complete) or standard output."""
    if not config.model:
        raise DataError("give --model DIR, the student to predict with")
    if not config.out:
        return predict_to(config, sys.stdout)
    out = Path(config.out)
    partial = out.with_name(out.name + ".partial")
    try:
        with open(partial, "w") as sink:
            written = predict_to(config, sink)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return written
