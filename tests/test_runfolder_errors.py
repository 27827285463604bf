"""Run folders that cannot be read, made or written, and workers that cannot be kept: one clean
message (which file or key, what the OS said), exit status 1, nothing half-made, and a run that
can be resumed where it can."""

from __future__ import annotations

import errno
import json
import multiprocessing.forkserver
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import SEARCH_TASKS, Capture, components, without_times
from test_checkpoint_safety import State, contents, make_run, report, stopped_run

from azdsl.cli import main
from azdsl.commands._scale import read_settings
from azdsl.runfolder import CHECKPOINT, CONFIG, PROGRESS, RUN
from azdsl.scale.islands import Request, RunSpec
from azdsl.scale.local_pool import START_TRIES, InlinePool, LocalPool
from azdsl.scale.parallel import MAX_RESTARTS, Execution, IslandRun, IslandSettings
from azdsl.scale.workers import LOST, WorkersLost
from azdsl.search.config import parse_config

ERROR = "azdsl: error: "


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, State]:
    return make_run(tmp_path_factory.mktemp("made"))


def resume(out: Path, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["resume", str(out), "--quiet", *more])
    return status, capsys.readouterr().err


# ---- reading a folder ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [CONFIG, RUN, CHECKPOINT])
def test_a_file_that_is_not_utf8_is_named(tmp_path: Path, made: tuple[Path, State],
                                          capsys: pytest.CaptureFixture[str], name: str) -> None:
    out = stopped_run(tmp_path, made)
    (out / name).write_bytes(b"\xff\xfe" + (out / name).read_bytes())
    before = contents(out)
    status, err = resume(out, capsys)
    assert status == 1
    assert err.startswith(f"{ERROR}{out / name}: not UTF-8 text (byte 0)"), err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert contents(out) == before


