"""The journey of a run's best program: its ancestry read from lineage.json, every program of it
rebuilt, and what changed at each fitness jump (the paper's "journey" figure, as data).

A run folder's lineage.json holds, per finished experiment, the ancestry of its best program
(azdsl.search.lineage). `read_lineage` reads it as user input; `journey` replays the chain
in the search's own MutationConfig and finds its jumps: the steps that raised the fitness
above every ancestor's (by more than `min_gain` over the jump before). A jump's diff compares
the simplified programs (azdsl.language.simplify) of its parent and itself: what its mutation
changed in the live code. A chain that cannot be replayed to the end
(a migrant put in without its lineage, another search space) keeps its steps and fitnesses,
and says why in `note`. `azdsl lineage` prints a Journey, `azdsl plot --journey` draws it.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azdsl import state as st
from azdsl.language.parse import parse
from azdsl.language.printer import format_instr, unparse
from azdsl.language.program import COMPONENTS, Program
from azdsl.language.simplify import simplify
from azdsl.search.lineage import (
    ID_SHIFT,
    LINEAGE_FORMAT,
    LINEAGE_VERSION,
    Ancestry,
    Step,
    replay,
)
from azdsl.search.mutate import MutationConfig

JOURNEY_FORMAT = "azdsl-journey"  # the document `azdsl lineage --json` prints
JOURNEY_VERSION = 1

# Short names of what made a step, for labels on a figure.
SHORT = {"alter_param": "alter", "randomize_instruction": "new instr.",
         "randomize_component": "new component", "insert_instruction": "insert",
         "remove_instruction": "remove", "trade_instruction": "trade",
         "randomize_algorithm": "new algorithm", "identity": "identity", "none": "copy",
         "initial": "initial", "random": "random", "injected": "injected"}
_FLOAT = re.compile(r"-?\d+\.\d{4,}(?:e-?\d+)?")


@dataclass(frozen=True)
class Entry:
    """One experiment of lineage.json."""

    experiment: int  # from 1
    program: str  # the experiment's best, as text
    first: str | None  # the text of the first program of its ancestry (None: not rebuilt)
    ancestry: Ancestry


@dataclass(frozen=True)
class Jump:
    """A step that raised the fitness, and what its mutation changed."""

    index: int  # of the step in the ancestry
    gain: float  # the fitness above the jump before's (the first jump: its own fitness)
    # per component that changed, "- instr" and "+ instr" lines of the simplified programs;
    # None for the first program and where the programs could not be rebuilt
    diff: dict[str, list[str]] | None
    label: str  # a short line: the mutation, and an instruction it brought


@dataclass(frozen=True)
class Journey:
    entry: Entry
    programs: tuple[Program, ...]  # the chain's programs rebuilt, as many as could be
    jumps: tuple[Jump, ...]
    note: str | None  # why not every program was rebuilt, or None
    islands: int = 1  # the run's island count

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.entry.ancestry.steps


def island(step_id: int) -> int:
    """The island tag of a lineage id (0 in a run without islands)."""
    return step_id >> ID_SHIFT if step_id >= 0 else 0


def read_lineage(path: Path, value: Any) -> list[Entry]:
    """lineage.json's experiments, every field checked (StateError naming it)."""
    doc = st.Fields(value, "")
    if value.get("format") != LINEAGE_FORMAT:
        raise st.StateError(f"{path}: not an azdsl lineage file")
    doc.integer("version", LINEAGE_VERSION, LINEAGE_VERSION)
    entries = []
    for i, item in enumerate(doc.items("experiments")):
        f = st.Fields(item, f"experiments[{i}]")
        experiment, program, first = f.integer("experiment", 1), f.text("program"), f.get(
            "first")
        entries.append(Entry(
            experiment=experiment,
            program=program,
            first=None if first is None else st.text(first, f.key("first")),
            ancestry=Ancestry.from_json(f.get("steps"), f.key("steps"))))
    return entries


def rebuild(first: Program | None, ancestry: Ancestry, space: MutationConfig
            ) -> tuple[list[Program], str | None]:
    """The programs of the chain, replayed one step at a time from `first`, as far as they
    can be, and why they stop short (None when every one was rebuilt)."""
    steps = ancestry.steps
    if not steps:
        return [], "the lineage has no steps"
    if first is None:
        return [], (f"its first step is {steps[0].mutation!r} (a program put in without its "
                    "lineage): the programs cannot be rebuilt")
    programs = [first]
    for before, step in itertools.pairwise(steps):
        try:
            programs.append(replay(programs[-1], Ancestry((before, step)), space)[-1])
        except ValueError as exc:
            return programs, (f"the programs are rebuilt up to step {len(programs) - 1}; "
                              f"{exc}")
    return programs, None


