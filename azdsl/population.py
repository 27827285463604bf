"""The population of regularized evolution: a ring buffer of programs and their fitness.

Reference §6.1: P slots; a tournament draws T slot indices uniformly with replacement from the
whole current population (the slot about to be overwritten included); the winner is the
highest fitness, the first drawn on ties; its child overwrites the oldest slot, which is the
next slot of the ring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from azdsl import state as st
from azdsl.program import Program

BLOCK = 4096  # uniforms drawn at a time (a different block would draw other numbers)


@dataclass
class Population:
    """Slots filled in order during initialisation, then overwritten cyclically."""

    capacity: int
    programs: list[Program] = field(default_factory=list)
    fitness: list[float] = field(default_factory=list)
    next_slot: int = 0  # the oldest member once full: the next to be replaced

    @property
    def full(self) -> bool:
        return len(self.programs) == self.capacity

    def add(self, program: Program, fitness: float) -> int:
        """Append during initialisation, else replace the oldest; returns the slot used."""
        if not self.full:
            self.programs.append(program)
            self.fitness.append(fitness)
            return len(self.programs) - 1
        slot = self.next_slot
        self.programs[slot] = program
        self.fitness[slot] = fitness
        self.next_slot = (slot + 1) % self.capacity
        return slot

    def tournament(self, draws: Sequence[float]) -> int:
        """The slot of the tournament winner: one slot per uniform draw u in [0, 1) (slot =
        floor(u * n), uniform with replacement); the highest fitness wins, the first drawn on
        ties."""
        fitness = self.fitness
        n = len(fitness)
        best = int(draws[0] * n)
        best_fitness = fitness[best]
        for u in draws[1:]:
            slot = int(u * n)
            if fitness[slot] > best_fitness:
                best, best_fitness = slot, fitness[slot]
        return best

    def best(self) -> int:
        """The slot with the highest fitness (the first one on ties)."""
        fitness = self.fitness
        best = 0
        for slot in range(1, len(fitness)):
            if fitness[slot] > fitness[best]:
                best = slot
        return best

    def stats(self) -> tuple[float, float, float]:
        """(mean, population std, best) of the fitness values."""
        values = np.asarray(self.fitness, dtype=np.float64)
        if values.size == 0:
            return 0.0, 0.0, 0.0
        mean = float(values.mean())
        var = float((values * values).mean() - mean * mean)
        return mean, max(var, 0.0) ** 0.5, float(values.max())


class Uniforms:
    """Uniforms in [0, 1) from a generator, drawn in blocks (one numpy call costs ~1 us).

    The state is the generator's state when the current block was drawn plus the position in
    it, so a restored stream continues with exactly the numbers the original would draw.
    """

    __slots__ = ("_block", "_buf", "_pos", "_rng", "_start")

    def __init__(self, rng: np.random.Generator, block: int = BLOCK) -> None:
        self._rng = rng
        self._block = block
        self._start: dict[str, Any] = dict(rng.bit_generator.state)
        self._buf: list[float] = []
        self._pos = 0

    def next(self) -> float:
        pos = self._pos
        if pos == len(self._buf):
            self._refill()
            pos = 0
        self._pos = pos + 1
        return self._buf[pos]

    def take(self, count: int) -> list[float]:
        """The next `count` uniforms (the same numbers `count` calls of `next` give)."""
        pos = self._pos
        end = pos + count
        if end <= len(self._buf):
            self._pos = end
            return self._buf[pos:end]
        return [self.next() for _ in range(count)]

    def _refill(self) -> None:
        self._start = dict(self._rng.bit_generator.state)
        self._buf = self._rng.random(self._block).tolist()

    @property
    def block(self) -> int:
        return self._block

    def raw(self) -> tuple[list[float], int, dict[str, Any], int]:
        """(buffer, position, generator state at the buffer's start, block size)."""
        return self._buf, self._pos, self._start, self._block

    def generator_state(self) -> dict[str, Any]:
        return dict(self._rng.bit_generator.state)

    def restore_raw(self, buf: list[float], pos: int, start: dict[str, Any],
                    current: dict[str, Any]) -> None:
        """Take over a stream continued elsewhere (the compiled search loop)."""
        self._buf = buf
        self._pos = pos
        self._start = start
        self._rng.bit_generator.state = current

    def state(self) -> dict[str, Any]:
        return {"start": self._start, "position": self._pos, "block": self._block,
                "drawn": bool(self._buf)}

    @staticmethod
    def from_state(state: Any, key: str = "tournament", block: int | None = None) -> Uniforms:
        """The stream `state()` saved, of `block` uniforms a block when given; StateError,
        naming `key`'s field, for anything `state()` does not write."""
        f = st.Fields(state, key)
        bit_generator: np.random.BitGenerator = np.random.PCG64()
        bit_generator.state = st.generator_state(f.get("start"), f.key("start"))
        size = f.integer("block", block or 1, block or BLOCK)
        drawn = f.boolean("drawn")
        uniforms = Uniforms(np.random.Generator(bit_generator), size)
        if drawn:
            uniforms._buf = uniforms._rng.random(size).tolist()
        uniforms._pos = f.integer("position", 0, size if drawn else 0)
        return uniforms
