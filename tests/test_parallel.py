"""Islands on local processes: results, migration, determinism, faults, resume, the CLI."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import SEARCH_TASKS, Capture, components, held_out_tasks, population, without_times

from azdsl.cli import main
from azdsl.errors import ConfigError
from azdsl.runfolder import CHECKPOINT, RunFolder, decode_checkpoint
from azdsl.scale.islands import Begin, IslandHost, Request, RunSpec, States, Step, island_budget
from azdsl.scale.local_pool import InlinePool, LocalPool
from azdsl.scale.parallel import Execution, IslandRun, IslandSettings, make_pool
from azdsl.scale.workers import Pool, assignment
from azdsl.search.config import Budget, Config, parse_config
from azdsl.search.evolve import Interrupted, Result, Search

CONFIG = (
    SEARCH_TASKS
    + held_out_tasks(4)
    + components(5, 2, 5)
    + population(40, 5)
    + """[budget]
max_individuals = 600
max_experiments = 2
[run]
checkpoint_every = 200
checkpoint_seconds = 0
"""
)

SETTINGS = IslandSettings(islands=2, migrate_every=60)


def config(**changes: Any) -> Config:
    return replace(parse_config(CONFIG), **changes)


def same(a: Result, b: Result) -> bool:
    return (a.program == b.program and a.final_fitness == b.final_fitness
            and without_times(a.experiments) == without_times(b.experiments))


def islands_run(seed: int = 3, workers: int = 1, hooks: Any = None,
                settings: IslandSettings = SETTINGS, **changes: Any) -> IslandRun:
    return IslandRun(config(**changes), seed, settings, hooks=hooks,
                     execution=Execution(workers=workers))


@pytest.fixture(scope="module")
def reference() -> tuple[Result, Capture]:
    """Two islands in the driver's own process (no workers): what every layout must give."""
    hooks = Capture()
    result = islands_run(hooks=hooks).run()
    return result, hooks


# ---- pieces --------------------------------------------------------------------------------------


def test_budget_is_shared_and_islands_are_dealt_round_robin() -> None:
    budget = Budget(max_train_steps=1001, max_individuals=600, max_seconds=5.0)
    assert island_budget(budget, 1) == budget
    share = island_budget(budget, 4)
    assert (share.max_train_steps, share.max_individuals, share.max_seconds) == (251, 150, 5.0)
    assert assignment(5, 2) == [[0, 2, 4], [1, 3]]
    assert assignment(2, 8) == [[0], [1]]
    with pytest.raises(ConfigError):
        IslandSettings(islands=0)


def test_one_island_is_exactly_the_single_process_search() -> None:
    cfg = config()
    plain = Search(cfg, 11).run()
    one = IslandRun(cfg, 11, IslandSettings(1, 70), execution=Execution(workers=4)).run()
    assert same(plain, one)
    assert plain.individuals == one.individuals == 1200


def test_an_immigrant_replaces_the_oldest_member_of_the_other_island() -> None:
    host = IslandHost(RunSpec(config(), 5, "vm", 2, 1), [0, 1])
    host.handle(Begin(0))
    summaries = host.handle(Step(50, {}))
    assert [summaries[i].individuals for i in (0, 1)] == [50, 50]
    emigrant = summaries[0].emigrants[0]
    assert emigrant[1] == summaries[0].best  # the best member, with its fitness
    before = host.handle(States())[1]["current"]
    host.handle(Step(50, {1: (emigrant,)}))  # no search at the same target: just migration
    after = host.handle(States())[1]["current"]
    oldest = before["next_slot"]
    assert emigrant[0] in after["programs"]
    assert after["programs"][after["slots"][oldest]] == emigrant[0]
    assert after["fitness"][oldest] == emigrant[1]
    assert after["next_slot"] == (oldest + 1) % 40


def test_islands_search_different_streams_on_the_same_tasks() -> None:
    host = IslandHost(RunSpec(config(), 5, "vm", 2, 1), [0, 1])
    host.handle(Begin(0))
    host.handle(Step(45, {}))
    states = host.handle(States())
    assert states[0]["current"]["programs"] != states[1]["current"]["programs"]
    a, b = (host.islands[i].search.tasks(0)[0] for i in (0, 1))
    assert all((x.x_train == y.x_train).all() for x, y in zip(a, b, strict=True))