def _lines(program: Program) -> list[list[str]]:
    return [[format_instr(i) for i in part] for part in simplify(program).components]


def diff(before: Program | None, after: Program) -> dict[str, list[str]]:
    """The lines each component's simplified form lost ("- ") and gained ("+ ")."""
    old = _lines(before) if before is not None else [[], [], []]
    out: dict[str, list[str]] = {}
    for component, a, b in zip(COMPONENTS, old, _lines(after), strict=True):
        lines = [line for line in difflib.ndiff(a, b) if line[:1] in "+-"]
        if lines:
            out[component.value] = lines
    return out


def label(step: Step, change: dict[str, list[str]] | None) -> str:
    """`new instr. Learn: + s1 = s0 - s3 (+2 lines)`: the mutation, the first line it added
    (or removed) and how many more lines changed, or `alter Learn: s2 = 0.0101 → 0.0226`
    where it altered one instruction; long floats cut to 3 digits."""
    where = f" {COMPONENTS[step.component].value}" if step.component >= 0 else ""
    text = SHORT.get(step.mutation, step.mutation) + where
    if not change:
        return text
    lines = [line for part in change.values() for line in part]
    if len(lines) == 2 and lines[0][:1] == "-" and lines[1][:1] == "+":
        old, new = (_short(line[2:]).partition(" = ") for line in lines)
        if old[0] == new[0]:  # one instruction altered: `s2 = 0.0101 → 0.0226`
            return f"{text}: {new[0]} = {old[2]} → {new[2]}"
    # the jump's own component first, an added line before a removed one
    own = change.get(COMPONENTS[step.component].value, []) if step.component >= 0 else []
    shown = next((x for x in own + lines if x.startswith("+")), (own + lines)[0])
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return f"{text}: {shown[0]} {_short(shown[2:])}{more}"


def _short(line: str) -> str:
    return _FLOAT.sub(lambda m: f"{float(m.group()):.3g}", line)


def journey(entry: Entry, first: Program | None, space: MutationConfig,
            min_gain: float = 0.0, islands: int = 1) -> Journey:
    """The chain rebuilt and its jumps: each improvement (Ancestry.improvements) that is more
    than `min_gain` above the jump before it."""
    programs, note = rebuild(first, entry.ancestry, space)
    if note is None and programs[-1] != parse(entry.program, "lineage.json"):
        note = "the rebuilt chain does not end at the experiment's best program"
    jumps: list[Jump] = []
    last: int | None = None
    steps = entry.ancestry.steps
    for i in entry.ancestry.improvements():
        gain = steps[i].fitness - (steps[last].fitness if last is not None else 0.0)
        if last is not None and gain <= min_gain:
            continue
        # what the jump's own mutation changed (the first program has no parent)
        change = diff(programs[i - 1], programs[i]) if 0 < i < len(programs) else None
        jumps.append(Jump(i, gain, change, label(steps[i], change)))
        last = i
    return Journey(entry, tuple(programs), tuple(jumps), note, islands)


def to_json(j: Journey, run: str, experiments: int) -> dict[str, Any]:
    """The document `azdsl lineage --json` prints (docs/run-folder.md, "azdsl lineage")."""
    steps = j.steps
    jump_at = {jump.index for jump in j.jumps}

    def where(step: Step) -> str | None:
        return COMPONENTS[step.component].value if step.component >= 0 else None

    return {
        "format": JOURNEY_FORMAT, "version": JOURNEY_VERSION, "run": run,
        "experiment": j.entry.experiment, "experiments": experiments, "islands": j.islands,
        "program": j.entry.program,
        "first": unparse(simplify(j.programs[0])) if j.programs else None,
        "best": unparse(simplify(j.programs[-1])) if len(j.programs) == len(steps) else None,
        "rebuilt": len(j.programs), "note": j.note,
        "steps": [{"step": i, "id": s.id, "parent": s.parent, "island": island(s.id),
                   "individual": s.individual, "mutation": s.mutation,
                   "component": where(s), "position": s.position, "key": s.key,
                   "fitness": s.fitness, "jump": i in jump_at}
                  for i, s in enumerate(steps)],
        "jumps": [{"step": jump.index, "individual": steps[jump.index].individual,
                   "island": island(steps[jump.index].id),
                   "mutation": steps[jump.index].mutation,
                   "component": where(steps[jump.index]),
                   "position": steps[jump.index].position,
                   "fitness": steps[jump.index].fitness, "gain": jump.gain,
                   "label": jump.label, "diff": jump.diff}
                  for jump in j.jumps],
    }
