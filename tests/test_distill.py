"""The distillation engine end to end on a tiny random teacher: outputs, resuming, the label cache."""

import dataclasses
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from conftest import SENTIMENT, write_tsv
from zskd.cli import main
from zskd.config import ConfigError
from zskd.distill import DistillConfig, default_ema_decay, distill
from zskd.evaluate import agreement, agreement_by_class
from zskd.students import load_student
from zskd.students.bilstm import BiLSTMConfig, BiLSTMStudent
from zskd.teacher import Teacher


def test_distill_through_the_cli_writes_a_complete_student(tmp_path, tiny_model, ood_file, sentiment_tsv, capsys):
    out = tmp_path / "student"
    code = main(["distill", "--teacher", str(tiny_model), "--method", "ood", "--ood", str(ood_file), "--out", str(out),
                 "--eval-data", str(sentiment_tsv), "--cache-dir", str(tmp_path / "cache"), "--transfer-size", "60",
                 "--min-words", "2", "--steps", "10", "--batch-size", "8", "--eval-every", "5", "--heldout", "10",
                 "--student-options", "embedding_dim=16,hidden_size=16", "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "student saved to" in printed and "% of teacher" in printed
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["seed"] == 3 and run["method"] == "ood" and run["steps"] == 10
    assert run["config"]["ema_decay"] == 0.0  # 10 steps: no average (the default spans the last tenth of a run)
    assert run["config"]["own_text_fraction"] == 0.0 and "own_texts" not in run["transfer_info"]  # ood: one kind
    assert run["config"]["augment_kinds"] == "part,near-copy,other-words"  # other-topic is generate's alone
    assert run["transfer_size"] == 60 and run["transfer_info"]["pool"] == 120
    assert sum(run["transfer_info"]["classes_after"].values()) == 60
    assert run["compression"] == round(run["teacher_parameters"] / run["student_parameters"], 1)
    assert run["eval"]["n"] == len(SENTIMENT)
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [0, 5, 10]
    assert "compression" in (out / "README.md").read_text()
    assert (out / "transfer_sample.tsv").read_text().startswith("teacher_label\tconfidence\ttext")
    assert (out / "last" / "model.safetensors").is_file() and not (tmp_path / "student.partial").exists()

    student = load_student(out)
    assert student.logits(["the movie was good", "awful"]).shape == (2, 2)
    texts = [text for text, _ in SENTIMENT]
    teacher = Teacher.from_pretrained(str(tiny_model), bf16=False)
    student_pred, teacher_pred = student.logits(texts).argmax(-1), teacher.logits(texts).argmax(-1)
    assert run["eval"]["agreement"] == agreement(student_pred, teacher_pred)
    assert run["eval"]["agreement_by_class"] == agreement_by_class(student_pred, teacher_pred, teacher.label_names)
    assert run["eval"]["constant_answer"]["task_metric"] == 50.0  # SENTIMENT is half positive
    assert "Agreement on each class the teacher predicts" in (out / "README.md").read_text()
    assert main(["eval", "--model", str(out), "--data", str(sentiment_tsv), "--teacher", str(tiny_model)]) == 0
    assert "agreement with teacher" in capsys.readouterr().out


def test_resumed_run_ends_with_the_same_weights(tmp_path, tiny_distill_config):
    distill(tiny_distill_config("straight"))
    assert distill(tiny_distill_config("resumed"), stop_after_steps=8) == (None, {})
    assert (tmp_path / "resumed.partial" / "latest.json").is_file()
    _, report = distill(tiny_distill_config("resumed"))
    for part in ("", "last/"):
        straight = load_file(tmp_path / "straight" / part / "model.safetensors")
        resumed = load_file(tmp_path / "resumed" / part / "model.safetensors")
        for name in straight:
            np.testing.assert_array_equal(straight[name].numpy(), resumed[name].numpy(), err_msg=part + name)
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 4, 8, 12]
    # run.json records both sessions of the resumed run, each up to its last checkpoint
    assert [(s["from_step"], s["to_step"]) for s in report["sessions"]] == [(0, 8), (8, 12)]


def test_resumed_run_keeps_the_student_shape_it_began_with(tmp_path, tiny_distill_config, monkeypatch):
    """A student default that changes between two sessions of one run (a new version installed meanwhile) does not
    reach the run: it resumes with the shape its checkpoints have."""
    @dataclasses.dataclass
    class TwoLayersByDefault(BiLSTMConfig):
        num_layers: int = 2

    with monkeypatch.context() as patch:
        patch.setattr(BiLSTMStudent, "config_class", TwoLayersByDefault)
        assert distill(tiny_distill_config("run"), stop_after_steps=8) == (None, {})
    distill(tiny_distill_config("run"))
    assert load_student(tmp_path / "run").config.num_layers == 2


def test_second_run_labels_nothing(tiny_distill_config):
    _, first = distill(tiny_distill_config("a"))
    import zskd

    second_config = tiny_distill_config("b", student="cnn", student_options=None)
    _, second = zskd.distill(**dataclasses.asdict(second_config))  # the keyword form of the Python API
    assert first["teacher_inputs_labelled"] == 120 + len(SENTIMENT)  # the balancing pool, then the eval set
    assert second["teacher_inputs_labelled"] == 0


@pytest.mark.parametrize("method", ["random", "indomain"])
def test_baseline_methods(tmp_path, tiny_distill_config, sentiment_tsv, method):
    _, report = distill(tiny_distill_config(method, method=method,
                               indomain_data=str(sentiment_tsv), transfer_size=40))
    assert report["in_domain"] == (method == "indomain")
    if method == "indomain":
        assert "not a zero-shot result" in (tmp_path / method / "README.md").read_text()
        # the task's texts first, then variants of them (spans, perturbed copies) in the room left
        info = report["transfer_info"]
        assert info["originals"] == len(SENTIMENT) and 0 < info["variants"] <= 40 - len(SENTIMENT)
        assert report["transfer_size"] == len(SENTIMENT) + info["variants"]
        assert report["config"]["augment"] == 16  # a task's few thousand texts: four times `ood`'s variants
    else:
        assert report["transfer_size"] == 40


def test_unknown_method_is_a_clear_error(tmp_path, tiny_model, capsys):
    code = main(["distill", "--teacher", str(tiny_model), "--out", str(tmp_path / "x"), "--method", "magic"])
    assert code == 2 and "unknown method 'magic'" in capsys.readouterr().err


def test_pair_task_distils_from_sentence_pairs(tmp_path, tiny_model, ood_file):
    pairs_tsv = write_tsv(tmp_path / "pairs.tsv", [(1, "a cat sat", "a cat sat down"), (0, "the dog ran", "what city"),
                                                  (1, "fun film", "a fun film"), (0, "i hated it", "the mat")],
                          ("label", "sentence1", "sentence2"))
    _, report = distill(DistillConfig(
        teacher=str(tiny_model), out=str(tmp_path / "pairs"), ood=str(ood_file), eval_data=str(pairs_tsv),
        eval_text_col="sentence1", eval_text_col2="sentence2", cache_dir=str(tmp_path / "cache"), transfer_size=60,
        min_words=2, steps=4, batch_size=8, heldout=10, student_options="embedding_dim=8,hidden_size=8"))
    assert report["config"]["pairs"] is True and "sentence pairs" in report["transfer"]
    sample = (tmp_path / "pairs" / "transfer_sample.tsv").read_text().splitlines()[1:]
    assert all(" [SEP] " in line for line in sample)
    assert report["eval"]["n"] == 4


def test_vocab_from_keeps_words_the_transfer_set_lacks(tmp_path, tiny_model, tiny_distill_config):
    from transformers import AutoTokenizer

    extra = tmp_path / "extra.txt"
    extra.write_text("cat dog ran sat on mat\n")  # words the ood sentences (WORDS[:34]) never use
    _, plain = distill(tiny_distill_config("plain", max_vocab=0))
    student, widened = distill(tiny_distill_config("widened", max_vocab=0,
                                      vocab_from=str(extra)))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    new_ids = tokenizer("cat dog ran sat on mat", add_special_tokens=False)["input_ids"]
    assert widened["vocabulary"] == plain["vocabulary"] + len(set(new_ids))
    unk = student.from_teacher_ids([[tokenizer.unk_token_id]])[0][0]
    assert unk not in student.from_teacher_ids([new_ids])[0]
    assert load_student(tmp_path / "plain").from_teacher_ids([new_ids])[0] == [unk] * len(new_ids)


def test_class_weighting_changes_the_student_only_when_asked(tmp_path, tiny_distill_config, rule_teacher):
    # every labelled input kept: the rule teacher calls most random sentences negative, so its classes are uneven
    unbalanced = dict(teacher=str(rule_teacher), balance=False)
    distill(tiny_distill_config("plain", **unbalanced))
    distill(tiny_distill_config("off", **unbalanced, class_weighting=0.0))
    distill(tiny_distill_config("weighted", **unbalanced, class_weighting=1.0))
    plain, off, weighted = (load_file(tmp_path / name / "last" / "model.safetensors") for name in
                            ("plain", "off", "weighted"))
    assert all(np.array_equal(plain[name].numpy(), off[name].numpy()) for name in plain)
    assert any(not np.array_equal(plain[name].numpy(), weighted[name].numpy()) for name in plain)


def test_negative_class_weighting_is_refused(tiny_distill_config):
    with pytest.raises(ConfigError, match="--class-weighting"):
        distill(tiny_distill_config("bad", class_weighting=-1.0))


def test_weight_average_is_the_student_kept_and_resumes_exactly(tmp_path, tiny_distill_config):
    def last(name):
        return load_file(tmp_path / name / "last" / "model.safetensors")

    distill(tiny_distill_config("plain", ema_decay=0.0))
    distill(tiny_distill_config("no-memory", ema_decay=1e-9))  # an average that forgets at once: the weights
    distill(tiny_distill_config("straight", ema_decay=0.5))
    assert distill(tiny_distill_config("resumed", ema_decay=0.5), stop_after_steps=8) == (None, {})
    distill(tiny_distill_config("resumed", ema_decay=0.5))
    plain, no_memory, straight, resumed = (last(name) for name in ("plain", "no-memory", "straight", "resumed"))
    for name in plain:
        np.testing.assert_allclose(no_memory[name].numpy(), plain[name].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(straight[name].numpy(), resumed[name].numpy(), err_msg=name)
    assert any(not np.allclose(straight[name].numpy(), plain[name].numpy()) for name in plain)
    for part in ("", "last/"):  # the best and last students load and answer
        assert load_student(tmp_path / "straight" / part).logits(["a good film"]).shape == (1, 2)


def test_weight_average_by_default_spans_the_last_tenth_of_a_short_run(tmp_path, tiny_distill_config):
    """Unset, `--ema-decay` is min(0.999, 1 - 10 / steps), written resolved into run.json."""
    distill(tiny_distill_config("default"))  # 12 steps
    distill(tiny_distill_config("set", ema_decay=1 - 10 / 12))
    assert json.loads((tmp_path / "default" / "run.json").read_text())["config"]["ema_decay"] == 1 - 10 / 12
    default, given = (load_file(tmp_path / name / "last" / "model.safetensors") for name in ("default", "set"))
    for name in default:
        np.testing.assert_array_equal(default[name].numpy(), given[name].numpy(), err_msg=name)


def test_weight_average_default_follows_the_run_length():
    assert default_ema_decay(DistillConfig(steps=10_000)) == 0.999
    assert default_ema_decay(DistillConfig(steps=40_000)) == 0.999
    assert default_ema_decay(DistillConfig(steps=100)) == 1 - 10 / 100
    assert default_ema_decay(DistillConfig(steps=5)) == 0.0


def test_weight_average_decay_must_be_a_fraction(tiny_distill_config):
    with pytest.raises(ConfigError, match="--ema-decay"):
        distill(tiny_distill_config("bad", ema_decay=1.5))
