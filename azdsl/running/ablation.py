"""Ablation: what each instruction of a program is worth, paired task by task.

The program is simplified (dead code removed), then scored on a task set once as it is and
once per live instruction with that instruction removed, every score with the same tasks and
the same evaluation seed, so a difference belongs to the instruction and not to the draw of
tasks or random numbers. This is how a reading of an evolved algorithm ("this line injects
noise", "this one decays the learning rate") is checked, and how the same program is shown to
lean on different instructions on different task variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from azdsl.language.printer import format_instr
from azdsl.language.program import Program
from azdsl.language.simplify import simplify
from azdsl.running.compare import paired, render_table
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import Task

COMPONENTS = ("Setup", "Predict", "Learn")


@dataclass(frozen=True)
class Removal:
    """The program without one instruction, and its fitness on every task."""

    component: str  # Setup, Predict or Learn
    index: int  # the instruction's position in the simplified component, from 0
    text: str  # the instruction as printed
    task_fitness: tuple[float, ...]


@dataclass(frozen=True)
class Ablation:
    program: Program  # the simplified program the removals start from
    task_fitness: tuple[float, ...]  # its own fitness per task
    removals: tuple[Removal, ...]  # in program order


def without(program: Program, component: int, index: int) -> Program:
    """`program` with instruction `index` of component `component` (0 Setup, 1 Predict,
    2 Learn) removed."""
    parts = [program.setup, program.predict, program.learn]
    parts[component] = parts[component][:index] + parts[component][index + 1:]
    return Program(parts[0], parts[1], parts[2], program.header_comments,
                   program.end_comments)


def ablate(program: Program, tasks: Sequence[Task], *, seed: int = 0, backend: str = "vm",
           max_abs_error: float = 100.0, fitness: str | None = None) -> Ablation:
    """Score the simplified program and each of its one-instruction removals on `tasks`
    (`fitness`: a registered fitness's name; default: built in, by task kind)."""
    simple = simplify(program)

    def score(candidate: Program) -> tuple[float, ...]:
        return evaluate(candidate, tasks, seed=seed, backend=backend,
                        max_abs_error=max_abs_error, fitness=fitness).task_fitness

    removals = []
    for component, instrs in enumerate((simple.setup, simple.predict, simple.learn)):
        for index, instr in enumerate(instrs):
            removals.append(Removal(COMPONENTS[component], index, format_instr(instr),
                                    score(without(simple, component, index))))
    return Ablation(simple, score(simple), tuple(removals))


def format_ablation(result: Ablation, *, classification: bool, markdown: bool = False) -> str:
    """One row per removal, the most harmful first: its mean fitness and its paired difference
    from the whole program (mean ± standard error; tasks better / worse)."""
    scale, digits = (100.0, 2) if classification else (1.0, 4)
    unit = "accuracy %" if classification else "fitness"
    n = len(result.task_fitness)
    whole = sum(result.task_fitness) / n
    header = ["removed instruction", f"{unit} ({n} tasks)", "change (± s.e.)",
              "tasks better/worse"]
    rows = [["(none: the whole program)", f"{whole * scale:.{digits}f}", "-", "-"]]
    changes = [(paired(r.task_fitness, result.task_fitness), r) for r in result.removals]
    for (diff, err, better, worse), r in sorted(changes, key=lambda c: c[0][0]):
        rows.append([f"{r.component} {r.index + 1}: {r.text}",
                     f"{sum(r.task_fitness) / n * scale:.{digits}f}",
                     f"{diff * scale:+.{digits}f} ± {err * scale:.{digits}f}",
                     f"{better}/{worse}"])
    return render_table(header, rows, markdown=markdown)
