"""Fine-tune a teacher: what the teacher's owner did before zskd. The benchmarks need teachers to distil from.

    zskd teacher-train --task sst2 --out runs/teachers/sst2                 # a named task, packaged MiniLM-L6
    zskd teacher-train --train my.tsv --text-col text --label-col label --out my-teacher

Length-grouped batches with dynamic padding, linear warm-up and decay, checkpoints every `checkpoint_every` steps
in `<out>.partial/`, from which an interrupted run resumes; the finished model appears at `<out>` in one rename.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from zskd.batching import length_grouped_batches, pad
from zskd.checkpoint import load_checkpoint, save_checkpoint
from zskd.config import config_dict, write_json
from zskd.data import DataError, Examples, read_labelled
from zskd.evaluate import evaluate
from zskd.schedule import linear_warmup_decay
from zskd.runinfo import machine_description, peak_memory_mib, versions
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher, bf16_supported, resolve_model_path

log = logging.getLogger(__name__)


@dataclass
class TeacherTrainConfig:
    out: str = field(default="", metadata={"help": "output model directory"})
    task: str | None = field(default=None, metadata={"help": "named task: sst2, trec, mrpc, rte"})
    train: str | None = field(default=None, metadata={"help": "training file (tsv/csv/jsonl/parquet) instead of --task"})
    text_col: str = field(default="sentence", metadata={"help": "text column of --train"})
    text_col2: str | None = field(default=None, metadata={"help": "second text column of --train, for sentence pairs"})
    label_col: str = field(default="label", metadata={"help": "label column of --train"})
    labels: str | None = field(default=None, metadata={"help": "comma-separated label names, in id order"})
    dev: str | None = field(default=None, metadata={"help": "file to evaluate on at the end (a named task uses its eval split)"})
    data_root: str | None = field(default=None, metadata={"help": "benchmark data root (default: $ZSKD_DATA or ../shared/data)"})
    base: str = field(default="minilm-l6", metadata={"help": "base encoder: packaged name, local directory or hub id"})
    epochs: float = field(default=3.0, metadata={"help": "passes over the training data"})
    batch_size: int = field(default=32, metadata={"help": "examples per step"})
    lr: float = field(default=5e-5, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.06, metadata={"help": "fraction of steps with linear warm-up"})
    max_length: int = field(default=128, metadata={"help": "tokens per example (pairs: both segments)"})
    freeze_embeddings: bool = field(default=True, metadata={"help": "keep the word-embedding matrix fixed (2x faster steps on CPU)"})
    bf16: bool | None = field(default=None, metadata={"help": "bfloat16 autocast (default: on where the CPU/GPU supports it; ~3x faster on AVX512-BF16 CPUs)"})
    max_train_examples: int | None = field(default=None, metadata={"help": "use only the first N shuffled training examples"})
    checkpoint_every: int = field(default=500, metadata={"help": "steps between resumable checkpoints"})
    seed: int = field(default=0, metadata={"help": "seed for initialisation, batch order and dropout"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom model code from the base (off: safer)"})


def load_training_data(config: TeacherTrainConfig) -> tuple[Examples, Examples | None, str]:
    """(train examples, evaluation examples or None, task metric) for a named task or user files."""
    if config.task:
        task = get_task(config.task)
        train = load_split(task, "train", config.data_root)
        dev = load_split(task, task.eval_split, config.data_root)
        return train, dev, task.metric
    if not config.train:
        raise DataError("give --task NAME or --train FILE")
    names = config.labels.split(",") if config.labels else None
    train = read_labelled(config.train, config.text_col, config.label_col, config.text_col2, names)
    dev = None
    if config.dev:
        dev = read_labelled(config.dev, config.text_col, config.label_col, config.text_col2, train.label_names)
    return train, dev, "accuracy"


def train_teacher(config: TeacherTrainConfig, stop_after_steps: int | None = None) -> dict:
    """Fine-tune `config.base` on the training data and save it at `config.out`; return the run report.
    `stop_after_steps` ends early after a checkpoint (to test resuming) and returns an empty report."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not config.out:
        raise DataError("give --out DIR for the trained teacher")
    out, work = Path(config.out), Path(config.out + ".partial")
    if out.exists():
        raise FileExistsError(f"{out} already exists: remove it or choose another --out")
    started = time.time()
    torch.manual_seed(config.seed)
    train, dev, metric = load_training_data(config)
    if config.max_train_examples and config.max_train_examples < len(train):
        keep = np.random.default_rng(config.seed).permutation(len(train))[: config.max_train_examples]
        train = train.subset(sorted(keep.tolist()))
    names = train.label_names
    base = resolve_model_path(config.base)
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=config.trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
        use_safetensors=True, trust_remote_code=config.trust_remote_code,
    ).float()
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    teacher = Teacher(model, tokenizer, max_length=config.max_length, bf16=False)  # the final eval in float32
    encoded = teacher.encode(train.inputs())
    ids, segments = encoded["input_ids"], encoded.get("token_type_ids")
    labels = torch.tensor(train.labels)
    lengths = [len(x) for x in ids]
    steps_per_epoch = math.ceil(len(ids) / config.batch_size)
    total_steps = max(1, int(config.epochs * steps_per_epoch))

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=config.lr
    )
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "config.json", config_dict(config))
    step = load_checkpoint(work, model, optimizer)["step"]
    use_bf16 = bf16_supported() if config.bf16 is None else config.bf16
    model.train()
    progress = tqdm(total=total_steps, initial=step, desc="teacher-train", unit="step")
    epoch_batches, epoch = None, -1
    train_started = time.time()
    while step < total_steps:
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            epoch_batches = length_grouped_batches(lengths, config.batch_size, config.seed, epoch)
        batch = epoch_batches[step % steps_per_epoch]
        for group in optimizer.param_groups:
            group["lr"] = linear_warmup_decay(config.lr, step, total_steps, config.warmup_ratio)
        extra = {"token_type_ids": pad([segments[i] for i in batch])} if segments else {}
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(
                input_ids=pad([ids[i] for i in batch], tokenizer.pad_token_id or 0),
                attention_mask=pad([[1] * lengths[i] for i in batch]),
                labels=labels[batch],
                **extra,
            ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch)
        if step % config.checkpoint_every == 0 or step == total_steps:
            save_checkpoint(work, step, model, optimizer)
            if stop_after_steps is not None and step >= stop_after_steps:
                progress.close()
                return {}
    progress.close()
    train_seconds = time.time() - train_started

    model.eval()
    report = {
        "config": config_dict(config),
        "base": base,
        "train_examples": len(train),
        "train_bad_rows": train.bad_rows,
        "steps": total_steps,
        "bf16": use_bf16,
        "train_seconds_this_session": round(train_seconds, 1),
        "parameters": teacher.num_parameters(),
        "versions": versions(),
        "machine": machine_description(),
    }
    if dev is not None:
        report["eval"] = {"source": dev.source, **evaluate(teacher, dev, metric)}
    final = work / "model"
    model.save_pretrained(final, safe_serialization=True)
    tokenizer.save_pretrained(final)
    report["total_seconds"] = round(time.time() - started, 1)
    report["peak_memory_mib"] = peak_memory_mib()
    write_json(final / "run.json", report)
    final.rename(out)
    shutil.rmtree(work)
    return report

