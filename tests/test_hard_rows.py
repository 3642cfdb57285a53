"""Batches drawn again where the student last disagreed with the teacher (`--hard-fraction`)."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import assert_resuming_changes_nothing
from zskd.config import ConfigError
from zskd.distill import distill
from zskd.hard_rows import HardRows


def test_draws_follow_the_last_losses():
    hard = HardRows(rows=100, fraction=0.5, batch_size=64, seed=0)
    assert hard.count == 32
    assert len(set(hard.draw(0))) > 16  # nothing visited yet: uniform
    assert hard.draw(0) == hard.draw(0) != hard.draw(1)  # a function of the seed and the step
    hard.update(list(range(100)), torch.full((100,), 1e-6))
    hard.update([7], torch.tensor([10.0]))
    drawn = hard.draw(1)
    assert drawn.count(7) > 28  # 10 against 99 x 1e-6


def test_unvisited_rows_count_at_the_mean_of_the_visited():
    hard = HardRows(rows=4, fraction=0.5, batch_size=4000, seed=0)
    hard.update([0, 1], torch.tensor([1.0, 3.0]))  # rows 2 and 3 weigh 2.0 each: shares 1/8, 3/8, 2/8, 2/8
    shares = np.bincount(hard.draw(0), minlength=4) / hard.count
    np.testing.assert_allclose(shares, [1 / 8, 3 / 8, 2 / 8, 2 / 8], atol=0.04)


def test_off_draws_nothing_and_saves_nothing():
    hard = HardRows(rows=10, fraction=0.0, batch_size=8, seed=0)
    hard.update([1, 2], torch.tensor([1.0, 2.0]))
    assert hard.draw(0) == [] and hard.state_dict() == {}
    assert HardRows(rows=10, fraction=0.99, batch_size=8, seed=0).count == 7  # one row a batch still walks the set


def test_a_run_with_hard_rows_resumes_exactly(tmp_path, tiny_distill_config):
    assert_resuming_changes_nothing(tiny_distill_config, tmp_path, hard_fraction=0.5)
    distill(tiny_distill_config("plain"))
    hard = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    plain = load_file(tmp_path / "plain" / "last" / "model.safetensors")
    assert any(not torch.equal(hard[name], plain[name]) for name in hard)  # the option changes the batches


def test_the_checkpoint_holds_the_losses(tmp_path, tiny_distill_config):
    assert distill(tiny_distill_config("run", hard_fraction=0.5), stop_after_steps=4) == (None, {})
    (checkpoint,) = (tmp_path / "run.partial").glob("checkpoint-*/trainer_state.pt")
    losses = torch.load(checkpoint, weights_only=True)["extra_state"]["hard_rows"]["last_loss"]
    visited = ~torch.isnan(losses)
    assert 0 < int(visited.sum()) <= 4 * 8 and bool((losses[visited] >= 0).all())


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_a_fraction_outside_zero_to_one_is_refused(tiny_distill_config, value):
    with pytest.raises(ConfigError, match="--hard-fraction"):
        distill(tiny_distill_config("bad", hard_fraction=value))
