"""What the benchmark scripts share: where each task is scored, reuse of finished runs, and the summary row.

The scripts run as `python benchmarks/<script>.py`, so this directory is on their path and they `import common`.

- Evaluation data: `EVAL_SPLITS` names the splits the benchmarks score a task on, where that is not the task's own
  evaluation split (`zskd.tasks`); `eval_splits`, `eval_split_option`, `eval_examples` and `eval_inputs` read it.
- `made_with` and `reuse_or_run`: a finished run (distillation, teacher, generated set) is reused when it was made
  with the same configuration, and made again otherwise, so a rerun does only what changed; `run_generate` does it
  for a generated set.
- `default_corpora`: the data root's out-of-domain corpora as one `--ood` value.
- `run_grid`: every task x method (or variant) x seed, grouped for rows and flat for the JSON.
- `SUMMARY_HEADERS` and `summary_row`: one table row for the seeds of a task and method.
- `variant_table`: the whole of a script that compares named variants of one distillation recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from zskd.config import write_json
from zskd.data import Examples
from zskd.evaluate import measure_latency
from zskd.runinfo import versions
from zskd.tasks import get_task, load_split

# Splits each task is scored on, each scored separately by teachers.py and together (joined by "+") by the
# distillation scripts. A task not named here is scored on its own `eval_split` (trec: test; mrpc, rte: dev).
EVAL_SPLITS: dict[str, tuple[str, ...]] = {"sst2": ("dev", "test")}


def eval_splits(task: str) -> list[str]:
    """The splits the benchmarks score the named `task` on."""
    return list(EVAL_SPLITS.get(task, (get_task(task).eval_split,)))


def eval_split_option(task: str) -> str | None:
    """`DistillConfig.eval_split` for the named `task`: its splits joined by "+" where `EVAL_SPLITS` names them,
    else None (the task's own split, resolved by the run; finished runs were made with None and are reused)."""
    return "+".join(EVAL_SPLITS[task]) if task in EVAL_SPLITS else None


def eval_examples(task: str, data_root: str | None) -> dict[str, Examples]:
    """The labelled evaluation data of the named `task`, one entry per split of `eval_splits`."""
    spec = get_task(task)
    return {split: load_split(spec, split, data_root) for split in eval_splits(task)}


def eval_inputs(task: str, data_root: str | None) -> list:
    """What a classifier reads of `eval_examples`, all splits in order: strings, or (first, second) pairs."""
    return [x for examples in eval_examples(task, data_root).values() for x in examples.inputs()]


# Options whose default changed after they were added: a run made before they existed behaved as this value.
BEFORE_THEY_EXISTED: dict[str, Any] = {"rare_class_variants": 0, "balance_by_kind": False, "ema_decay": 0.0,
                                       "lm_keywords": False, "own_text_fraction": 0.0}
# Options that do not change what a run makes: where things are (the same labels come from any cache)
NOT_THE_RECIPE = ("cache_dir", "data_root")


def made_with(config: Any, stored: dict[str, Any]) -> bool:
    """Whether `stored` (the config a finished run wrote) describes `config`: options added since the run was made
    count as their defaults (within an options group, such as `adversarial`, too); `pairs` left as None (the run
    reads it off the teacher or the data) takes the stored value, and `student`, `augment` and `ema_decay` left as
    None must be what the run would choose now for those pairs and steps, so a run made under an older default is
    made again. A method's own options group (`adversarial` for `--method adversarial`) counts only for that method:
    a changed default there leaves other runs standing. Options in NOT_THE_RECIPE are not compared."""
    from zskd.distill import DistillConfig, with_run_defaults
    from zskd.methods import METHODS

    expected = dataclasses.asdict(config)
    defaults = dataclasses.asdict(type(config)())
    before = {name: value for name, value in BEFORE_THEY_EXISTED.items() if name in defaults}
    then = _with_defaults(defaults, {**before, **stored})
    if "pairs" in expected and expected["pairs"] is None:
        expected["pairs"] = then.get("pairs")
    if isinstance(config, DistillConfig):
        expected = dataclasses.asdict(with_run_defaults(dataclasses.replace(config, pairs=expected["pairs"])))
    unread = {m.options_group for name, m in METHODS.items() if m.options_group and name != expected.get("method")}
    unread |= set(NOT_THE_RECIPE)
    then = {k: v for k, v in then.items() if k not in unread}
    return then == {k: v for k, v in expected.items() if k not in unread}


def _with_defaults(defaults: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`stored` over `defaults`, an options group (a mapping) merged field by field."""
    merged = dict(defaults)
    for key, value in stored.items():
        group = defaults.get(key)
        merged[key] = _with_defaults(group, value) if isinstance(group, dict) and isinstance(value, dict) else value
    return merged


def reuse_or_run(out: Path, config: Any, run: Callable[[], object], report_path: Path | None = None) -> dict:
    """The report of the finished run at `out` when it was made with `config`; else `out` and its report are
    removed (a run refuses an existing `out`), `run()` makes them again, and the new report is returned.

    `report_path` is where the run writes its report: `out/run.json` (the default) for a run directory
    (distillation, teacher); `out.with_suffix(".json")` for a generated set, a file."""
    report_path = report_path or out / "run.json"
    if out.exists() and report_path.is_file():
        report = json.loads(report_path.read_text())
        if made_with(config, report["config"]):
            return report
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)
    report_path.unlink(missing_ok=True)
    run()
    return json.loads(report_path.read_text())


def run_generate(config) -> dict:
    """The report of the generated set `config` (a `GenerateConfig`) describes: the one already written, or a new
    one."""
    from zskd.methods.generate import generate

    out = Path(config.out)
    return reuse_or_run(out, config, lambda: generate(config), out.with_suffix(".json"))


def default_corpora(data_root: str | None) -> str:
    """The data root's out-of-domain corpora as one `--ood` value (comma-separated paths)."""
    from zskd.distill import DistillConfig
    from zskd.methods.ood import corpus_files

    return ",".join(str(path) for path in corpus_files(DistillConfig(data_root=data_root)))


def batch1_ms(model, inputs, repeats: int, calls: int = 400, warmup: int = 20) -> dict:
    """Batch-1 latency of `model.logits`: the median of `repeats` medians of `calls` calls, one input each."""
    medians = [measure_latency(model, inputs, 1, repeats=calls, warmup=warmup)["median_ms"] for _ in range(repeats)]
    return {"median_ms": round(statistics.median(medians), 3), "medians_ms": medians}


def save_results(path: str | Path, benchmark: str, machine: str, **payload: Any) -> None:
    """Write a benchmark's JSON: its name, the date, the machine and versions, then `payload` (results, table)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"benchmark": benchmark, "date": date.today().isoformat(), "machine": machine,
                      "versions": versions(), **payload})


def run_grid(tasks: str, names: str, seeds: str, run_one: Callable[[str, str, int], dict],
             key: str) -> tuple[list[tuple[str, str, list[dict]]], list[dict]]:
    """`run_one(task, name, seed)` for every comma-separated task, name (a method or variant) and seed: the reports
    grouped by (task, name) for table rows, and one record per run for the JSON, the name under `key`."""
    groups, records = [], []
    for task in tasks.split(","):
        for name in names.split(","):
            reports = [run_one(task, name, int(seed)) for seed in seeds.split(",")]
            groups.append((task, name, reports))
            records.extend({"task": task, key: name, "seed": r["config"]["seed"], **r} for r in reports)
    return groups, records


SUMMARY_HEADERS = ["task", "method", "seeds", "teacher", "student", "% of teacher", "agreement", "params",
                   "compression", "transfer set", "steps", "label s", "train s", "ms/step"]


def summary_row(task: str, method: str, reports: list[dict]) -> list:
    """One table row for the runs of a task and method: means and spreads over seeds, medians of times."""
    evals = [r["eval"] for r in reports]

    def spread(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.2f}" + (f" ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else "")

    return [
        task, method + (" (in-domain ceiling)" if reports[0]["in_domain"] else ""), len(reports),
        f"{evals[0]['teacher']['task_metric']:.2f}", spread([e["student"]["task_metric"] for e in evals]),
        spread([e["percent_of_teacher"] for e in evals]), spread([e["agreement"] for e in evals]),
        f"{reports[0]['student_parameters'] / 1e6:.2f}M", f"{reports[0]['compression']}x",
        reports[0]["transfer_size"], reports[0]["steps"],
        f"{statistics.median(r['transfer_seconds'] for r in reports):.0f}",
        f"{statistics.median(r['train_seconds_this_session'] for r in reports):.0f}",
        f"{1000 * statistics.median(r['train_seconds_this_session'] / r['steps'] for r in reports):.0f}",
    ]


def variant_table(doc: str, benchmark: str, variants: dict[str, dict[str, Any] | Callable[..., dict[str, Any]]],
                  tasks: str, reads_generated: bool = False) -> None:
    """A benchmark script's `main` that distils each task x variant x seed at one student and step budget (the
    suite's `--full` budget unless told), a variant being `DistillConfig` options over the defaults, or a callable
    `(task, args) -> options` where they depend on the task (a file made for it), and prints and saves the table.
    Runs go to runs/bench/<benchmark>/<task>-<variant>-<student>-s<seed>. `reads_generated`: some variants read
    LM-written text, and `--generated` may give it."""
    from zskd.distill import DistillConfig, distill
    from zskd.report import markdown_table
    from zskd.runinfo import machine_description

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--tasks", default=tasks)
    parser.add_argument("--variants", default=",".join(variants), help=f"comma-separated: {', '.join(variants)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; rows show mean and spread")
    parser.add_argument("--student", default="bilstm")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--transfer-size", type=int, default=40000)
    parser.add_argument("--teachers-dir", default="runs/teachers")
    parser.add_argument("--runs-dir", default=f"runs/bench/{benchmark.removesuffix('_table').replace('_', '-')}")
    parser.add_argument("--cache-dir", default=DistillConfig.cache_dir)
    parser.add_argument("--data-root")
    parser.add_argument("--json", default=f"runs/bench/{benchmark}.json")
    if reads_generated:
        parser.add_argument("--generated", action="append", default=[], metavar="TASK=FILE",
                            help="variants that read LM-written text: use this file of `zskd generate` for TASK "
                                 "instead of writing one (repeatable)")
    args = parser.parse_args()

    def run_one(task: str, variant: str, seed: int) -> dict:
        out = Path(args.runs_dir) / f"{task}-{variant}-{args.student}-s{seed}"
        options = variants[variant](task, args) if callable(variants[variant]) else variants[variant]
        config = DistillConfig(
            teacher=str(Path(args.teachers_dir) / task), out=str(out), student=args.student, eval_task=task,
            eval_split=eval_split_option(task), data_root=args.data_root, transfer_size=args.transfer_size,
            steps=args.steps, seed=seed, cache_dir=args.cache_dir, **options,
        )
        return reuse_or_run(out, config, lambda: distill(config))

    groups, results = run_grid(args.tasks, args.variants, args.seeds, run_one, "variant")
    table = markdown_table(SUMMARY_HEADERS, [summary_row(task, variant, reports) for task, variant, reports in groups])
    machine = machine_description()
    print(table)
    print(f"\nmetric: accuracy; SST-2 on dev+test; label s = building + teacher labelling (0 when cached); {machine}")
    save_results(args.json, benchmark, machine, args=vars(args), results=results, table=table)
