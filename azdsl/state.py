"""Reading a search state back from a checkpoint, every field checked as user input.

A checkpoint's checksum catches accidents, not edits, and the compiled search loop and the VM
index memory with the cells, slots and positions a state holds without checking them. So a
state is read through these functions: every value is checked for its type and range before
anything uses it, and a problem raises StateError naming the field (`current.next_slot: ...`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from azdsl.limits import MAX_INT

UINT64_MAX = 2**64 - 1
_UINT128_MAX = 2**128 - 1


class StateError(ValueError):
    """A state field that is missing, of the wrong type or out of range."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def integer(value: Any, key: str, low: int = 0, high: int = MAX_INT) -> int:
    """`value` as a whole number in [low, high] (counters stay far from int64's end, as the
    compiled loop keeps them in int64)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise StateError(f"{key}: must be a whole number, got {_show(value)}")
    result = int(value)
    if not low <= result <= high:
        bound = f"in [{low}, {high}]" if result > high or high < MAX_INT else f"at least {low}"
        raise StateError(f"{key}: {_show(result)} is out of range (must be {bound})")
    return result


def number(value: Any, key: str, low: float = -math.inf, high: float = math.inf) -> float:
    """`value` as a finite float in [low, high] (the search never saves NaN or inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise StateError(f"{key}: must be a number, got {_show(value)}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not (math.isfinite(result) and low <= result <= high):
        bound = "a finite number" + (f" in [{low}, {high}]" if high < math.inf else
                                     f" >= {low}" if low > -math.inf else "")
        raise StateError(f"{key}: {_show(value)} is out of range (must be {bound})")
    return result


def fitness(value: Any, key: str, *, unset: bool = False) -> float:
    """A fitness as the search computes it, in [0, 1]; with `unset`, -1 too (the best so far
    before there is one)."""
    result = number(value, key, -1.0 if unset else 0.0, 1.0)
    if -1.0 < result < 0.0:
        raise StateError(f"{key}: {_show(value)} is out of range (must be -1 or in [0, 1])")
    return result


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise StateError(f"{key}: must be true or false, got {_show(value)}")
    return bool(value)


def text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{key}: must be a string, got {_show(value)}")
    return value


def items(value: Any, key: str, length: int | None = None, most: int | None = None
          ) -> list[Any]:
    """`value` as a list, of exactly `length` or at most `most` entries when given."""
    if not isinstance(value, list | tuple):
        raise StateError(f"{key}: must be a list, got {_show(value)}")
    if length is not None and len(value) != length:
        raise StateError(f"{key}: holds {len(value)} entries, not {length}")
    if most is not None and len(value) > most:
        raise StateError(f"{key}: holds {len(value)} entries, more than {most}")
    return list(value)


class Fields:
    """One object of a state: its fields by name, each problem naming `path.name`."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise StateError(f"{path or 'the state'}: must be an object, got {_show(data)}")
        self.data: dict[str, Any] = data
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str) -> Any:
        if name not in self.data:
            raise StateError(f"{self.key(name)}: missing")
        return self.data[name]

    def only(self, names: tuple[str, ...]) -> None:
        """No fields but `names` (for objects rebuilt from every field they hold)."""
        extra = sorted(set(self.data) - set(names))
        if extra:
            raise StateError(f"{self.key(extra[0])}: unknown field")

    def integer(self, name: str, low: int = 0, high: int = MAX_INT) -> int:
        return integer(self.get(name), self.key(name), low, high)

    def number(self, name: str, low: float = -math.inf) -> float:
        return number(self.get(name), self.key(name), low)

    def fitness(self, name: str, *, unset: bool = False) -> float:
        return fitness(self.get(name), self.key(name), unset=unset)

    def boolean(self, name: str) -> bool:
        return boolean(self.get(name), self.key(name))

    def text(self, name: str) -> str:
        return text(self.get(name), self.key(name))

    def items(self, name: str, length: int | None = None, most: int | None = None
              ) -> list[Any]:
        return items(self.get(name), self.key(name), length, most)

    def table(self, name: str) -> Fields:
        return Fields(self.get(name), self.key(name))

    def optional_table(self, name: str) -> Fields | None:
        return None if self.get(name) is None else self.table(name)


def present_as_configured(saved: object, on: bool, key: str, feature_is: str,
                          what: str) -> None:
    """A saved part of a state (the FEC cache, the hurdle) must be there exactly when the
    config turns its feature on; StateError otherwise."""
    if (saved is None) == on:
        raise StateError(f"{key}: must be " + (
            f"{what}: {feature_is} on in the config" if on else
            f"null: {feature_is} off in the config"))
