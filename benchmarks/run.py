"""The benchmark suite in one command: teachers, every method on every task, fidelity, size, speed and memory.

    python benchmarks/run.py --quick                         # SST-2: ood against random, one seed, small budget
    python benchmarks/run.py --full                          # four tasks x every method; SST-2 over 3 seeds
    python benchmarks/run.py --quick --task-dir my_task      # any task: my_task/train.tsv and my_task/test.tsv
    python benchmarks/run.py --quick --task-dir my_task --methods ood,generate --describe "support ticket"
    python benchmarks/run.py --tasks trec --methods ood,adversarial --seeds 0,1 --steps 4000

A task directory holds `train.tsv` (used only to train its teacher) and `test.tsv` (evaluation only), with a
`label` column and `text` (or `sentence1` and `sentence2` for pairs); zero-shot methods never read `train.tsv`.
`generate` samples `--generate-count` prompts from the packaged LM once per task (single-text tasks only; a task
directory needs `--describe`); its row is the generated texts alone, with the `--ood` corpora's words in the
student's vocabulary but none of their sentences in its transfer set.
Teachers, label caches and finished runs are reused, so a rerun does only what changed. Teacher training,
`generate` and every distillation run in their own process, so each `peak_memory_mib` is that stage's. Outputs in
`--out`: `results.json` (every number with its seed, command, versions, machine and date), `table.md`, and plots
(`percent_of_teacher.png`, `metric_vs_transfer_size.png`, `latency_and_size.png`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from common import SUMMARY_HEADERS, eval_inputs, eval_split_option, reuse_or_run, summary_row  # beside this script
from zskd.config import load_config, write_json
from zskd.data import read_labelled
from zskd.distill import DistillConfig
from zskd.evaluate import measure_latency
from zskd.export import ONNX_FILE, OnnxStudent, export_onnx
from zskd.methods.generate import GenerateConfig
from zskd.methods.ood import corpus_files
from zskd.report import markdown_table
from zskd.runinfo import machine_description, peak_memory_mib, versions
from zskd.students import default_student, load_student
from zskd.tasks import TASKS, get_task
from zskd.teacher import Teacher
from zskd.train_teacher import TeacherTrainConfig

STUDENT_ONNX = "student, ONNX Runtime"

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = {
    "quick": dict(tasks="sst2", methods="ood,random", seeds="0", steps=1500, transfer_size=12000, sizes="", repeats=1,
                  generate_count=500),
    "full": dict(tasks="sst2,trec,mrpc,rte", methods="indomain,ood,adversarial,embedding-guess,generate,random",
                 seeds="0,1,2", steps=4000, transfer_size=40000, sizes="10000,20000", repeats=3, generate_count=4000),
}
SEEDED_TASKS = {"sst2"}  # headline rows: every seed; the other tasks run the first seed only


@dataclass
class BenchTask:
    """What a distillation run needs to know about a task: its teacher and where it is scored."""

    name: str
    teacher: Path
    eval_options: dict  # DistillConfig fields naming the labelled evaluation data
    metric: str
    is_pair: bool
    indomain_file: str | None = None  # unlabelled training text, for the in-domain ceiling only


def named_task(name: str, args) -> BenchTask:
    task = get_task(name)
    teacher = Path(args.teachers_dir) / name
    if not teacher.exists():
        config = load_config(TeacherTrainConfig, CONFIGS / f"teacher-{name}.yaml",
                             {"out": str(teacher), "data_root": args.data_root})
        run_in_process("teacher-train", config, f"teacher-{name}", args)
    eval_options = {"eval_task": name, "eval_split": eval_split_option(name), "data_root": args.data_root}
    return BenchTask(name, teacher, eval_options, task.metric, task.is_pair)


def directory_task(directory: Path, args) -> BenchTask:
    """A user's task: a teacher trained on train.tsv (cached by the directory's name), scored on test.tsv."""
    train, test = directory / "train.tsv", directory / "test.tsv"
    for path in (train, test):
        if not path.is_file():
            raise SystemExit(f"run.py: error: {path} is missing: a task directory holds train.tsv and test.tsv")
    header = train.read_text().split("\n", 1)[0].split("\t")
    text_col, text_col2 = ("sentence1", "sentence2") if "sentence2" in header else ("text", None)
    teacher = Path(args.teachers_dir) / f"dir-{directory.name}"
    if not teacher.exists():
        config = TeacherTrainConfig(out=str(teacher), train=str(train), text_col=text_col, text_col2=text_col2,
                                    label_col="label", base=args.base, epochs=args.teacher_epochs, seed=0)
        run_in_process("teacher-train", config, teacher.name, args)
    names = Teacher.from_pretrained(teacher, bf16=False).label_names
    read_labelled(test, text_col, "label", text_col2, names)  # fail early, with the file's own error, if unreadable
    options = {"eval_data": str(test), "eval_text_col": text_col, "eval_text_col2": text_col2,
               "eval_label_col": "label"}
    return BenchTask(f"dir:{directory.name}", teacher, options, "accuracy", text_col2 is not None,
                     indomain_file=str(train))


def run_distill(task: BenchTask, method: str, seed: int, transfer_size: int, args) -> dict:
    """One distillation in its own process (reused when a finished run has the same configuration)."""
    student = args.student or default_student(task.is_pair)
    out = Path(args.runs_dir) / f"{task.name.replace(':', '-')}-{method}-{student}-n{transfer_size}-s{seed}"
    generated = str(generated_set(task, args)) if method == "generate" else None
    # generate's student gets the ood corpora's words (--vocab-from), as in generate_table: the generated texts
    # alone leave many task words [UNK] (4.9 points of the teacher on SST-2 there). Not their sentences: with `ood`
    # set, method generate would fill its budget with corpus text, and the row would no longer be generate's alone.
    vocab_from = None
    if generated:
        vocab_from = ",".join(map(str, corpus_files(DistillConfig(ood=args.ood, data_root=args.data_root))))
    ood = None if generated else args.ood
    config = DistillConfig(teacher=str(task.teacher), out=str(out), method=method, student=student, seed=seed,
                           steps=args.steps, transfer_size=transfer_size, cache_dir=args.cache_dir, ood=ood,
                           pairs=task.is_pair, indomain_data=task.indomain_file if method == "indomain" else None,
                           generated=generated, vocab_from=vocab_from, **task.eval_options)
    return reuse_or_run(out, config, lambda: run_in_process("distill", config, out.name, args))


def generated_set(task: BenchTask, args) -> Path:
    """The task's zero-shot `generate` transfer set (`--generate-count` prompts to the LM, labelled by the teacher),
    written in its own process, or the one already there when it was made with the same configuration. Sampling is
    the expensive step, so one set (sampled with the first seed) serves every student seed, like the ood corpora."""
    seed = int(args.seeds.split(",")[0])
    out = generated_set_path(task, args)
    prompts = {"task": task.name} if task.name in TASKS else {"describe": args.describe}
    config = GenerateConfig(teacher=str(task.teacher), out=str(out), generator=args.generator,
                            count=args.generate_count, seed=seed, cache_dir=args.cache_dir, **prompts)
    reuse_or_run(out, config, lambda: run_in_process("generate", config, out.stem, args), out.with_suffix(".json"))
    return out


def generated_set_path(task: BenchTask, args) -> Path:
    """Where `generated_set` writes the task's set (its report beside it, `.json`)."""
    seed = int(args.seeds.split(",")[0])
    return Path(args.runs_dir) / f"{task.name.replace(':', '-')}-generated-c{args.generate_count}-s{seed}.parquet"


