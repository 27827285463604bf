"""A fitness of one's own (azdsl.extend.register_fitness, `[search] fitness`): the value
worked out by hand, bit for bit on every backend; a search that scores with it, records it
and resumes; clear errors for bad registrations and configs; `--extension` on the command
line."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from support import (
    SEARCH_TASKS,
    Capture,
    budget,
    components,
    evolved_run_folder,
    held_out_tasks,
    without_times,
)

from azdsl.cli import main
from azdsl.errors import ConfigError
from azdsl.extend import load_extensions, register_fitness, restore, snapshot
from azdsl.language.parse import parse, parse_file
from azdsl.runfolder import RunFolder, open_search
from azdsl.running import fitness as fitness_table
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import Task, TaskSpec, make_tasks
from azdsl.scale.islands import Begin, RunSpec, Step
from azdsl.scale.local_pool import LocalPool
from azdsl.scale.workers import WorkerError
from azdsl.search import evolve
from azdsl.search.config import parse_config
from azdsl.search.evolve import Search, final_seed

EXAMPLES = Path(__file__).parent.parent / "examples"
# One text, so the compiled code for it (named by its digest) is reused from the cache.
EXTENSION = '''\
from azdsl.extend import register_fitness


def absolute_error(y, prediction):
    return abs(y - prediction)


def inverse_mae(total, count):
    return 1.0 / (1.0 + total / count)


register_fitness("mae", absolute_error, inverse_mae, kinds=("regression",))
'''
# Predicts the first feature: s1 = x . (1, 0, 0, 0) = x[0] exactly, and never learns.
FIRST_FEATURE = "def Setup():\n  v1[0] = 1.0\ndef Predict():\n  s1 = dot(v0, v1)\n"
CONFIG = (SEARCH_TASKS + held_out_tasks(2) + components(4, 2, 4)
          + '[extensions]\nmodules = ["mae_fitness.py"]\n'
          + '[search]\npopulation_size = 20\ntournament_size = 5\nfitness = "mae"\n'
          + "[fec]\nenabled = true\n" + budget(240, 1, 80))


@pytest.fixture
def mae(tmp_path: Path) -> Iterator[Path]:
    """The extension file, loaded."""
    path = tmp_path / "mae_fitness.py"
    path.write_text(EXTENSION)
    load_extensions([str(path)])
    yield path


def by_hand(task_list: Sequence[Task]) -> list[float]:
    """FIRST_FEATURE's "mae" fitness per task, summed in example order as the protocol does."""
    values = []
    for task in task_list:
        total = 0.0
        for y, x in zip(task.y_valid, task.x_valid, strict=True):
            total += abs(y - x[0])
        values.append(1.0 / (1.0 + total / len(task.y_valid)))
    return values


def test_the_fitness_is_what_numpy_computes_by_hand_on_every_backend(mae: Path) -> None:
    program = parse(FIRST_FEATURE)
    tasks = make_tasks(TaskSpec("linear", dim=4, num_tasks=3, num_train=20, num_valid=30))
    expected = by_hand(tasks)
    for backend in ("interp", "py", "jit", "vm"):
        result = evaluate(program, tasks, backend=backend, fitness="mae")
        assert result.task_fitness == tuple(expected), backend
        assert result.fitness == sum(expected) / 3
    built_in = evaluate(program, tasks, backend="vm")
    assert built_in.task_fitness != result.task_fitness
    # A built-in's name is the default, and its Python functions are what the inlined lines do.
    assert evaluate(program, tasks, backend="vm", fitness="atan_rmse") == built_in
    atan_rmse = fitness_table.FITNESSES["atan_rmse"]
    for task, value in zip(tasks, built_in.task_fitness, strict=True):
        total = 0.0
        for y, x in zip(task.y_valid, task.x_valid, strict=True):
            total += atan_rmse.example(y, x[0])
        assert atan_rmse.score(total, len(task.y_valid)) == value
    with pytest.raises(ConfigError, match="fitness 'accuracy' scores classification tasks"):
        evaluate(program, tasks, fitness="accuracy")
    images = make_tasks(TaskSpec("projected", dim=4, num_tasks=2, num_train=20, num_valid=40,
                                 seed=3))
    accuracy = fitness_table.FITNESSES["accuracy"]
    built_in = evaluate(program, images, backend="vm")
    for task, value in zip(images, built_in.task_fitness, strict=True):
        total = 0.0
        for y, x in zip(task.y_valid, task.x_valid, strict=True):
            total += accuracy.example(y, x[0])  # Predict's s1 is the first feature
        assert accuracy.score(total, len(task.y_valid)) == value
    assert min(built_in.task_fitness) > 0.0 and max(built_in.task_fitness) < 1.0


