"""The benchmark suite end to end on a task it has never seen: a task directory made here from a few hundred rows,
a tiny base encoder, and a tiny budget."""

import json
import random
import subprocess
import sys
from pathlib import Path

from conftest import OOD_SENTENCES, write_tsv

REPO = Path(__file__).resolve().parents[1]
GOOD, BAD = ["good", "great", "fine", "fun", "loved"], ["bad", "awful", "boring", "hated"]
FILLER = ["the", "movie", "film", "was", "very", "plot", "acting", "it", "a"]


def make_task_dir(directory: Path, rows: int, seed: int = 0) -> Path:
    """train.tsv and test.tsv: `label` (negative/positive) and `text`, the label given by the sentiment words."""
    rng = random.Random(seed)
    directory.mkdir(parents=True)
    for name, count in (("train", rows), ("test", rows // 3)):
        lines = []
        for _ in range(count):
            label = rng.randrange(2)
            words = rng.choices(FILLER, k=rng.randint(3, 8)) + rng.choices(GOOD if label else BAD, k=2)
            rng.shuffle(words)
            lines.append(("positive" if label else "negative", " ".join(words)))
        write_tsv(directory / f"{name}.tsv", lines, ("label", "text"))
    return directory


def test_suite_runs_end_to_end_on_a_new_task_directory(tmp_path, tiny_model, tiny_lm):
    task = make_task_dir(tmp_path / "my_task", rows=300)
    ood = tmp_path / "ood.txt"
    ood.write_text("\n".join(OOD_SENTENCES) + "\n")
    out = tmp_path / "suite"
    command = [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--tasks", "none",
               "--task-dir", str(task), "--methods", "ood,random,indomain,generate", "--steps", "6",
               "--transfer-size", "40", "--sizes", "20", "--generator", str(tiny_lm), "--generate-count", "16",
               "--describe", "movie review", "--base", str(tiny_model), "--teacher-epochs", "1", "--ood", str(ood),
               "--teachers-dir", str(tmp_path / "teachers"), "--runs-dir", str(tmp_path / "runs"),
               "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["records"]] == ["ood", "random", "indomain", "generate"]
    assert all(r["task"] == "dir:my_task" and r["steps"] == 6 for r in results["records"])
    assert all(r["transfer_size"] == 40 for r in results["records"][:3])
    generate_run = json.loads((Path(results["records"][3]["run"]) / "run.json").read_text())
    assert generate_run["config"]["generated"].endswith(".parquet")
    assert generate_run["config"]["vocab_from"] == str(ood)  # the student knows the corpus words, like ood's
    # the LM's texts (and their variants), not train.tsv
    assert 0 < generate_run["transfer_info"]["generated_texts"] <= 16
    assert generate_run["config"]["ood"] is None  # ... alone, though --ood was passed: no corpus text fills its budget
    ceiling = json.loads((Path(results["records"][2]["run"]) / "run.json").read_text())
    # the in-domain ceiling read train.tsv; nothing else did
    assert ceiling["in_domain"] and "train.tsv" in ceiling["transfer"]
    assert {p["transfer_size"] for p in results["size_curve"]} == {20, 40}
    assert results["speed"]["latency"]["student"]["batch_1"]["median_ms"] > 0
    assert results["speed"]["latency"]["student, ONNX Runtime"]["batch_1"]["median_ms"] > 0
    assert results["machine"] and results["versions"]["zskd"] and results["date"]
    stages = results["stage_peak_memory_mib"]  # teacher training and sampling ran in their own processes
    assert set(stages) == {"teacher training, dir:my_task", "generate, dir:my_task", "speed part (this process)"}
    assert (all(mib > 0 for mib in stages.values())
            and "Peak memory of the other stages" in (out / "table.md").read_text())
    assert "dir:my_task" in (out / "table.md").read_text()
    for figure in ("percent_of_teacher.png", "metric_vs_transfer_size.png", "latency_and_size.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    runs = sorted((tmp_path / "runs").glob("*/run.json"))
    assert not any("train.tsv" in json.dumps(json.loads(r.read_text())["config"])
                   for r in runs if "indomain" not in r.parent.name)

    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)  # everything reused
    assert second.returncode == 0 and "step/s" not in second.stderr
