"""Compare programs on the final tasks of a config, learning rates tuned on its select tasks.

The learning-rate literal of a program is found by this rule: a Setup instruction `sK = c`
(a scalar constant) such that no later Setup instruction and no Predict or Learn instruction
writes sK (it stays a constant while training), sK is not s0 or s1, and a live Learn
instruction multiplies by it (an infix `*` op with a scalar input: `s * s`, `s * v`, `s * m`).
When several qualify, the first in Setup is taken. The 2-layer network's `s3 = 0.01` and
logistic regression's `s2 = 0.01` are found this way; an evolved program's step size usually
is too. A program without one is scored as written.

Tuning: the literal is set to every value of the grid and to the program's own value; the
value with the best mean fitness on the select tasks wins (ties: the earlier, with the grid in
increasing order and the program's own value last). The tuned program is then scored on the
final tasks, which no search or tuning has seen: mean and sample standard deviation (n - 1)
of the per-task fitness (accuracy for classification).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from azdsl.language.liveness import live_mask
from azdsl.language.ops import Form, Kind
from azdsl.language.program import LABEL, PREDICTION, Instr, Program
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import CLASSIFICATION, Task


def log_grid(low: float = 1e-3, high: float = 1.0, count: int = 7) -> tuple[float, ...]:
    """`count` values from low to high, evenly spaced in log scale (rounded to 3 digits)."""
    if not 0.0 < low <= high or count < 1:
        raise ValueError("a log grid needs 0 < low <= high and at least one value")
    if count == 1:
        return (low,)
    step = (math.log10(high) - math.log10(low)) / (count - 1)
    return tuple(float(f"{10 ** (math.log10(low) + k * step):.3g}") for k in range(count))


DEFAULT_GRID = log_grid()  # 0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1


def _is_scalar_const(instr: Instr) -> bool:
    return instr.op.form is Form.CONST and instr.op.out is Kind.SCALAR


def _is_scalar_multiply(instr: Instr) -> bool:
    op = instr.op
    return op.form is Form.INFIX and op.func == "*" and Kind.SCALAR in op.ins


def learning_rate_position(program: Program) -> int | None:
    """Index in Setup of the program's learning-rate literal (module docstring), or None."""
    _, _, learn_live = live_mask(program)
    written_later = {i.out for i in program.predict + program.learn if i.out is not None}
    multiplied = {cell for instr, live in zip(program.learn, learn_live, strict=True)
                  if live and _is_scalar_multiply(instr)
                  for cell in instr.ins if cell.kind is Kind.SCALAR}
    for k, instr in enumerate(program.setup):
        cell = instr.out
        if not _is_scalar_const(instr) or cell is None or cell in (LABEL, PREDICTION):
            continue
        if cell in written_later or any(i.out == cell for i in program.setup[k + 1:]):
            continue
        if cell in multiplied:
            return k
    return None


def with_learning_rate(program: Program, position: int, value: float) -> Program:
    """The program with the literal of Setup instruction `position` set to `value`."""
    old = program.setup[position]
    new = Instr(old.code, old.out, old.ins, (float(value),), old.span, old.leading_comments,
                old.trailing_comment)
    setup = (*program.setup[:position], new, *program.setup[position + 1:])
    return Program(setup, program.predict, program.learn, program.header_comments,
                   program.end_comments)


@dataclass(frozen=True)
class Entry:
    """One program's comparison result."""

    name: str
    position: int | None  # the learning-rate literal's index in Setup, if any
    own_rate: float | None  # as written
    rate: float | None  # tuned
    select_fitness: float  # mean over the select tasks with the tuned rate
    grid_scores: tuple[tuple[float, float], ...]  # (rate, select fitness) of every candidate
    final_fitness: tuple[float, ...]  # per final task, tuned rate

    @property
    def mean(self) -> float:
        return math.fsum(self.final_fitness) / len(self.final_fitness)

    @property
    def std(self) -> float:
        n = len(self.final_fitness)
        if n < 2:
            return 0.0
        mean = self.mean
        return math.sqrt(math.fsum((f - mean) ** 2 for f in self.final_fitness) / (n - 1))


