"""Experiment configs: the shipped examples load, ops resolve every way, mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from azdsl.errors import ConfigError
from azdsl.language.ops import OPS
from azdsl.search.config import load_config, op_spellings, parse_config, resolve_op
from azdsl.search.mutate import DEMO_OPS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MINIMAL = """predict = { ops = ["s = dot(v, v)"] }
[search_tasks]
kind = "linear"
num_tasks = 2
[budget]
max_individuals = 100
"""


def errors_of(text: str, tmp_path: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, filename="exp.toml", base_dir=tmp_path or ".")
    return info.value.render()


def test_demo_config_is_the_papers_demo() -> None:
    cfg = load_config(EXAMPLES / "demo.toml")
    assert [c.ops for c in cfg.components] == [DEMO_OPS] * 3
    assert [(c.init_size, c.min_size, c.max_size) for c in cfg.components] == [
        (10, 10, 10), (2, 2, 2), (8, 8, 8)]
    assert cfg.memory == (4, 3, 1)
    assert (cfg.population_size, cfg.tournament_size, cfg.mutate_prob) == (1000, 10, 0.9)
    assert cfg.mutations == ("alter_param", "randomize_instruction", "randomize_component")
    assert cfg.initial_population == "random"
    assert cfg.fec.enabled and (cfg.fec.num_train, cfg.fec.num_valid) == (10, 10)
    assert (cfg.fec.cache_size, cfg.fec.forget_every) == (100_000, 100)
    assert cfg.budget.max_train_steps == 200_000_000
    assert cfg.budget.max_experiments == 0 and cfg.budget.sufficient_fitness == 0.9999
    search, select, final = cfg.search_tasks, cfg.select_tasks, cfg.final_tasks
    assert search.randomize and select.randomize and not final.randomize
    assert (search.specs[0].num_tasks, search.specs[0].num_train) == (10, 100)
    assert (select.specs[0].num_tasks, select.specs[0].num_train) == (100, 1000)
    assert final.specs[0].num_tasks == 100


@pytest.mark.parametrize("name", ["linear_learning_only.toml", "nonlinear_repair.toml"])
def test_other_examples_load(name: str) -> None:
    cfg = load_config(EXAMPLES / name)
    assert cfg.initial_population == "file" and cfg.initial_program is not None


def test_ops_resolve_by_code_name_and_spelling() -> None:
    assert resolve_op(27) == 27
    assert resolve_op("VECTOR_INNER_PRODUCT") == 27
    assert resolve_op("vector_inner_product_op") == 27
    assert resolve_op("s = dot(v, v)") == 27
    assert resolve_op("s1 = dot(v0, v1)") == 27  # a real instruction names its op
    assert resolve_op("s = dot(a, b)") == 27  # the table's spelling, where unambiguous
    assert resolve_op("v = s * v") == 18 and resolve_op("v = v * v") == 25
    assert resolve_op("s=c") == 56 and resolve_op("v[i] = c") == 57
    assert resolve_op("v = norm(m, axis=0)") == 35


def test_every_typed_spelling_names_its_own_op() -> None:
    assert len(op_spellings()) == len(OPS)
    for code, name, spelling in op_spellings():
        assert resolve_op(spelling) == code
        assert resolve_op(name) == code


@pytest.mark.parametrize("entry", ["v = a * b", "s = sine(s)", 65, -1, True, 1.5])
def test_ambiguous_or_unknown_ops_are_errors(entry: object) -> None:
    with pytest.raises(ValueError):
        resolve_op(entry)


def test_minimal_config_defaults() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.select_tasks.specs == cfg.search_tasks.specs  # defaults to the search tasks
    assert cfg.final_tasks.specs == cfg.search_tasks.specs
    assert cfg.budget.max_experiments == 1
    assert not cfg.fec.enabled


def test_unknown_key_is_named_with_a_suggestion_and_located() -> None:
    text = MINIMAL + "[search]\npopulaton_size = 10\n"
    message = errors_of(text)
    assert "`search.populaton_size`: unknown key; did you mean `population_size`?" in message
    assert "exp.toml:8:1" in message


def test_all_mistakes_are_reported_at_once() -> None:
    text = MINIMAL + """
