"""`zskd label`: a corpus labelled by the teacher into the label cache `zskd distill` reuses, one shard per process.

    zskd label --teacher runs/teachers/sst2 --inputs corpus.txt --cache-dir runs/cache/labels
    zskd label ... --shard 0/4                          # by hand: this process labels every 4th input from the 1st
    torchrun --nproc-per-node 4 -m zskd.cli label ...   # or accelerate launch --num_processes 4 -m zskd.cli label ...
    srun --ntasks 8 --gpus-per-task 1 python -m zskd.cli label ...     # SLURM: rank and size from SLURM_PROCID/NTASKS

Input i goes to shard i mod N. Each process reads the corpus as a stream, labels its shard's inputs
`chunk_size` at a time (each chunk one cache file, written under a temporary name and renamed), skips inputs
already cached, and leaves a marker when its shard is complete, so that a rerun of a finished shard reads nothing.
The cache is the same whatever the number of processes: keyed by a hash of each input, for one teacher.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from zskd.config import config_dict, option, write_json
from zskd.data import DataError, iter_unlabelled
from zskd.labelling import LabelCache, label_with_teacher
from zskd.teacher import Teacher, check_runtime


@dataclass
class LabelConfig:
    teacher: str = option("", "teacher model directory or hub id")
    inputs: str = option("", "files to label, comma-separated (.txt one text a line; tsv/csv/jsonl/parquet columns)")
    text_col: str = option("text", "text column of tabular --inputs")
    text_col2: str | None = option(None, "second text column, for sentence pairs")
    cache_dir: str = option("runs/cache/labels", "the label cache to fill (the one `zskd distill` reads)")
    shard: str | None = option(None, "I/N: label the I-th of N shards (default: the launcher's rank and world size, "
                                     "else all of it)")
    chunk_size: int = option(4096, "inputs labelled between writes to the cache")
    max_length: int = option(128, "tokens per input")
    teacher_bf16: bool | None = option(None, "label under bfloat16 autocast (default: on a CPU with AMX, or an "
                                             "AMD with AVX512-BF16)")
    teacher_runtime: str = option("torch", "torch, onnx (ONNX Runtime, exported once into <cache-dir>/onnx) or "
                                           "onnx-int8")
    trust_remote_code: bool = option(False, "allow custom teacher code (off: safer)")


def shard_of(config: LabelConfig) -> tuple[int, int]:
    """(index, count) of this process's shard: `--shard`, else torchrun's / accelerate's RANK and WORLD_SIZE, else
    SLURM's SLURM_PROCID and SLURM_NTASKS, else (0, 1)."""
    if config.shard:
        index, _, count = config.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise DataError(f"--shard {config.shard}: give I/N with 0 <= I < N, e.g. 0/4")
        return int(index), int(count)
    for rank, size in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
        if rank in os.environ and size in os.environ:
            return int(os.environ[rank]), int(os.environ[size])
    return 0, 1


def corpus_digest(config: LabelConfig) -> str:
    """What decides the inputs: the files (path, size, modification time) and the columns read."""
    parts = [config.text_col, str(config.text_col2)]
    for path in config.inputs.split(","):
        stat = os.stat(path)
        parts += [os.path.abspath(path), str(stat.st_size), str(stat.st_mtime_ns)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def label_corpus(config: LabelConfig) -> dict:
    """Label this process's shard of `config.inputs` into the cache; return what it did."""
    if not config.teacher or not config.inputs:
        raise DataError("give --teacher DIR and --inputs FILE[,FILE]")
    if config.chunk_size < 1:
        raise DataError(f"--chunk-size {config.chunk_size} must be at least 1")
    check_runtime(config.teacher_runtime)
    files = [p for p in config.inputs.split(",") if p]
    for path in files:
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such file")
        if config.text_col2 and path.lower().endswith(".txt"):
            raise DataError(f"{path}: a .txt file holds one text a line, not pairs; give a tsv/csv/jsonl/parquet file")
    index, count = shard_of(config)
    local_rank = int(os.environ.get("LOCAL_RANK", index))
    device = f"cuda:{local_rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    teacher = Teacher.from_pretrained(config.teacher, trust_remote_code=config.trust_remote_code,
                                      max_length=config.max_length, bf16=config.teacher_bf16,
                                      device=device).with_runtime(config.teacher_runtime, config.cache_dir)
    cache = LabelCache(config.cache_dir, teacher.fingerprint())
    marker = cache.directory / f"labelled-{corpus_digest(config)}-{index}-of-{count}.json"
    if marker.is_file():
        return {**json.loads(marker.read_text()), "skipped": True}
    started, seen, labelled, chunk = time.time(), 0, 0, []
    progress = tqdm(desc=f"labelling shard {index + 1}/{count}", unit="input")

    def flush() -> None:
        nonlocal labelled
        labelled += label_with_teacher(teacher, chunk, cache, progress=False)[1]
        progress.update(len(chunk))
        chunk.clear()

    position = 0
    for path in files:
        for item in iter_unlabelled(path, config.text_col, config.text_col2):
            if position % count == index:
                chunk.append(item)
                seen += 1
                if len(chunk) == config.chunk_size:
                    flush()
            position += 1
    if chunk:
        flush()
    progress.close()
    report = {"shard": f"{index}/{count}", "inputs": seen, "labelled": labelled, "cached": seen - labelled,
              "seconds": round(time.time() - started, 1), "device": device, "config": config_dict(config)}
    write_json(marker, report)
    return {**report, "skipped": False}
