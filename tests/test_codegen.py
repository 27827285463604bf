"""Template expansion, generated modules, the cache folder and `azdsl compile`."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import sgd

from azdsl.cli import main
from azdsl.language.ops import OPS, Kind
from azdsl.language.parse import parse
from azdsl.running import codegen
from azdsl.running.evaluate import evaluate
from azdsl.running.tasks import TaskSpec, make_tasks
from azdsl.running.template import expand, free_names

SGD_TEXT = sgd(step="s4", setup="  v1 = uniform(-0.5, 0.5)\n")

def _cell(role: str, kind: Kind, index: tuple[str, ...]) -> str:
    return f"{role}{kind.prefix}[{', '.join(('0', *index))}]"


def test_every_template_expands_with_its_own_cells_and_literals() -> None:
    for op in OPS:
        lines = expand(op, _cell, lambda lit, pos: f"lit_{lit.name}{pos}", {"KEY": "key"})
        text = "\n".join(lines)
        if op.out is None:
            assert lines == []
            continue
        compile(text, f"<op {op.code}>", "exec")  # valid Python once expanded
        assert f"O{op.out.prefix}[" in text
        for role, kind in zip("AB", op.ins, strict=False):
            assert f"{role}{kind.prefix}[" in text
        for pos, lit in enumerate(op.literals):
            assert f"lit_{lit.name}{pos}" in text
        assert "$" not in text and "KEY" not in text


def test_template_names_do_not_clash_with_backend_variables() -> None:
    reserved = {"s", "v", "m", "mem", "prog", "lits", "pc", "row", "op", "o", "a", "b",
                "stream", "component", "execution", "key", "start", "stop", "count", "ctx"}
    for op in OPS:
        assert not (free_names(op) & reserved), op.name


def test_expand_rejects_a_literal_the_op_lacks() -> None:
    from dataclasses import replace

    broken = replace(OPS[56], template="O = $nope")
    with pytest.raises(ValueError, match="nope"):
        expand(broken, _cell, lambda lit, pos: "0.0")


@pytest.mark.parametrize("value", [0.1, -0.0, 0.0, 1e-310, -1.5e300, math.inf, -math.inf,
                                   math.nan, 5e-324, 123456789.123])
def test_float_source_reads_back_exactly(value: float) -> None:
    got = eval(codegen.float_source(value), {"np": np})
    assert (math.isnan(got) and math.isnan(value)) or (
        np.float64(got).tobytes() == np.float64(value).tobytes())


def test_generated_module_is_readable_and_deterministic() -> None:
    program = parse(SGD_TEXT)
    source = codegen.generate(program, 4)
    assert source == codegen.generate(program, 4)
    assert "F = 4" in source and "def predict(s, v, m, tv, tm, stream, execution):" in source
    assert "# s1 = dot(v0, v1)" in source
    assert "v[1, k] = -0.5 + (0.5 - -0.5) * uniform01(key, k)" in source
    assert "np.dot" not in source and "fastmath" not in source
    assert codegen.generate(program, 5) != source
    plain = codegen.generate(program, 4, jit=False)
    assert "numba" not in plain and "@njit" not in plain
    compile(plain, "<plain>", "exec")


def test_modules_go_to_the_cache_folder_named_by_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZDSL_CACHE_DIR", str(tmp_path / "cache"))
    assert codegen.cache_dir() == tmp_path / "cache"
    module = codegen.load_module(codegen.content_stem("t", "X = 1\n"), "X = 1\n")
    assert module.X == 1
    files = list((tmp_path / "cache").glob("t_*.py"))
    assert len(files) == 1 and files[0].read_text() == "X = 1\n"
    again = codegen.load_module(codegen.content_stem("t", "X = 1\n"), "X = 1\n")
    assert again is module  # imported once per process


def test_default_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AZDSL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert codegen.cache_dir() == tmp_path / "azdsl"


def test_jit_module_caches_across_processes(tmp_path: Path) -> None:
    """A fresh cache folder: the first process compiles and saves, the second only loads."""
    program_file = tmp_path / "sgd.az"
    program_file.write_text(SGD_TEXT)
    script = (
        "import sys\n"
        "from azdsl.running.evaluate import evaluate\n"
        "from azdsl.language.parse import parse_file\n"
        "from azdsl.running.tasks import TaskSpec, make_tasks\n"
        f"p = parse_file({str(program_file)!r})\n"
        "tasks = make_tasks(TaskSpec(num_tasks=2, num_train=20, num_valid=10))\n"
        "print(repr(evaluate(p, tasks, backend='jit', seed=3).fitness))\n"
    )
    env = dict(os.environ, AZDSL_CACHE_DIR=str(tmp_path / "cache"), NUMBA_DEBUG_CACHE="1")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True, timeout=300).stdout for _ in range(2)]
    fitness = [out.strip().splitlines()[-1] for out in runs]
    assert fitness[0] == fitness[1]
    assert any("data saved" in line and "evaluate_task" in line for line in runs[0].splitlines())
    second = [line for line in runs[1].splitlines() if "evaluate_task" in line]
    assert any("data loaded" in line for line in second)
    assert not any("saved" in line for line in second)


def test_compile_command_prints_the_module(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sgd.az"
    path.write_text(SGD_TEXT)
    assert main(["compile", str(path), "--dim", "3"]) == 0
    out = capsys.readouterr().out
    assert out == codegen.generate(parse(SGD_TEXT), 3)
    assert main(["compile", str(path), "--emit", "plain"]) == 0
    assert "@njit" not in capsys.readouterr().out
    assert main(["compile", str(path), "--emit", "vm"]) == 0
    table = capsys.readouterr().out
    assert "# s1 = dot(v0, v1)" in table and "Learn:" in table


def test_compile_command_reports_errors(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.az"
    path.write_text("def Setup():\n  v1[7] = 1.0\n")
    assert main(["compile", str(path), "--dim", "4"]) == 1
    assert "out of range" in capsys.readouterr().err


def test_py_backend_is_registered_lazily() -> None:
    tasks = make_tasks(TaskSpec(num_tasks=1, num_train=10, num_valid=5))
    program = parse(SGD_TEXT)
    assert (evaluate(program, tasks, backend="py").fitness
            == evaluate(program, tasks, backend="interp").fitness)
