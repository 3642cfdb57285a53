"""`zskd label`: a corpus labelled in shards by several processes fills exactly the cache one process fills, a
finished shard is skipped, an unfinished one resumes, and `zskd distill` labels nothing afterwards."""

import json
import os
import subprocess
import sys

import numpy as np

from zskd.cli import main
from zskd.labelling import LabelCache
from zskd.teacher import Teacher

CORPUS = [f"the film number {i} was {'good' if i % 3 else 'boring'} and {'fun' if i % 5 else 'awful'} ." for i in
          range(300)]


def cache_contents(cache_dir, teacher_dir) -> dict:
    cache = LabelCache(cache_dir, Teacher.from_pretrained(teacher_dir, bf16=False).fingerprint())
    return {key: cache.get(key) for key in cache._logits}


def label(args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zskd.cli", "label", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_shards_in_two_processes_make_the_single_process_cache(tmp_path, tiny_model):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    common = ["--teacher", str(tiny_model), "--inputs", str(corpus), "--chunk-size", "64", "--no-teacher-bf16"]
    single = label([*common, "--cache-dir", str(tmp_path / "single")])
    assert single.wait() == 0, single.stderr.read()
    # two processes at once, one by --shard and one by the launcher's environment (torchrun, accelerate)
    first = label([*common, "--cache-dir", str(tmp_path / "sharded"), "--shard", "0/2"])
    second = label([*common, "--cache-dir", str(tmp_path / "sharded")], env={"RANK": "1", "WORLD_SIZE": "2"})
    assert first.wait() == 0 and second.wait() == 0, (first.stderr.read(), second.stderr.read())
    assert "shard 1/2: 150 inputs, 150 labelled" in second.stdout.read()
    merged, alone = cache_contents(tmp_path / "sharded", tiny_model), cache_contents(tmp_path / "single", tiny_model)
    assert merged.keys() == alone.keys() and len(alone) == len(CORPUS)
    for key in alone:  # bit for bit, though each input was batched with other inputs
        np.testing.assert_array_equal(merged[key], alone[key])


def test_finished_shards_are_skipped_and_unfinished_ones_resume(tmp_path, tiny_model, capsys):
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("a\tb\n" + "".join(f"{a}\t{a} , really\n" for a in CORPUS))
    common = ["label", "--teacher", str(tiny_model), "--text-col", "a", "--text-col2", "b", "--cache-dir",
              str(tmp_path / "cache"), "--chunk-size", "50", "--no-teacher-bf16"]
    head = tmp_path / "head.tsv"
    head.write_text("".join(corpus.read_text().splitlines(keepends=True)[:101]))  # an interrupted run's work
    assert main([*common, "--inputs", str(head)]) == 0
    assert main([*common, "--inputs", str(corpus)]) == 0
    assert "300 inputs, 200 labelled, 100 already cached" in capsys.readouterr().out
    assert main([*common, "--inputs", str(corpus)]) == 0
    assert "was labelled before (300 inputs): nothing to do" in capsys.readouterr().out
    cache = cache_contents(tmp_path / "cache", tiny_model)
    assert len(cache) == 300
    assert main([*common, "--inputs", str(corpus), "--shard", "2/2"]) == 2
    assert "--shard 2/2: give I/N with 0 <= I < N" in capsys.readouterr().err
    reports = [json.loads(path.read_text()) for path in (tmp_path / "cache").glob("*/labelled-*-0-of-1.json")]
    assert sorted(r["inputs"] for r in reports) == [100, 300]  # a marker per corpus: head.tsv's and corpus.tsv's
    assert all(r["config"]["text_col2"] == "b" for r in reports)
