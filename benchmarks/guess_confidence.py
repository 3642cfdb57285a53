"""How confident a teacher gets in the target class of `embedding-guess`'s pseudo-inputs, by guessing steps, step
size: the probe behind the method's defaults.

    python benchmarks/guess_confidence.py                                  # the SST-2 teacher in runs/teachers/sst2
    python benchmarks/guess_confidence.py --teacher runs/teachers/trec --length 12

For each setting, the same starting batch (seed 0) of `--count` pseudo-inputs with balanced targets: the teacher's
mean and lowest probability of the target class, the mean softmax weight of the words read among their candidates,
the batch's mean cosine similarity, the seconds it took, and the words of the first two pseudo-inputs.
"""

from __future__ import annotations

import argparse
import time

import torch

from common import save_results
from zskd.methods.embedding_guess import EmbeddingGuesser, EmbeddingGuessOptions, mean_similarity
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.teacher import Teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", default="runs/teachers/sst2")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--steps", default="0,3,5,10")
    parser.add_argument("--lrs", default="0.3,1.0")
    parser.add_argument("--json", default="runs/bench/guess_confidence.json")
    args = parser.parse_args()

    teacher = Teacher.from_pretrained(args.teacher, bf16=False)
    targets = torch.arange(args.count) % teacher.num_labels
    rows, results = [], []
    vocabulary = list(range(len(teacher.tokenizer)))
    lrs = [float(x) for x in args.lrs.split(",")]
    settings = [(steps, lr) for steps in map(int, args.steps.split(",")) for lr in lrs[: 1 if steps == 0 else None]]
    for steps, lr in settings:
        guesser = EmbeddingGuesser(EmbeddingGuessOptions(guess_steps=steps, lr=lr), teacher, vocabulary, pairs=False)
        torch.manual_seed(0)
        start = time.perf_counter()
        pseudo = guesser.guess(targets, args.length)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            logits = guesser.teacher_logits(pseudo)
        target = torch.softmax(logits, -1)[torch.arange(args.count), targets]
        decoded = guesser.decode(pseudo, logits, vocabulary, limit=2)
        result = {"steps": steps, "lr": lr, "mean_target_probability": round(float(target.mean()), 4),
                  "lowest_target_probability": round(float(target.min()), 4),
                  "top_weight": round(sum(d["top_weight"] for d in decoded) / len(decoded), 4),
                  "similarity": round(float(mean_similarity(pseudo.embeddings(guesser.table).mean(1))), 4),
                  "seconds": round(seconds, 2), "decoded": [d["text"] for d in decoded]}
        results.append(result)
        rows.append([steps, lr, result["mean_target_probability"], result["lowest_target_probability"],
                     result["top_weight"], result["similarity"], result["seconds"],
                     " / ".join(t[:60] for t in result["decoded"])])
    table = markdown_table(["steps", "lr", "mean target p", "lowest target p", "top weight", "similarity", "seconds",
                            "words (first two)"], rows)
    machine = machine_description()
    print(table)
    print(f"\n{machine}")
    save_results(args.json, "guess_confidence", machine, args=vars(args), results=results, table=table)


if __name__ == "__main__":
    main()
