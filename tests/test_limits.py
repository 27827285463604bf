"""Bad input never hurts: sizes too large for memory, numbers out of range, values of the wrong
type, searches that cannot change or end, missing data and unreadable files are all azdsl's own
errors, naming the key, before anything is allocated or written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from azdsl.cli import main
from azdsl.errors import CheckError, ConfigError
from azdsl.language.ops import Kind
from azdsl.language.program import Cell, Instr, Program
from azdsl.limits import MAX_CELLS, MAX_INT, MEMORY_LIMIT_ENV, available_memory
from azdsl.running.estimator import Algorithm
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import TaskSpec, make_tasks
from azdsl.search.config import load_config, parse_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LINEAR_SGD = str(EXAMPLES / "linear_sgd.az")

TASKS = """[search_tasks]
kind = "linear"
"""
OPS = '[learn]\nops = ["s = s - s"]\n'
BUDGET = "[budget]\nmax_individuals = 100\n"
BASE = TASKS + OPS + BUDGET


@pytest.fixture
def small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 GiB available, whatever the machine has."""
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1G")


def error_of(text: str, tmp_path: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="exp.toml", base_dir=tmp_path or ".")
    return info.value.render()


def with_line(section: str, line: str, text: str = BASE) -> str:
    """`text` with `line` added to `[section]` (a new section when the text lacks it)."""
    header = f"[{section}]\n"
    if header in text:
        return text.replace(header, header + line + "\n")
    return text + header + line + "\n"


# ---- memory ----------------------------------------------------------------------------------


NO_MEMO = "[fec]\nenabled = false\nstructural_cache_size = 0\n"


@pytest.mark.parametrize(("section", "line", "key", "extra"), [
    ("search_tasks", "num_train = 100_000_000", "search_tasks", ""),
    ("search_tasks", "num_valid = 100_000_000", "search_tasks", ""),
    ("search_tasks", "num_tasks = 10_000_000", "search_tasks", NO_MEMO),
    # Every structural memo entry holds a value per search task.
    ("search_tasks", "num_tasks = 10_000", "fec.structural_cache_size", ""),
    ("search_tasks", "dim = 100_000", "memory", ""),  # the F x F matrices weigh most
    ("memory", "matrices = 1000", "memory", '[final_tasks]\nkind = "linear"\ndim = 400\n'),
    ("learn", "max_size = 100_000_000", "search.population_size", ""),
    ("search", "population_size = 100_000_000", "search.population_size", ""),
    ("fec", "num_train = 100_000_000_000", "fec", ""),
    ("fec", "cache_size = 100_000_000", "fec", ""),
    ("fec", "structural_cache_size = 100_000_000", "fec.structural_cache_size", ""),
])
def test_a_run_too_large_for_memory_is_refused_naming_the_key(
        small_memory: None, section: str, line: str, key: str, extra: str) -> None:
    message = error_of(with_line(section, line) + extra)
    assert f"`{key}`: the run would need about" in message
    assert "but 1.0 GiB is available (AZDSL_MEMORY_LIMIT)" in message


def test_the_feature_size_is_named_where_it_sets_the_memory(small_memory: None) -> None:
    message = error_of(with_line("search_tasks", "dim = 100_000"))
    assert "at F = 100000 (search_tasks.dim)" in message


def test_the_same_configs_fit_with_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "10T")
    assert parse_config(with_line("search_tasks", "num_train = 100_000_000")).search_tasks


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_fits_in_2_gib(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "2G")
    load_config(EXAMPLES / name)
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    load_config(EXAMPLES / name)  # and on this machine


def test_a_too_large_config_writes_no_run_folder(small_memory: None, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(with_line("search_tasks", "num_train = 1_000_000_000"))
    assert main(["evolve", str(config), "--out", str(tmp_path / "run")]) == 1
    assert "of memory but 1.0 GiB is available" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_memory_override_and_the_machine() -> None:
    found = available_memory()
    assert found is None or found[0] > 0


@pytest.mark.parametrize(("value", "expected"), [("4096", 4096), ("2G", 2 * 2**30),
                                                 ("3 MiB", 3 * 2**20), ("5k", 5 * 2**10)])
def test_memory_limit_values(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, value)
    assert available_memory() == (expected, MEMORY_LIMIT_ENV)


def test_a_bad_memory_limit_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match=MEMORY_LIMIT_ENV):
        parse_config(BASE)


