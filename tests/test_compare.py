"""`azdsl compare`: the learning-rate rule, tuning on the select tasks, the table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from azdsl.cli import main
from azdsl.language.parse import parse
from azdsl.running.compare import (
    DEFAULT_GRID,
    Entry,
    compare,
    format_table,
    learning_rate_position,
    log_grid,
    paired_difference,
    tune,
    with_learning_rate,
)
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import TaskSpec, make_collection

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CONFIG = """
[search_tasks]
kind = "projected"
dim = 16
num_tasks = 2
num_train = 40
num_valid = 20
seed = 1
[select_tasks]
kind = "projected"
pairs = "heldout"
dim = 16
num_tasks = 2
num_train = 40
num_valid = 20
seed = 50
[final_tasks]
kind = "projected"
pairs = "heldout"
dim = 16
num_tasks = 3
num_train = 40
num_valid = 20
seed = 90
[learn]
ops = ["s = s - s"]
[budget]
max_individuals = 10
"""


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def test_the_learning_rate_literal_of_the_examples() -> None:
    assert learning_rate_position(parse(example("neural_net.az"))) == 2  # s3 = 0.01
    assert learning_rate_position(parse(example("logistic_sgd.az"))) == 0  # s2 = 0.01
    assert learning_rate_position(parse(example("linear_sgd.az"))) == 0  # s4 = s3 * s2


@pytest.mark.parametrize("source", [
    # Only Predict uses the constant: not a learning rate.
    "def Setup():\n  s2 = 0.5\ndef Predict():\n  s1 = s2 * s2\ndef Learn():\n  s3 = s0 - s1\n",
    # Learn overwrites it: not a constant.
    "def Setup():\n  s2 = 0.5\ndef Predict():\n  s1 = dot(v0, v1)\ndef Learn():\n"
    "  s2 = s0 - s1\n  v2 = s2 * v0\n  v1 = v1 + v2\n",
    # A later Setup instruction replaces it.
    "def Setup():\n  s2 = 0.5\n  s2 = gaussian(0.0, 1.0)\ndef Predict():\n  s1 = dot(v0, v1)\n"
    "def Learn():\n  v2 = s2 * v0\n  v1 = v1 + v2\n",
    # The product that reads it is dead code.
    "def Setup():\n  s2 = 0.5\ndef Predict():\n  s1 = dot(v0, v1)\ndef Learn():\n"
    "  v2 = s2 * v0\n",
])
def test_no_learning_rate_literal(source: str) -> None:
    assert learning_rate_position(parse(source)) is None


def test_first_qualifying_constant_wins_and_only_it_changes() -> None:
    source = ("def Setup():\n  s2 = 0.5\n  s3 = 0.25\ndef Predict():\n  s1 = dot(v0, v1)\n"
              "def Learn():\n  s4 = s0 - s1\n  s4 = s4 * s3\n  s4 = s4 * s2\n  v2 = s4 * v0\n"
              "  v1 = v1 + v2\n")
    program = parse(source)
    assert learning_rate_position(program) == 0
    changed = with_learning_rate(program, 0, 0.125)
    assert changed.setup[0].literals == (0.125,)
    assert changed.setup[1:] == program.setup[1:] and changed.learn == program.learn


def test_log_grid() -> None:
    assert DEFAULT_GRID == (0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1.0)
    assert log_grid(0.01, 1.0, 3) == (0.01, 0.1, 1.0)
    with pytest.raises(ValueError):
        log_grid(0.0, 1.0, 3)


def test_tuning_picks_the_best_grid_value_on_the_select_tasks() -> None:
    tasks = make_collection([TaskSpec(kind="projected", dim=16, num_tasks=2, num_train=40,
                                      num_valid=20, seed=50, pairs="heldout")])
    frozen = with_learning_rate(parse(example("logistic_sgd.az")), 0, 0.0)  # never learns
    grid = (0.003, 0.03, 0.3)
    position, rate, scores = tune(frozen, tasks, grid, backend="interp")
    assert position == 0
    by_rate = {r: evaluate(with_learning_rate(frozen, 0, r), tasks, backend="interp").fitness
               for r in (*grid, 0.0)}
    assert dict(scores) == by_rate
    assert rate in grid and by_rate[rate] == max(by_rate.values()) > by_rate[0.0]
    entries = compare([("frozen", frozen)], tasks, tasks[:1], grid, backend="interp")
    assert entries[0].rate == rate and entries[0].own_rate == 0.0
    assert entries[0].final_fitness == evaluate(with_learning_rate(frozen, 0, rate), tasks[:1],
                                                backend="interp").task_fitness
    assert "frozen" in format_table(entries)


def test_compare_command_table_and_markdown(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    programs = [str(EXAMPLES / "logistic_sgd.az"), str(EXAMPLES / "neural_net.az")]
    args = ["compare", str(config), *programs, "--grid", "0.01,0.1", "--backend", "interp"]
    assert main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["program", "lr"] and "3 tasks" in table[0]
    assert [row.split()[0] for row in table[1:]] == ["logistic_sgd", "neural_net"]
    assert all("±" in row and row.split()[2] in ("0.01", "0.1") for row in table[1:])
    assert main([*args, "--markdown"]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert markdown[0].startswith("| program |") and markdown[1].startswith("|---|")
    assert markdown[2].startswith("| logistic_sgd | 0.01 |")
    assert main(["compare", str(config), *programs, "--grid", "a,b"]) == 2


def test_paired_difference_against_the_first_program() -> None:
    a = Entry("a", 0, 0.01, 0.1, 0.9, (), (0.9, 0.8, 1.0))
    b = Entry("b", None, None, None, 0.9, (), (1.0, 0.8, 0.9))
    diff, err, better, worse = paired_difference(b, a)
    assert diff == pytest.approx(0.0) and (better, worse) == (1, 1)
    assert err == pytest.approx(math.sqrt((0.01 + 0.0 + 0.01) / 2 / 3))
    assert a.mean == pytest.approx(0.9) and a.std == pytest.approx(0.1)
    table = format_table([a, b]).splitlines()
    assert table[1].rstrip().endswith("-") and table[2].rstrip().endswith("+0.00 ± 5.77; 1/1")


def test_a_run_folder_stands_for_the_config_it_ran_with(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compare and ablate read a run folder's own config and the program files it read then,
    so they still work once the config's folder (here: its train-budget baseline) is gone."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "net.az").write_text((EXAMPLES / "neural_net.az").read_text())
    config = source / "c.toml"
    config.write_text(CONFIG + '[train_budget]\nbaseline = "net.az"\n')
    run = tmp_path / "run"
    assert main(["evolve", str(config), "--seed", "1", "--islands", "1", "--out", str(run),
                 "--quiet"]) == 0
    capsys.readouterr()
    program = str(EXAMPLES / "logistic_sgd.az")
    printed = {}
    for what in (str(config), str(run)):
        for command in (["compare", what, program, "--grid", "0.1"], ["ablate", what, program]):
            assert main([*command, "--backend", "interp"]) == 0
            printed[what, command[0]] = capsys.readouterr().out
    for command in ("compare", "ablate"):
        assert printed[str(config), command] == printed[str(run), command]
    (source / "net.az").unlink()
    assert main(["ablate", str(config), program]) == 1
    assert "net.az" in capsys.readouterr().err
    assert main(["ablate", str(run), program, "--backend", "interp"]) == 0
    assert capsys.readouterr().out == printed[str(run), "ablate"]
    assert main(["compare", str(tmp_path), program]) == 1
    assert "not a run folder" in capsys.readouterr().err