def stage_peak_memory(tasks: list[BenchTask], args) -> dict:
    """Peak memory (MiB) of the stages outside the table's rows, from their reports: teacher training and
    `generate`'s sampling for each task (None where the report predates the field), and this process (the speed
    part)."""
    stages = {}
    for task in tasks:
        reports = {"teacher training": Path(task.teacher) / "run.json"}
        if "generate" in args.methods.split(","):
            reports["generate"] = generated_set_path(task, args).with_suffix(".json")  # absent for pair tasks
        for stage, path in reports.items():
            if path.is_file():
                stages[f"{stage}, {task.name}"] = json.loads(path.read_text()).get("peak_memory_mib")
    stages["speed part (this process)"] = peak_memory_mib()
    return stages


def run_in_process(command: str, config, name: str, args) -> None:
    """`zskd COMMAND --config RECIPE` in a child process, the recipe (the full config) kept beside the runs."""
    recipe = Path(args.runs_dir) / f"{name}.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
    subprocess.run([sys.executable, "-m", "zskd.cli", command, "--config", str(recipe)], check=True)


def methods_for(task: BenchTask, methods: list[str], args) -> list[str]:
    """The methods that apply to `task`: `generate` writes single texts, so it skips pair tasks, and it needs
    `--describe` for a task directory (a named task brings its own prompt phrases)."""
    if "generate" not in methods:
        return methods
    if task.is_pair:
        print(f"run.py: {task.name}: generate skipped (it writes single texts, not sentence pairs)", file=sys.stderr)
        return [m for m in methods if m != "generate"]
    if task.name not in TASKS and not args.describe:
        raise SystemExit(f"run.py: error: generate on {task.name} needs --describe 'what a text is' for the prompts")
    return methods


