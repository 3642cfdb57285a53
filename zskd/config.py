"""Typed run configurations: one dataclass per command, read from defaults < YAML file < command-line flags.

Every dataclass field is a flag (`max_length` -> `--max-length`); its `help` metadata is the flag's help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A config file or flag that does not fit the config dataclass."""


def _base_type(annotation: Any) -> Any:
    """int for `int | None`, and so on."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one flag per field of `cls`; defaults stay None so that only flags the user gave override the YAML."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        kind = _base_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = field.metadata.get("help", "")
        if default is not None:
            help_text += f" (default: {default})"
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, type=kind, default=None, help=help_text, metavar=field.name.upper())


def load_config(cls: type[C], yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> C:
    """Build `cls` from its defaults, then the YAML file, then the non-None `overrides` (parsed flags)."""
    values: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    if yaml_path:
        path = Path(yaml_path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of option: value")
        unknown = sorted(set(loaded) - names)
        if unknown:
            raise ConfigError(f"{path}: unknown option {unknown[0]!r}; options are {', '.join(sorted(names))}")
        values.update(loaded)
    values.update({k: v for k, v in (overrides or {}).items() if k in names and v is not None})
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"incomplete config: {error}") from error


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def made_with(config: Any, stored: dict[str, Any]) -> bool:
    """Whether `stored` (the config a finished run wrote) describes `config`: options added since the run was made
    count as their defaults, and an option left as None to be resolved during the run (`pairs`) takes the stored
    value. Benchmarks use it to reuse finished runs."""
    expected = dataclasses.asdict(config)
    then = {**dataclasses.asdict(type(config)()), **stored}
    return then == {k: then.get(k) if v is None and k == "pairs" else v for k, v in expected.items()}


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (temporary name, then rename), so a reader never sees half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)