def tune(program: Program, tasks: Sequence[Task], grid: Sequence[float], *, seed: int = 0,
         backend: str = "vm", max_abs_error: float = 100.0, fitness: str | None = None
         ) -> tuple[int | None, float | None, tuple[tuple[float, float], ...]]:
    """(position, best rate, (rate, fitness) per candidate) on `tasks`; (None, None, ()) when
    the program has no learning-rate literal. `fitness`: a registered fitness's name, as a
    config's `[search] fitness` (default: built in, by task kind)."""
    position = learning_rate_position(program)
    if position is None:
        return None, None, ()
    own = float(program.setup[position].literals[0])
    candidates = sorted(set(float(g) for g in grid))
    if own not in candidates:
        candidates.append(own)
    scores = []
    for rate in candidates:
        trial = with_learning_rate(program, position, rate)
        scores.append((rate, evaluate(trial, tasks, seed=seed, backend=backend,
                                      max_abs_error=max_abs_error, fitness=fitness).fitness))
    best = max(range(len(scores)), key=lambda k: (scores[k][1], -k))
    return position, scores[best][0], tuple(scores)


def tuned(program: Program, tasks: Sequence[Task], grid: Sequence[float] = DEFAULT_GRID, *,
          seed: int = 0, backend: str = "vm", max_abs_error: float = 100.0,
          fitness: str | None = None) -> Program:
    """`program` with its learning rate tuned on `tasks` (as `tune`); as it is without one."""
    position, rate, _ = tune(program, tasks, grid, seed=seed, backend=backend,
                             max_abs_error=max_abs_error, fitness=fitness)
    if position is None or rate is None:
        return program
    return with_learning_rate(program, position, rate)


def compare(programs: Sequence[tuple[str, Program]], select_tasks: Sequence[Task],
            final_tasks: Sequence[Task], grid: Sequence[float] = DEFAULT_GRID, *,
            seed: int = 0, backend: str = "vm", max_abs_error: float = 100.0,
            fitness: str | None = None) -> list[Entry]:
    """Tune each program's learning rate on select_tasks and score it on final_tasks."""
    entries = []
    for name, program in programs:
        position, rate, scores = tune(program, select_tasks, grid, seed=seed, backend=backend,
                                      max_abs_error=max_abs_error, fitness=fitness)
        tuned = program
        own = None
        if position is not None and rate is not None:
            own = float(program.setup[position].literals[0])
            tuned = with_learning_rate(program, position, rate)
        select = dict(scores)[rate] if rate is not None else evaluate(
            tuned, select_tasks, seed=seed, backend=backend, max_abs_error=max_abs_error,
            fitness=fitness).fitness
        final = evaluate(tuned, final_tasks, seed=seed, backend=backend,
                         max_abs_error=max_abs_error, fitness=fitness)
        entries.append(Entry(name, position, own, rate, select, scores, final.task_fitness))
    return entries


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def paired_difference(entry: Entry, reference: Entry) -> tuple[float, float, int, int]:
    """Mean and standard error of entry - reference over the same final tasks, and the
    number of tasks where the entry is better and worse."""
    return paired(entry.final_fitness, reference.final_fitness)


def paired(fitness: Sequence[float], reference: Sequence[float]
           ) -> tuple[float, float, int, int]:
    """Mean and standard error of fitness - reference, task by task, and the number of tasks
    where fitness is higher and lower."""
    diffs = [a - b for a, b in zip(fitness, reference, strict=True)]
    n = len(diffs)
    mean = math.fsum(diffs) / n
    var = math.fsum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var / n), sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)


def format_table(entries: Sequence[Entry], *, classification: bool = True,
                 markdown: bool = False) -> str:
    """The comparison as an aligned text table or a markdown table. The last column compares
    every program with the first, task by task: mean difference ± its standard error, and
    on how many tasks it is better / worse."""
    unit = "accuracy %" if classification else "fitness"
    scale = 100.0 if classification else 1.0
    digits = 2 if classification else 4
    n = len(entries[0].final_fitness) if entries else 0
    first = entries[0].name if entries else ""
    header = ["program", "lr as written", "lr tuned", f"select {unit}",
              f"final {unit} (mean ± std, {n} tasks)", f"vs {first} (± s.e.; better/worse)"]
    rows = []
    for k, e in enumerate(entries):
        versus = "-"
        if k > 0:
            diff, err, better, worse = paired_difference(e, entries[0])
            versus = (f"{diff * scale:+.{digits}f} ± {err * scale:.{digits}f}; "
                      f"{better}/{worse}")
        rows.append([e.name, _rate(e.own_rate), _rate(e.rate),
                     f"{e.select_fitness * scale:.{digits}f}",
                     f"{e.mean * scale:.{digits}f} ± {e.std * scale:.{digits}f}", versus])
    return render_table(header, rows, markdown=markdown)


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
                 markdown: bool = False) -> str:
    """Rows under a header, as an aligned text table (first column left, the others right)
    or a markdown table."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if k == 0 else "---:" for k in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                       for k, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def all_classification(tasks: Sequence[Task]) -> bool:
    return all(task.kind == CLASSIFICATION for task in tasks)
