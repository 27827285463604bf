"""The command line under fuzzing, as an attacker or a careless user would use it: arbitrary
bytes as programs and configs, huge files, broken configs and edited checkpoints. The only
acceptable outcomes are success or azdsl's own error (exit 1, `...: error: ...` on stderr):
never a traceback, a crash, a hang or a half-made run folder."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import SEARCH_TASKS, budget, components, population, sgd

from azdsl.cli import main
from azdsl.runfolder import CHECKPOINT, PREVIOUS, REPORT_JSON, REPORT_TEXT, encode_checkpoint

OWN_ERROR = re.compile(r"(^|\n)\S[^\n]*: error: ")
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def assert_own_outcome(status: object, err: str) -> None:
    """Success, or azdsl's own error: exit 1 with at least one `where: error: what` line."""
    assert "Traceback" not in err, err
    assert status in (0, 1), (status, err)
    if status == 1:
        assert OWN_ERROR.search(err), err


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(args)
    return status, capsys.readouterr().err


def fmt_check_outcome(file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt --check` also exits 1 for a valid file that is not canonical, naming it."""
    capsys.readouterr()
    status = main(["fmt", "--check", str(file)])
    out, err = capsys.readouterr()
    if status == 1 and not err:
        assert str(file) in out, out
    else:
        assert_own_outcome(status, err)


# ---- programs -------------------------------------------------------------------------------

# Characters that have broken parsers before: line separators Python splits on, controls,
# a BOM, quotes, brackets, digits that make huge indices, non-ASCII letters.
HOSTILE = ["\u2028", "\u2029", "\x85", "\v", "\f", "\r", "\x00", "\x1b", "\ufeff", "\t", "#",
           "[", "]", "(", ")", ",", "=", "@", "*", "-", "e", "99999999999", "v1[", "nan",
           "inf", "def ", "\u00e9", "\U0001f600", "\\", "'", '"', ":", "\n"]


@st.composite
def damaged_programs(draw: st.DrawFn) -> bytes:
    """The SGD program with hostile pieces spliced in, cut, or replaced by raw bytes."""
    text = sgd()
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            text = text[:at] + draw(st.sampled_from(HOSTILE)) + text[at:]
        elif choice == 1:
            text = text[:at] + text[at + draw(st.integers(1, 10)):]
        else:
            text = text[:at] + draw(st.text(max_size=8)) + text[at:]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # and sometimes bytes that are not UTF-8 at all
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), damaged_programs()))
def test_programs_of_arbitrary_bytes(data: bytes, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "prog.az"
    file.write_bytes(data)
    for args in (["check", str(file)], ["check", str(file), "--dim", "4"],
                 ["simplify", str(file)]):
        assert_own_outcome(*run_cli(args, capsys))
    fmt_check_outcome(file, capsys)
    before = file.read_bytes()
    status, err = run_cli(["fmt", str(file)], capsys)
    assert_own_outcome(status, err)
    if status == 1:  # fmt never rewrites a file it could not read as a program
        assert file.read_bytes() == before


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged_programs())
def test_damaged_programs_run_or_fail_cleanly(data: bytes, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "prog.az"
    file.write_bytes(data)
    assert_own_outcome(*run_cli(["run", str(file), "--task", "linear", "--dim", "4",
                                 "--tasks", "1", "--train", "5", "--valid", "5"], capsys))


def test_huge_files_are_answered_quickly_and_briefly(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A multi-megabyte line and a file of 50,000 errors: an answer in seconds (generous
    bounds: the quadratic versions took minutes), and the long line is not echoed whole."""
    long_line = tmp_path / "long.az"
    long_line.write_text("def Learn():\n  s1 = s1 + " + "s2 + " * 600_000 + "s3\n")
    many = tmp_path / "many.az"
    many.write_text("def Learn():\n" + "  s1 = sine(s2)\n" * 50_000)
    for file in (long_line, many):
        for command in ("check", "fmt"):
            start = time.monotonic()
            status, err = run_cli([command, str(file)], capsys)
            assert time.monotonic() - start < 60, (command, file.name)
            assert status == 1 and OWN_ERROR.search(err) and "Traceback" not in err
            if file is long_line:
                assert len(err) < 10_000, len(err)


# ---- configs --------------------------------------------------------------------------------

BASE_CONFIG = SEARCH_TASKS + components(3, 1, 3) + population(8, 2) + budget(40, 1, 20)

# Values that are wrong for almost every key: negative, zero, beyond int64, absurdly large,
# not a number, the wrong type, empty or nested containers.
HOSTILE_VALUES = ["-1", "0", "9223372036854775807", "10000000000000", "1e308", "inf", "-inf",
                  "nan", '"x"', '""', "[]", "[[]]", "{}", "true", "0.5", '["nonsense"]',
                  '"s = c"', "[1, 2]", '"\u2028"']


@st.composite
def broken_configs(draw: st.DrawFn) -> bytes:
    """The base config with a line edited, deleted or duplicated, or the file cut short; the
    budget and run sections stay as they are, so a config that is still valid ends quickly."""
    lines = BASE_CONFIG.splitlines()
    protected = lines.index("[budget]")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, protected - 1))
        action = draw(st.integers(0, 3))
        if action == 0 and "=" in lines[at]:
            key = lines[at].split("=")[0].strip()
            lines[at] = f"{key} = {draw(st.sampled_from(HOSTILE_VALUES))}"
        elif action == 1:
            del lines[at]
            protected -= 1
        elif action == 2:
            lines.insert(at, lines[at])
            protected += 1
        else:
            lines.insert(at, f"{draw(st.sampled_from(['bogus', 'dim', 'kind']))} = "
                         f"{draw(st.sampled_from(HOSTILE_VALUES))}")
            protected += 1
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=200), broken_configs()))
def test_broken_configs_fail_cleanly_and_leave_nothing_half_made(
        data: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        config = Path(scratch) / "exp.toml"
        config.write_bytes(data)
        out = Path(scratch) / "run"
        status, err = run_cli(["evolve", str(config), "--out", str(out), "--seed", "1",
                               "--quiet", "--islands", "1"], capsys)
        assert_own_outcome(status, err)
        if status == 1:  # a config refused leaves no run folder in the way of the next try
            assert not out.exists() or not any(out.iterdir()), sorted(os.listdir(out))


# ---- edited run folders ---------------------------------------------------------------------

# Replacements for one field of a checkpoint: out-of-range numbers, the wrong types, and
# programs that parse but do not fit the run's memory (F = 4 here) or its cells.
CHECKPOINT_EDITS: list[Any] = [
    -1, 10**9, 2**64, -(2**70), 10**30, 0.5, float("inf"), float("nan"), True, None, "", "x",
    [], {}, [1, 2, 3], {"x": 1},
    "def Setup():\ndef Predict():\n  v1[100000000] = 1.0\ndef Learn():\n",
    "def Setup():\n  s300 = s1 + s1\ndef Predict():\ndef Learn():\n",
    "def Setup():\n  v1[40] = 1.0\ndef Predict():\ndef Learn():\n",
    "def Setup():\n  m99999999 = m1 + m1\ndef Predict():\ndef Learn():\n",
    "not a program at all",
]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON value, containers included (so whole lists get replaced too)."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index in sorted({0, len(value) // 2, len(value) - 1} & set(range(len(value)))):
            yield from leaves(value[index], (*path, index))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = value.copy()
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


@pytest.fixture(scope="module")
def mid_run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder stopped in the middle of its second experiment (a real checkpoint)."""
    base = tmp_path_factory.mktemp("fuzz_run")
    config = base / "exp.toml"
    config.write_text(BASE_CONFIG.replace("max_experiments = 1", "max_experiments = 2"))
    out = base / "run"
    assert main(["evolve", str(config), "--out", str(out), "--seed", "3", "--quiet",
                 "--islands", "1"]) == 0
    # The checkpoint before the last one is taken mid-experiment: make it the run's last.
    os.replace(out / PREVIOUS, out / CHECKPOINT)
    for name in (REPORT_JSON, REPORT_TEXT):
        (out / name).unlink()
    return out


def edited_folders(source: Path, into: Path, count: int, seed: int) -> list[Path]:
    """Copies of `source`, each with one field of its checkpoint or run.json replaced (the
    checkpoint's checksum recomputed, as an editor would), or a file made non-UTF-8."""
    draw = random.Random(seed)
    state = json.loads((source / CHECKPOINT).read_text())["state"]
    run = json.loads((source / "run.json").read_text())
    state_paths = [p for p in leaves(state) if p]
    run_paths = [p for p in leaves(run) if p]
    folders = []
    for index in range(count):
        folder = into / f"edit{index}"
        shutil.copytree(source, folder)
        roll = draw.random()
        if roll < 0.75:
            path = draw.choice(state_paths)
            edited = replaced(state, path, draw.choice(CHECKPOINT_EDITS))
            (folder / CHECKPOINT).write_text(encode_checkpoint(edited))
        elif roll < 0.9:
            path = draw.choice(run_paths)
            (folder / "run.json").write_text(json.dumps(replaced(run, path,
                                                                 draw.choice(CHECKPOINT_EDITS))))
        else:
            name = draw.choice(["config.toml", "run.json", CHECKPOINT, "progress.jsonl"])
            data = (folder / name).read_bytes()
            at = draw.randrange(len(data) + 1)
            (folder / name).write_bytes(data[:at] + b"\xff\xfe\x80" + data[at:])
        folders.append(folder)
    return folders


def test_edited_checkpoints_and_run_files_never_crash_the_resume(
        mid_run_folder: Path, tmp_path: Path) -> None:
    """Forty edited run folders resumed in one subprocess: each ends in success or azdsl's own
    error, and an error changes nothing in the folder (progress.jsonl is not cut back)."""
    folders = edited_folders(mid_run_folder, tmp_path, 40, seed=11)
    before = {f: {p.name: p.read_bytes() for p in f.iterdir()} for f in folders}
    driver = Path(__file__).with_name("resume_many.py")
    done = subprocess.run([sys.executable, str(driver), *map(str, folders)],
                          capture_output=True, text=True, timeout=600)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    finished = [r for r in results if "status" in r]
    crashed = results[-1]["started"] if results and "started" in results[-1] else None
    assert done.returncode == 0, (done.returncode, crashed, done.stderr[-2000:])
    assert len(finished) == len(folders)
    for result in finished:
        assert_own_outcome(result["status"], result["stderr"])
        if result["status"] == 1:
            folder = Path(result["folder"])
            assert {p.name: p.read_bytes() for p in folder.iterdir()} == before[folder], folder
