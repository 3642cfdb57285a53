"""Generation-Distillation table (issue 5): zero-shot `generate` against `ood`, and the low-data setting.

    python benchmarks/generate_table.py --tasks sst2,trec                        # both parts, seed 0
    python benchmarks/generate_table.py --part low-data --shots 16,100 --seeds 0,1,2
    python benchmarks/generate_table.py --part low-data --tasks sst2 --shots 100 --seeds 0,1,2 --count 1000 \
        --rows a,c+ood,c+ood-noshots,d                                          # issue 24's table

Zero-shot: `zskd generate --task T` writes `--count` texts with the packaged SmolLM2, the benchmark teacher labels
them, and a BiLSTM is distilled from them (with and without augmented variants) and, with the same student and
budget, from `ood`.
Low-data, k labelled examples per class drawn from the training set:
  (a) the student trained on the k examples alone (cross-entropy; no teacher signal in the loss),
  (b) the teacher (MiniLM-L6) fine-tuned on the k examples, as in the paper,
  (c) the student distilled from (b) on text the LM wrote after fine-tuning on the k examples, plus
      cross-entropy on them; and the same with out-of-domain sentences filling the rest of the transfer budget
      (`--ood`), labelled by (b) like the generated texts; and with only the out-of-domain sentences that read
      most like the generated texts (`--ood-nearest`, Moore-Lewis selection); the k texts and their variants lead
      each transfer set (`few_shot_transfer`), and one row leaves them out, as before;
  (d) the ceiling of any transfer set for this student: distilled from (b) on the task's real unlabelled training
      text, plus cross-entropy on the k examples (what a perfect generator could at best give).
Every student trains at `zskd distill`'s default budget (10,000 steps, at most 250,000 inputs; until session 34 the
tables used 4,000 and 40,000). Every student's vocabulary also holds the tokens of the out-of-domain corpora
(`--vocab-from`), so a small generated or k-shot set does not leave most task words [UNK] (BENCHMARKS.md measured +4.4
points on SST-2).
Scores: SST-2 on dev + test, TREC on test. Finished runs with the same configuration are reused.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from common import default_corpora, eval_examples, eval_splits, reuse_or_run, run_generate, save_results
from zskd.distill import DistillConfig, distill
from zskd.evaluate import evaluate
from zskd.methods.generate import GenerateConfig
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.tasks import get_task, load_split
from zskd.teacher import Teacher
from zskd.train_teacher import TeacherTrainConfig, train_teacher


def eval_split(task: str) -> str:
    """`DistillConfig.eval_split`: the splits of `common.eval_splits`, always spelled out (trec: "test"), as the
    finished runs here were made with."""
    return "+".join(eval_splits(task))


def run_distill(config: DistillConfig) -> dict:
    """The report of the distillation `config` describes: its finished run, or a new one."""
    return reuse_or_run(Path(config.out), config, lambda: distill(config))


def k_shot_file(task_name: str, k: int, seed: int, directory: Path, data_root: str | None) -> Path:
    """k training examples per class, drawn with `seed`, as a TSV with the task's column names."""
    task = get_task(task_name)
    path = directory / f"{task_name}-k{k}-s{seed}.tsv"
    if path.is_file():
        return path
    train = load_split(task, "train", data_root)
    rng = np.random.default_rng([seed, k])
    labels = np.array(train.labels)
    chosen = sorted(i for c in range(len(task.label_names)) for i in rng.permutation(np.flatnonzero(labels == c))[:k])
    directory.mkdir(parents=True, exist_ok=True)
    rows = [f"label\t{task.text_col}"] + [f"{task.label_names[train.labels[i]]}\t{train.texts[i]}" for i in chosen]
    path.write_text("\n".join(rows) + "\n")
    return path


def zero_shot_rows(task: str, seed: int, args) -> list[list]:
    teacher = str(Path(args.teachers_dir) / task)
    generated = Path(args.runs_dir) / f"{task}-zeroshot-s{seed}.parquet"
    gen_config = GenerateConfig(teacher=teacher, out=str(generated), task=task, generator=args.generator,
                                count=args.count, seed=seed, cache_dir=args.cache_dir)
    gen_report = run_generate(gen_config)
    rows = []
    # generate (with the default 2 augmented variants per text), generate on the LM's texts alone, and ood
    variants = (("generate", "generate", 2), ("generate, no augmentation", "generate", 0), ("ood", "ood", 2))
    for name, method, augment in variants:
        out = Path(args.runs_dir) / f"{task}-{method}{'' if augment else '-augment0'}-s{seed}"
        config = DistillConfig(teacher=teacher, out=str(out), method=method, eval_task=task,
                               eval_split=eval_split(task), generated=str(generated) if method == "generate" else None,
                               steps=args.steps, augment=augment, transfer_size=args.transfer_size, seed=seed,
                               cache_dir=args.cache_dir, data_root=args.data_root, vocab_from=args.ood_corpora)
        report = run_distill(config)
        e = report["eval"]
        rows.append([task, "zero-shot", name, seed, report["transfer_size"], e["teacher"]["task_metric"],
                     e["student"]["task_metric"], e["percent_of_teacher"], e["agreement"], f"{report['compression']}x"])
    rows[1][4] = f"{rows[1][4]} ({gen_report['kept']} kept from {gen_report['prompts']} prompts)"
    return rows


