"""The training loop's contract: its arithmetic (pinned losses), that a student learns, the method plug-in boundary,
and the run directory's checks."""

import json

import pytest
import torch

from zskd.cli import main
from zskd.distill import distill
from zskd.methods import METHODS, Method, Objective
from zskd.methods.adversarial import AdversarialOptions
from zskd.methods.random_tokens import random_transfer_set


def losses_logged(out) -> list:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method, options, expected", [
    ("ood", {}, [None, 0.06486, 0.06744, 0.04719, 0.03374]),
    ("adversarial", {"adversarial": AdversarialOptions(every=1)}, [None, 0.05702, 0.06258, 0.04184, 0.03168]),
])
def test_the_first_losses_of_a_seeded_run_are_pinned(tmp_path, tiny_distill_config, method, options, expected):
    """Values from the loop before methods became plug-ins (same weights, bit for bit): a change here is a change
    of the loop's arithmetic or of its random stream, and must be deliberate. The variants are those of that time
    (the default has other-words since session 37)."""
    distill(tiny_distill_config("run", method=method, steps=4, eval_every=1, eval_data=None,
                                augment_kinds="part,near-copy", **options))
    assert losses_logged(tmp_path / "run") == pytest.approx(expected, abs=2e-5)


def test_heldout_agreement_rises_well_above_its_starting_point(tmp_path, tiny_distill_config, rule_teacher):
    _, report = distill(tiny_distill_config("run", teacher=str(rule_teacher), eval_data=None, transfer_size=200,
                                            heldout=40, max_vocab=0, batch_size=16, steps=120, eval_every=40))
    curve = [json.loads(line)["heldout_agreement"]
             for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(curve) == 4 and curve[0] <= 55.0  # step 0: the initialised student, about chance on 2 classes
    assert report["heldout_agreement"] == max(curve) >= curve[0] + 30.0


class CountingObjective(Objective):
    """A toy objective: an L2 pull of the student's logits toward zero, counting its calls (state, resumed)."""

    name = "toy"
    artefacts = ("toy.jsonl",)

    def __init__(self, setup):
        self.calls = torch.zeros(())
        self.path = setup.work / self.artefacts[0]

    def loss(self, step, batch):
        self.calls += 1
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": step + 1, "calls": int(self.calls)}) + "\n")
        return 0.01 * batch.student_logits.pow(2).mean()

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"].clone()


def test_a_method_is_one_registry_line(tmp_path, tiny_distill_config, monkeypatch):
    monkeypatch.setitem(METHODS, "toy", Method(transfer_set=random_transfer_set,
                                               objectives=lambda setup: [CountingObjective(setup)]))
    distill(tiny_distill_config("straight", method="toy", transfer_size=40))
    assert distill(tiny_distill_config("resumed", method="toy", transfer_size=40), stop_after_steps=8) == (None, {})
    _, report = distill(tiny_distill_config("resumed", method="toy", transfer_size=40))
    assert report["method"] == "toy" and report["artefacts"] == ["toy.jsonl"]
    for run in ("straight", "resumed"):
        lines = [json.loads(line) for line in (tmp_path / run / "toy.jsonl").read_text().splitlines()]
        assert lines == [{"step": s, "calls": s} for s in range(1, 13)]  # resumed: the count came back from step 8
    assert losses_logged(tmp_path / "straight") == losses_logged(tmp_path / "resumed")


def test_the_toy_objective_changes_what_is_learned(tmp_path, tiny_distill_config, monkeypatch):
    monkeypatch.setitem(METHODS, "toy", Method(transfer_set=random_transfer_set,
                                               objectives=lambda setup: [CountingObjective(setup)]))
    distill(tiny_distill_config("toy", method="toy", transfer_size=40))
    distill(tiny_distill_config("plain", method="random", transfer_size=40))
    assert losses_logged(tmp_path / "toy")[1:] != losses_logged(tmp_path / "plain")[1:]


def test_resuming_with_other_options_is_refused(tmp_path, tiny_distill_config, capsys):
    assert distill(tiny_distill_config("run"), stop_after_steps=4) == (None, {})
    with pytest.raises(Exception, match=r"was started with other options \(steps\)"):
        distill(tiny_distill_config("run", steps=20))
    _, report = distill(tiny_distill_config("run", cache_dir=str(tmp_path / "other-cache")))  # where labels live: free
    assert report["steps"] == 12


def test_options_that_do_not_fit_the_method_or_student_are_refused(tmp_path, tiny_model, capsys):
    base = ["distill", "--teacher", str(tiny_model), "--out", str(tmp_path / "x")]
    cases = {
        ("--hidden-weight", "1.0"): "--hidden-weight needs a student that takes hidden-state targets: transformer",
        ("--method", "adversarial", "--adversarial-every", "0"): "--adversarial-every 0 must be at least 1",
        ("--method", "generate"): "pass --generated FILE.parquet",
        ("--method", "indomain"): "method indomain needs --indomain-data FILE or --eval-task NAME",
    }
    for flags, message in cases.items():
        assert main([*base, *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.partial").exists()


def test_help_groups_the_adversarial_options(capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    help_text = capsys.readouterr().out
    assert "adversarial options:" in help_text and "--adversarial-mask-rate" in help_text
    assert help_text.index("adversarial options:") < help_text.index("\n  --adversarial-mask-rate")
