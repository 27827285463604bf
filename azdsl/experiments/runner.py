"""Running an experiment: every (cell, seed) an ordinary run folder, several at a time.

DIR/<cell>/seed-<n>/ is the folder `azdsl evolve CONFIG --seed n --islands 1` would make (the
same files, resumable on its own with `azdsl resume`), created with the run-folder machinery
(azdsl.runfolder) and searched by the one search (azdsl.search.evolve.Search). A run found
finished (report.json) is skipped, one with run.json is resumed from its last checkpoint, and
a folder that a kill left before its run.json is started afresh; a checkpoint that cannot be
used is reported for its seed while the other seeds go on. Beside each run folder, cpu.json
counts the CPU seconds of the sessions that ran it, saved with every checkpoint.

Runs go to `jobs` worker processes (one run each, single-process; with one job they run in
this process). A worker stops at a checkpoint when the driver asks or when the driver is gone
(its control pipe closes), so a killed driver leaves no worker searching. DIR/.lock keeps a
second driver out of the folder, and DIR/<cell>/.seed-<n>.lock a second process out of a run.
After every finished run the driver rewrites DIR/results.json and DIR/results.md, and at
the end of the command draws DIR/results.png and .svg (azdsl.experiments.figure).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TextIO

from azdsl import __version__
from azdsl.errors import AzdslError
from azdsl.experiments import figure, results
from azdsl.experiments.configs import CellConfig, cell_config, differences
from azdsl.experiments.definitions import Experiment, format_seeds, seed_folder
from azdsl.progress import Tee
from azdsl.runfolder import (
    CONFIG,
    PROGRESS,
    REPORT_FORMAT,
    REPORT_JSON,
    RUN,
    RunError,
    RunFolder,
    message,
    open_search,
    read_text,
    write_atomic,
)
from azdsl.search.evolve import NoHooks  # runner runs searches: Numba is loaded anyway

MANIFEST = "experiment.json"
MANIFEST_FORMAT = "azdsl-experiment"
LOCK = ".lock"
CPU_FORMAT = "azdsl-cpu"
# What RunFolder.create writes before run.json: a folder holding only these (and its
# temporary files) was left by a kill during the creation, and holds nothing to keep.
_BEFORE_RUN = (CONFIG, PROGRESS)
RUN_LOCK_WAIT = 60.0  # seconds a run waits for the process that holds it (one stopping)

# Outcomes of one session of a run.
DONE, SKIPPED, STOPPED, FAILED = "done", "skipped", "stopped", "error"


@dataclass(frozen=True)
class Run:
    """One seed of one cell: where it runs and the config it runs."""

    cell: str
    seed: int
    folder: Path
    config: CellConfig
    backend: str = "vm"


@dataclass(frozen=True)
class Outcome:
    cell: str
    seed: int
    status: str  # DONE, SKIPPED, STOPPED or FAILED
    message: str = ""
    cpu_seconds: float = 0.0  # of this session


def plan(experiment: Experiment, out: Path, seeds: Sequence[int], budget_scale: float,
         cells: Sequence[str] | None = None) -> list[Run]:
    """Every run of the experiment (of the named `cells` only, if given), seed by seed (so
    that a session that stops early leaves every cell with about as many seeds done); each
    cell's config is checked first."""
    chosen = experiment.cells if cells is None else tuple(experiment.cell(c) for c in cells)
    configs = {}
    for cell in chosen:
        config = cell_config(cell, budget_scale)
        config.parse(f"{cell.config} (cell {cell.name})")  # a config error before any run
        configs[cell.name] = config
    return [Run(cell.name, seed, seed_folder(out, cell, seed), configs[cell.name])
            for seed in seeds for cell in chosen]


def state(run: Run) -> str:
    """What a run's folder holds: 'finished', 'started' or 'new'."""
    report = results.read_json_file(run.folder / REPORT_JSON)
    if isinstance(report, dict) and report.get("format") == REPORT_FORMAT:
        return "finished"
    return "started" if (run.folder / RUN).exists() else "new"


# ---- one run ----------------------------------------------------------------------------------


class CpuLedger(NoHooks):
    """cpu.json beside a run's files: CPU seconds of every session that ran it, saved at each
    checkpoint (a session killed later loses only what its replay redoes)."""

    def __init__(self, folder: Path, started: float) -> None:
        self.file = folder / results.CPU
        self.started = started
        known = results.read_json_file(self.file)
        self.before = (float(known["cpu_seconds"]) if isinstance(known, dict)
                       and isinstance(known.get("cpu_seconds"), int | float) else 0.0)
        self.sessions = (int(known["sessions"]) if isinstance(known, dict)
                         and isinstance(known.get("sessions"), int) else 0) + 1

    def session(self) -> float:
        return time.process_time() - self.started

    def save(self) -> None:
        write_atomic(self.file, json.dumps({
            "format": CPU_FORMAT, "version": 1,
            "cpu_seconds": round(self.before + self.session(), 3),
            "sessions": self.sessions}) + "\n")

    # the search's hooks: only checkpoints matter here
    def checkpoint(self, state: dict[str, Any]) -> None:
        self.save()