def speed(task: BenchTask, student_dir: str, args) -> dict:
    """Batch-1 and batch-64 latency of teacher and student (in PyTorch, and exported to ONNX Runtime), and teacher
    labelling against transformers' pipeline."""
    from transformers import pipeline

    inputs = _eval_inputs(task, args)
    teacher = Teacher.from_pretrained(task.teacher, bf16=False)
    student = load_student(student_dir)
    if not (Path(student_dir) / ONNX_FILE).is_file():
        export_onnx(student_dir)
    models = (("teacher", teacher), ("student", student), (STUDENT_ONNX, OnnxStudent(student_dir)))
    latency = {name: {"batch_1": measure_latency(m, inputs, 1, repeats=200, warmup=20),
                      "batch_64": measure_latency(m, inputs, 64)}
               for name, m in models}
    texts = [x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]} for x in inputs]
    classify = pipeline("text-classification", model=str(task.teacher), device=-1)
    labelling = {}
    labellers = (("pipeline", lambda: classify(texts)),
                 ("zskd", lambda: Teacher(teacher.model, teacher.tokenizer).logits(inputs)))
    for name, fn in labellers:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        labelling[name] = {"median_seconds": statistics.median(times), "inputs": len(inputs)}
    batch_1 = {name: lat["batch_1"]["median_ms"] for name, lat in latency.items()}
    return {"latency": latency, "labelling": labelling,
            "latency_speedup_batch1": batch_1["teacher"] / batch_1["student"],
            "latency_speedup_batch1_onnx": batch_1["teacher"] / batch_1[STUDENT_ONNX],
            "labelling_speedup": labelling["pipeline"]["median_seconds"] / labelling["zskd"]["median_seconds"]}


def _eval_inputs(task: BenchTask, args) -> list:
    if "eval_task" in task.eval_options:
        return eval_inputs(task.name, args.data_root)
    o = task.eval_options
    return read_labelled(o["eval_data"], o["eval_text_col"], "label", o["eval_text_col2"]).inputs()


