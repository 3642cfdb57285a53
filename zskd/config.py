"""Typed run configurations: one dataclass per command, read from defaults < YAML file < command-line flags.

Every dataclass field is a flag (`max_length` -> `--max-length`); its `help` metadata is the flag's help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A config file or flag that does not fit the config dataclass."""


def option(default: Any = None, help: str = "", factory: Callable[[], Any] | None = None) -> Any:
    """A config field with its `--help` text: `lr: float = option(5e-5, "peak learning rate")`; `factory` for a
    mutable default (an options group: `adversarial: AdversarialOptions = option(help=..., factory=...)`)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def _base_type(annotation: Any) -> Any:
    """int for `int | None`, and so on."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def _option_groups(cls: type) -> dict[str, type]:
    """The fields of `cls` that are themselves option dataclasses (a method's options), by name."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """Add one flag per field of `cls`; defaults stay None so that only flags the user gave override the YAML.
    A field that is itself an options dataclass (`adversarial: AdversarialOptions`) becomes a titled group of
    flags named after it (`--adversarial-mask-rate`, stored as "adversarial.mask_rate")."""
    hints = typing.get_type_hints(cls)
    groups = _option_groups(cls)
    for field in dataclasses.fields(cls):
        if field.name in groups:
            group = parser.add_argument_group(f"{field.name.replace('_', '-')} options", field.metadata.get("help"))
            add_config_arguments(group, groups[field.name], prefix=f"{field.name}.")
            continue
        flag = "--" + (prefix + field.name).replace(".", "-").replace("_", "-")
        dest = prefix + field.name
        kind = _base_type(hints[field.name])
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = field.metadata.get("help", "")
        if default is not None:
            help_text += f" (default: {default})"
        if kind is bool:
            parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=dest, type=kind, default=None, help=help_text,
                                metavar=field.name.upper())


def load_config(cls: type[C], yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> C:
    """Build `cls` from its defaults, then the YAML file, then the non-None `overrides` (parsed flags, or keyword
    arguments). An options group is a mapping in YAML (`adversarial: {mask_rate: 0.3}`), "group.name" keys in
    `overrides`, or the group's dataclass or a dict of its fields as a keyword argument."""
    values: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{where} ({getattr(error, 'problem', None) or error})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of option: value")
        values.update(_checked(cls, loaded, str(path)))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    names = {f.name for f in dataclasses.fields(cls)}
    for name, group in _option_groups(cls).items():
        if not isinstance(values.get(name) or {}, dict):
            raise ConfigError(f"{yaml_path}: {name} is a mapping of option: value")
        merged = dict(values.get(name) or {})
        if name in given:
            given_group = given.pop(name)
            merged.update(dataclasses.asdict(given_group) if dataclasses.is_dataclass(given_group) else given_group)
        merged.update({k.split(".", 1)[1]: given.pop(k) for k in list(given) if k.startswith(name + ".")})
        values[name] = group(**_checked(group, merged, f"{name} options"))
    values.update({k: v for k, v in given.items() if k in names})
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"incomplete config: {error}") from error


TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _fits(value: Any, kind: type) -> bool:
    """Whether a YAML value is of `kind`: a bool is no number, an int is a float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


def _checked(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values`, refused when a key is not a field of `cls` or a value is not of the field's type: YAML types are
    taken strictly (the string "false" is not a boolean, nor true a number); an int passes for a float."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; options are {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        hint = hints[name]
        kinds = [a for a in typing.get_args(hint) if a is not type(None)] \
            if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
        if value is None or not all(kind in TYPE_WORDS or kind is dict for kind in kinds):
            continue
        if not any(_fits(value, kind) for kind in kinds):
            raise ConfigError(f"{where}: {name} is {value!r} ({type(value).__name__}); it takes "
                              f"{' or '.join(TYPE_WORDS.get(kind, 'a mapping') for kind in kinds)}")
    return {name: float(v) if _base_type(hints[name]) is float and isinstance(v, int) else v
            for name, v in values.items()}


def require(flag: str, value: Any, ok: bool, allowed: str) -> None:
    """One line naming the option, its value and what is allowed, unless `ok`."""
    if not ok:
        raise ConfigError(f"--{flag.replace('_', '-')} {value}: {allowed}")


def check_numbers(config: Any, at_least: dict[str, float] = (), positive: tuple[str, ...] = (),
                  fractions: tuple[str, ...] = ()) -> None:
    """Range checks of a config's numeric options, each named in its error: `at_least` {name: least value},
    `positive` (> 0), `fractions` (in [0, 1)); every float must be finite. An optional option left unset (None)
    passes."""
    for name, least in dict(at_least).items():
        value = getattr(config, name)
        require(name, value, value is None or value >= least, f"must be at least {least:g}")
    for name in positive:
        value = getattr(config, name)
        require(name, value, value is None or (math.isfinite(value) and value > 0), "must be a positive number")
    for name in fractions:
        value = getattr(config, name)
        require(name, value, value is None or 0.0 <= value < 1.0, "must be a fraction in [0, 1)")
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float):
            require(field.name, value, math.isfinite(value), "must be a finite number")


def config_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def append_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append one JSON line per record (metrics, a method's samples)."""
    with open(path, "a") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


def write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (temporary name, then rename), so a reader never sees half a file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory: give a file name for the JSON")
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