def test_a_search_scores_with_it_records_it_and_resumes(tmp_path: Path, mae: Path) -> None:
    config = parse_config(CONFIG, base_dir=tmp_path)
    assert config.fitness == "mae"
    hooks = Capture()
    search = Search(config, 4, "vm", hooks)
    search.run()
    assert search.final is not None
    final = evaluate(parse(search.final["simplified"]),
                     evolve.make_tasks(config.final_tasks, None), seed=final_seed(4),
                     fitness="mae")
    assert search.final["fitness"] == final.fitness
    assert search.final["task_fitness"] == list(final.task_fitness)
    resumed_hooks = Capture()
    resumed = Search(config, 4, "vm", resumed_hooks)
    resumed.restore(hooks.states[1])
    resumed.run()
    assert without_times(resumed_hooks.states[-1]) == without_times(hooks.states[-1])


def test_a_run_folder_keeps_it_and_reloads_the_extension(tmp_path: Path, mae: Path) -> None:
    out = evolved_run_folder(tmp_path, CONFIG, 2)
    report = json.loads((out / "report.json").read_text())
    restore(snapshot()._replace(fitnesses=fitness_table.BUILTIN_FITNESSES, loaded=()))
    assert "mae" not in fitness_table.FITNESSES  # forgotten: resuming must load it again
    search, _ = open_search(RunFolder(out))
    assert search.config.fitness == "mae" and "mae" in fitness_table.FITNESSES
    assert search.final is not None
    assert search.final["fitness"] == report["final_fitness"]
    assert 'fitness = "mae"' in (out / "config.toml").read_text()


def test_island_workers_get_it_from_the_extensions_only(tmp_path: Path, mae: Path) -> None:
    config = parse_config(CONFIG, base_dir=tmp_path)
    pool = LocalPool(RunSpec(config, 5, "vm", 1, 1), [[0]])
    try:
        pool.call({0: Begin(0)})
        summary = pool.call({0: Step(60, {})})[0][0]
        assert summary.individuals >= 60
    finally:
        pool.close()
    # Registered by hand here, not by an extension the config names: a worker lacks it.
    register_fitness("by_hand", _square, _divide, kinds=("regression",))
    alone = parse_config(CONFIG.replace('[extensions]\nmodules = ["mae_fitness.py"]\n', "")
                         .replace('"mae"', '"by_hand"'))
    pool = LocalPool(RunSpec(alone, 5, "vm", 1, 1), [[0]])
    try:
        with pytest.raises(WorkerError, match="unknown fitness 'by_hand'"):
            pool.call({0: Begin(0)})
    finally:
        pool.close()


def _returns_an_int(y: float, prediction: float) -> float:
    return 1 if y > prediction else 0  # type: ignore[return-value]


def _uses_an_object(y: float, prediction: float) -> float:
    return float(Fraction(y) - Fraction(prediction))


def _divide(total: float, count: int) -> float:
    return total / count


def _square(y: float, prediction: float) -> float:
    return (y - prediction) ** 2