def test_building_tasks_checks_memory_first(small_memory: None) -> None:
    with pytest.raises(ConfigError, match="would need about"):
        make_tasks(TaskSpec(kind="nonlinear", dim=200_000, num_train=10))


# ---- bounds on numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(("section", "line", "key"), [
    ("search", "population_size = 9223372036854775808", "search.population_size"),
    ("budget", f"max_train_steps = {MAX_INT + 1}", "budget.max_train_steps"),
    ("memory", "vectors = 1000000000", "memory.vectors"),
    ("memory", f"scalars = {MAX_CELLS + 1}", "memory.scalars"),
    ("search_tasks", "param_seeds = [18446744073709551616]", "search_tasks.param_seeds"),
    ("search_tasks", "seed = -1", "search_tasks.seed"),
    ("search", "tournament_size = 2000", "search.tournament_size"),
])
def test_numbers_out_of_range_are_errors(section: str, line: str, key: str) -> None:
    assert f"`{key}`: must" in error_of(with_line(section, line))


def test_a_class_pair_cannot_give_more_images_than_it_has() -> None:
    text = BASE.replace('kind = "linear"', 'kind = "projected"\nnum_train = 9000\nnum_test = 2000')
    assert "`search_tasks.num_train`: a class pair has at most 10000 images, fewer than " \
        "num_train + num_valid + num_test = 11100" in error_of(text)


def test_the_default_tournament_must_fit_the_population() -> None:
    message = error_of(with_line("search", "population_size = 5"))
    assert "`search.tournament_size`: must not exceed population_size, 5, got 10 (the default" \
        in message


# ---- values of the wrong type ----------------------------------------------------------------


@pytest.mark.parametrize(("section", "line", "key"), [
    ("search_tasks", "dim = 4.0", "search_tasks.dim"),
    ("search_tasks", 'num_train = "100"', "search_tasks.num_train"),
    ("search_tasks", "num_valid = true", "search_tasks.num_valid"),
    ("search_tasks", "param_seeds = { a = 1 }", "search_tasks.param_seeds"),
    ("search_tasks", "data_seeds = [true]", "search_tasks.data_seeds"),
    ("search_tasks", "randomize = 1", "search_tasks.randomize"),
    ("search_tasks", "pairs = [[true, false]]", "search_tasks.pairs"),
    ("search_tasks", "dataset = [1]", "search_tasks.dataset"),
    ("search", 'mutate_prob = "0.5"', "search.mutate_prob"),
    ("search", "mutations = { a = 1 }", "search.mutations"),
    ("search", "mutations = [[1]]", "search.mutations"),
    ("search", "initial_population = 3", "search.initial_population"),
    ("setup", "ops = { a = 1 }", "setup.ops"),
    ("setup", "ops = [true]", "setup.ops"),
    ("learn", "size = 2.5", "learn.size"),
    ("fec", "enabled = 1", "fec.enabled"),
    ("budget", "max_seconds = true", "budget.max_seconds"),
    ("run", "progress_every = 1e3", "run.progress_every"),
])
def test_values_of_the_wrong_type_are_errors(section: str, line: str, key: str) -> None:
    assert f"`{key}`:" in error_of(with_line(section, line))


def test_an_op_list_that_is_a_string_is_one_error() -> None:
    message = error_of(BASE.replace('ops = ["s = s - s"]', 'ops = "s = s - s"'))
    assert message.count("`learn.ops`") == 1 and "must be a list of ops" in message


