import argparse
from pathlib import Path

import pytest

from zskd.config import ConfigError, add_config_arguments, load_config
from zskd.train_teacher import TeacherTrainConfig


def parse(argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TeacherTrainConfig)
    return vars(parser.parse_args(argv))


def test_defaults_then_yaml_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: sst2\nlr: 1.0e-4\nepochs: 2\nfreeze_embeddings: false\n")
    config = load_config(TeacherTrainConfig, path, parse(["--epochs", "5", "--out", "x"]))
    assert ((config.task, config.lr, config.epochs, config.freeze_embeddings, config.out)
            == ("sst2", 1e-4, 5.0, False, "x"))
    assert config.batch_size == TeacherTrainConfig().batch_size


def test_boolean_flags_have_a_no_form():
    assert parse(["--no-freeze-embeddings"])["freeze_embeddings"] is False
    assert parse([])["freeze_embeddings"] is None  # unset: the YAML or the default decides


def test_unknown_yaml_option_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown option 'learning_rate'"):
        load_config(TeacherTrainConfig, path)


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_recipe_loads_and_opens_with_its_command(path):
    from zskd.distill import DistillConfig

    cls = TeacherTrainConfig if path.name.startswith("teacher-") else DistillConfig
    config = load_config(cls, path)
    assert path.read_text().startswith(f"# zskd {'teacher-train' if cls is TeacherTrainConfig else 'distill'} "
                                       f"--config configs/{path.name}")
    assert config.seed == 0


def test_an_options_group_reads_from_yaml_flags_and_keywords(tmp_path):
    from zskd.distill import DistillConfig
    from zskd.methods.adversarial import AdversarialOptions

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, DistillConfig)
    path = tmp_path / "c.yaml"
    path.write_text("method: adversarial\nadversarial:\n  mask_rate: 0.5\n  every: 3\n")
    flags = vars(parser.parse_args(["--adversarial-every", "4"]))
    config = load_config(DistillConfig, path, flags)
    assert config.adversarial == AdversarialOptions(mask_rate=0.5, every=4)  # the flag over the YAML, defaults kept
    assert load_config(DistillConfig, overrides={"adversarial": {"tau": 0.5}}).adversarial.tau == 0.5
    path.write_text("adversarial:\n  rate: 0.5\n")
    with pytest.raises(ConfigError, match="adversarial options: unknown option 'rate'"):
        load_config(DistillConfig, path)
