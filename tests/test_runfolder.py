"""Run folders: checkpoints are checked, corrupt ones say so, a killed run resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import SEARCH_TASKS, components

from azdsl.cli import main
from azdsl.runfolder import (
    CHECKPOINT,
    PREVIOUS,
    PROGRESS,
    RunError,
    RunFolder,
    decode_checkpoint,
    encode_checkpoint,
    open_search,
)

CONFIG = SEARCH_TASKS + components(5, 2, 5) + """[search]
population_size = 50
tournament_size = 5
[fec]
enabled = true
[budget]
max_individuals = {individuals}
max_experiments = 3
[run]
progress_every = 500
checkpoint_every = {every}
"""


def write_config(tmp_path: Path, individuals: int = 1000, every: int = 250) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG.format(individuals=individuals, every=every))
    return path


def test_checkpoint_round_trip_and_corruption() -> None:
    state = {"a": [1, 2.5, "x"], "big": 2**64 - 1, "pad": list(range(100))}
    text = encode_checkpoint(state)
    assert decode_checkpoint(text, "c") == state
    with pytest.raises(RunError, match="corrupt checkpoint"):
        decode_checkpoint(text.replace("2.5", "2.6"), "c")
    with pytest.raises(RunError, match="corrupt checkpoint"):
        decode_checkpoint(text[: len(text) // 2], "c")
    with pytest.raises(RunError, match="not an azdsl checkpoint"):
        decode_checkpoint("{}\n{}", "c")


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_is_lost(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]
                                                                  ) -> None:
    out = tmp_path / "run"
    assert main(["evolve", str(write_config(tmp_path, 300, 100)), "--out", str(out),
                 "--seed", "1", "--quiet", "--islands", "1"]) == 0
    checkpoint = out / CHECKPOINT
    damaged = checkpoint.read_text()[:-40] + "\n"
    checkpoint.write_text(damaged)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["resume", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "corrupt checkpoint" in err and PREVIOUS in err and "nothing was changed" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_of_a_finished_run_prints_its_report(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["evolve", str(write_config(tmp_path, 300, 0)), "--out", str(out),
                 "--seed", "2", "--quiet", "--islands", "1"]) == 0
    first = capsys.readouterr().out
    assert main(["resume", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == first
    assert "final fitness" in first


def test_progress_is_cut_back_to_the_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["evolve", str(write_config(tmp_path, 1000, 250)), "--out", str(out),
                 "--seed", "3", "--quiet", "--islands", "1"]) == 0
    lines = (out / PROGRESS).read_text().splitlines()
    folder = RunFolder(out)
    (out / PROGRESS).write_text("\n".join(lines) + '\n{"partial": ')
    search, _ = open_search(folder)
    assert (out / PROGRESS).read_text().splitlines() == lines[: search.progress_records]


def _evolve(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "azdsl", "evolve", *args, "--quiet",
                             "--islands", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path: Path) -> None:
    config = write_config(tmp_path, 20000, 2000)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    reference = _evolve([str(config), "--out", str(whole), "--seed", "7"])
    victim = _evolve([str(config), "--out", str(broken), "--seed", "7"])
    deadline = time.monotonic() + 120
    while not (broken / CHECKPOINT).exists():
        assert victim.poll() is None, victim.stderr.read() if victim.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.05)
    if victim.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (broken / "report.json").exists()
    assert reference.wait(timeout=300) == 0
    result = subprocess.run([sys.executable, "-m", "azdsl", "resume", str(broken), "--quiet"],
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    a = json.loads((whole / "report.json").read_text())
    b = json.loads((broken / "report.json").read_text())
    for report in (a, b):
        for e in report["experiments"]:
            e.pop("seconds")
        report.pop("seconds")
    assert a == b
    assert (whole / "best.az").read_text() == (broken / "best.az").read_text()
    progress = [(whole / PROGRESS).read_text().splitlines(),
                (broken / PROGRESS).read_text().splitlines()]
    assert [json.loads(x)["individuals"] for x in progress[0]] == [
        json.loads(x)["individuals"] for x in progress[1]]
