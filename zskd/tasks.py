"""The named benchmark tasks (sst2, trec, mrpc, rte): where their files are, which columns, labels and metric.

Files come from the data root (see `resources.find_data_root`); with no data root, from the `datasets` hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zskd.data import DataError, Examples, read_labelled
from zskd.resources import ResourceError, find_data_root


@dataclass(frozen=True)
class Task:
    """A named task. `metric` is the headline number: "accuracy", or "f1" (F1 of label 1, as GLUE scores MRPC)."""

    name: str
    splits: tuple[str, ...]  # files <split>.tsv in the task folder
    eval_split: str
    text_col: str
    text_col2: str | None
    label_names: tuple[str, ...]
    metric: str
    description: str
    hub: tuple[str, str | None, dict[str, str], str]  # (dataset path, config, our split -> hub split, hub label column)
    text_kind: str = "text"  # what one input is, for generation prompts
    label_phrases: tuple[str, ...] = ()  # how each label reads in a prompt: "a {text_kind} that {phrase}"

    @property
    def is_pair(self) -> bool:
        return self.text_col2 is not None


TASKS: dict[str, Task] = {
    "sst2": Task(
        "sst2", ("train", "dev", "test"), "dev", "sentence", None, ("negative", "positive"), "accuracy",
        "movie review sentiment", ("glue", "sst2", {"train": "train", "dev": "validation"}, "label"),
        "movie review", ("is negative", "is positive"),
    ),
    "trec": Task(
        "trec", ("train", "test"), "test", "text", None, ("DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"), "accuracy",
        "question type", ("CogComp/trec", None, {"train": "train", "test": "test"}, "coarse_label"),
        "question", ("asks for a description, a definition or a reason", "asks about a thing, such as an animal, "
                     "a colour, a food or a product", "asks what an abbreviation stands for", "asks about a person "
                     "or a group of people", "asks about a place", "asks for a number, a date, an amount or a size"),
    ),
    "mrpc": Task(
        "mrpc", ("train", "dev"), "dev", "sentence1", "sentence2", ("not_paraphrase", "paraphrase"), "f1",
        "paraphrase detection", ("glue", "mrpc", {"train": "train", "dev": "validation"}, "label"),
    ),
    "rte": Task(
        "rte", ("train", "dev"), "dev", "sentence1", "sentence2", ("entailment", "not_entailment"), "accuracy",
        "textual entailment", ("glue", "rte", {"train": "train", "dev": "validation"}, "label"),
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}: choose one of {', '.join(TASKS)} or pass a data file")
    return TASKS[name]


def load_split(task: str | Task, split: str | None = None, data_root: str | Path | None = None) -> Examples:
    """A split of a named task (default: its evaluation split), from the data root or else the `datasets` hub."""
    task = get_task(task) if isinstance(task, str) else task
    split = split or task.eval_split
    if split not in task.splits:
        raise DataError(f"task {task.name} has no split {split!r}: choose one of {', '.join(task.splits)}")
    root = find_data_root(data_root)
    if root is None:
        return _load_from_hub(task, split)
    path = root / task.name / f"{split}.tsv"
    if not path.is_file():
        raise ResourceError(f"{path} is missing: point --data-root (or $ZSKD_DATA) "
                            f"at a folder with {task.name}/{split}.tsv")
    return read_labelled(path, task.text_col, "label", task.text_col2, task.label_names)


def _load_from_hub(task: Task, split: str) -> Examples:
    """The same split from the `datasets` hub, labels mapped to our label order by name."""
    try:
        import datasets
    except ImportError as error:
        raise ResourceError(
            "no data root found and the `datasets` package is missing: pass --data-root, "
            f"or `pip install datasets` to load {task.name} from the hub"
        ) from error
    path, config, split_names, label_col = task.hub
    if split not in split_names:
        raise DataError(f"task {task.name}: split {split!r} has no hub equivalent; use a data root")
    dataset = datasets.load_dataset(path, config, split=split_names[split])
    hub_names = dataset.features[label_col].names
    hub_to_ours = {i: task.label_names.index(_canonical_label(task, name)) for i, name in enumerate(hub_names)}
    text_col = "text" if task.name == "trec" else task.text_col
    return Examples(
        texts=list(dataset[text_col]),
        texts2=list(dataset[task.text_col2]) if task.text_col2 else None,
        labels=[hub_to_ours[label] for label in dataset[label_col]],
        label_names=list(task.label_names),
        source=f"hub:{path}/{config or ''}:{split_names[split]}",
    )


def _canonical_label(task: Task, hub_name: str) -> str:
    """Hub label names spelled as ours (GLUE uses "not_equivalent"/"equivalent" for MRPC)."""
    aliases = {"not_equivalent": "not_paraphrase", "equivalent": "paraphrase"}
    name = aliases.get(hub_name, hub_name)
    if name not in task.label_names:
        raise DataError(f"task {task.name}: hub label {hub_name!r} is not one of {', '.join(task.label_names)}")
    return name