def test_progress_that_is_not_utf8_is_kept_as_it_is(tmp_path: Path, made: tuple[Path, State],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = stopped_run(tmp_path, made)
    lines = (out / PROGRESS).read_bytes().split(b"\n")
    (out / PROGRESS).write_bytes(b"\n".join([b"\xff\xfe not json", *lines[1:]]))
    assert resume(out, capsys)[0] == 0
    assert report(out) == report(made[0])
    assert (out / PROGRESS).read_bytes().startswith(b"\xff\xfe not json\n")


def test_a_checkpoint_that_is_a_folder(tmp_path: Path, made: tuple[Path, State],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = stopped_run(tmp_path, made)
    (out / CHECKPOINT).unlink()
    (out / CHECKPOINT).mkdir()
    status, err = resume(out, capsys)
    assert status == 1
    assert err == f"{ERROR}{out / CHECKPOINT}: cannot read (Is a directory) (nothing was changed)\n"


def test_a_damaged_checkpoint_is_reported_once(tmp_path: Path, made: tuple[Path, State],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = stopped_run(tmp_path, made)
    (out / CHECKPOINT).write_text((out / CHECKPOINT).read_text()[:-100])
    status, err = resume(out, capsys)
    assert status == 1
    assert err.startswith(f"{ERROR}{out / CHECKPOINT}: corrupt checkpoint") and err.count(
        "error:") == 1


RUN_FIELDS = {
    "seed a string": ("seed", "7", "seed: must be a whole number, got '7'"),
    "seed negative": ("seed", -1, "seed: -1 is out of range"),
    "backend a number": ("backend", 5, "backend: must be a string, got 5"),
    "backend unknown": ("backend", "gpu", "backend: 'gpu' is not a backend (known: vm, "
                        "interp, jit)"),
    "files a list": ("files", [], "files: must be an object, got []"),
    "a file without text": ("files", {"search.initial_population": {"path": "a.az"}},
                            "files.search.initial_population.resolved: missing"),
    "config source a number": ("config_source", 3, "config_source: must be a string"),
    "version": ("version", 2, "version: 2 is out of range"),
}


@pytest.mark.parametrize("case", sorted(RUN_FIELDS))
def test_run_json_fields_are_checked_and_named(tmp_path: Path, made: tuple[Path, State],
                                               capsys: pytest.CaptureFixture[str], case: str
                                               ) -> None:
    key, value, expected = RUN_FIELDS[case]
    out = stopped_run(tmp_path, made)
    run = json.loads((out / RUN).read_text())
    run[key] = value
    (out / RUN).write_text(json.dumps(run))
    before = contents(out)
    status, err = resume(out, capsys)
    assert status == 1
    assert err.startswith(f"{ERROR}{out / RUN}: {expected}"), err
    assert err.endswith("(nothing was changed)\n") and err.count("error:") == 1
    assert contents(out) == before


def test_island_settings_are_checked_and_named(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG_TEXT)
    out = tmp_path / "run"
    assert main(["evolve", str(config), "--out", str(out), "--seed", "2", "--quiet",
                 "--islands", "2", "--workers", "1", "--migrate-every", "50"]) == 0
    file = out / "islands.json"
    good = json.loads(file.read_text())
    for data, expected in (({**good, "migrate_every": "x"}, "migrate_every: must be a whole"),
                           ({**good, "islands": 0}, "islands: 0 is out of range"),
                           ({**good, "format": "other"}, "not azdsl island settings"),
                           ({**good, "version": 2}, "version 2 of the island settings"),
                           ([1], "not azdsl island settings")):
        file.write_text(json.dumps(data))
        status, err = resume(out, capsys)
        assert status == 1
        assert err.startswith(f"{ERROR}{file}: {expected}"), err
    assert good["version"] == 1
    file.write_text(json.dumps({k: v for k, v in good.items() if k != "version"}))
    assert read_settings(out) == IslandSettings(2, 50, 1)  # written before the version key


# ---- making a folder ----------------------------------------------------------------------------

CONFIG_TEXT = SEARCH_TASKS + components(5, 2, 5) + """[search]
population_size = 10
tournament_size = 2
[budget]
max_individuals = 100
[run]
checkpoint_every = 50
"""


def evolve(config: Path, out: Path | str, capsys: pytest.CaptureFixture[str], *more: str
           ) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["evolve", str(config), "--out", str(out), "--seed", "1", "--quiet",
                   "--islands", "1", *more])
    return status, capsys.readouterr().err


def _places(tmp_path: Path) -> list[tuple[str, str]]:
    """--out values the OS refuses, and what it says."""
    file = tmp_path / "somefile"
    file.write_text("not a folder\n")
    places = [(f"{file}/run", f"{file}/run: cannot make the folder (Not a directory)"),
              (str(file), f"{file}: exists and is not a folder; choose another --out"),
              ("/dev/full", "/dev/full: exists and is not a folder"),
              ("/dev/full/run", "/dev/full/run: cannot make the folder (Not a directory)"),
              ("/proc/azdsl-test-run", "/proc/azdsl-test-run: cannot make the folder (No such "
               "file or directory)")]
    if Path("/sys/kernel").is_dir():  # sysfs: no folder can be made there, by root neither
        places.append(("/sys/azdsl-test-run", "/sys/azdsl-test-run: cannot make the folder"))
    return places


def test_out_where_no_folder_can_be_made(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG_TEXT)
    for out, expected in _places(tmp_path):
        status, err = evolve(config, out, capsys)
        assert status == 1, out
        assert err.startswith(ERROR + expected) and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml", "somefile"]
    assert (tmp_path / "somefile").read_text() == "not a folder\n"


def _full_disk_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """The `call`-th fsync of a file (and every later one) fails as on a full disk."""
    calls = [0]
    real = os.fsync

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] >= call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_folder_that_cannot_be_written_whole_is_removed(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG_TEXT)
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new", tmp_path / "a" / "b" / "c", empty):
        with monkeypatch.context() as patch:
            _full_disk_at(patch, 2)  # config.toml is written, run.json is not
            status, err = evolve(config, out, capsys)
        assert status == 1
        assert err == f"{ERROR}{out / RUN}: cannot write (No space left on device)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "exp.toml"]
    assert list(empty.iterdir()) == []  # the folder that was there stays
    assert evolve(config, empty, capsys)[0] == 0  # and can be used once there is room


def test_a_full_disk_during_a_checkpoint_stops_a_run_that_resumes(
        tmp_path: Path, made: tuple[Path, State], capsys: pytest.CaptureFixture[str]) -> None:
    out = stopped_run(tmp_path, made)
    checkpoint = (out / CHECKPOINT).read_bytes()
    tmp = out / f".{CHECKPOINT}.tmp"
    tmp.symlink_to("/dev/full")  # the next checkpoint is written into a full device
    status, err = resume(out, capsys)
    assert status == 1
    assert err == (f"{ERROR}{out / CHECKPOINT}: cannot write (No space left on device); once "
                   f"that is mended, continue with: azdsl resume {out}\n")
    assert not tmp.exists() and not tmp.is_symlink()
    assert (out / CHECKPOINT).read_bytes() == checkpoint
    assert resume(out, capsys)[0] == 0
    assert report(out) == report(made[0])


def _npz(path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, x_valid = rng.normal(size=(30, 4)), rng.normal(size=(10, 4))
    w = rng.normal(size=4)
    np.savez(path, x_train=x_train, y_train=x_train @ w, x_valid=x_valid,
             y_valid=x_valid @ w, kind="regression")


def test_a_data_file_that_fails_leaves_no_folder(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "exp.toml"
    config.write_text('[search_tasks]\nkind = "npz"\npath = "data.npz"\n'
                      + CONFIG_TEXT[CONFIG_TEXT.index("[setup]"):])
    out = tmp_path / "run"
    data = tmp_path / "data.npz"
    for broken in (None, b"PK\x03\x04 not a zip file"):
        if broken is not None:
            data.write_bytes(broken)
        status, err = evolve(config, out, capsys)
        assert status == 1 and "data.npz" in err and "Traceback" not in err, err
        assert not out.exists()
    _npz(data)
    assert evolve(config, out, capsys)[0] == 0  # the same --out, once the data is there
    assert (out / "report.json").exists()


# ---- workers ------------------------------------------------------------------------------------

ISLANDS = IslandSettings(islands=2, migrate_every=50)
LONGER = CONFIG_TEXT.replace("max_individuals = 100", "max_individuals = 400")  # 4 barriers


def _islands(workers: int, hooks: Any = None) -> IslandRun:
    return IslandRun(parse_config(LONGER), 3, ISLANDS, hooks=hooks,
                     execution=Execution(workers=workers))


@pytest.fixture(scope="module")
def reference() -> Any:
    return without_times(_islands(1).run().experiments)


class ForkServerKiller(Capture):
    """Kills the multiprocessing fork server (every worker's parent) at a progress record."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.killed = False

    def progress(self, record: dict[str, Any]) -> None:
        super().progress(record)
        server = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        if len(self.records) == self.at and server is not None:
            os.kill(server, signal.SIGKILL)
            self.killed = True


def test_a_killed_fork_server_is_survived(reference: Any) -> None:
    hooks = ForkServerKiller(at=2)
    run = _islands(2, hooks)
    result = run.run()
    assert hooks.killed and run.restarts >= 1
    assert without_times(result.experiments) == reference


def test_a_fork_server_that_dies_while_starting_a_worker_is_restarted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = BaseProcess.start
    failures = [1]

    def start(self: BaseProcess) -> None:
        if failures[0]:  # as multiprocessing reads the fork server's reply: EOF
            failures[0] -= 1
            raise EOFError("unexpected EOF")
        real(self)

    monkeypatch.setattr(BaseProcess, "start", start)
    pool = LocalPool(RunSpec(parse_config(CONFIG_TEXT), 1, "vm", 2, 1), [[0], [1]])
    try:
        assert len(set(pool.pids())) == 2 and not failures[0]
    finally:
        pool.close()


def test_workers_that_cannot_be_started_stop_a_run_that_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG_TEXT)
    out, whole = tmp_path / "run", tmp_path / "whole"
    assert main(["evolve", str(config), "--out", str(whole), "--seed", "3", "--quiet",
                 "--islands", "2", "--workers", "1", "--migrate-every", "50"]) == 0
    tries = [0]

    def start(self: BaseProcess) -> None:
        tries[0] += 1
        raise EOFError("unexpected EOF")

    with monkeypatch.context() as patch:
        patch.setattr(BaseProcess, "start", start)
        capsys.readouterr()
        assert main(["evolve", str(config), "--out", str(out), "--seed", "3", "--quiet",
                     "--islands", "2", "--workers", "2", "--migrate-every", "50"]) == 1
    err = capsys.readouterr().err
    assert tries[0] == START_TRIES and err.count("\n") == 1, err
    assert err == (f"{ERROR}worker process 0 (islands [0]) could not be started {START_TRIES} "
                   "times (unexpected EOF); the run stopped at its last checkpoint; once that "
                   f"is mended, continue with: azdsl resume {out}\n")
    assert resume(out, capsys, "--workers", "2")[0] == 0
    assert report(out) == report(whole)


class _Dying(InlinePool):
    """Worker 1 is lost at every request, a fresh one too."""

    def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        replies = super().call(requests)
        return {w: LOST if w == 1 else reply for w, reply in replies.items()}


def test_a_worker_lost_at_every_start_ends_the_run_cleanly() -> None:
    run = IslandRun(parse_config(CONFIG_TEXT), 3, ISLANDS,
                    pool_factory=lambda spec: _Dying(spec, [[0], [1]]))
    with pytest.raises(WorkersLost, match=r"worker process\(es\) \[1\] \(islands \[1\]\) lost "
                       f"{MAX_RESTARTS + 1} times in a row"):
        run.run()
    assert run.restarts == MAX_RESTARTS


# ---- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_in_a_demo_without_a_folder_is_a_message(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "azdsl", "demo", "--seed", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    assert demo.stderr is not None
    assert demo.stderr.readline().startswith("azdsl demo, seed 1")
    time.sleep(1.0)  # searching now
    demo.send_signal(signal.SIGINT)
    err = demo.stderr.read()
    assert demo.wait(timeout=60) == 130
    assert "interrupted" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []
