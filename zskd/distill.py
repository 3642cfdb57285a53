"""The one distillation loop: a teacher and a transfer set go in, a small student comes out.

    zskd distill --teacher runs/teachers/sst2 --method ood --student bilstm --eval-task sst2 --out runs/sst2-ood
    accelerate launch -m zskd.cli distill ...        # the same on several processes or GPUs, unchanged

Steps: build the transfer set (`zskd.methods.SOURCES[method]`), label it with the teacher (cached), keep a
held-out slice, prune the vocabulary to the tokens the set uses, initialise the student from the teacher, then
train on the teacher's soft labels with AdamW, warm-up and linear decay. Every `eval_every` steps the student's
agreement with the teacher on the held-out slice picks the best checkpoint (never the task's labels: this is
zero-shot), and the task metric on labelled data is logged for reporting. Checkpoints every `checkpoint_every`
steps in `<out>.partial/`; the same command resumes there. The finished student appears at `<out>` in one rename.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from zskd import losses
from zskd.batching import length_grouped_batches, pad
from zskd.checkpoint import load_checkpoint, save_checkpoint
from zskd.config import config_dict, load_config, write_json
from zskd.data import DataError, Examples, read_labelled
from zskd.evaluate import agreement, classification_metrics, percent_of_teacher
from zskd.labelling import label_with_teacher
from zskd.report import model_card
from zskd.runinfo import machine_description, peak_memory_mib, versions
from zskd.schedule import linear_warmup_decay
from zskd.students import STUDENTS, create_student, load_student, parse_student_options
from zskd.students.base import build_vocabulary
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher
from zskd.methods import SOURCES
from zskd.methods.adversarial import PAIR_SEGMENTS, Adversary
from zskd.methods.ood import read_sentences

log = logging.getLogger(__name__)
DEFAULT_LR = {"bilstm": 4e-3, "cnn": 2e-3, "transformer": 1e-4}


@dataclass
class DistillConfig:
    teacher: str = field(default="", metadata={"help": "teacher model directory or hub id"})
    out: str = field(default="", metadata={"help": "output student directory"})
    method: str = field(default="ood", metadata={"help": f"transfer set: {', '.join(SOURCES)}"})
    student: str = field(default="bilstm", metadata={"help": f"student: {', '.join(STUDENTS)}"})
    student_options: str | None = field(default=None, metadata={"help": "student config, e.g. hidden_size=256,embedding_dim=96"})
    ood: str | None = field(default=None, metadata={"help": "out-of-domain corpus files, comma-separated (method ood, adversarial: default the data root's; method generate: added to the generated texts)"})
    generated: str | None = field(default=None, metadata={"help": "method generate: the file `zskd generate` wrote"})
    few_shot: str | None = field(default=None, metadata={"help": "low-data: a labelled file of a few examples; adds cross-entropy on them"})
    few_shot_text_col: str = field(default="sentence", metadata={"help": "text column of --few-shot"})
    few_shot_label_col: str = field(default="label", metadata={"help": "label column of --few-shot"})
    few_shot_weight: float = field(default=1.0, metadata={"help": "weight of the cross-entropy on the --few-shot examples"})
    indomain_data: str | None = field(default=None, metadata={"help": "method indomain: a file of the task's unlabelled text"})
    eval_task: str | None = field(default=None, metadata={"help": "named task to report the task metric on (never used for selection)"})
    eval_split: str | None = field(default=None, metadata={"help": "split(s) of --eval-task, e.g. dev or dev+test"})
    eval_data: str | None = field(default=None, metadata={"help": "labelled file to report the task metric on"})
    eval_text_col: str = field(default="sentence", metadata={"help": "text column of --eval-data / --indomain-data"})
    eval_text_col2: str | None = field(default=None, metadata={"help": "second text column, for sentence pairs"})
    eval_label_col: str = field(default="label", metadata={"help": "label column of --eval-data"})
    pairs: bool | None = field(default=None, metadata={"help": "the teacher reads sentence pairs (default: from the eval task)"})
    data_root: str | None = field(default=None, metadata={"help": "benchmark data root (default: $ZSKD_DATA or ../shared/data)"})
    cache_dir: str = field(default="runs/cache/labels", metadata={"help": "teacher label cache, shared across runs"})
    transfer_size: int = field(default=250000, metadata={"help": "inputs in the transfer set"})
    ood_nearest: float = field(default=1.0, metadata={"help": "method generate with --ood: the fraction of the out-of-domain sentences kept, those that read most like the generated texts (Moore-Lewis); 1 keeps all"})
    pool_factor: int = field(default=2, metadata={"help": "ood: candidates labelled per kept input, for class balancing"})
    augment: int = field(default=4, metadata={"help": "ood, generate: extra variants per sentence (spans, perturbed copies)"})
    balance: bool = field(default=True, metadata={"help": "ood: balance the teacher's predicted classes"})
    min_words: int = field(default=4, metadata={"help": "shortest input, in words (pairs: per sentence)"})
    max_words: int = field(default=40, metadata={"help": "longest input, in words (pairs: per sentence)"})
    max_vocab: int = field(default=0, metadata={"help": "student vocabulary: the most frequent transfer-set tokens (0: all of them)"})
    vocab_from: str | None = field(default=None, metadata={"help": "text files, comma-separated, whose tokens also join the student vocabulary (initialised from the teacher): fewer [UNK] after a small transfer set"})
    steps: int = field(default=10000, metadata={"help": "student optimisation steps"})
    batch_size: int = field(default=64, metadata={"help": "inputs per step"})
    lr: float | None = field(default=None, metadata={"help": "peak learning rate (default: 4e-3 bilstm, 2e-3 cnn, 1e-4 transformer)"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "fraction of steps with linear warm-up"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature of the KL term"})
    kl_weight: float = field(default=1.0, metadata={"help": "weight of KL(teacher || student)"})
    mse_weight: float = field(default=1.0, metadata={"help": "weight of the logit MSE (added to the KL term)"})
    hidden_weight: float = field(default=0.0, metadata={"help": "transformer student: weight of hidden-state MSE"})
    adversarial_mask_rate: float = field(default=0.3, metadata={"help": "adversarial: fraction of tokens the generator replaces"})
    adversarial_tau: float = field(default=1.0, metadata={"help": "adversarial: Gumbel-softmax temperature"})
    adversarial_lr: float = field(default=1e-3, metadata={"help": "adversarial: generator learning rate"})
    generator_steps: int = field(default=1, metadata={"help": "adversarial: generator steps (k) each time it trains"})
    adversarial_every: int = field(default=2, metadata={"help": "adversarial: student steps (n) between generator updates and perturbed batches"})
    adversarial_batch_size: int = field(default=16, metadata={"help": "adversarial: inputs of each batch the generator perturbs (the teacher's backward pass dominates the cost)"})
    adversarial_diversity: float = field(default=0.2, metadata={"help": "adversarial: weight of the entropy of the generator's mean proposal (keeps it from collapsing onto one token)"})
    adversarial_weight: float = field(default=1.0, metadata={"help": "adversarial: weight of the perturbed batch's KL against the clean one's"})
    adversarial_segments: str = field(default="any", metadata={"help": "adversarial, pairs: segment(s) to perturb: any, both, first, second"})
    heldout: int = field(default=4000, metadata={"help": "transfer-set inputs held out to measure agreement"})
    eval_every: int = field(default=500, metadata={"help": "steps between evaluations"})
    checkpoint_every: int = field(default=500, metadata={"help": "steps between resumable checkpoints"})
    max_length: int = field(default=128, metadata={"help": "tokens per input"})
    teacher_bf16: bool | None = field(default=None, metadata={"help": "label under bfloat16 autocast (default: where it measures clearly faster than float32 on this CPU)"})
    seed: int = field(default=0, metadata={"help": "seed for everything: transfer set, initialisation, batches"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow custom teacher code (off: safer)"})


def load_eval_data(config: DistillConfig) -> tuple[Examples | None, str]:
    """The labelled data the task metric is reported on, and the metric's name."""
    if config.eval_task:
        task = get_task(config.eval_task)
        splits = (config.eval_split or task.eval_split).split("+")
        parts = [load_split(task, s, config.data_root) for s in splits]
        merged = Examples(sum((p.texts for p in parts), []), sum((p.texts2 for p in parts), []) if task.is_pair else None,
                          sum((p.labels for p in parts), []), parts[0].label_names, "+".join(p.source for p in parts))
        return merged, task.metric
    if config.eval_data:
        return read_labelled(config.eval_data, config.eval_text_col, config.eval_label_col, config.eval_text_col2), "accuracy"
    return None, "accuracy"