@contextlib.contextmanager
def file_lock(path: Path, holder: str, wait_seconds: float) -> Iterator[None]:
    """An exclusive lock on `path` (made if needed) for the duration; RunError when another
    process holds it after `wait_seconds`."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunError(f"{path}: cannot open the lock file ({exc.strerror or exc})") from None
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunError(f"{holder} (another process holds {path})") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _clear_unstarted(folder: Path) -> None:
    """Make way for a new run where a kill stopped RunFolder.create before run.json (only
    the files it writes first, or nothing); RunError for a folder holding anything else."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise RunError(f"{folder}: exists and is not a run folder; move it away")
    left = list(folder.iterdir())
    stray = [p.name for p in left if p.name not in _BEFORE_RUN
             and not (p.name.startswith(".") and p.name.endswith(".tmp"))]
    if stray:
        raise RunError(f"{folder}: holds {', '.join(sorted(stray)[:5])} but no {RUN}, so it "
                       "is no run folder; move it away and run the command again")
    for path in left:
        path.unlink()


def _open(run: Run) -> tuple[Any, RunFolder, dict[str, Any]] | None:
    """The run's search and folder: made afresh, or restored from the folder's last
    checkpoint; None for a finished run."""
    from azdsl.search.evolve import Search

    if state(run) == "finished":
        return None
    if not (run.folder / RUN).exists():
        _clear_unstarted(run.folder)
        config = run.config.parse()
        search = Search(config, run.seed, run.backend, NoHooks())  # before the folder: it
        folder = RunFolder.create(run.folder, run.config.text, config, run.seed,  # may fail
                                  run.backend, str(run.config.source.resolve()))
        return search, folder, folder.read_run()
    folder = RunFolder(run.folder)
    info = folder.read_run()
    if info["seed"] != run.seed:
        raise RunError(f"{run.folder / RUN}: holds seed {info['seed']}, not {run.seed}; "
                       "move the folder away")
    try:
        held = tomllib.loads(read_text(run.folder / CONFIG))
    except tomllib.TOMLDecodeError as exc:
        raise RunError(f"{run.folder / CONFIG}: not valid TOML ({exc})") from None
    changed = differences(held, run.config.data())
    if changed:
        raise RunError(f"{run.folder}: was started with another config than the cell "
                       f"{run.cell} runs now (differing: {', '.join(changed[:5])}); finish it "
                       "with `azdsl resume`, or use another --out")
    search, info = open_search(folder)
    return search, folder, info


def execute(run: Run, stop: Callable[[], bool], hooks: Sequence[Any] = ()) -> Outcome:
    """One session of a run: to its end, or to a checkpoint when `stop()` turns true."""
    from azdsl.search.evolve import Interrupted

    started = time.process_time()
    try:
        try:
            run.folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"{run.folder.parent}: cannot make the folder "
                           f"({exc.strerror or exc})") from None
        with file_lock(run.folder.parent / f".{run.folder.name}.lock",
                       f"{run.folder}: another process is running this seed", RUN_LOCK_WAIT):
            opened = _open(run)
            if opened is None:
                return Outcome(run.cell, run.seed, SKIPPED)
            search, folder, info = opened
            ledger = CpuLedger(folder.path, started)
            search.hooks = Tee(folder, ledger, *hooks)
            search.stop_requested = stop
            try:
                result = search.run()
            except Interrupted:
                return Outcome(run.cell, run.seed, STOPPED, cpu_seconds=ledger.session())
            folder.write_report(search, result, info)
            ledger.save()
            return Outcome(run.cell, run.seed, DONE, cpu_seconds=ledger.session())
    except AzdslError as exc:
        return Outcome(run.cell, run.seed, FAILED, message(exc))


