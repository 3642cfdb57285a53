"""Training step time of the BiLSTM student: a padded batch read by the unpadded LSTM kernel (each row's words
reversed in place for the backward direction; zskd since session 39) against packed sequences (before), in one run.

    python benchmarks/training_step.py                    # the default student over the packaged corpora's words
    python benchmarks/training_step.py --steps 200 --repeats 5 --batch-size 64

Batches are drawn as `zskd distill` draws them (`length_grouped_batches` over out-of-domain sentences tokenised by
the packaged MiniLM tokenizer), and each step is the loop's work on one: forward, KL plus logit MSE against fixed
targets, backward, gradient clipping, AdamW. The reported time is the median over `--repeats` of the mean step time
of `--steps` steps, after warm-up steps; both paths see the same batches and start from the same weights.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common import default_corpora, save_results
from zskd.batching import length_grouped_batches
from zskd.losses import kl_per_example, logit_mse_per_example
from zskd.methods.ood import read_sentences
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import create_student, parse_student_options
from zskd.students.base import build_vocabulary
from zskd.students.bilstm import BiLSTMStudent
from zskd.teacher import Teacher


class PackedSequencesBiLSTM(BiLSTMStudent):
    """The BiLSTM student as it read a padded batch before session 39: through packed sequences."""

    def _lstm_padded(self, embeds: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(embeds, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=embeds.shape[1])[0]


def time_steps(student, batches: list[dict], targets: torch.Tensor, warmup: int, steps: int) -> float:
    """Mean seconds of a training step over `steps` batches, after `warmup` steps."""
    optimizer = torch.optim.AdamW(student.parameters(), lr=4e-3, weight_decay=0.01)
    student.train()
    for number in range(warmup + steps):
        if number == warmup:
            started = time.perf_counter()
        batch = batches[number % len(batches)]
        logits = student(**batch)
        loss = kl_per_example(logits, targets[: len(logits)], 2.0).mean() + logit_mse_per_example(
            logits, targets[: len(logits)]).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", default="minilm-l6", help="whose tokenizer and embeddings the student starts from")
    parser.add_argument("--sentences", type=int, default=20000, help="corpus sentences the batches are drawn from")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/training_step.json")
    args = parser.parse_args()
    torch.manual_seed(0)

    teacher = Teacher.from_pretrained(args.teacher)
    corpus = read_sentences([Path(f) for f in default_corpora(args.data_root).split(",")], 4, 40)
    # the vocabulary of every corpus token, as `zskd distill` keeps it; the batches from a sample of the sentences
    kept = build_vocabulary(teacher.tokenizer, {t: 1 for ids in teacher.encode(corpus)["input_ids"] for t in ids},
                            max_vocab=None)
    sentences = [corpus[i] for i in np.random.default_rng(0).permutation(len(corpus))[: args.sentences]]
    encoded = teacher.encode(sentences)
    student = create_student("bilstm", teacher, kept, parse_student_options("bilstm", None))
    ids = student.from_teacher_ids(encoded["input_ids"])
    segments = encoded["token_type_ids"]
    order = length_grouped_batches([len(x) for x in ids], args.batch_size, seed=0, epoch=0)
    batches = [student.collate([ids[i] for i in rows], [segments[i] for i in rows])
               for rows in order[: args.warmup + args.steps]]
    padded = float(np.mean([1 - b["attention_mask"].float().mean().item() for b in batches]))
    targets = torch.randn(args.batch_size, len(student.label_names)) * 3
    start = {k: v.clone() for k, v in student.state_dict().items()}

    packed = PackedSequencesBiLSTM(student.config, student.tokenizer, student.kept_token_ids, student.label_names)
    students = {"packed sequences (before)": packed, "unpadded kernel, rows reversed (now)": student}
    timings: dict[str, list[float]] = {name: [] for name in students}
    for _ in range(args.repeats):
        for name, model in students.items():
            model.load_state_dict(start)
            timings[name].append(time_steps(model, batches, targets, args.warmup, args.steps))

    before = statistics.median(timings["packed sequences (before)"])
    rows = [[name, round(1000 * statistics.median(t), 2), round(before / statistics.median(t), 2)]
            for name, t in timings.items()]
    table = markdown_table(["BiLSTM training step", "ms a step (median)", "speed-up"], rows)
    machine = machine_description()
    print(table)
    print(f"\n{student.num_parameters():,} parameters, batch {args.batch_size}, {padded:.1%} of a batch's positions "
          f"padding, median of {args.repeats} x {args.steps} steps; {machine}")
    save_results(args.json, "training_step", machine, args=vars(args), rows=rows, table=table,
                 parameters=student.num_parameters(), padding=padded)


if __name__ == "__main__":
    main()
