"""teacher-train and eval end to end through the command line, on a tiny random base model."""

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from zskd.cli import main
from zskd.train_teacher import TeacherTrainConfig, train_teacher


def test_teacher_train_then_eval(tmp_path, tiny_model, sentiment_tsv, capsys):
    out = tmp_path / "teacher"
    code = main(["teacher-train", "--train", str(sentiment_tsv), "--dev", str(sentiment_tsv), "--labels", "neg,pos",
                 "--base", str(tiny_model), "--epochs", "2", "--batch-size", "4", "--lr", "1e-3", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"} and config["label2id"] == {"neg": 0, "pos": 1}
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["seed"] == 0 and run["steps"] == 4 and run["eval"]["n"] == 8
    assert not (tmp_path / "teacher.partial").exists()

    capsys.readouterr()
    report = tmp_path / "eval.json"
    code = main(["eval", "--model", str(out), "--data", str(sentiment_tsv), "--teacher", str(out), "--latency",
                 "--json", str(report)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "agreement with teacher: 100.00%" in printed and "batch 1 median ms" in printed
    result = json.loads(report.read_text())
    assert result["agreement"] == 100.0 and result["n"] == 8
    assert sum(map(sum, result["confusion"])) == 8
    assert [lat["batch_size"] for lat in result["latency"]["model"]] == [1, 64]


def test_teacher_train_refuses_existing_output(tmp_path, tiny_model, sentiment_tsv, capsys):
    (tmp_path / "teacher").mkdir()
    code = main(["teacher-train", "--train", str(sentiment_tsv), "--base", str(tiny_model),
                 "--out", str(tmp_path / "teacher")])
    assert code == 2
    assert "already exists" in capsys.readouterr().err


def test_bad_input_is_one_line_error(tmp_path, tiny_model, capsys):
    code = main(["eval", "--model", str(tiny_model), "--data", str(tmp_path / "missing.tsv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "missing.tsv: no such file" in err


def test_missing_model_directory_is_named_not_looked_up_on_the_hub(tmp_path, sentiment_tsv, capsys):
    code = main(["eval", "--model", str(tmp_path / "runs" / "student"), "--data", str(sentiment_tsv)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"no model at {tmp_path / 'runs' / 'student'}" in err


def test_resumed_training_ends_with_the_same_weights(tmp_path, tiny_model, sentiment_tsv):
    """Stopping after a checkpoint and running again gives exactly the weights of an uninterrupted run."""
    def config(out):
        return TeacherTrainConfig(out=str(out), train=str(sentiment_tsv), base=str(tiny_model), epochs=3,
                                  batch_size=3, lr=1e-3, checkpoint_every=2, freeze_embeddings=False)

    train_teacher(config(tmp_path / "straight"))
    assert train_teacher(config(tmp_path / "resumed"), stop_after_steps=4) == {}
    assert (tmp_path / "resumed.partial" / "latest.json").is_file() and not (tmp_path / "resumed").exists()
    train_teacher(config(tmp_path / "resumed"))
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    for name, tensor in straight.items():
        np.testing.assert_array_equal(tensor.numpy(), resumed[name].numpy(), err_msg=name)
    initial = load_file(tiny_model / "model.safetensors")
    assert not np.allclose(initial["bert.encoder.layer.0.attention.self.query.weight"].numpy(),
                           straight["bert.encoder.layer.0.attention.self.query.weight"].numpy())


@pytest.mark.parametrize("argv", [["resources"], ["teacher-train", "--help"], ["eval", "--help"]])
def test_commands_run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # --help
        code = exit_.code
    assert code == 0
    assert capsys.readouterr().out