def _serve(run: Run, control: Connection, reply: Connection) -> None:
    """A worker process: one session of one run. It stops at a checkpoint when the driver
    sends anything or goes away (the pipe closes), and on SIGTERM; Ctrl-C is the driver's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asked = [False]

    def terminate(signum: int, frame: object) -> None:
        asked[0] = True

    signal.signal(signal.SIGTERM, terminate)

    def stop() -> bool:
        if not asked[0]:
            with contextlib.suppress(OSError):
                asked[0] = control.poll()
        return asked[0]

    try:
        outcome = execute(run, stop)
    except Exception:  # a bug: the driver reports it with the seed and goes on
        outcome = Outcome(run.cell, run.seed, FAILED, traceback.format_exc())
    with contextlib.suppress(OSError):
        reply.send(outcome)


# ---- the driver -------------------------------------------------------------------------------


@dataclass
class Status:
    """Progress on stderr: runs started and done, what is running, the time taken."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    every: float = 60.0  # seconds between two lines about the runs under way
    begun: float = field(default_factory=time.monotonic)
    total: int = 0  # runs of the command, and how many of them are done
    done: int = 0
    _last: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(f"[{self.elapsed()}] {text}\n")
            self.stream.flush()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.begun)
        return f"{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"

    def running(self, runs: Sequence[Run], force: bool = False) -> None:
        """Every `every` seconds: the runs under way and how far each is."""
        if not runs or (not force and time.monotonic() - self._last < self.every):
            return
        self._last = time.monotonic()
        parts = []
        for run in runs:
            record = results.last_progress(run.folder)
            where = "starting" if record is None else (
                f"experiment {record.get('experiment')}, "
                f"{record.get('total_individuals', 0):,} individuals, "
                f"best {record.get('best_ever', 0.0):.6f}")
            parts.append(f"{run.cell} seed {run.seed} ({where})")
        self.say(f"{self.done}/{self.total} runs done; running: " + "; ".join(parts))


class _Heartbeat(NoHooks):
    """Hooks for a run in the driver's process: the status line on its progress reports."""

    def __init__(self, status: Status, run: Run) -> None:
        self.status, self.run = status, run

    def progress(self, record: dict[str, Any]) -> None:
        self.status.running([self.run])


@dataclass
class Summary:
    """How a command ended: the results' Markdown, the runs that failed, whether it stopped."""

    markdown: str
    errors: dict[tuple[str, int], str]
    stopped: bool
    unfinished: int


class Driver:
    """One command's runs of an experiment in DIR."""

    def __init__(self, experiment: Experiment, out: Path, seeds: Sequence[int], *,
                 jobs: int, budget_scale: float, status: Status,
                 cells: Sequence[str] | None = None) -> None:
        self.experiment = experiment
        self.out = out
        self.seeds = tuple(seeds)
        self.jobs = jobs
        self.budget_scale = budget_scale
        self.status = status
        self.errors: dict[tuple[str, int], str] = {}
        self.references = results.References()
        self._last: dict[str, Any] = {}
        # The tables cover every cell for these seeds, run here or not (a cell left out
        # shows its seeds as they are: finished, unfinished or not started).
        self.runs = plan(experiment, out, seeds, budget_scale, cells)

    def write_results(self) -> str:
        document = results.collect(self.experiment, self.out, self.seeds, self.budget_scale,
                                   self.references, self.errors)
        self._last = document
        return results.write(self.out, document)

    def run(self, stop: Callable[[], bool]) -> Summary:
        open_folder(self.out, self.experiment, self.budget_scale)
        with file_lock(self.out / LOCK, f"{self.out}: another `azdsl experiment` runs in "
                                        "this folder", 0.0):
            states = {run: state(run) for run in self.runs}
            started = [r for r in self.runs if states[r] == "started"]
            new = [r for r in self.runs if states[r] == "new"]
            todo = started + new  # what was begun first
            self.status.total = len(self.runs)
            self.status.done = len(self.runs) - len(todo)
            jobs = max(1, min(self.jobs, len(todo)))
            self.status.say(
                f"{self.experiment.name}: {len(self.runs)} runs "
                f"({len({r.cell for r in self.runs})} cell(s) x seeds "
                f"{format_seeds(self.seeds)}) in {self.out}: "
                f"{self.status.done} finished, {len(started)} to resume, {len(new)} to start; "
                f"{jobs} process(es)")
            self.write_results()
            session = self._parallel if jobs > 1 else self._inline
            stopped = session(todo, jobs, stop)
            markdown = self.write_results()
            drawn = figure.write_figure(self.out, self._last)
            if drawn:
                self.status.say(f"figure: {', '.join(str(path) for path in drawn)}")
        left = sum(1 for run in self.runs if state(run) != "finished")
        return Summary(markdown, dict(self.errors), stopped, left)

    def _finished(self, run: Run, outcome: Outcome) -> None:
        if outcome.status == FAILED:
            self.errors[(run.cell, run.seed)] = outcome.message.strip()
            self.status.say(f"{run.cell} seed {run.seed}: error: {outcome.message.strip()}")
            return
        if outcome.status == STOPPED:
            self.status.say(f"{run.cell} seed {run.seed}: stopped at a checkpoint "
                            f"({outcome.cpu_seconds:,.0f} CPU s this session)")
            return
        self.status.done += 1
        self.write_results()
        record = next(r for c in self._last["cells"] if c["cell"] == run.cell
                      for r in c["seeds"] if r["seed"] == run.seed)
        verdict = {True: "success", False: "no success", None: "-"}[record["success"]]
        self.status.say(
            f"{self.status.done}/{self.status.total} {run.cell} seed {run.seed}: {verdict} "
            f"(search {record.get('search_fitness', 0):.6f}, select "
            f"{record.get('select_fitness', 0):.6f}, final {record.get('final_fitness', 0):.6f}"
            f"), {record.get('individuals', 0):,} individuals, "
            f"{outcome.cpu_seconds:,.0f} CPU s this session")

    def _inline(self, todo: Sequence[Run], jobs: int, stop: Callable[[], bool]) -> bool:
        for run in todo:
            if stop():
                return True
            self._announce(run)
            self._finished(run, execute(run, stop, (_Heartbeat(self.status, run),)))
        return stop()

    def _announce(self, run: Run) -> None:
        record = results.last_progress(run.folder)
        after = f" after {record['total_individuals']:,} individuals" if record and isinstance(
            record.get("total_individuals"), int) else ""
        self.status.say(f"{'resume' if state(run) == 'started' else 'start'} {run.cell} seed "
                        f"{run.seed}{after}")

    def _parallel(self, todo: Sequence[Run], jobs: int, stop: Callable[[], bool]) -> bool:
        context = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods()
                                 else "spawn")
        if context.get_start_method() == "forkserver":  # the server imports azdsl once
            context.set_forkserver_preload(["azdsl.experiments.runner", "azdsl.search.evolve"])
        pending = list(todo)
        running: dict[Run, tuple[BaseProcess, Connection, Connection]] = {}
        stopping = False
        try:
            while pending or running:
                if stop() and not stopping:
                    stopping = True
                    self.status.say(f"stopping: {len(running)} run(s) checkpoint and stop")
                    for _, control, _ in running.values():
                        with contextlib.suppress(OSError):
                            control.send("stop")
                while pending and len(running) < jobs and not stopping:
                    run = pending.pop(0)
                    self._announce(run)
                    control, control_child = context.Pipe()
                    reply, reply_child = context.Pipe()
                    proc = context.Process(  # type: ignore[attr-defined]
                        target=_serve, args=(run, control_child, reply_child),
                        name=f"azdsl-experiment-{run.cell}-{run.seed}", daemon=True)
                    proc.start()
                    control_child.close()
                    reply_child.close()
                    running[run] = (proc, control, reply)
                if not running:
                    break
                handles: dict[Any, Run] = {}
                for run, (proc, _, reply) in running.items():
                    handles[reply] = run
                    handles[proc.sentinel] = run
                for ready in wait(list(handles), timeout=1.0):
                    run = handles[ready]
                    if run not in running:
                        continue
                    proc, control, reply = running.pop(run)
                    outcome = _receive(run, proc, reply)
                    proc.join(10)
                    control.close()
                    reply.close()
                    self._finished(run, outcome)
                self.status.running(list(running))
        finally:  # a second Ctrl-C, or a bug here: the workers stop at a checkpoint
            for _, control, reply in running.values():
                control.close()
                reply.close()
            for proc, _, _ in running.values():
                proc.join(30)
        return stopping