[search]
population_size = 0
mutate_prob = 1.5
mutations = ["alter_param", "swap"]
combine = "max"
[setup]
ops = ["s = sine(s)"]
[memory]
scalars = 1
"""
    message = errors_of(text)
    for key in ("search.population_size", "search.mutate_prob", "search.mutations",
                "search.combine", "setup.ops", "memory.scalars"):
        assert f"`{key}`" in message, key
    assert "'swap'" in message


def test_task_mistakes() -> None:
    message = errors_of("""
[search_tasks]
kind = "quadratic"
num_tasks = "ten"
[select_tasks]
kind = "npz"
[budget]
max_individuals = 10
""")
    assert "`search_tasks.kind`" in message and "`search_tasks.num_tasks`" in message
    assert "`select_tasks.path`: npz tasks need" in message


def test_missing_search_tasks_and_endless_budget() -> None:
    message = errors_of("[budget]\nmax_experiments = 0\n")
    assert "`search_tasks`: missing" in message
    assert "`budget.max_train_steps`" in message  # no budget at all
    assert "`budget.max_experiments`" in message  # unlimited without sufficient_fitness


def test_toml_syntax_error_has_a_position() -> None:
    message = errors_of("[search_tasks]\nkind = \n")
    assert "not valid TOML" in message and "exp.toml:2:" in message


def test_size_and_limits() -> None:
    message = errors_of(MINIMAL + "[learn]\nsize = 3\nmax_size = 4\n")
    assert "`learn.size`" in message
    message = errors_of(MINIMAL + "[learn]\nmin_size = 5\nmax_size = 4\n")
    assert "`learn.min_size`" in message


def test_program_files_are_read_and_checked(tmp_path: Path) -> None:
    (tmp_path / "seed.az").write_text("def Predict():\n  s1 = dot(v0, v1)\n")
    cfg = parse_config(MINIMAL + '[search]\ninitial_population = "seed.az"\n',
                       base_dir=tmp_path)
    assert cfg.initial_population == "file"
    assert cfg.initial_program is not None and "dot" in cfg.initial_program.text
    assert set(cfg.files()) == {"search.initial_population"}
    message = errors_of(MINIMAL + '[search]\ninitial_population = "missing.az"\n', tmp_path)
    assert "`search.initial_population`: cannot read 'missing.az'" in message
    (tmp_path / "bad.az").write_text("def Predict():\n  s1 = dot(v0)\n")
    message = errors_of(MINIMAL + '[search]\ninitial_population = "bad.az"\n', tmp_path)
    assert "bad.az is not a valid program" in message and "bad.az:2:" in message


def test_files_given_replace_reading(tmp_path: Path) -> None:
    cfg = parse_config(MINIMAL + '[search]\ninitial_population = "gone.az"\n',
                       base_dir=tmp_path, files={"search.initial_population": _pf()})
    assert cfg.initial_program == _pf()


def _pf():  # type: ignore[no-untyped-def]
    from azdsl.search.config import ProgramFile

    return ProgramFile("gone.az", "/x/gone.az", "def Setup():\n")


def test_forget_every_1_is_refused_as_the_original_does() -> None:
    base = '[search_tasks]\n[learn]\nops = ["s = s + s"]\n[budget]\nmax_individuals = 10\n'
    with pytest.raises(ConfigError, match=r"`fec.forget_every`: must be 0 \(never forget\) or "
                                          r"at least 2, got 1"):
        parse_config(base + "[fec]\nforget_every = 1\n")
    for ok in (0, 2):
        assert parse_config(base + f"[fec]\nforget_every = {ok}\n").fec.forget_every == ok