def plot(results: dict, out: Path) -> list[str]:
    """The three figures; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")
    rows = results["records"]  # one per seed: bars show the mean, and the standard deviation where seeds > 1
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(1.5 + 1.4 * len(tasks), 3.5))
    width = 0.8 / max(1, len(methods))
    for m, method in enumerate(methods):
        scores = [[r["percent_of_teacher"] for r in rows if r["task"] == t and r["method"] == method] or [0]
                  for t in tasks]
        spread = [statistics.stdev(s) if len(s) > 1 else float("nan") for s in scores]  # nan: no error bar
        ax.bar([t + m * width for t in range(len(tasks))], [statistics.mean(s) for s in scores], width, yerr=spread,
               capsize=2, label=method)
    ax.set_xticks([t + width * (len(methods) - 1) / 2 for t in range(len(tasks))], tasks)
    ax.axhline(100, color="grey", linewidth=0.8)
    ax.set_ylabel("% of the teacher's task metric")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, not over them
    _save(fig, out / "percent_of_teacher.png")

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for (task, method, seed), points in _by_size(results["size_curve"]).items():
        sizes = sorted(points)
        ax.plot(sizes, [points[s] for s in sizes], marker="o", label=f"{task} {method}, seed {seed}")
    ax.set_xscale("log")
    ax.set_xticks(sorted({p["transfer_size"] for p in results["size_curve"]}))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("transfer-set size (inputs)")
    ax.set_ylabel("student task metric")
    ax.legend(fontsize=8)
    _save(fig, out / "metric_vs_transfer_size.png")

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    speed_info = results["speed"]
    for name in ("teacher", "student", STUDENT_ONNX):
        size, ms = speed_info["parameters"][name], speed_info["latency"][name]["batch_1"]["median_ms"]
        ax.scatter(size, ms, label=name, s=40)
        ax.annotate(f"{ms:.2f} ms", (size, ms), textcoords="offset points", xytext=(6, -3), fontsize=8)
    ax.margins(x=0.3)  # room for the labels
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("batch-1 latency, ms (median)")
    ax.legend(fontsize=8)
    _save(fig, out / "latency_and_size.png")
    return ["percent_of_teacher.png", "metric_vs_transfer_size.png", "latency_and_size.png"]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def size_point(task: BenchTask, report: dict) -> dict:
    """One point of the metric-against-transfer-size curve: one run, so every point has the same seed."""
    return {"task": task.name, "method": report["config"]["method"], "seed": report["config"]["seed"],
            "transfer_size": report["transfer_size"], "task_metric": report["eval"]["student"]["task_metric"]}


def _by_size(curve: list[dict]) -> dict:
    grouped: dict = {}
    for point in curve:
        key = (point["task"], point["method"], point["seed"])
        grouped.setdefault(key, {})[point["transfer_size"]] = point["task_metric"]
    return grouped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="SST-2, ood against random, one seed, small budget")
    preset.add_argument("--full", action="store_true",
                        help="four tasks, every method (generate on SST-2 and TREC), SST-2 over 3 seeds")
    parser.add_argument("--tasks",
                        help="named tasks, comma-separated (preset: see --quick/--full); 'none' for only --task-dir")
    parser.add_argument("--task-dir", action="append", default=[],
                        help="a task directory (train.tsv, test.tsv); repeatable")
    parser.add_argument("--methods", help="comma-separated: indomain, ood, adversarial, embedding-guess, generate, "
                        "random")
    parser.add_argument("--seeds", help="comma-separated seeds for the headline task (SST-2 and task directories)")
    parser.add_argument("--steps", type=int, help="student steps, the same for every method")
    parser.add_argument("--transfer-size", type=int, help="transfer-set inputs, the same for every method")
    parser.add_argument("--sizes", help="extra ood transfer-set sizes on the first task, for the size curve")
    parser.add_argument("--repeats", type=int, help="repeats of each labelling-speed measurement")
    parser.add_argument("--student", help="default: pair-bilstm for pair tasks, else bilstm")
    parser.add_argument("--ood", help="out-of-domain corpus files (default: the data root's): the transfer text of ood "
                        "and adversarial; generate's student takes only their words")
    parser.add_argument("--generator", default=GenerateConfig.generator,
                        help="generate: the causal LM that writes the transfer set")
    parser.add_argument("--generate-count", type=int, help="generate: prompts sampled per task")
    parser.add_argument("--describe", help="generate on a task directory: what a text is, e.g. 'support ticket'")
    parser.add_argument("--base", default="minilm-l6", help="encoder a task directory's teacher starts from")
    parser.add_argument("--teacher-epochs", type=float, default=3.0, help="epochs of a task directory's teacher")
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default="runs/bench/suite/runs")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--out", default="runs/bench/suite")
    args = parser.parse_args(argv)
    for key, value in PRESETS["full" if args.full else "quick"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    started = time.time()

    tasks = [named_task(t, args) for t in args.tasks.split(",") if t and t != "none"]
    tasks += [directory_task(Path(d), args) for d in args.task_dir]
    rows, records, size_curve = [], [], []
    for task in tasks:
        seeds = [int(s) for s in args.seeds.split(",")]
        if task.name not in SEEDED_TASKS and not task.name.startswith("dir:"):
            seeds = seeds[:1]
        for method in methods_for(task, args.methods.split(","), args):
            reports = [run_distill(task, method, seed, args.transfer_size, args) for seed in seeds]
            rows.append([*summary_row(task.name, method, reports), f"{max(r['peak_memory_mib'] for r in reports):.0f}"])
            for r in reports:
                e = r["eval"]
                records.append({"task": task.name, "method": method, "seed": r["config"]["seed"], "metric": e["metric"],
                                "teacher": e["teacher"]["task_metric"], "student": e["student"]["task_metric"],
                                "percent_of_teacher": e["percent_of_teacher"], "agreement": e["agreement"],
                                "student_parameters": r["student_parameters"], "compression": r["compression"],
                                "transfer_size": r["transfer_size"], "steps": r["steps"],
                                "transfer_seconds": r["transfer_seconds"],
                                "train_seconds": r["train_seconds_this_session"],
                                "peak_memory_mib": r["peak_memory_mib"], "run": r["config"]["out"]})
            if method == "ood":  # the first seed, as at the extra sizes below
                size_curve.append(size_point(task, reports[0]))
    first = tasks[0]
    for size in [int(s) for s in args.sizes.split(",") if s]:
        size_curve.append(size_point(first, run_distill(first, "ood", int(args.seeds.split(",")[0]), size, args)))
    headline = next(r for r in records if r["task"] == first.name)
    speed_info = speed(first, headline["run"], args)
    speed_info["parameters"] = {"teacher": Teacher.from_pretrained(first.teacher, bf16=False).num_parameters(),
                                "student": headline["student_parameters"], STUDENT_ONNX: headline["student_parameters"]}

    stage_memory = stage_peak_memory(tasks, args)

    headers = [*SUMMARY_HEADERS, "peak MiB"]
    table = markdown_table(headers, rows)
    memory_table = markdown_table(["stage", "peak MiB"], [[k, "not recorded" if v is None else f"{v:.0f}"]
                                                         for k, v in stage_memory.items()])
    lat, lab = speed_info["latency"], speed_info["labelling"]
    speed_table = markdown_table(["", "batch 1 median ms", "batch 64 median ms"], [
        [name, lat[name]["batch_1"]["median_ms"], lat[name]["batch_64"]["median_ms"]] for name in lat])
    machine = machine_description()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])
    results = {"benchmark": "suite", "date": date.today().isoformat(), "command": command, "machine": machine,
               "versions": versions(), "args": vars(args), "records": records,
               "rows": [dict(zip(headers, row)) for row in rows], "size_curve": size_curve, "speed": speed_info,
               "stage_peak_memory_mib": stage_memory,
               "seconds": round(time.time() - started, 1)}
    figures = plot(results, out)
    report = (f"{table}\n\nmetric: accuracy (MRPC: F1 of the paraphrase class); SST-2 on dev + test; "
              f"label s = building and labelling the transfer set (0 when cached)\n\n"
              f"Speed on {first.name} ({lab['zskd']['inputs']} inputs):\n\n"
              f"{speed_table}\n\nbatch-1: student {speed_info['latency_speedup_batch1']:.1f}x faster than the teacher, "
              f"{speed_info['latency_speedup_batch1_onnx']:.1f}x in ONNX Runtime (the teacher in PyTorch); "
              f"teacher labelling {speed_info['labelling_speedup']:.2f}x transformers' pipeline\n\n"
              f"Peak memory of the other stages:\n\n{memory_table}\n\n{machine}; "
              f"{results['date']}; {results['seconds']:.0f} s\n")
    (out / "table.md").write_text(report)
    write_json(out / "results.json", results)
    print(report)
    print("figures: " + ", ".join(str(out / f) for f in figures))


if __name__ == "__main__":
    main()