def _receive(run: Run, proc: BaseProcess, reply: Connection) -> Outcome:
    """A worker's outcome; a failure naming its exit code when it died without one."""
    try:
        if reply.poll(5):
            outcome = reply.recv()
            if isinstance(outcome, Outcome):
                return outcome
    except (EOFError, OSError):
        pass
    proc.join(5)
    return Outcome(run.cell, run.seed, FAILED,
                   f"the process running it ended without a result (exit code "
                   f"{proc.exitcode}); run the command again to resume it from its last "
                   "checkpoint")


def open_folder(out: Path, experiment: Experiment, budget_scale: float) -> None:
    """DIR for `experiment`: made with its experiment.json, or checked to be one of the same
    experiment and budget scale (RunError otherwise, nothing changed)."""
    manifest = out / MANIFEST
    if manifest.exists():
        data = results.read_json_file(manifest)
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise RunError(f"{manifest}: not an azdsl experiment description")
        if data.get("experiment") != experiment.name:
            raise RunError(f"{out}: holds the experiment {data.get('experiment')!r}, not "
                           f"{experiment.name!r}; choose another --out")
        if data.get("budget_scale") != budget_scale:
            raise RunError(f"{out}: was run with --budget-scale {data.get('budget_scale')}, "
                           f"not {budget_scale:g}; give the same, or choose another --out")
        return
    if out.exists() and not out.is_dir():
        raise RunError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(p.name != LOCK for p in out.iterdir()):
        raise RunError(f"{out}: the folder is not empty and holds no {MANIFEST}; choose "
                       "another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"{out}: cannot make the folder ({exc.strerror or exc})") from None
    write_atomic(manifest, json.dumps({
        "format": MANIFEST_FORMAT, "version": 1, "experiment": experiment.name,
        "budget_scale": budget_scale, "azdsl_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2) + "\n")
