"""`zskd distill` in two processes on the CPU (accelerate, gloo): it completes, resumes after an interruption to
the same student, and agrees with the teacher as the one-process run does, within a stated tolerance."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import SENTIMENT
from zskd.students import load_student

TOLERANCE = 10.0  # points of held-out agreement between the two-process and the one-process runs


def launch(args: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def options(tmp_path, rule_teacher, ood_file, sentiment_tsv):
    return ["--teacher", str(rule_teacher), "--ood", str(ood_file), "--eval-data", str(sentiment_tsv),
            "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "100", "--min-words", "2", "--steps", "24",
            "--batch-size", "8", "--eval-every", "8", "--checkpoint-every", "8", "--heldout", "20",
            "--student-options", "embedding_dim=16,hidden_size=16", "--no-teacher-bf16"]


def test_two_processes_complete_resume_and_match_one(tmp_path, options):
    from zskd.cli import main

    assert main(["distill", *options, "--out", str(tmp_path / "one")]) == 0
    done = launch(["-m", "zskd.cli", "distill", *options, "--out", str(tmp_path / "two")])
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = (json.loads((tmp_path / name / "run.json").read_text()) for name in ("one", "two"))
    assert abs(one["heldout_agreement"] - two["heldout_agreement"]) <= TOLERANCE

    script = tmp_path / "interrupted.py"  # stops after the checkpoint at step 16, as a crash would
    script.write_text("import sys\nfrom zskd.cli import build_parser\nfrom zskd.config import load_config\n"
                      "from zskd.distill import DistillConfig, distill\n"
                      "args = build_parser().parse_args(['distill', *sys.argv[1:]])\n"
                      "distill(load_config(DistillConfig, None, vars(args)), stop_after_steps=16)\n")
    stopped = launch([str(script), *options, "--out", str(tmp_path / "resumed")])
    assert stopped.returncode == 0 and (tmp_path / "resumed.partial").is_dir(), stopped.stderr[-2000:]
    resumed = launch(["-m", "zskd.cli", "distill", *options, "--out", str(tmp_path / "resumed")])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = json.loads((tmp_path / "resumed" / "run.json").read_text())
    assert again["heldout_agreement"] == two["heldout_agreement"]
    assert again["eval"]["student"] == two["eval"]["student"]
    texts = [text for text, _ in SENTIMENT]
    np.testing.assert_array_equal(load_student(tmp_path / "resumed").logits(texts),
                                  load_student(tmp_path / "two").logits(texts))