@pytest.mark.parametrize(("text", "key"), [
    (BASE + "[[memory]]\nscalars = 4\n", "memory"),
    ("memory = 5\n" + BASE, "memory"),
    ("search_tasks = 5\n" + OPS + BUDGET, "search_tasks"),
    ("search_tasks = [1, 2]\n" + OPS + BUDGET, "search_tasks"),
    ("learn = [1]\n" + TASKS + BUDGET + "[setup]\nops = [56]\n", "learn"),
])
def test_tables_of_the_wrong_shape_are_errors(text: str, key: str) -> None:
    assert f"`{key}`: must be a table" in error_of(text)


def test_toml_nested_too_deeply_is_an_error() -> None:
    message = error_of("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "not valid TOML" in message and "nested too deeply" in message


@pytest.mark.parametrize(("section", "line", "key"), [
    ("search", "mutate_prob = nan", "search.mutate_prob"),
    ("search", "max_abs_error = nan", "search.max_abs_error"),
    ("hurdles", "percentile = nan", "hurdles.percentile"),
    ("budget", "max_seconds = nan", "budget.max_seconds"),
    ("budget", "sufficient_fitness = nan", "budget.sufficient_fitness"),
    ("train_budget", "threshold_factor = nan", "train_budget.threshold_factor"),
    ("run", "checkpoint_seconds = nan", "run.checkpoint_seconds"),
])
def test_nan_is_never_a_number(section: str, line: str, key: str) -> None:
    assert f"`{key}`: must be" in error_of(with_line(section, line))


# ---- searches that cannot change or cannot end -----------------------------------------------


def test_a_search_with_no_op_anywhere_is_an_error(tmp_path: Path) -> None:
    empty = TASKS + BUDGET + "".join(f"[{c}]\nops = []\n" for c in ("setup", "predict", "learn"))
    message = error_of(empty)
    assert "no component can change: every ops list is empty" in message
    assert "`setup.ops`, `predict.ops`, `learn.ops`" in message
    assert "no component can change" in error_of(TASKS + BUDGET)  # no op list at all
    (tmp_path / "seed.az").write_text("def Predict():\n  s1 = dot(v0, v1)\n")
    seeded = '[search]\ninitial_population = "seed.az"\n'
    assert "no component can change" in error_of(empty + seeded, tmp_path)
    # A component fixed from the file is fine as long as another one can change.
    assert parse_config(BASE + seeded, base_dir=tmp_path).components[2].ops


def test_a_wrong_op_list_is_not_also_called_empty() -> None:
    message = error_of(BASE.replace('"s = s - s"', '"s = sine(s)"'))
    assert "`learn.ops`: unknown op" in message and "every ops list is empty" not in message


def test_an_op_that_needs_cells_the_memory_lacks_names_the_op_list() -> None:
    text = with_line("memory", "matrices = 0", BASE.replace('"s = s - s"', '"m = m + m"'))
    message = error_of(text)
    assert "`learn.ops`: op 39 (m = a + b) needs a matrix" in message
    assert "the memory does not have" in message


def test_init_size_above_max_size_is_an_error() -> None:
    message = error_of(with_line("learn", "init_size = 9\nmax_size = 4"))
    assert "`learn.init_size`: must not exceed max_size (9 > 4)" in message


def test_a_search_that_can_never_end_is_an_error() -> None:
    endless = TASKS + OPS + "[budget]\nmax_seconds = inf\nmax_experiments = 0\n" \
        "sufficient_fitness = 0.5\n"
    assert "`budget.max_seconds`: must be finite" in error_of(endless)
    unreachable = BASE + "max_experiments = 0\nsufficient_fitness = 1.0\n"
    assert "`budget.sufficient_fitness`: a fitness is at most 1" in error_of(unreachable)
    stops = BASE + "max_experiments = 0\nsufficient_fitness = 0.99\n"
    assert parse_config(stops).budget.sufficient_fitness == 0.99
    bounded = BASE + "max_experiments = 3\nsufficient_fitness = 1.0\n"  # 3 experiments end it
    assert parse_config(bounded).budget.max_experiments == 3


# ---- data paths and files --------------------------------------------------------------------


def test_a_missing_data_file_names_the_key(tmp_path: Path) -> None:
    npz = BASE.replace('kind = "linear"', 'kind = "npz"\npath = "x.npz"')
    assert "`search_tasks.path`: no such file 'x.npz'" in error_of(npz, tmp_path)
    x = np.zeros((3, 2))
    np.savez(tmp_path / "x.npz", x_train=x, y_train=x[:, 0], x_valid=x, y_valid=x[:, 0])
    assert parse_config(npz, base_dir=tmp_path).search_tasks.specs[0].data_path == str(
        tmp_path / "x.npz")


def test_an_npz_files_size_is_read_from_its_headers(tmp_path: Path, small_memory: None) -> None:
    x = np.zeros((2, 20_000), dtype=np.float32)
    np.savez_compressed(tmp_path / "wide.npz", x_train=x, y_train=x[:, 0], x_valid=x,
                        y_valid=x[:, 0])
    npz = BASE.replace('kind = "linear"', 'kind = "npz"\npath = "wide.npz"')
    assert "cells s4 v3 m1 at F = 20000 (search_tasks.path)" in error_of(npz, tmp_path)


@pytest.mark.parametrize("dataset", ["cifar10", "mnist", "fashion_mnist"])
def test_a_missing_data_folder_names_the_key(tmp_path: Path, dataset: str) -> None:
    text = BASE.replace('kind = "linear"',
                        f'kind = "projected"\ndataset = "{dataset}"\npath = "data"')
    message = error_of(text, tmp_path)
    assert f"`search_tasks.path`: no such folder 'data' (the {dataset} data set)" in message
    (tmp_path / "data").mkdir()
    assert parse_config(text, base_dir=tmp_path).search_tasks.specs[0].dataset == dataset


def test_a_config_that_is_not_utf8_names_the_byte(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "exp.toml"
    config.write_bytes(b'[search_tasks]\nkind = "lin\xffear"\n')
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert f"{config}: cannot read the config: not UTF-8 text (byte 26 is 0xff)" in str(
        info.value)
    assert main(["evolve", str(config), "--out", str(tmp_path / "run")]) == 1
    assert "not UTF-8" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_a_program_file_that_is_not_utf8_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "seed.az").write_bytes(b"def Predict():\n  s1 = dot(v0, v1) # \xe9\n")
    message = error_of(BASE + '[search]\ninitial_population = "seed.az"\n', tmp_path)
    assert "`search.initial_population`: cannot read 'seed.az': not UTF-8 text (byte 36" \
        in message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_program_file_is_refused() -> None:
    message = error_of(BASE + '[search]\ninitial_population = "/dev/zero"\n')
    assert "`search.initial_population`: cannot read '/dev/zero': larger than 16.0 MiB" \
        in message


def test_a_program_file_with_an_impossible_cell_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "seed.az").write_text("def Setup():\n  s99999999999 = 0.5\n")
    message = error_of(BASE + '[search]\ninitial_population = "seed.az"\n', tmp_path)
    assert "`search.initial_population`" in message
    assert "cell index 99999999999 is above the largest allowed, s1023" in message


