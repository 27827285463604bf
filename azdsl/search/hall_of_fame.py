"""The hall of fame: the best distinct programs of a run, and their fitness-vs-size front.

Each experiment offers its candidates once, at its end (azdsl.search.evolve: the fittest
members of the final population and the best child it evaluated; an island run: its
candidate and best child), so the search's per-child loop is untouched. Two programs are one
entry when their simplified forms are equal (azdsl.language.simplify.canonical_key); the
entry kept is the better ranked one. Entries rank by search fitness (higher first), then
live size (fewer live instructions first), then where they appeared (earlier first). The
front holds the entries that no other entry matches or beats on both fitness and live size:
the simplest program for each level of fitness (docs/python.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from azdsl import state as st
from azdsl.language.printer import unparse
from azdsl.language.program import Program
from azdsl.language.simplify import canonical_key, live_parts

HALL_OF_FAME_FORMAT = "azdsl-hall-of-fame"
HALL_OF_FAME_VERSION = 1
HALL_OF_FAME_SIZE = 10  # entries kept, unless a caller asks for another number
T = TypeVar("T")


def live_size(program: Program) -> int:
    """The number of live instructions (those `simplify` keeps) over the three components."""
    return sum(len(part) for part in live_parts(program))


@dataclass(frozen=True)
class Entry:
    """A program of the hall of fame: its search fitness, live size and where it appeared."""

    program: Program
    fitness: float  # on the search tasks of its experiment
    size: int  # live instructions
    experiment: int  # from 1
    individual: int  # its number in its experiment (on its island); -1 when not known

    def rank(self) -> tuple[float, int, int, int]:
        return (-self.fitness, self.size, self.experiment, self.individual)

    def to_json(self) -> dict[str, Any]:
        return {"program": unparse(self.program), "fitness": self.fitness, "size": self.size,
                "experiment": self.experiment, "individual": self.individual}

    @staticmethod
    def from_json(value: Any, key: str, read: Callable[[Any, str], Program]) -> Entry:
        """An entry `to_json` wrote, checked as user input (StateError naming the field);
        `read` parses and checks its program text."""
        f = st.Fields(value, key)
        f.only(("program", "fitness", "size", "experiment", "individual"))
        program = read(f.get("program"), f.key("program"))
        size = f.integer("size")
        if size != live_size(program):
            raise st.StateError(f"{f.key('size')}: {size} is not the program's live size, "
                                f"{live_size(program)}")
        return Entry(program, f.fitness("fitness", unset=True), size,
                     f.integer("experiment", 1), f.integer("individual", -1))


def entry(program: Program, fitness: float, experiment: int, individual: int) -> Entry:
    return Entry(program, fitness, live_size(program), experiment, individual)


def merge(entries: Iterable[Entry], size: int = HALL_OF_FAME_SIZE) -> list[Entry]:
    """The best `size` distinct entries, best first. Merging is idempotent: entries merged
    again change nothing, so a hall of fame can be merged into as experiments end."""
    best: dict[Any, Entry] = {}
    for e in entries:
        key = canonical_key(e.program)
        kept = best.get(key)
        if kept is None or e.rank() < kept.rank():
            best[key] = e
    return sorted(best.values(), key=Entry.rank)[:size]


def _front(items: list[T], fitness: Callable[[T], float], size: Callable[[T], int],
           where: Callable[[T], tuple[int, int]]) -> list[T]:
    front: list[T] = []
    for item in sorted(items, key=lambda i: (size(i), -fitness(i), *where(i))):
        if not front or fitness(item) > fitness(front[-1]):
            front.append(item)
    return front


def pareto_front(entries: Iterable[Entry]) -> list[Entry]:
    """The entries no other matches or beats on both fitness and live size, smallest first
    (each one fitter than every smaller one)."""
    return _front(list(entries), lambda e: e.fitness, lambda e: e.size,
                  lambda e: (e.experiment, e.individual))


def document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """hall_of_fame.json (docs/run-folder.md) from the entries as a state holds them
    (`Entry.to_json`, best first): the entries and their front."""
    return {"format": HALL_OF_FAME_FORMAT, "version": HALL_OF_FAME_VERSION,
            "programs": entries,
            "front": _front(entries, lambda e: float(e["fitness"]), lambda e: int(e["size"]),
                            lambda e: (int(e["experiment"]), int(e["individual"])))}