def low_data_rows(task: str, k: int, seed: int, args) -> list[list]:
    spec = get_task(task)
    shots = k_shot_file(task, k, seed, Path(args.runs_dir) / "shots", args.data_root)
    eval_data = list(eval_examples(task, args.data_root).values())
    # (b) the teacher fine-tuned on the k examples
    k_teacher = Path(args.runs_dir) / f"{task}-k{k}-s{seed}-teacher"
    teacher_config = TeacherTrainConfig(out=str(k_teacher), train=str(shots), text_col=spec.text_col, label_col="label",
                                        labels=",".join(spec.label_names), epochs=args.teacher_epochs, batch_size=8,
                                        lr=5e-5, seed=seed, base=args.teacher_base)
    reuse_or_run(k_teacher, teacher_config, lambda: train_teacher(teacher_config))
    teacher = Teacher.from_pretrained(k_teacher, bf16=False)
    scored = [evaluate(teacher, ex, spec.metric) for ex in eval_data]
    teacher_score = float(np.average([s["task_metric"] for s in scored], weights=[s["n"] for s in scored]))
    rows = [[task, f"k={k}", "(b) teacher fine-tuned on k", seed, len(shots.read_text().splitlines()) - 1,
             teacher_score, teacher_score, 100.0, 100.0, "1x"]]
    shared = dict(teacher=str(k_teacher), eval_task=task, eval_split=eval_split(task), few_shot=str(shots),
                  few_shot_text_col=spec.text_col, steps=args.steps, seed=seed, cache_dir=args.cache_dir,
                  data_root=args.data_root, vocab_from=args.ood_corpora)
    # (a) the student on the k examples alone: cross-entropy only (the teacher only labels the held-out slice)
    alone = DistillConfig(out=str(Path(args.runs_dir) / f"{task}-k{k}-s{seed}-alone"), method="indomain",
                          indomain_data=str(shots), eval_text_col=spec.text_col, kl_weight=0.0, mse_weight=0.0,
                          heldout=max(2, k // 4), **shared)
    # (c) generation-distillation from the k-shot teacher
    generated = Path(args.runs_dir) / f"{task}-k{k}-s{seed}.parquet"
    run_generate(GenerateConfig(teacher=str(k_teacher), out=str(generated), task=task, generator=args.generator,
                                count=args.count, seed=seed, few_shot=str(shots), few_shot_text_col=spec.text_col,
                                lm_epochs=args.lm_epochs, lm_heldout=args.lm_heldout, lm_keywords=args.lm_keywords,
                                data_root=args.data_root, cache_dir=args.cache_dir))
    distilled = DistillConfig(out=str(Path(args.runs_dir) / f"{task}-k{k}-s{seed}-generate"), method="generate",
                              generated=str(generated), transfer_size=args.transfer_size,
                              augment_kinds=args.augment_kinds, own_text_fraction=args.own_text_fraction, **shared)
    # (c) + ood: the same, with out-of-domain sentences filling the transfer budget the generated texts leave
    with_ood = dataclasses.replace(distilled, out=str(Path(args.runs_dir) / f"{task}-k{k}-s{seed}-generate-ood"),
                                   ood=args.ood_corpora)
    nearest = dataclasses.replace(with_ood, out=str(Path(args.runs_dir) / f"{task}-k{k}-s{seed}-generate-nearest"),
                                  ood_nearest=args.ood_nearest)
    # (c) + ood with each two inputs of a batch mixed in embedding space and labelled by the teacher online
    mixup = dataclasses.replace(with_ood, out=str(Path(args.runs_dir) / f"{task}-k{k}-s{seed}-generate-ood-mixup"),
                                mixup_weight=1.0)
    # (c) + ood as before the k texts joined the transfer set (`--no-few-shot-transfer`)
    without_shots = dataclasses.replace(with_ood, few_shot_transfer=False, out=str(
        Path(args.runs_dir) / f"{task}-k{k}-s{seed}-generate-ood-noshots"))
    # (d) the in-domain ceiling: the task's own unlabelled training text, labelled by (b)
    ceiling = DistillConfig(out=str(Path(args.runs_dir) / f"{task}-k{k}-s{seed}-indomain"), method="indomain",
                            transfer_size=args.transfer_size, **shared)
    students = {"a": ("(a) student on k alone", alone), "c": ("(c) generation-distilled", distilled),
                "c+ood": ("(c) + ood sentences", with_ood), "c+ood-mixup": ("(c) + ood, mixup", mixup),
                "c+ood-noshots": ("(c) + ood, the k texts not in the transfer set", without_shots),
                "c+nearest": (f"(c) + nearest {args.ood_nearest:.0%} of ood", nearest),
                "d": ("(d) ceiling: in-domain text", ceiling)}
    for name, config in (students[key] for key in args.rows.split(",")):
        report = run_distill(config)
        e = report["eval"]
        rows.append([task, f"k={k}", name, seed, report["transfer_size"], teacher_score, e["student"]["task_metric"],
                     round(100 * e["student"]["task_metric"] / teacher_score, 2), e["agreement"],
                     f"{report['compression']}x"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="sst2,trec")
    parser.add_argument("--part", choices=["all", "zero-shot", "low-data"], default="all")
    parser.add_argument("--shots", default="16,100", help="k: labelled examples per class (low-data)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--generator", default="smollm2-135m")
    parser.add_argument("--count", type=int, default=4000, help="prompts sampled per generated set")
    parser.add_argument("--lm-epochs", type=int, default=GenerateConfig.lm_epochs,
                        help="low-data: the generator's most fine-tuning epochs (default: generate's)")
    parser.add_argument("--lm-heldout", type=float, default=GenerateConfig.lm_heldout,
                        help="low-data: share of the k examples held out to stop the generator's fine-tuning "
                             "(default: generate's; 0: all --lm-epochs on every example)")
    parser.add_argument("--lm-keywords", action=argparse.BooleanOptionalAction, default=GenerateConfig.lm_keywords,
                        help="low-data: the generator's prompts name a word of each example, then of corpus "
                             "sentences (default: generate's)")
    parser.add_argument("--augment-kinds", default=DistillConfig.augment_kinds,
                        help="low-data: the variants of the (c) rows' texts (default: distill's)")
    parser.add_argument("--own-text-fraction", type=float, default=DistillConfig.own_text_fraction,
                        help="low-data: the (c) rows' share of each batch drawn from the k and generated texts "
                             "(default: distill's)")
    parser.add_argument("--steps", type=int, default=DistillConfig.steps, help="every student's (default: distill's)")
    parser.add_argument("--transfer-size", type=int, default=DistillConfig.transfer_size,
                        help="every student's at most (default: distill's)")
    parser.add_argument("--ood-nearest", type=float, default=0.35,
                        help="low-data: fraction of ood sentences nearest the generated texts")
    parser.add_argument("--teacher-epochs", type=float, default=10.0, help="epochs of the k-shot teacher")
    parser.add_argument("--teacher-base", default=TeacherTrainConfig.base,
                        help="encoder the k-shot teacher starts from")
    parser.add_argument("--rows", default="a,c,c+ood,c+ood-noshots,c+nearest,d",
                        help="low-data students, comma-separated: a, c, c+ood, c+ood-mixup, c+ood-noshots, "
                             "c+nearest, d")
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default="runs/bench/generate")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/generate_table.json")
    args = parser.parse_args()
    args.ood_corpora = default_corpora(args.data_root)

    rows = []
    for task in args.tasks.split(","):
        for seed in map(int, args.seeds.split(",")):
            if args.part in ("all", "zero-shot"):
                rows += zero_shot_rows(task, seed, args)
            if args.part in ("all", "low-data"):
                for k in map(int, args.shots.split(",")):
                    rows += low_data_rows(task, k, seed, args)
    headers = ["task", "setting", "method", "seed", "transfer set", "teacher", "student", "% of teacher", "agreement",
               "compression"]
    table = markdown_table(headers, rows)
    machine = machine_description()
    print(table)
    print(f"\nmetric: accuracy; SST-2 on dev+test, TREC on test; {machine}")
    save_results(args.json, "generate_table", machine, args=vars(args), rows=rows, table=table)


if __name__ == "__main__":
    main()