class Recording:
    """A pool that remembers every request (to watch the migration)."""

    def __init__(self, pool: Pool, log: list[dict[int, Request]]) -> None:
        self.pool, self.log, self.islands = pool, log, pool.islands

    def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        self.log.append(dict(requests))
        return self.pool.call(requests)

    def restart(self, worker: int) -> None:
        self.pool.restart(worker)

    def pids(self) -> list[int]:
        return self.pool.pids()

    def close(self) -> None:
        self.pool.close()


def test_ring_migration_sends_each_island_its_neighbours_best(
        reference: tuple[Result, Capture]) -> None:
    log: list[dict[int, Request]] = []
    replies: list[dict[int, Any]] = []

    def factory(spec: RunSpec) -> Pool:
        inner = InlinePool(spec, assignment(spec.islands, 1))

        class Tap(Recording):
            def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
                got = super().call(requests)
                replies.append(got)
                return got

        return Tap(inner, log)

    result = IslandRun(config(), 3, SETTINGS, pool_factory=factory).run()
    assert same(result, reference[0])
    steps = [(r[0], replies[k][0]) for k, r in enumerate(log) if isinstance(r[0], Step)]
    migrations = 0
    for (_, before), (step, _) in itertools.pairwise(steps):
        for island, immigrants in step.immigrants.items():  # i takes island i-1's best
            assert immigrants == before[(island - 1) % 2].emigrants
            migrations += 1
    assert migrations >= 8


# ---- layouts and determinism ---------------------------------------------------------------


def test_two_workers_give_the_result_of_one_process(reference: tuple[Result, Capture]) -> None:
    result, hooks = reference
    assert result.individuals == 1200 and len(result.experiments) == 2
    assert [r["barrier"] for r in hooks.records[:5]] == [1, 2, 3, 4, 5]
    assert {r["islands"] for r in hooks.records} == {2}
    assert hooks.records[4]["individuals"] == 600 and hooks.records[4]["done"]
    capture = Capture()
    run = islands_run(workers=2, hooks=capture)
    assert same(run.run(), result)
    assert without_times(capture.records) == without_times(hooks.records)
    assert run.restarts == 0
    other = islands_run(seed=4).run()
    assert not same(other, result)


def test_make_pool_uses_processes_only_for_several_workers() -> None:
    spec = RunSpec(config(), 1, "vm", 3, 1)
    inline = make_pool(spec, Execution(workers=1))
    assert isinstance(inline, InlinePool) and inline.islands == [[0, 1, 2]]
    inline.close()
    local = make_pool(spec, Execution(workers=2))
    try:
        assert isinstance(local, LocalPool) and local.islands == [[0, 2], [1]]
        pids = local.pids()
        assert len(set(pids)) == 2 and os.getpid() not in pids
    finally:
        local.close()


# ---- faults and resume ---------------------------------------------------------------------


class Killer(Capture):
    """Kills worker 1 with SIGKILL at the given progress records."""

    def __init__(self, at: tuple[int, ...]) -> None:
        super().__init__()
        self.at = at
        self.run: IslandRun | None = None
        self.killed: list[int] = []

    def progress(self, record: dict[str, Any]) -> None:
        super().progress(record)
        if len(self.records) in self.at and self.run is not None:
            pid = self.run.worker_pids()[1]
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)


def test_a_killed_worker_is_restarted_and_the_result_is_unchanged(
        reference: tuple[Result, Capture]) -> None:
    hooks = Killer(at=(2, 4, 7))  # before and after checkpoints, and in experiment 2
    run = islands_run(workers=2, hooks=hooks)
    hooks.run = run
    result = run.run()
    assert len(hooks.killed) == 3 and run.restarts == 3
    assert same(result, reference[0])
    assert without_times(hooks.records) == without_times(reference[1].records)


def test_a_stopped_run_restored_from_its_checkpoint_ends_the_same(
        reference: tuple[Result, Capture]) -> None:
    hooks = Capture()
    run = islands_run(hooks=hooks)
    run.stop_requested = lambda: len(hooks.records) == 3
    with pytest.raises(Interrupted):
        run.run()
    state = hooks.states[-1]
    assert state["islands"]["experiment"]["barrier"] == 3
    assert len(state["islands"]["experiment"]["states"]) == 2
    resumed = islands_run(workers=2, hooks=hooks)
    resumed.restore(state)
    assert resumed.progress_records == 3
    assert same(resumed.run(), reference[0])
    with pytest.raises(ValueError, match="islands"):
        islands_run(settings=IslandSettings(3, 60)).restore(state)


