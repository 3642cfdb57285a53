"""The packaged SmolLM2 as a zero-shot SST-2 teacher (issue 20): its own accuracy, the BiLSTM student distilled from
its answers alone, and batch-1 latency of the student against the LM, measured in one run.

    python benchmarks/lm_teacher.py                                    # seed 0, 16,000 inputs, 4,000 steps
    python benchmarks/lm_teacher.py --transfer-size 64000 --no-balance --steps 10000 --seed 1
    python benchmarks/lm_teacher.py --generated runs/gen/sst2-lm.parquet --transfer-size 110000 --no-balance

The last reads reviews the LM wrote and labelled itself (`zskd generate --teacher-lm smollm2-135m --teacher-labels
negative,positive --task sst2`), out-of-domain sentences filling the rest of the budget (method `generate`).

The teacher is `zskd distill --teacher-lm smollm2-135m --teacher-labels negative,positive` with the default prompt
and verbalisers (the label names): no training and no task data. The student is the default recipe's (`ood`,
`bilstm` on the packaged MiniLM-L6's tokenizer and embeddings) at a smaller budget, since the LM labels a few
texts a second on a CPU. Both are scored on SST-2 dev + test. Latency: one SST-2 dev sentence per call, the LM
through the teacher distillation asks (`BlackBoxTeacher`, prompt and all), the student in PyTorch and as the int8
graph of `zskd export --quantize int8`; the median of `--repeats` medians.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import batch1_ms, default_corpora, eval_split_option, reuse_or_run, save_results
from zskd.distill import DistillConfig, distill
from zskd.export import ONNX_INT8_FILE, OnnxStudent, export_int8
from zskd.report import markdown_table
from zskd.runinfo import machine_description
from zskd.students import load_student
from zskd.tasks import load_split
from zskd.teacher_options import TeacherOptions, load_teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lm", default="smollm2-135m", help="the causal LM (packaged name, directory or hub id)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--transfer-size", type=int, default=16000)
    parser.add_argument("--no-balance", dest="balance", action="store_false",
                        help="keep every labelled input (the LM's classes unbalanced) rather than half the pool")
    parser.add_argument("--generated", help="method generate: this file of `zskd generate`, out-of-domain sentences "
                                            "filling the rest of --transfer-size (default: method ood alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="latency medians; their median is reported")
    parser.add_argument("--teacher-calls", type=int, default=50, help="batch-1 calls of the LM in each median")
    parser.add_argument("--runs-dir", default="runs/bench/lm-teacher")
    parser.add_argument("--out", help="the run directory (default: under --runs-dir, named by LM and seed)")
    parser.add_argument("--data-root")
    parser.add_argument("--json", default="runs/bench/lm_teacher.json")
    args = parser.parse_args()

    options = TeacherOptions(teacher_lm=args.lm, teacher_labels="negative,positive")
    out = Path(args.out or Path(args.runs_dir) / f"sst2-{Path(args.lm).name}-s{args.seed}")
    method = {}
    if args.generated:
        method = {"method": "generate", "generated": args.generated, "ood": default_corpora(args.data_root)}
    config = DistillConfig(out=str(out), teacher_lm=options.teacher_lm, teacher_labels=options.teacher_labels,
                           **method, eval_task="sst2", eval_split=eval_split_option("sst2"), steps=args.steps,
                           transfer_size=args.transfer_size, balance=args.balance, seed=args.seed,
                           data_root=args.data_root)
    report = reuse_or_run(out, config, lambda: distill(config))
    e = report["eval"]
    quality = markdown_table(
        ["teacher", "teacher accuracy", "student", "% of teacher", "agreement", "inputs labelled", "labelling s"],
        [[f"{args.lm} (prompted, zero-shot)", e["teacher"]["task_metric"], e["student"]["task_metric"],
          e["percent_of_teacher"], e["agreement"], report["teacher_inputs_labelled"], report["transfer_seconds"]]])

    inputs = load_split("sst2", "dev", args.data_root).texts
    teacher = load_teacher(options, pairs=False)
    measured = {f"{args.lm} teacher": batch1_ms(teacher, inputs, args.repeats, calls=args.teacher_calls, warmup=3)}
    if not (out / ONNX_INT8_FILE).is_file():
        export_int8(str(out))
    student = load_student(str(out))
    measured[f"student ({student.num_parameters():,} parameters), PyTorch"] = batch1_ms(student, inputs, args.repeats)
    measured["student, ONNX Runtime int8"] = batch1_ms(OnnxStudent(str(out), int8=True), inputs, args.repeats)
    teacher_ms = measured[f"{args.lm} teacher"]["median_ms"]
    latency = markdown_table(["model", "batch 1 ms", "teacher / model"],
                             [[name, m["median_ms"], round(teacher_ms / m["median_ms"], 1)]
                              for name, m in measured.items()])
    machine = machine_description()
    print(quality, latency, f"SST-2 dev + test; one dev sentence per call; {machine}", sep="\n\n")
    save_results(args.json, "lm_teacher", machine, args=vars(args), report=report, latency=measured,
                 table=quality + "\n\n" + latency)


if __name__ == "__main__":
    main()