# ---- programs, `azdsl check` and `azdsl run` -------------------------------------------------


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.az"
    path.write_text(text)
    return str(path)


def test_check_flags_cells_no_memory_may_have(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"def Setup():\n  s99999999999 = 0.5\n  m{MAX_CELLS - 1} = "
                 "uniform(-1.0, 1.0)\n")
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:3: error: `s99999999999`: cell index 99999999999 is above" in err
    assert err.count("error:") == 1  # the largest index allowed is fine


def test_check_with_a_feature_size_checks_memory(tmp_path: Path, small_memory: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "def Setup():\n  m3 = uniform(-1.0, 1.0)\n")
    assert main(["check", path, "--dim", "10"]) == 0
    assert main(["check", path, "--dim", "10000"]) == 1
    err = capsys.readouterr().err
    assert f"{path}: the run would need about 3.7 GiB of memory but 1.0 GiB" in err
    assert "cells s2 v1 m4 at F = 10000" in err


@pytest.mark.parametrize("option", [["--dim", "100000"], ["--train", "1000000000"],
                                    ["--valid", "1000000000"], ["--tasks", "1000000000"]])
def test_run_refuses_sizes_too_large_for_memory(small_memory: None, option: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", LINEAR_SGD, "--backend", "interp", *option]) == 1
    err = capsys.readouterr().err
    assert "the run would need about" in err and "but 1.0 GiB is available" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", [["--tasks", str(MAX_INT + 1)], ["--epochs", str(2**64)],
                                    ["--memory", f"4,{MAX_CELLS + 1},1"]])
