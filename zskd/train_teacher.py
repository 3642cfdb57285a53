"""Fine-tune a teacher: what the teacher's owner did before zskd. The benchmarks need teachers to distil from.

    zskd teacher-train --task sst2 --out runs/teachers/sst2                 # a named task, packaged MiniLM-L6
    zskd teacher-train --train my.tsv --text-col text --label-col label --out my-teacher

    accelerate launch -m zskd.cli teacher-train ...                          # several processes or GPUs

Length-grouped batches with dynamic padding, linear warm-up and decay, on Accelerate (device placement, several
processes); checkpoints every `checkpoint_every` steps in `<out>.partial/`, from which an interrupted run resumes;
the finished model appears at `<out>` in one rename.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from zskd.batching import length_grouped_batches, pad
from zskd.checkpoint import load_checkpoint, save_checkpoint
from zskd.config import check_numbers, config_dict, option, write_json
from zskd.data import DataError, Examples, read_labelled
from zskd.evaluate import evaluate
from zskd.resources import loading
from zskd.rundir import RunDirectory
from zskd.runinfo import machine_description, peak_memory_mib, versions
from zskd.schedule import linear_warmup_decay
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher, bf16_supported, resolve_model_path

log = logging.getLogger(__name__)


@dataclass
class TeacherTrainConfig:
    out: str = option("", "output model directory")
    task: str | None = option(None, "named task: sst2, trec, mrpc, rte")
    train: str | None = option(None, "training file (tsv/csv/jsonl/parquet) instead of --task")
    text_col: str = option("sentence", "text column of --train")
    text_col2: str | None = option(None, "second text column of --train, for sentence pairs")
    label_col: str = option("label", "label column of --train")
    labels: str | None = option(None, "comma-separated label names, in id order")
    dev: str | None = option(None, "file to evaluate on at the end (a named task uses its eval split)")
    data_root: str | None = option(None, "benchmark data root (default: $ZSKD_DATA or ../shared/data)")
    base: str = option("minilm-l6", "base encoder: packaged name, local directory or hub id")
    epochs: float = option(3.0, "passes over the training data")
    batch_size: int = option(32, "examples per step")
    lr: float = option(5e-5, "peak learning rate (AdamW)")
    weight_decay: float = option(0.01, "AdamW weight decay")
    warmup_ratio: float = option(0.06, "fraction of steps with linear warm-up")
    max_length: int = option(128, "tokens per example (pairs: both segments)")
    freeze_embeddings: bool = option(True, "keep the word-embedding matrix fixed (2x faster steps on CPU)")
    bf16: bool | None = option(None, "bfloat16 autocast (default: on where the CPU/GPU supports it; ~3x faster on some "
                                     "AVX512-BF16 CPUs)")
    max_train_examples: int | None = option(None, "use only the first N shuffled training examples")
    checkpoint_every: int = option(500, "steps between resumable checkpoints")
    seed: int = option(0, "seed for initialisation, batch order and dropout")
    restart: bool = option(False, "start again: delete the work an interrupted run left in <out>.partial (resuming "
                                  "it with other options is refused)")
    trust_remote_code: bool = option(False, "allow custom model code from the base (off: safer)")


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
    from accelerate import Accelerator
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not config.out:
        raise DataError("give --out DIR for the trained teacher")
    check_numbers(config, at_least={"batch_size": 1, "max_length": 4, "checkpoint_every": 1, "weight_decay": 0,
                                    "max_train_examples": 1}, positive=("epochs", "lr"), fractions=("warmup_ratio",))
    run = RunDirectory(config.out)
    started = time.time()
    accelerator = Accelerator()
    torch.manual_seed(config.seed)
    train, dev, metric = load_training_data(config)
    if config.max_train_examples and config.max_train_examples < len(train):
        keep = np.random.default_rng(config.seed).permutation(len(train))[: config.max_train_examples]
        train = train.subset(sorted(keep.tolist()))
    names = train.label_names
    base = resolve_model_path(config.base)
    with loading("the base encoder", config.base):
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=config.trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)}, use_safetensors=True,
            trust_remote_code=config.trust_remote_code,
        ).float()
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    encoded = Teacher(model, tokenizer, max_length=config.max_length, bf16=False).encode(train.inputs())
    ids, segments = encoded["input_ids"], encoded.get("token_type_ids")
    labels = torch.tensor(train.labels)
    lengths = [len(x) for x in ids]
    steps_per_epoch = math.ceil(len(ids) / config.batch_size)
    total_steps = max(1, int(config.epochs * steps_per_epoch))

    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    work = run.begin(config_dict(config), config.restart)
    step = load_checkpoint(work, model, optimizer)["step"]
    device = accelerator.device
    use_bf16 = _bf16_default(device) if config.bf16 is None else config.bf16
    if use_bf16 and device.type == "cpu" and not bf16_supported():
        log.warning("bf16 on a CPU without native bfloat16 is emulated, several times slower than float32: drop "
                    "--bf16 (the default picks float32 here)")
    unwrapped = model
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    progress = tqdm(total=total_steps, initial=step, desc="teacher-train", unit="step",
                    disable=not accelerator.is_main_process)
    epoch_batches, epoch = None, -1
    train_started = time.time()
    while step < total_steps:
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            batches = length_grouped_batches(lengths, config.batch_size, config.seed, epoch)
            epoch_batches = batches[accelerator.process_index :: accelerator.num_processes] or batches
        batch = epoch_batches[(step % steps_per_epoch) % len(epoch_batches)]
        for group in optimizer.param_groups:
            group["lr"] = linear_warmup_decay(config.lr, step, total_steps, config.warmup_ratio)
        inputs = {"input_ids": pad([ids[i] for i in batch], tokenizer.pad_token_id or 0),
                  "attention_mask": pad([[1] * lengths[i] for i in batch]), "labels": labels[batch]}
        if segments:
            inputs["token_type_ids"] = pad([segments[i] for i in batch])
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**{k: v.to(device) for k, v in inputs.items()}).loss
        if not math.isfinite(loss.item()):
            raise DataError(f"step {step + 1}: the loss is {loss.item()}; the teacher was not saved. Check the "
                            "labels and the options (a large --lr)")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch)
        if accelerator.is_main_process and (step % config.checkpoint_every == 0 or step == total_steps):
            save_checkpoint(work, step, unwrapped, optimizer)
            if stop_after_steps is not None and step >= stop_after_steps:
                progress.close()
                return {}
    progress.close()
    train_seconds = time.time() - train_started
    if not accelerator.is_main_process:
        return {}

    model = unwrapped.eval()
    teacher = Teacher(model, tokenizer, max_length=config.max_length, bf16=False)  # the final eval in float32
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
    run.finish(final)
    return report


def _bf16_default(device: torch.device) -> bool:
    """bfloat16 autocast where the device has it natively (a CUDA GPU that supports it, or a CPU with bf16
    instructions; on some of those CPUs float32 is faster: BENCHMARKS.md)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bf16_supported()