def distill(config: DistillConfig | None = None, stop_after_steps: int | None = None, **options):
    """Distil `config.teacher` into a new student saved at `config.out`; return (student, report).
    Options may be given as keywords instead of a config: `distill(teacher=..., method="ood", out=...)`.
    `stop_after_steps` ends early after a checkpoint (to test resuming) and returns (None, {})."""
    from accelerate import Accelerator

    config = config or load_config(DistillConfig, overrides=options)
    if not config.teacher or not config.out:
        raise DataError("give --teacher DIR and --out DIR")
    if config.method not in SOURCES:
        raise DataError(f"unknown method {config.method!r}: choose one of {', '.join(SOURCES)}")
    if config.student not in STUDENTS:
        raise DataError(f"unknown student {config.student!r}: choose one of {', '.join(STUDENTS)}")
    if config.adversarial_segments not in PAIR_SEGMENTS:
        raise DataError(f"unknown --adversarial-segments {config.adversarial_segments!r}: choose one of {', '.join(PAIR_SEGMENTS)}")
    if not 0.0 < config.ood_nearest <= 1.0:
        raise DataError(f"--ood-nearest {config.ood_nearest} is not a fraction: give a number in (0, 1]")
    if config.ood_nearest < 1.0 and not (config.method == "generate" and config.ood):
        raise DataError("--ood-nearest picks out-of-domain sentences near generated texts: use it with --method generate --ood FILE[,FILE]")
    out, work = Path(config.out), Path(config.out + ".partial")
    if out.exists():
        raise FileExistsError(f"{out} already exists: remove it or choose another --out")
    started = time.time()
    accelerator = Accelerator()
    torch.manual_seed(config.seed)
    teacher = Teacher.from_pretrained(config.teacher, trust_remote_code=config.trust_remote_code,
                                      max_length=config.max_length, bf16=config.teacher_bf16, device=accelerator.device)
    eval_examples, metric = load_eval_data(config)
    if config.pairs is None:
        config = dataclasses.replace(config, pairs=bool(eval_examples is not None and eval_examples.is_pair))

    # 1. The transfer set, labelled by the teacher (cached), and a held-out slice of it.
    transfer = SOURCES[config.method](config, teacher)
    if len(transfer.inputs) < 2:
        raise DataError(f"method {config.method} produced {len(transfer.inputs)} inputs; widen --min-words/--max-words or add corpora")
    teacher_logits, _ = label_with_teacher(teacher, transfer.inputs, config.cache_dir)
    transfer_seconds = time.time() - started
    order = np.random.default_rng([config.seed, 4]).permutation(len(transfer.inputs))
    heldout_size = min(config.heldout, len(order) // 5)
    heldout, train = order[:heldout_size], order[heldout_size:]
    heldout_inputs = [transfer.inputs[i] for i in heldout]
    heldout_teacher = teacher_logits[heldout].argmax(-1)

    # 2. The student: vocabulary pruned to the tokens the transfer set uses, initialised from the teacher.
    encoded = teacher.encode([transfer.inputs[i] for i in train])
    teacher_ids = encoded["input_ids"]
    segments = encoded.get("token_type_ids") or [[0] * len(x) for x in teacher_ids]
    token_counts = Counter(t for ids in teacher_ids for t in ids)
    # Low-data: the few labelled examples, trained on with cross-entropy beside the teacher's soft labels.
    shots = read_labelled(config.few_shot, config.few_shot_text_col, config.few_shot_label_col, None,
                          teacher.label_names) if config.few_shot else None
    if shots is not None:
        shot_encoded = teacher.encode(shots.texts)
        token_counts.update(t for ids in shot_encoded["input_ids"] for t in ids)
    if config.vocab_from:  # ranked after every token the transfer set uses (count 0)
        texts = read_sentences([Path(p) for p in config.vocab_from.split(",") if p], 1, 10_000)
        for ids in teacher.encode(texts)["input_ids"]:
            for t in ids:
                token_counts.setdefault(t, 0)
    kept = build_vocabulary(teacher.tokenizer, token_counts, config.max_vocab)
    student = create_student(config.student, teacher, kept, parse_student_options(config.student, config.student_options))
    student_ids = student.from_teacher_ids(teacher_ids)
    if shots is not None:
        shot_ids = student.from_teacher_ids(shot_encoded["input_ids"])
        shot_segments = shot_encoded.get("token_type_ids") or [[0] * len(x) for x in shot_ids]
        shot_labels = torch.tensor(shots.labels)
    targets = torch.from_numpy(teacher_logits[train])
    lengths = [len(x) for x in student_ids]
    use_hidden = config.hidden_weight > 0 and config.student == "transformer"

    lr = config.lr or DEFAULT_LR[config.student]
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=config.weight_decay)
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "config.json", config_dict(config))
    # The adversarial method's generator: it perturbs the student's batches online, with the teacher in the loop.
    adversary = Adversary(config, teacher, student, kept, token_counts) if config.method == "adversarial" else None
    state = load_checkpoint(work, student, optimizer)
    if adversary is not None and "adversary" in state["extra_state"]:
        adversary.load_state_dict(state["extra_state"]["adversary"])
    step, best = state["step"], state.get("best_agreement", -1.0)
    if step and state.get("kept_token_ids_hash") != _digest(kept):
        raise DataError(f"{work} was made from a different transfer set: delete it to start again")
    metrics_path, samples_path = work / "metrics.jsonl", work / "adversarial_samples.jsonl"
    _truncate_metrics(metrics_path, step)
    _truncate_metrics(samples_path, step)
    student, optimizer = accelerator.prepare(student, optimizer)
    model = accelerator.unwrap_model(student)
    device = accelerator.device
    if adversary is not None:
        adversary.to(device)

    # 3. Training.
    steps_per_epoch = max(1, math.ceil(len(train) / config.batch_size))
    epoch, epoch_batches = -1, []
    progress = tqdm(total=config.steps, initial=step, desc=f"distill {config.method} -> {config.student}", unit="step",
                    disable=not accelerator.is_main_process)
    train_started = time.time()
    student.train()
    while step < config.steps:
        if step // steps_per_epoch != epoch:
            epoch = step // steps_per_epoch
            batches = length_grouped_batches(lengths, config.batch_size, config.seed, epoch)
            epoch_batches = batches[accelerator.process_index :: accelerator.num_processes] or batches
        batch = epoch_batches[(step % steps_per_epoch) % len(epoch_batches)]
        inputs = {k: v.to(device) for k, v in model.collate([student_ids[i] for i in batch], [segments[i] for i in batch]).items()}
        for group in optimizer.param_groups:
            group["lr"] = linear_warmup_decay(lr, step, config.steps, config.warmup_ratio)
        outputs = student(**inputs, output_hidden_states=True) if use_hidden else student(**inputs)
        student_logits = outputs[0] if use_hidden else outputs
        target = targets[batch].to(device)
        loss = config.kl_weight * losses.kl_divergence(student_logits, target, config.temperature)
        if config.mse_weight:
            loss = loss + config.mse_weight * losses.logit_mse(student_logits, target)
        if use_hidden:
            loss = loss + config.hidden_weight * _hidden_loss(model, teacher, outputs[1], inputs, [teacher_ids[i] for i in batch])
        if shots is not None:
            pick = torch.randint(len(shot_ids), (min(config.batch_size, len(shot_ids)),)).tolist()
            shot_inputs = model.collate([shot_ids[i] for i in pick], [shot_segments[i] for i in pick])
            shot_logits = student(**{k: v.to(device) for k, v in shot_inputs.items()})
            loss = loss + config.few_shot_weight * losses.cross_entropy(shot_logits, shot_labels[pick].to(device))
        if adversary is not None and step % config.adversarial_every == 0:
            # k generator steps up the divergence, then the student learns the teacher's labels for a fresh sample
            seeds = {k: v[: config.adversarial_batch_size] for k, v in inputs.items()}
            divergence = [adversary.generator_step(seeds) for _ in range(config.generator_steps)][-1]
            perturbed = adversary.perturb(seeds)
            perturbed_logits = student(**{k: perturbed[k] for k in seeds})
            loss = loss + config.adversarial_weight * losses.kl_divergence(perturbed_logits, perturbed["teacher_logits"], config.temperature)
            if accelerator.is_main_process and (step + config.adversarial_every) // config.eval_every > step // config.eval_every:
                _append_samples(samples_path, step + 1, divergence, adversary.decode(perturbed, perturbed_logits))
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        if accelerator.is_main_process and (step % config.eval_every == 0 or step == config.steps):
            record = {"step": step, "loss": round(loss.item(), 5), "lr": linear_warmup_decay(lr, step, config.steps, config.warmup_ratio),
                      "heldout_agreement": agreement(model.logits(heldout_inputs).argmax(-1), heldout_teacher),
                      "seconds": round(time.time() - train_started, 1)}
            if eval_examples is not None:
                record["eval_" + metric] = classification_metrics(
                    eval_examples.labels, model.logits(eval_examples.inputs()).argmax(-1), teacher.num_labels, metric)["task_metric"]
            _append_metrics(metrics_path, record)
            if record["heldout_agreement"] > best:
                best = record["heldout_agreement"]
                model.save_pretrained(work / "best")
            student.train()
        if accelerator.is_main_process and (step % config.checkpoint_every == 0 or step == config.steps):
            save_checkpoint(work, step, model, optimizer, {"best_agreement": best, "kept_token_ids_hash": _digest(kept)},
                            {"adversary": adversary.state_dict()} if adversary is not None else None)
            if stop_after_steps is not None and step >= stop_after_steps:
                progress.close()
                return None, {}
    progress.close()
    train_seconds = time.time() - train_started
    if not accelerator.is_main_process:
        return None, {}

    # 4. The report, the best and last students, the model card; then one rename.
    final = work / "final"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(work / "best", final)
    model.save_pretrained(final / "last")
    best_student = load_student(final)
    report = {
        "method": config.method, "student": config.student, "transfer": transfer.description,
        "in_domain": transfer.in_domain, "transfer_info": transfer.info, "transfer_size": len(transfer.inputs),
        "vocabulary": len(kept), "few_shot_examples": len(shots) if shots is not None else 0,
        "teacher_bf16": teacher.bf16, "teacher_parameters": teacher.num_parameters(), "student_parameters": best_student.num_parameters(),
        "compression": round(teacher.num_parameters() / best_student.num_parameters(), 1),
        "heldout_agreement": best, "heldout_size": heldout_size, "steps": config.steps,
        "transfer_seconds": round(transfer_seconds, 1), "train_seconds_this_session": round(train_seconds, 1),
        "peak_memory_mib": peak_memory_mib(),
        "config": config_dict(config), "versions": versions(), "machine": machine_description(),
    }
    exact_teacher = Teacher(teacher.model, teacher.tokenizer, teacher.max_length, bf16=False)  # scored as `zskd eval` does
    if eval_examples is not None:
        report["eval"] = _final_eval(best_student, exact_teacher, eval_examples, metric, config.cache_dir)
    # 0 when everything came from the cache
    report["teacher_inputs_labelled"] = teacher.inputs_labelled + exact_teacher.inputs_labelled
    report["total_seconds"] = round(time.time() - started, 1)
    write_json(final / "run.json", report)
    shutil.copy(metrics_path, final / "metrics.jsonl")
    if samples_path.is_file():
        shutil.copy(samples_path, final / samples_path.name)
    _write_transfer_sample(final / "transfer_sample.tsv", transfer.inputs, teacher_logits, teacher.label_names)
    (final / "README.md").write_text(model_card(report))
    final.rename(out)
    shutil.rmtree(work)
    return best_student, report