def test_run_refuses_numbers_out_of_range(option: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", LINEAR_SGD, *option]) == 2
    assert f"argument {option[0]}" in capsys.readouterr().err


def test_run_refuses_a_cell_no_memory_may_have(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "def Setup():\n  s99999999999 = 0.5\n")
    assert main(["run", path, "--tasks", "1", "--backend", "interp"]) == 1
    assert "cell index 99999999999 is above the largest allowed" in capsys.readouterr().err


def test_run_checks_an_npz_files_feature_size(tmp_path: Path, small_memory: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros((2, 20_000))
    np.savez(tmp_path / "wide.npz", x_train=x, y_train=x[:, 0], x_valid=x, y_valid=x[:, 0])
    path = write(tmp_path, "def Predict():\n  s1 = dot(v0, v0)\n")
    assert main(["run", path, "--task", "npz", "--data", str(tmp_path / "wide.npz"),
                 "--tasks", "1", "--backend", "interp"]) == 1
    assert "cells s2 v1 m0 at F = 20000" in capsys.readouterr().err


# ---- the estimator and evaluate --------------------------------------------------------------


def test_the_estimator_checks_memory_before_fitting(small_memory: None) -> None:
    program = Program(setup=(Instr(61, Cell(Kind.MATRIX, 1), (), (-1.0, 1.0)),))
    with pytest.raises(ConfigError, match="fit: the run would need about"):
        Algorithm(program).fit(np.zeros((2, 20_000)), np.zeros(2))


def test_the_estimator_refuses_bad_epochs() -> None:
    for epochs in (0, True, 1.5, MAX_INT + 1):
        with pytest.raises(ConfigError, match="epochs"):
            Algorithm(Program(), epochs=epochs)  # type: ignore[arg-type]


def test_evaluate_refuses_cells_no_memory_may_have() -> None:
    program = Program(setup=(Instr(56, Cell(Kind.SCALAR, 10**11), (), (0.5,)),))
    tasks = make_tasks(TaskSpec(num_train=5, num_valid=5))
    for backend in ("interp", "vm"):
        with pytest.raises(CheckError, match="s100000000000"):
            evaluate(program, tasks, backend=backend)
    with pytest.raises(CheckError, match="cells of a kind"):
        evaluate(Program(), tasks, memory=(4, MAX_CELLS + 1, 1))
    with pytest.raises(CheckError):
        Algorithm(program).fit(np.zeros((2, 3)), np.zeros(2))


@pytest.mark.parametrize(("args", "key"), [
    (["--islands", "1000000"], "--islands"),  # a population, FEC and memo per island
    (["--islands", "64", "--workers", "64"], "--workers"),  # the search tasks per process
])
def test_island_runs_count_every_island_and_worker_before_the_folder_is_made(
        small_memory: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        args: list[str], key: str) -> None:
    tasks = "num_tasks = 3\nnum_train = 20_000\ndim = 64\n" if key == "--workers" else ""
    config = tmp_path / "exp.toml"
    config.write_text(TASKS + tasks + OPS + BUDGET)
    out = tmp_path / "run"
    assert main(["evolve", str(config), "--out", str(out), "--quiet", *args]) == 1
    assert f"error: {key}: the run would need about" in capsys.readouterr().err
    assert not out.exists()