@pytest.mark.parametrize(("name", "example", "kinds", "message"), [
    ("ints", _returns_an_int, ("regression",), r"example\(0.0, 0.5\) returned 0 compiled by "
     "Numba; it must return a float"),
    ("fractions", _uses_an_object, ("regression",), r"example\(0.0, 0.5\) failed compiled by "
     "Numba: TypingError"),
    ("lambda", len, ("regression",), "example must be a Python function"),
    ("kinds", _square, ("images",), "kinds must be one or both of 'regression', "
     "'classification'"),
    ("kinds", _square, (), "kinds must be one or both"),
    ("atan_rmse", _square, ("regression",), "fitness 'atan_rmse' is built in"),
    ("bad name", _square, ("regression",), "a name is letters"),
])
def test_bad_registrations_are_config_errors(name: str, example: object, kinds: tuple[str, ...],
                                             message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        register_fitness(name, example, _divide, kinds=kinds)  # type: ignore[arg-type]
    assert name not in fitness_table.FITNESSES or name == "atan_rmse"


def test_a_name_registers_once() -> None:
    first = register_fitness("squares", _square, _divide)
    assert register_fitness("squares", _square, _divide) is first  # an extension loaded twice
    with pytest.raises(ConfigError, match="fitness 'squares' is already registered"):
        register_fitness("squares", _returns_an_int, _divide)
    assert first.compiled is not None and first.compiled[0](1.0, 3.0) == 4.0


def test_configs_name_registered_fitnesses_of_their_tasks_kind(tmp_path: Path) -> None:
    text = CONFIG.replace('[extensions]\nmodules = ["mae_fitness.py"]\n', "")
    with pytest.raises(ConfigError, match=r"unknown fitness 'mae' \(known: accuracy, "
                       r"atan_rmse\).*\[extensions\] modules"):
        parse_config(text)
    with pytest.raises(ConfigError, match=r"search\.fitness.*must be a string"):
        parse_config(text.replace('fitness = "mae"', "fitness = 3"))
    with pytest.raises(ConfigError, match="fitness 'accuracy' scores classification tasks; "
                       "the task sets include regression ones"):
        parse_config(text.replace('"mae"', '"accuracy"'))
    assert parse_config(text.replace('"mae"', '"atan_rmse"')).fitness == "atan_rmse"
    assert parse_config(text.replace('fitness = "mae"\n', "")).fitness is None


def test_the_command_line_loads_extensions(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    extension = str(EXAMPLES / "softsign_ops.py")
    program = tmp_path / "softsign.az"
    program.write_text(FIRST_FEATURE + "def Learn():\n  v2 = softsign(v0)\n")
    assert main(["check", str(program)]) == 1  # the op is unknown without the extension
    capsys.readouterr()
    assert main(["ops"]) == 0
    listed = capsys.readouterr().out
    assert "  accuracy   classification" in listed and "atan_mae" not in listed
    assert main(["ops", "--extension", extension]) == 0
    listed = capsys.readouterr().out
    assert "v = softsign(a)" in listed
    assert "  atan_mae   regression      1 - (2/pi) atan(mean absolute" in listed
    assert main(["check", str(program), "--extension", extension]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["run", str(program), "--extension", extension, "--backend", "interp",
                 "--tasks", "2", "--fitness", "atan_mae"]) == 0
    printed = float(capsys.readouterr().out.split()[1])
    tasks = make_tasks(TaskSpec("linear", num_tasks=2))
    expected = evaluate(parse(program.read_text()), tasks, fitness="atan_mae").fitness
    assert printed == expected != evaluate(parse(program.read_text()), tasks).fitness
    hand = [1.0 - (2.0 / math.pi) * math.atan(
        sum((abs(y - x[0]) for y, x in zip(t.y_valid, t.x_valid, strict=True)), 0.0)
        / len(t.y_valid)) for t in tasks]
    assert expected == sum(hand) / 2
    assert np.isfinite(printed)


def test_run_scores_on_a_task_kind_an_extension_registers(
        capsys: pytest.CaptureFixture[str]) -> None:
    extension = str(EXAMPLES / "softsign_ops.py")
    linear_sgd = str(EXAMPLES / "linear_sgd.az")
    assert main(["run", linear_sgd, "--task", "softsign_teacher", "--tasks", "2"]) == 1
    assert ("--task 'softsign_teacher': no such task family; the known ones are linear, "
            "affine" in capsys.readouterr().err)  # unknown until the extension is loaded
    assert main(["run", linear_sgd, "--task", "softsign_teacher", "--tasks", "2",
                 "--extension", extension, "--backend", "interp"]) == 0
    printed = float(capsys.readouterr().out.split()[1])
    tasks = make_tasks(TaskSpec("softsign_teacher", num_tasks=2))
    assert printed == evaluate(parse_file(linear_sgd), tasks).fitness
    assert main(["run", linear_sgd, "--task", "softsign_teacher", "--extension", extension,
                 "--kind", "classification"]) == 1
    assert ("--kind is for --task npz; softsign_teacher tasks are always regression"
            in capsys.readouterr().err)


def test_compare_and_ablate_score_with_the_configs_fitness(
        tmp_path: Path, mae: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text(CONFIG)
    config = parse_config(CONFIG, base_dir=tmp_path)
    program_file = tmp_path / "first.az"
    program_file.write_text(FIRST_FEATURE)
    final = evolve.make_tasks(config.final_tasks, None)
    expected = evaluate(parse(FIRST_FEATURE), final, fitness="mae")
    mean = f"{expected.fitness:.4f}"  # as the tables print fitness
    assert mean != f"{evaluate(parse(FIRST_FEATURE), final).fitness:.4f}"
    assert main(["compare", str(config_file), str(program_file)]) == 0
    assert mean in capsys.readouterr().out
    assert main(["ablate", str(config_file), str(program_file)]) == 0
    assert mean in capsys.readouterr().out
