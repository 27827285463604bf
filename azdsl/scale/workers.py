"""What the island driver (azdsl.scale.parallel) and its pools of workers (azdsl.scale.local_pool,
azdsl.scale.ray_pool) share: the Pool protocol, the reply of a lost worker, the errors, and how
islands are dealt to workers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from azdsl.errors import AzdslError
from azdsl.scale.islands import Request


class WorkerError(RuntimeError):
    """A worker raised an exception (a bug or a bad config, not a lost worker)."""


class WorkersLost(AzdslError):
    """Workers that could not be kept alive: the run stops at its last checkpoint."""


class Lost:
    """The reply of a worker that died (or whose actor is gone) before answering."""


LOST = Lost()


class Pool(Protocol):
    """Workers that each hold some islands (`islands[w]`) and answer requests."""

    islands: list[list[int]]

    def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        """Send each worker its request, all at once; the replies, LOST for a dead worker.
        Raises WorkerError when a worker failed with an exception."""

    def restart(self, worker: int) -> None:
        """Replace a worker by a fresh one holding the same islands (in their initial state)."""

    def pids(self) -> list[int]:
        """Process ids of the workers (for tests and diagnostics)."""

    def close(self) -> None: ...


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def assignment(islands: int, workers: int) -> list[list[int]]:
    """Islands dealt to workers round-robin: worker w holds islands w, w + W, ..."""
    workers = max(1, min(workers, islands))
    return [list(range(w, islands, workers)) for w in range(workers)]
