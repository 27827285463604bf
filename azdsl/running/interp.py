"""The reference interpreter: numpy, obvious, slow; the definition of what a program computes.

Memory is three float64 arrays: s (ns,), v (nv, F), m (nm, F, F). Executing an instruction
gathers its input values, asks the op row's `semantics` for the new value of the output cell
(computed in full before anything is stored, so outputs may alias inputs) and stores a copy.
Random ops read their numbers from `Draws`, keyed as azdsl.running.rng describes. This module never
imports numba: it is the yardstick the compiled backends are held to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl.language.liveness import Ordinals, random_ordinals
from azdsl.language.ops import Kind
from azdsl.language.program import FEATURES, LABEL, PREDICTION, Cell, Component, Instr, Program
from azdsl.running import rng

FloatArray = npt.NDArray[np.float64]

SETUP, PREDICT, LEARN = 0, 1, 2
# evaluate's codes (evaluate imports this module, not the other way round): `runner`'s
# STORE_PREDICTION, `access`'s STORE_PREDICTION and READ_PREDICTION
STORE_PREDICTION = 3
READ_PREDICTION = 4


@dataclass
class Memory:
    """The cells of one (program, task) evaluation."""

    s: FloatArray
    v: FloatArray
    m: FloatArray

    @staticmethod
    def zeros(sizes: tuple[int, int, int], dim: int) -> Memory:
        ns, nv, nm = sizes
        return Memory(np.zeros(ns), np.zeros((nv, dim)), np.zeros((nm, dim, dim)))

    def copy(self) -> Memory:
        return Memory(self.s.copy(), self.v.copy(), self.m.copy())

    def read(self, cell: Cell) -> Any:
        """The value of a cell: a np.float64 for scalars, an array view otherwise."""
        if cell.kind is Kind.SCALAR:
            return self.s[cell.index]
        if cell.kind is Kind.VECTOR:
            return self.v[cell.index]
        return self.m[cell.index]

    def write(self, cell: Cell, value: Any) -> None:
        """Store a copy of `value` into `cell` (numpy copies on assignment)."""
        target = {Kind.SCALAR: self.s, Kind.VECTOR: self.v, Kind.MATRIX: self.m}[cell.kind]
        target[cell.index] = value


class Draws:
    """The random numbers of one execution of one instruction: coordinate k is counter k."""

    def __init__(self, key: int) -> None:
        self.key = key

    def _draw(self, fn: Any, shape: tuple[int, ...]) -> Any:
        if shape == ():
            return np.float64(fn(self.key, 0))
        count = math.prod(shape)
        return np.array([fn(self.key, k) for k in range(count)], dtype=np.float64).reshape(shape)

    def uniform01(self, shape: tuple[int, ...]) -> Any:
        return self._draw(rng.uniform01, shape)

    def gauss01(self, shape: tuple[int, ...]) -> Any:
        return self._draw(rng.gauss01, shape)


def execute(instr: Instr, memory: Memory, draws: Draws | None = None) -> None:
    """Run one instruction on `memory` (`draws` is needed by random ops only)."""
    if instr.out is None:
        return
    ins = [memory.read(cell) for cell in instr.ins]
    old = memory.read(instr.out)
    with np.errstate(all="ignore"):
        new = instr.op.semantics(old, ins, instr.literals, draws)
    memory.write(instr.out, new)


def run_component(
    program: Program,
    memory: Memory,
    component: Component | int,
    execution: int,
    stream: int,
    ordinals: Ordinals | None = None,
) -> None:
    """Run every instruction of one component (dead ones too) as its `execution`-th run.

    `stream` is rng.stream(seed, task index); `ordinals` defaults to
    liveness.random_ordinals(program) (pass it in to avoid recomputing it per call).
    """
    index = component.index if isinstance(component, Component) else component
    ordinals = ordinals if ordinals is not None else random_ordinals(program)
    for instr, ordinal in zip(program.components[index], ordinals[index], strict=True):
        draws = None
        if instr.op.is_random:
            draws = Draws(rng.draw_key(stream, index, ordinal, execution))
        execute(instr, memory, draws)


@dataclass
class Machine:
    """One task's context for the runners: a program bound to fresh memory."""

    program: Program
    memory: Memory
    stream: int
    ordinals: Ordinals

    @staticmethod
    def fresh(program: Program, sizes: tuple[int, int, int], dim: int, stream: int) -> Machine:
        return Machine(program, Memory.zeros(sizes, dim), stream, random_ordinals(program))


def runner(ctx: Machine, component: int, execution: int, x: FloatArray, y: float) -> float:
    """One step of one task, for sessions (the estimator): component 0 runs Setup; 1 and 2
    feed v0 <- x, s0 <- y, then run Predict or Learn as its `execution`-th run; 3 stores
    s1 <- y; returns s1."""
    memory = ctx.memory
    if component == STORE_PREDICTION:
        memory.write(PREDICTION, y)
        return float(y)
    if component != SETUP:
        memory.write(FEATURES, x)
        memory.write(LABEL, y)
    run_component(ctx.program, memory, component, execution, ctx.stream, ctx.ordinals)
    return float(memory.read(PREDICTION))


def lockstep_runner(ctx: list[Machine], component: int, execution: int,
                    behind: npt.NDArray[np.int64], tasks: npt.NDArray[np.int64],
                    n: int) -> None:
    """evaluate.run_lockstep's runner: ctx[t] is task t's Machine."""
    for q in range(n):
        t = tasks[q]
        machine = ctx[t]
        run_component(machine.program, machine.memory, component,
                      int(execution - behind[t]), machine.stream, machine.ordinals)


def access(ctx: list[Machine], action: int, t: int, xs: FloatArray, row: int,
           y: float) -> float:
    """evaluate.run_lockstep's access to task t's memory (ctx[t])."""
    memory = ctx[t].memory
    if action == READ_PREDICTION:
        return float(memory.read(PREDICTION))
    if action == STORE_PREDICTION:
        memory.write(PREDICTION, y)
        return float(y)
    memory.write(FEATURES, xs[t, row])
    memory.write(LABEL, y)
    return 0.0
