"""Island workers on this machine: one spawned process per worker, or the driver itself.

Each worker process builds its islands once and answers the driver's requests over a pipe;
the Numba VM is loaded from Numba's on-disk cache in every process, never compiled per
program. Workers ignore Ctrl-C (the driver checkpoints and closes them), and exit when the
driver's end of the pipe closes, so a killed driver leaves no workers behind. A worker that
dies is seen as its pipe closing or its process sentinel firing, and reported as LOST.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import time
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from azdsl.scale.islands import IslandHost, Request, RunSpec
from azdsl.scale.workers import LOST, WorkerError, WorkersLost

START_TRIES = 3  # to start one worker, before the run gives up


def _copy(value: Any) -> Any:
    """What a process boundary does to a value (no state shared with the caller)."""
    return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


class InlinePool:
    """All islands in the driver's process (one worker): no processes to start."""

    def __init__(self, spec: RunSpec, islands: list[list[int]]) -> None:
        self.spec = spec
        self.islands = islands
        self._hosts = [IslandHost(spec, i) for i in islands]

    def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        return {w: _copy(self._hosts[w].handle(_copy(r))) for w, r in requests.items()}

    def restart(self, worker: int) -> None:
        self._hosts[worker] = IslandHost(self.spec, self.islands[worker])

    def pids(self) -> list[int]:
        return [os.getpid()] * len(self.islands)

    def close(self) -> None:
        self._hosts = []


def _serve(conn: Connection, spec: RunSpec, islands: list[int]) -> None:
    """A worker process: answer requests until told to stop or the driver goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the driver
    host = IslandHost(spec, islands)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the driver is gone
        if request is None:
            os._exit(0)  # nothing to flush; skips a second of interpreter teardown
        try:
            reply: tuple[str, Any] = ("ok", host.handle(request))
        except Exception:
            reply = ("error", traceback.format_exc())
        try:
            conn.send(reply)
        except OSError:
            return


class LocalPool:
    """One spawned process per worker, each holding `islands[w]`."""

    def __init__(self, spec: RunSpec, islands: list[list[int]], method: str = "forkserver"
                 ) -> None:
        self.spec = spec
        self.islands = islands
        if method not in mp.get_all_start_methods():
            method = "spawn"
        self._context = mp.get_context(method)
        if method == "forkserver":
            # The server imports azdsl once; workers (and replacements) fork from it.
            self._context.set_forkserver_preload(["azdsl.scale.islands"])
        self._procs: list[BaseProcess] = []
        self._conns: list[Connection] = []
        for worker in range(len(islands)):
            self._start(worker)

    def _start(self, worker: int) -> None:
        for attempt in range(1, START_TRIES + 1):
            parent, child = self._context.Pipe()
            proc = self._context.Process(  # type: ignore[attr-defined]
                target=_serve, args=(child, self.spec, self.islands[worker]),
                name=f"azdsl-islands-{worker}", daemon=True)
            try:
                proc.start()
                break
            except (EOFError, OSError) as exc:
                # The fork server died (killed, or out of memory) while it forked the worker;
                # multiprocessing starts a new one on the next try, once the dead one is reaped.
                parent.close()
                child.close()
                if attempt == START_TRIES:
                    raise WorkersLost(f"worker process {worker} (islands "
                                      f"{self.islands[worker]}) could not be started "
                                      f"{START_TRIES} times ({exc or type(exc).__name__}); "
                                      "the run stopped at its last checkpoint") from None
                time.sleep(0.2 * attempt)
        child.close()  # only the worker holds its end: its death closes the pipe
        if worker < len(self._procs):
            self._procs[worker], self._conns[worker] = proc, parent
        else:
            self._procs.append(proc)
            self._conns.append(parent)

    def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        replies: dict[int, Any] = {}
        waiting: set[int] = set()
        for worker, request in requests.items():
            try:
                self._conns[worker].send(request)
                waiting.add(worker)
            except OSError:  # BrokenPipeError: it is dead already
                replies[worker] = LOST
        errors = []
        while waiting:
            handles: dict[Any, int] = {}
            for worker in waiting:
                handles[self._conns[worker]] = worker
                handles[self._procs[worker].sentinel] = worker
            for ready in wait(list(handles)):
                worker = handles[ready]
                if worker not in waiting:
                    continue
                waiting.discard(worker)
                reply = self._receive(worker)
                if isinstance(reply, tuple) and reply[0] == "error":
                    errors.append(f"worker {worker}:\n{reply[1]}")
                    reply = LOST
                elif isinstance(reply, tuple):
                    reply = reply[1]
                replies[worker] = reply
        if errors:
            raise WorkerError("a worker failed:\n" + "\n".join(errors))
        return replies

    def _receive(self, worker: int) -> Any:
        conn = self._conns[worker]
        try:
            if not conn.poll():  # the process ended without a reply
                return LOST
            return conn.recv()
        except (EOFError, OSError, pickle.UnpicklingError):
            return LOST

    def restart(self, worker: int) -> None:
        proc = self._procs[worker]
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        self._conns[worker].close()
        self._start(worker)

    def pids(self) -> list[int]:
        return [proc.pid or 0 for proc in self._procs]

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