def _hidden_loss(model, teacher: Teacher, student_hidden, inputs: dict, teacher_ids: list[list[int]]) -> torch.Tensor:
    """MSE between each student layer and the teacher layer it was initialised from (same width only)."""
    with torch.no_grad():
        teacher_out = teacher.model(input_ids=pad(teacher_ids, teacher.tokenizer.pad_token_id or 0).to(inputs["input_ids"].device),
                                    attention_mask=inputs["attention_mask"], token_type_ids=inputs["token_type_ids"],
                                    output_hidden_states=True)
    pairs = [(student_hidden[i + 1], teacher_out.hidden_states[t + 1]) for i, t in enumerate(model.config.teacher_layers)]
    return sum(losses.hidden_mse(s, t, inputs["attention_mask"]) for s, t in pairs) / max(1, len(pairs))


def _final_eval(student, teacher: Teacher, examples: Examples, metric: str, cache_dir: str) -> dict:
    """Student against teacher on labelled examples."""
    inputs = examples.inputs()
    student_pred = student.logits(inputs).argmax(-1)
    teacher_pred = label_with_teacher(teacher, inputs, cache_dir, progress=False)[0].argmax(-1)
    student_scores = classification_metrics(examples.labels, student_pred, teacher.num_labels, metric)
    teacher_scores = classification_metrics(examples.labels, teacher_pred, teacher.num_labels, metric)
    return {"data": examples.source, "n": len(inputs), "metric": metric, "student": student_scores, "teacher": teacher_scores,
            "percent_of_teacher": percent_of_teacher(student_scores["task_metric"], teacher_scores["task_metric"]),
            "agreement": agreement(student_pred, teacher_pred)}


def _digest(token_ids: list[int]) -> str:
    return hashlib.sha1(",".join(map(str, token_ids)).encode()).hexdigest()


def _append_metrics(path: Path, record: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
    log.info("step %d: %s", record["step"], record)


def _append_samples(path: Path, step: int, divergence: float, samples: list[dict]) -> None:
    """Decoded perturbed inputs, so a user can see what the generator found."""
    with open(path, "a") as handle:
        handle.writelines(json.dumps({"step": step, "divergence": round(divergence, 5), **sample}) + "\n" for sample in samples)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop JSONL lines past the checkpoint being resumed from (they will be logged again)."""
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def _write_transfer_sample(path: Path, inputs, logits: np.ndarray, label_names: list[str], count: int = 200) -> None:
    """The first `count` transfer inputs with the teacher's label and confidence, for a person to read."""
    probabilities = torch.softmax(torch.from_numpy(logits[:count]), -1).numpy()
    lines = ["teacher_label\tconfidence\ttext"]
    for item, p in zip(inputs[:count], probabilities):
        text = " [SEP] ".join(item) if isinstance(item, tuple) else item
        lines.append(f"{label_names[int(p.argmax())]}\t{p.max():.3f}\t{text}")
    path.write_text("\n".join(lines) + "\n")
