"""benchmarks/common.py: the evaluation splits, reuse of finished runs, and the summary row the scripts share."""

import dataclasses
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_common():
    """benchmarks/common.py as a module (the scripts import it as `common`, from their own directory)."""
    spec = importlib.util.spec_from_file_location("bench_common", REPO / "benchmarks" / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = load_common()


@dataclasses.dataclass
class Options:
    rate: float = 0.3
    newer: float = 0.2  # an option added to the group after a run was made


@dataclasses.dataclass
class Recipe:
    out: str = ""
    size: int = 1
    pairs: bool | None = None  # left to the run
    options: Options = dataclasses.field(default_factory=Options)
    newer: str = "x"  # an option added after a run was made


def test_made_with_reuses_runs_that_predate_new_options():
    config = Recipe("o", 10)
    stored = dataclasses.asdict(config)
    del stored["newer"], stored["options"]["newer"]  # an older run
    assert common.made_with(config, {**stored, "pairs": True})  # pairs left to the run: the stored value stands
    assert not common.made_with(dataclasses.replace(config, pairs=False), {**stored, "pairs": True})
    assert not common.made_with(config, {**stored, "size": 11})
    assert not common.made_with(config, {**stored, "newer": "y"})
    assert not common.made_with(config, {**stored, "options": {"rate": 0.3, "newer": 0.0}})
    assert not common.made_with(config, {**stored, "options": {"rate": 0.5}})


def test_made_with_a_distill_config():
    from zskd.distill import DistillConfig

    config = DistillConfig(teacher="t", out="o", steps=10)
    # as run.json holds it: what the run resolved written down
    ran = {**json.loads(json.dumps(dataclasses.asdict(config))), "pairs": False, "augment": 4, "student": "bilstm",
           "ema_decay": 0.0,  # 10 steps: no average
           "own_text_fraction": 0.0, "augment_kinds": "part,near-copy,other-words"}
    assert common.made_with(config, ran)
    # a generate run made before its own texts took a quarter of each batch, or before its fourth variant was on
    # another topic, is made again
    generated = dataclasses.replace(config, method="generate", few_shot="k.tsv")
    today = {**ran, "method": "generate", "few_shot": "k.tsv", "own_text_fraction": 0.25,
             "augment_kinds": "part,near-copy,other-words,other-topic"}
    assert common.made_with(generated, today)
    assert not common.made_with(generated, {**today, "augment_kinds": "part,near-copy,other-words"})
    before = {k: v for k, v in today.items() if k != "own_text_fraction"}
    assert not common.made_with(generated, before)
    assert common.made_with(config, {k: v for k, v in ran.items() if k != "own_text_fraction"})  # ood: 0 then, now
    zero_shot = dataclasses.replace(config, method="generate")  # zero-shot generate: neither low-data default
    assert common.made_with(zero_shot, {**ran, "method": "generate"})
    # so must the moving average's decay: a 10,000-step run made before it was the default is made again
    longer = dataclasses.replace(config, steps=10_000)
    assert common.made_with(longer, {**ran, "steps": 10_000, "ema_decay": 0.999})
    assert not common.made_with(longer, {**ran, "steps": 10_000, "ema_decay": 0.0})
    # augment left to the run must be today's default: an indomain run made with 8 variants, before 16, is made again
    indomain = dataclasses.replace(config, method="indomain")
    assert common.made_with(indomain, {**ran, "method": "indomain", "augment": 16})
    assert not common.made_with(indomain, {**ran, "method": "indomain", "augment": 8})
    assert common.made_with(indomain, {**ran, "method": "indomain", "pairs": True, "augment": 4,
                                       "student": "pair-bilstm"})  # pairs keep 4 variants, and get the pair student
    # so does a student left to the run: a run whose stored student is not today's default for its pairs is made again
    assert common.made_with(config, {**ran, "student": "bilstm"})
    assert not common.made_with(config, {**ran, "student": "cnn"})
    assert not common.made_with(config, {**ran, "pairs": True, "augment": 2, "student": "bilstm"})
    assert not common.made_with(config, {**ran, "steps": 11})
    assert common.made_with(config, {**ran, "cache_dir": "elsewhere"})  # the same labels from another cache
    # a method's own options count for that method only: a default changed there leaves other methods' runs standing
    older = {**ran, "embedding_guess": {**dataclasses.asdict(config.embedding_guess), "word_prior": "uniform"}}
    assert common.made_with(config, older)
    guess = dataclasses.replace(config, method="embedding-guess")
    assert not common.made_with(guess, {**older, "method": "embedding-guess"})
    assert common.made_with(guess, {**dataclasses.asdict(guess), "pairs": False, "augment": 4, "student": "bilstm",
                                    "ema_decay": 0.0, "own_text_fraction": 0.0,
                                    "augment_kinds": "part,near-copy,other-words", "adversarial": {"every": 99}})


def test_eval_splits_per_task():
    # teachers.py scores each split; the distillation scripts pass the "+"-joined option (None: the task's own)
    assert {t: common.eval_splits(t) for t in ("sst2", "trec", "mrpc", "rte")} == {
        "sst2": ["dev", "test"], "trec": ["test"], "mrpc": ["dev"], "rte": ["dev"]}
    assert [common.eval_split_option(t) for t in ("sst2", "trec", "mrpc", "rte")] == ["dev+test", None, None, None]


def test_reuse_or_run_reuses_a_matching_run_and_redoes_any_other(tmp_path):
    runs = []

    def run(config: Recipe, report_path: Path):
        runs.append(config.size)
        Path(config.out).mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps({"config": dataclasses.asdict(config), "size": config.size}))

    out = tmp_path / "run"
    first = Recipe(str(out), 1)
    assert common.reuse_or_run(out, first, lambda: run(first, out / "run.json"))["size"] == 1
    assert common.reuse_or_run(out, first, lambda: run(first, out / "run.json"))["size"] == 1
    (out / "left-over").write_text("")
    second = Recipe(str(out), 2)
    assert common.reuse_or_run(out, second, lambda: run(second, out / "run.json"))["size"] == 2
    assert runs == [1, 2] and not (out / "left-over").exists()  # the stale run was removed before the new one

    generated = tmp_path / "set.parquet"  # a file, its report beside it
    config = Recipe(str(generated), 3)

    def write_set():
        generated.write_text("texts")
        generated.with_suffix(".json").write_text(json.dumps({"config": dataclasses.asdict(config)}))
        runs.append(3)

    for _ in range(2):
        common.reuse_or_run(generated, config, write_set, generated.with_suffix(".json"))
    assert runs == [1, 2, 3]
    generated.unlink()  # a report without its set: made again
    common.reuse_or_run(generated, config, write_set, generated.with_suffix(".json"))
    assert runs == [1, 2, 3, 3] and generated.is_file()


def test_run_grid_groups_reports_for_rows_and_flattens_them_for_the_json():
    calls = []

    def run_one(task, name, seed):
        calls.append((task, name, seed))
        return {"config": {"seed": seed}, "score": len(calls)}

    groups, records = common.run_grid("sst2,trec", "a,b", "0,1", run_one, "variant")
    assert calls == [(t, n, s) for t in ("sst2", "trec") for n in ("a", "b") for s in (0, 1)]
    assert [(t, n, [r["score"] for r in reports]) for t, n, reports in groups] == [
        ("sst2", "a", [1, 2]), ("sst2", "b", [3, 4]), ("trec", "a", [5, 6]), ("trec", "b", [7, 8])]
    assert records[2] == {"task": "sst2", "variant": "b", "seed": 0, "config": {"seed": 0}, "score": 3}
