"""The config a cell runs: its shipped TOML with the cell's overrides and the budget scale.

Without changes the shipped text is used as it is (the run folder's config.toml is then the
file byte for byte, comments included); with changes the TOML is written anew from its data,
under a comment naming the file and the changes. Either way it is read by the one config
reader (azdsl.search.config), with relative paths resolved against examples/, and the run
folder records it as any `azdsl evolve` run does.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azdsl.errors import ConfigError
from azdsl.experiments.definitions import Cell
from azdsl.resources import resource
from azdsl.search.config import Config, parse_config

# The budget keys --budget-scale multiplies (max_experiments and sufficient_fitness stay).
SCALED = ("max_individuals", "max_train_steps", "max_seconds")


@dataclass(frozen=True)
class CellConfig:
    """A cell's config as it runs: its TOML text and the shipped file it comes from."""

    text: str
    source: Path  # relative paths in it are relative to this file's folder

    def parse(self, filename: str = "") -> Config:
        return parse_config(self.text, filename=filename or str(self.source),
                            base_dir=self.source.parent)

    def data(self) -> dict[str, Any]:
        return tomllib.loads(self.text)


def cell_config(cell: Cell, budget_scale: float = 1.0) -> CellConfig:
    """The config `cell` runs with the budgets multiplied by `budget_scale`."""
    source = resource("examples", cell.config)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the config of the cell {cell.name} "
                          f"({exc})") from None
    data = tomllib.loads(text)
    changes: dict[str, Any] = dict(cell.overrides)
    if budget_scale != 1.0:
        # the cell's own budget, where it overrides the file's, is the one scaled
        budget = {**data.get("budget", {}),
                  **{k.removeprefix("budget."): v for k, v in changes.items()
                     if k.startswith("budget.")}}
        for key in SCALED:
            value = budget.get(key)
            if value:  # 0 (no limit) stays 0; a limit stays at least 1
                scaled = value * budget_scale
                changes[f"budget.{key}"] = (max(1, round(scaled)) if isinstance(value, int)
                                            else scaled)
    if not changes:
        return CellConfig(text, source)
    for dotted, value in changes.items():
        table, _, key = dotted.rpartition(".")
        data.setdefault(table, {})[key] = value
    head = (f"# examples/{cell.config} as `azdsl experiment` runs it in the cell {cell.name}, "
            "with " + ", ".join(f"{k} = {_value(v)}" for k, v in changes.items()) + "\n")
    return CellConfig(head + toml_text(data), source)


def shipped_program(name: str) -> Any:
    """A program of examples/, by its file name, simplified (as references are scored)."""
    from azdsl.language.parse import parse
    from azdsl.language.simplify import simplify

    file = resource("examples", name)
    return simplify(parse(file.read_text(encoding="utf-8"), str(file)))


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two configs' data."""
    found = []
    for table in sorted(set(a) | set(b)):
        x, y = a.get(table), b.get(table)
        if isinstance(x, dict) and isinstance(y, dict):
            found += [f"{table}.{k}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
        elif x != y:
            found.append(table)
    return found


# ---- TOML out ----------------------------------------------------------------------------------
# The subset configs use: tables and arrays of tables of keys whose values are strings,
# numbers, booleans and lists of those.

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_text(data: Mapping[str, Any]) -> str:
    """`data` (as tomllib reads a config) as TOML text that reads back equal."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items() if not _is_tables(v)]
    for name, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{_key(name)}]", *_pairs(value)]
        elif _is_tables(value):
            for table in value:
                lines += ["", f"[[{_key(name)}]]", *_pairs(table)]
    text = "\n".join(lines).lstrip("\n") + "\n"
    if tomllib.loads(text) != data:  # never a config other than the one meant
        raise ConfigError("internal error: a config did not read back as written")
    return text


def _is_tables(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and bool(value)
                                       and all(isinstance(v, dict) for v in value))


def _pairs(table: Mapping[str, Any]) -> list[str]:
    return [f"{_key(k)} = {_value(v)}" for k, v in table.items()]


def _key(name: str) -> str:
    return name if _BARE.match(name) else _string(name)


def _string(text: str) -> str:
    # JSON's escapes are TOML's; TOML also wants DEL escaped
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list) and not any(isinstance(v, dict) for v in value):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise ConfigError(f"a config value azdsl cannot write as TOML: {value!r}")
