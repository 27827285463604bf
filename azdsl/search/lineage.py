"""Where a program came from: its ancestry, one step per individual, and its replay.

The search records every individual it makes (azdsl.search.engine: a lineage table in the compiled
loop): an id, its parent's id, what made it (a mutation type with the component and position
it touched, or an origin: an initial program, a random program, a program injected without a
lineage), its number in its experiment, the key of the random stream it drew from, and its
fitness on the search tasks. Rows stay while a member of the population or a best-so-far
descends from them. An `Ancestry` is the chain from a first program to an individual; since a
mutation is a pure function of the parent and the stream key (azdsl.search.mutate.mutate_with_key),
`replay` rebuilds every program of the chain from the first one.

Ids are `tag << ID_SHIFT | number`: the number of the individual in its experiment, and its
island's tag (0 in a run without islands), so they stay unique across migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azdsl import state as st
from azdsl.language.program import Program
from azdsl.search.mutate import MUTATION_TYPES, RECORD_TYPES, MutationConfig, mutate_with_key

ID_SHIFT = 40  # the bits of an individual's number in a lineage id (an island's tag above)
LINEAGE_FORMAT = "azdsl-lineage"
LINEAGE_VERSION = 1
_FIELDS = ("id", "parent", "mutation", "component", "position", "individual", "key",
           "fitness")


@dataclass(frozen=True)
class Step:
    """One individual of an ancestry."""

    id: int
    parent: int  # the parent's id; -1 for a first program
    mutation: str  # a mutation type, or an origin (azdsl.search.mutate.RECORD_TYPES)
    component: int  # 0 Setup, 1 Predict, 2 Learn; -1 where it does not apply
    position: int  # the instruction changed or removed, or the gap filled; -1: none
    individual: int  # its number in its experiment (on its island)
    key: int  # the random stream it drew from
    fitness: float  # on the search tasks

    def to_json(self) -> list[Any]:
        return [self.id, self.parent, self.mutation, self.component, self.position,
                self.individual, self.key, self.fitness]

    @staticmethod
    def from_json(value: Any, key: str) -> Step:
        """A step `to_json` wrote (checked as user input: StateError naming the field)."""
        fields = st.items(value, key, length=len(_FIELDS))
        mutation = st.text(fields[2], f"{key}[2]")
        if mutation not in RECORD_TYPES:
            raise st.StateError(f"{key}[2]: {mutation!r} is not a mutation type or origin")
        return Step(id=st.integer(fields[0], f"{key}[0]", -1),
                    parent=st.integer(fields[1], f"{key}[1]", -1),
                    mutation=mutation,
                    component=st.integer(fields[3], f"{key}[3]", -1, 2),
                    position=st.integer(fields[4], f"{key}[4]", -1),
                    individual=st.integer(fields[5], f"{key}[5]", -1),
                    key=st.integer(fields[6], f"{key}[6]", 0, st.UINT64_MAX),
                    fitness=st.fitness(fields[7], f"{key}[7]", unset=True))


@dataclass(frozen=True)
class Ancestry:
    """The chain of individuals from a first program to the last, in birth order."""

    steps: tuple[Step, ...]

    def to_json(self) -> list[list[Any]]:
        return [s.to_json() for s in self.steps]

    @staticmethod
    def from_json(value: Any, key: str) -> Ancestry:
        steps = tuple(Step.from_json(v, f"{key}[{i}]")
                      for i, v in enumerate(st.items(value, key)))
        for i in range(1, len(steps)):
            if steps[i].parent != steps[i - 1].id:
                raise st.StateError(f"{key}[{i}][1]: not the id of the step before")
        return Ancestry(steps)

    def improvements(self) -> list[int]:
        """The indices of the steps that raised the fitness above every ancestor's."""
        best = -float("inf")
        out = []
        for i, step in enumerate(self.steps):
            if step.fitness > best:
                best = step.fitness
                out.append(i)
        return out


def replay(first: Program, ancestry: Ancestry, space: MutationConfig) -> list[Program]:
    """Every program of the chain, rebuilt from the first by replaying each mutation with its
    stream key in `space` (the search's). A step of an origin other than the first (a
    migrant that came without its lineage) cannot be replayed: ValueError."""
    programs = [first]
    for step in ancestry.steps[1:]:
        if step.mutation not in (*MUTATION_TYPES, "none"):
            raise ValueError(f"step {step.id} is {step.mutation!r}: no mutation to replay")
        child, record = mutate_with_key(programs[-1], step.key, space)
        if record.type != step.mutation:
            raise ValueError(f"step {step.id}: replaying key {step.key} drew "
                             f"{record.type!r}, not {step.mutation!r} (another search space?)")
        programs.append(child)
    return programs


def lineage_document(experiments: list[dict[str, Any]]) -> dict[str, Any]:
    """The run folder's lineage.json: per experiment, the ancestry of its best program
    (`first`: the first program's text, `steps`: Step.to_json rows)."""
    return {"format": LINEAGE_FORMAT, "version": LINEAGE_VERSION, "fields": list(_FIELDS),
            "experiments": experiments}
