"""Hurdles (the paper's "Full" method): stop a weak child after the first few search tasks.

A child is first scored on the first `tasks` search tasks only. Its fitness there (combined as
the search combines tasks) is compared with the `percentile`-th percentile of the same partial
fitness of the last `window` children (the population, with aging evolution: the window is the
population size). Below it, the child is not evaluated further: the tasks it did not run count
as fitness 0 (the floor, as for a program the train budget rejects), so its fitness is the
combination of its first tasks' fitnesses and zeros. A stopped child thus ranks below every
child that passed with a similar score and wins a tournament only against other stopped ones;
its partial fitness alone would not do, as the first tasks may be easier than the rest. At or
above the hurdle, the child is scored on the remaining tasks as usual.
Every child's partial fitness enters the window, stopped or not. Until `warmup` children have
been recorded every child passes (the hurdle needs a population to compare with).

Everything is deterministic: the percentile is the lower nearest rank of the sorted window,
`sorted[floor(p / 100 * (n - 1))]`, and the window is saved in checkpoints (`state`).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any


class Hurdle:
    """The running hurdle of one experiment: a window of partial fitnesses and counters."""

    def __init__(self, tasks: int, percentile: float = 75.0, warmup: int = 0,
                 window: int = 1000) -> None:
        if tasks < 1:
            raise ValueError("a hurdle needs at least one task")
        if not 0.0 <= percentile <= 100.0:
            raise ValueError("the hurdle percentile must be in [0, 100]")
        if window < 1:
            raise ValueError("the hurdle window must hold at least one fitness")
        self.tasks = tasks
        self.percentile = percentile
        self.warmup = warmup
        self.window = window
        self._order: deque[float] = deque()  # partial fitnesses, oldest first
        self._sorted: list[float] = []
        self.recorded = 0  # children whose partial fitness was recorded
        self.stopped = 0  # children stopped at the hurdle

    def threshold(self) -> float | None:
        """The current hurdle, or None while warming up (every child passes)."""
        if self.recorded < self.warmup or not self._sorted:
            return None
        rank = math.floor(self.percentile / 100.0 * (len(self._sorted) - 1))
        return self._sorted[rank]

    def passes(self, partial: float) -> bool:
        """Record a child's partial fitness; True when it goes on to the remaining tasks."""
        level = self.threshold()
        ok = level is None or partial >= level
        value = partial if partial == partial else 0.0  # a NaN counts as the floor
        self._order.append(value)
        bisect.insort(self._sorted, value)
        if len(self._order) > self.window:
            oldest = self._order.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self.recorded += 1
        if not ok:
            self.stopped += 1
        return ok

    def assign(self, other: Hurdle) -> None:
        """Take over another hurdle's window and counters (the compiled search loop's)."""
        self._order, self._sorted = other._order, other._sorted
        self.recorded, self.stopped = other.recorded, other.stopped

    def state(self) -> dict[str, Any]:
        """JSON-ready state (the window changes results, so checkpoints keep it)."""
        return {"tasks": self.tasks, "percentile": self.percentile, "warmup": self.warmup,
                "window": self.window, "values": list(self._order),
                "recorded": self.recorded, "stopped": self.stopped}

    @staticmethod
    def from_state(state: dict[str, Any]) -> Hurdle:
        hurdle = Hurdle(int(state["tasks"]), float(state["percentile"]), int(state["warmup"]),
                        int(state["window"]))
        for value in state["values"]:
            hurdle._order.append(float(value))
        hurdle._sorted = sorted(hurdle._order)
        hurdle.recorded = int(state["recorded"])
        hurdle.stopped = int(state["stopped"])
        return hurdle