# ---- the command line ------------------------------------------------------------------------


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG)
    return path


def test_cli_islands_run_folder_and_resume(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["evolve", str(_write(tmp_path)), "--out", str(out), "--seed", "3",
                 "--islands", "2", "--workers", "1", "--migrate-every", "60"]) == 0
    captured = capsys.readouterr()
    assert "2 islands" in captured.err and "final fitness" in captured.out
    assert json.loads((out / "islands.json").read_text())["islands"] == 2
    progress = [json.loads(x) for x in (out / "progress.jsonl").read_text().splitlines()]
    assert progress[-1]["total_individuals"] == 1200 and progress[-1]["islands"] == 2
    report = json.loads((out / "report.json").read_text())
    assert report["final_fitness"] == IslandRun(config(), 3, SETTINGS).run().final_fitness
    assert main(["resume", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == captured.out
    assert main(["evolve", str(_write(tmp_path)), "--out", str(tmp_path / "one"), "--quiet",
                 "--workers", "1"]) == 0
    assert not (tmp_path / "one" / "islands.json").exists()  # one island: the plain search


def test_cli_without_ray_installed_says_how_to_get_it(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # restored afterwards
    assert main(["evolve", str(_write(tmp_path)), "--out", str(tmp_path / "r"),
                 "--ray", "local"]) == 1
    assert "pip install 'azdsl[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _evolve(config_path: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "azdsl", "evolve", str(config_path), "--out", str(out),
         "--seed", "8", "--islands", "2", "--workers", "2", "--migrate-every", "100",
         "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _descendants(pid: int) -> list[int]:
    """Processes below `pid` (workers fork from a forkserver, the driver's child)."""
    rows = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True,
                          text=True).stdout.split()
    parents = {int(rows[k]): int(rows[k + 1]) for k in range(0, len(rows), 2)}
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found


@pytest.mark.slow
def test_killed_driver_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG.replace("max_individuals = 600", "max_individuals = 3000")
                    .replace("max_experiments = 2", "max_experiments = 3"))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    victim = _evolve(path, broken)
    deadline = time.monotonic() + 120
    while True:  # wait for a checkpoint taken inside an experiment, then kill the driver
        assert victim.poll() is None, victim.stderr.read() if victim.stderr else ""
        assert time.monotonic() < deadline
        file = broken / CHECKPOINT
        if file.exists():
            state = decode_checkpoint(file.read_text(), "c")
            if state["islands"]["experiment"] is not None and state["experiments"]:
                break
        time.sleep(0.05)
    workers = _descendants(victim.pid)
    assert len(workers) >= 2
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (broken / "report.json").exists()
    reference = _evolve(path, whole)
    deadline = time.monotonic() + 30  # orphaned workers see the pipe close and leave
    while any(os.path.exists(f"/proc/{p}") and "Z" not in _status(p) for p in workers):
        assert time.monotonic() < deadline, "a worker outlived its driver"
        time.sleep(0.1)
    assert reference.wait(timeout=300) == 0
    resumed = subprocess.run([sys.executable, "-m", "azdsl", "resume", str(broken), "--quiet",
                              "--workers", "2"], capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    a = json.loads((whole / "report.json").read_text())
    b = json.loads((broken / "report.json").read_text())
    assert without_times(a) == without_times(b)
    folder = RunFolder(broken)
    assert len((broken / "progress.jsonl").read_text().splitlines()) == len(
        (whole / "progress.jsonl").read_text().splitlines())
    assert folder.read_run()["seed"] == 8


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "Z"


def test_the_lineage_of_each_experiment_crosses_islands_and_replays(
        reference: tuple[Result, Capture]) -> None:
    from azdsl.language.parse import parse
    from azdsl.search.evolve import mutation_config
    from azdsl.search.lineage import ID_SHIFT, Ancestry, replay
    from azdsl.search.mutate import MutationConfig

    result, _ = reference
    space: MutationConfig = mutation_config(config(), 4)
    tags = set()
    for record in result.experiments:
        lineage = record["lineage"]
        ancestry = Ancestry.from_json(lineage["steps"], "steps")
        tags |= {step.id >> ID_SHIFT for step in ancestry.steps}
        chain = replay(parse(lineage["first"]), ancestry, space)
        assert chain[-1] == parse(record["program"])
        assert ancestry.steps[-1].fitness == record["search_fitness"]
    assert tags == {0, 1}  # ancestors from both islands: migrants brought their lineage along
