"""A checkpoint is user input: an edited one (its checksum made to match) is refused, naming the
file and the field, before anything in the run folder changes; it never reaches the VM."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import SEARCH_TASKS, Capture, budget, components, population, without_times

from azdsl.cli import main
from azdsl.runfolder import (
    CHECKPOINT,
    PREVIOUS,
    REPORT_JSON,
    REPORT_TEXT,
    encode_checkpoint,
)
from azdsl.scale.parallel import Execution, IslandRun, IslandSettings
from azdsl.search.config import parse_config
from azdsl.search.evolve import Search

CONFIG = SEARCH_TASKS + components(5, 2, 5) + population(20, 5) + budget(400, 2, 50)
SEED = 4

State = dict[str, Any]
Edits = dict[str, tuple[Callable[[State], object], str]]  # what is edited, the message


def make_run(root: Path) -> tuple[Path, State]:
    """A finished run folder and a state from the middle of its second experiment (the
    population full, so that a resume runs the compiled loop at once)."""
    config = root / "exp.toml"
    config.write_text(CONFIG)
    whole = root / "whole"
    assert main(["evolve", str(config), "--out", str(whole), "--seed", str(SEED), "--quiet",
                 "--islands", "1"]) == 0
    hooks = Capture()
    Search(parse_config(CONFIG), SEED, "vm", hooks).run()
    middle = [s for s in hooks.states if s["current"] is not None
              and s["current"]["index"] == 1 and s["current"]["individuals"] == 200]
    assert middle, "no checkpoint in the middle of experiment 2"
    return whole, middle[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, State]:
    return make_run(tmp_path_factory.mktemp("made"))


def stopped_run(tmp_path: Path, made: tuple[Path, State],
                change: Callable[[State], object] | None = None) -> Path:
    """The run folder as a run stopped at the middle state left it, the state edited."""
    whole, middle = made
    out = tmp_path / "run"
    shutil.copytree(whole, out)
    for name in (REPORT_JSON, REPORT_TEXT, PREVIOUS):
        (out / name).unlink()
    state = json.loads(json.dumps(middle))
    if change is not None:
        change(state)
    (out / CHECKPOINT).write_text(encode_checkpoint(state))
    return out


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def report(folder: Path) -> Any:
    return without_times(json.loads((folder / REPORT_JSON).read_text()))


def test_an_unedited_checkpoint_resumes_to_the_uninterrupted_report(
        tmp_path: Path, made: tuple[Path, State]) -> None:
    out = stopped_run(tmp_path, made)
    assert main(["resume", str(out), "--quiet"]) == 0
    assert report(out) == report(made[0])
    assert (out / "best.az").read_text() == (made[0] / "best.az").read_text()


def _learn_line(line: str) -> Callable[[State], None]:
    """An edit adding `line` at the top of Learn in every member of the population."""
    def change(state: State) -> None:
        cur = state["current"]
        cur["programs"] = [p.replace("def Learn():\n", f"def Learn():\n  {line}\n")
                           for p in cur["programs"]]
    return change


def _set(path: str, value: Any) -> Callable[[State], None]:
    """An edit setting the field at a dotted path (`current.fec.cache_size`)."""
    def change(state: State) -> None:
        *parents, last = path.split(".")
        target: Any = state
        for name in parents:
            target = target[int(name)] if isinstance(target, list) else target[name]
        target[int(last) if isinstance(target, list) else last] = value
    return change


# Edits that, unchecked, index memory far out of bounds in the compiled loop or the VM (a
# segfault), or run programs the config cannot hold: resumed in a subprocess, so that a crash
# shows as a signal.
MEMORY: Edits = {
    "vector index far out": (_learn_line("v1[100000000] = 1.0"),
                             "current.programs[0]: not a program of this run (line 11: "
                             "`v1[100000000]`: index 100000000 is out of range for F = 4)"),
    "vector index past F": (_learn_line("v1[40] = 1.0"),
                            "current.programs[0]: not a program of this run (line 11: "
                            "`v1[40]`: index 40 is out of range for F = 4)"),
    "scalar cell past the memory": (_learn_line("s300 = 1.0"),
                                    "current.programs[0]: the program uses s300 but this "
                                    "run has 4 scalar cells"),
    "next slot": (_set("current.next_slot", 10**9),
                  "current.next_slot: 1000000000 is out of range (must be in [0, 19])"),
    "lineage parent far out": (_set("current.lineage.rows.3.1", 10**9),
                               "current.lineage.rows[3][1]: 1000000000 is out of range (must "
                               "be in [-1, 2])"),
    "member row far out": (_set("current.members.0", 10**9),
                           "current.members[0]: 1000000000 is out of range (must be in "
                           "[0, {rows - 1}])"),
}


@pytest.mark.parametrize("case", sorted(MEMORY))
def test_edits_that_would_corrupt_memory_are_refused_before_anything_changes(
        tmp_path: Path, made: tuple[Path, State], case: str) -> None:
    change, expected = MEMORY[case]
    rows = len(made[1]["current"]["lineage"]["rows"])  # a message may name the table's size
    expected = expected.replace("{rows - 1}", str(rows - 1))
    out = stopped_run(tmp_path, made, change)
    (out / "progress.jsonl").write_bytes((out / "progress.jsonl").read_bytes() + b'{"cut')
    before = contents(out)
    result = subprocess.run([sys.executable, "-m", "azdsl", "resume", str(out), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr  # not a signal (-11), not 0
    assert result.stderr == f"azdsl: error: {out / CHECKPOINT}: {expected} (nothing was changed)\n"
    assert contents(out) == before  # progress.jsonl not cut back either


def _experiment_record(state: State) -> Any:
    return state["experiments"][0]


def _twice_the_setup(state: State) -> None:
    cur = state["current"]
    cur["programs"][0] = cur["programs"][0].replace(
        "def Setup():\n", "def Setup():\n" + "  s2 = 0.5\n" * 200)


def _current_into_final(state: State) -> None:
    state["final"] = {"fitness": 0.5, "task_fitness": [0.5], "program": state["chosen"],
                      "simplified": state["chosen"], "select_fitness": 0.5}


# Every other kind of field: the first words of the message name it.
FIELDS: Edits = {
    "slot out of range": (_set("current.slots.3", 99), "current.slots[3]: 99 is out of range"),
    "slot not a number": (_set("current.slots.3", "7"),
                          "current.slots[3]: must be a whole number, got '7'"),
    "slot a boolean": (_set("current.slots.0", True), "current.slots[0]: must be a whole"),
    "fitness NaN": (_set("current.fitness.2", math.nan), "current.fitness[2]: nan is out"),
    "fitness a string": (_set("current.fitness.2", "high"), "current.fitness[2]: must be a "
                         "number"),
    "fitness above 1": (_set("current.fitness.2", 1e30), "current.fitness[2]: 1e+30 is out "
                        "of range (must be a finite number in [0.0, 1.0])"),
    "best fitness below 0": (_set("current.best_fitness", -0.5), "current.best_fitness: -0.5 "
                             "is out of range (must be -1 or in [0, 1])"),
    "fitness list short": (lambda s: s["current"]["fitness"].pop(),
                           "current.fitness: holds 19 entries, not 20"),
    "more members than the population": (
        lambda s: s["current"]["slots"].append(0), "current.slots: holds 21 entries, more "
        "than 20"),
    "stream key negative": (_set("current.keys.3", -1), "current.keys[3]: -1 is out"),
    "stream keys short": (lambda s: s["current"]["keys"].pop(),
                          "current.keys: holds 4 entries, not 5"),
    "stream key a string": (_set("current.keys.1", "7"),
                            "current.keys[1]: must be a whole number"),
    "lineage key too large": (_set("current.lineage.keys.0", 2**64),
                              "current.lineage.keys[0]: "),
    "lineage mutation unknown": (_set("current.lineage.rows.0.2", 99),
                                 "current.lineage.rows[0][2]: 99 is out of range"),
    "lineage not an object": (_set("current.lineage", [1, 2]),
                              "current.lineage: must be an object"),
    "fec served too often": (_set("current.fec.served.0", 10**6),
                             "current.fec.served[0]: 1000000 is out of range (must be in "
                             "[0, 98])"),
    "fec key too large": (_set("current.fec.keys.0", 2**64), "current.fec.keys[0]: "),
    "fec key twice": (lambda s: _set("current.fec.keys.1", s["current"]["fec"]["keys"][0])(s),
                      "current.fec.keys: holds a key twice"),
    "fec off in a state of a run with fec": (_set("current.fec", None),
                                             "current.fec: must be the FEC cache"),
    "hurdle in a run without": (_set("current.hurdle", {"tasks": 1}),
                                "current.hurdle: must be null: hurdles are off"),
    "experiment index": (_set("current.index", 5), "current.index: 5 is out of range"),
    "counter beyond int64": (_set("current.individuals", 2**70), "current.individuals: "),
    "last progress ahead": (_set("current.last_progress", 10**6), "current.last_progress: "),
    "seconds negative": (_set("current.seconds", -1.0), "current.seconds: -1.0 is out"),
    "best program not a program": (_set("current.best", "def Setup():\n  s1 = ?\n"),
                                   "current.best: not a program of this run (line 2: "),
    "component too long": (_twice_the_setup,
                           "current.programs[0]: Setup has 205 instructions, more than this "
                           "run's 5"),
    "program not text": (_set("current.programs.0", 17), "current.programs[0]: must be a "
                         "string"),
    "record seconds text": (lambda s: _experiment_record(s).update(seconds="long"),
                            "experiments[0].seconds: must be a number"),
    "record numbered wrong": (lambda s: _experiment_record(s).update(experiment=3),
                              "experiments[0].experiment: 3 is out of range"),
    "record program": (lambda s: _experiment_record(s).update(simplified="v9[0] = 1"),
                       "experiments[0].simplified: not a program of this run"),
    "record lineage broken": (
        lambda s: _experiment_record(s)["lineage"]["steps"][1].__setitem__(1, 12345),
        "experiments[0].lineage.steps[1][1]: not the id of the step before"),
    "no chosen program": (_set("chosen", None), "chosen: must be the program chosen so far"),
    "finished and under way": (_current_into_final, "current: must be null in a finished run"),
    "seed": (_set("seed", SEED + 1), f"seed: the state is of seed {SEED + 1}, not {SEED}"),
    "current not an object": (_set("current", 5), "current: must be an object, got 5"),
    "progress records": (_set("progress_records", -3), "progress_records: -3 is out"),
}


@pytest.mark.parametrize("case", sorted(FIELDS))
def test_every_field_is_checked_and_named(tmp_path: Path, made: tuple[Path, State],
                                          capsys: pytest.CaptureFixture[str], case: str
                                          ) -> None:
    change, expected = FIELDS[case]
    out = stopped_run(tmp_path, made, change)
    before = contents(out)
    capsys.readouterr()
    assert main(["resume", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"azdsl: error: {out / CHECKPOINT}: {expected}"), err
    assert err.endswith("(nothing was changed)\n") and err.count("error:") == 1
    assert contents(out) == before


def test_a_checksummed_payload_that_is_no_state_object(tmp_path: Path, made: tuple[Path, State],
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    out = stopped_run(tmp_path, made)
    file = out / CHECKPOINT
    deep = "[" * 100_000 + "]" * 100_000  # deeper than the JSON reader recurses
    for payload, expected in (("[1, 2]", "no state object"), (deep, "maximum recursion"),
                              ('{"a": NaN', "Expecting")):
        digest = hashlib.sha256(payload.encode()).hexdigest()
        file.write_text(json.dumps({"format": "azdsl-checkpoint", "version": 1,
                                    "sha256": digest, "length": len(payload)})
                        + "\n" + payload + "\n")
        capsys.readouterr()
        assert main(["resume", str(out), "--quiet"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"azdsl: error: {file}: corrupt checkpoint"), err
        assert expected in err and err.count("error:") == 1
        assert err.endswith("(nothing was changed)\n")


# ---- islands -----------------------------------------------------------------------------------

ISLANDS = IslandSettings(islands=2, migrate_every=50)


@pytest.fixture(scope="module")
def island_state() -> State:
    """A checkpoint of two islands, taken at a barrier inside the first experiment."""
    hooks = Capture()
    run = IslandRun(parse_config(CONFIG), SEED, ISLANDS, hooks=hooks,
                    execution=Execution(workers=1))
    run.run()
    inside = [s for s in hooks.states if s["islands"]["experiment"] is not None]
    assert inside
    return inside[0]


def _island_run() -> IslandRun:
    return IslandRun(parse_config(CONFIG), SEED, ISLANDS, execution=Execution(workers=1))


def test_an_island_state_restores(island_state: State) -> None:
    run = _island_run()
    run.restore(json.loads(json.dumps(island_state)))
    assert run.progress_records == island_state["progress_records"]


ISLAND_FIELDS: Edits = {
    "island slot": (lambda s: _set("current.next_slot", 10**9)(s["islands"]["experiment"][
        "states"][1]), "islands.experiment.states[1].current.next_slot: 1000000000 is out"),
    "island program": (lambda s: _learn_line("v1[100000000] = 1.0")(s["islands"][
        "experiment"]["states"][0]), "islands.experiment.states[0].current.programs[0]: not "
        "a program of this run"),
    "island of another experiment": (lambda s: _set("current.index", 3)(s["islands"][
        "experiment"]["states"][0]), "islands.experiment.states[0].current.index: must be 0"),
    "island without experiment": (lambda s: _set("current", None)(s["islands"]["experiment"][
        "states"][0]), "islands.experiment.states[0].current: must be the island's"),
    "one island missing": (lambda s: s["islands"]["experiment"]["states"].pop(),
                           "islands.experiment.states: holds 1 entries, not 2"),
    "immigrant program": (lambda s: s["islands"]["experiment"].update(
        pending=[[["s9 = 1", 0.5, []]], []]), "islands.experiment.pending[0][0][0]: not a "
        "program of this run"),
    "immigrant ancestry broken": (lambda s: s["islands"]["experiment"].update(
        pending=[[[s["islands"]["experiment"]["summaries"][1]["candidate"][0], 0.5,
                   [[1, -1, "initial", -1, -1, 1, 0, 0.5], [2, 7, "identity", -1, -1, 2, 0,
                                                            0.5]]]], []]),
        "islands.experiment.pending[0][0][2][1][1]: not the id of the step before"),
    "summary field": (lambda s: s["islands"]["experiment"]["summaries"][0].update(
        individuals="many"), "islands.experiment.summaries[0].individuals: must be a whole"),
    "summary unknown field": (lambda s: s["islands"]["experiment"]["summaries"][1].update(
        extra=1), "islands.experiment.summaries[1].extra: unknown field"),
    "summary emigrant": (lambda s: s["islands"]["experiment"]["summaries"][1].update(
        emigrants=[[s["islands"]["experiment"]["summaries"][1]["candidate"][0], "x", []]]),
        "islands.experiment.summaries[1].emigrants[0][1]: must be a number"),
    "done and summary disagree": (lambda s: s["islands"]["experiment"]["done"].__setitem__(
        0, not s["islands"]["experiment"]["summaries"][0]["done"]),
        "islands.experiment.done[0]: must be"),
    "settings": (_set("islands.settings.migrate_every", 0),
                 "islands.settings.migrate_every: 0 is out of range"),
    "barrier": (_set("islands.experiment.barrier", "3"), "islands.experiment.barrier: must"),
}


@pytest.mark.parametrize("case", sorted(ISLAND_FIELDS))
def test_island_checkpoints_are_checked_island_by_island(island_state: State, case: str
                                                         ) -> None:
    change, expected = ISLAND_FIELDS[case]
    state = json.loads(json.dumps(island_state))
    change(state)
    with pytest.raises(ValueError) as info:
        _island_run().restore(state)
    assert str(info.value).startswith(expected), info.value
