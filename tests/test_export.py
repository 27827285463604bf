"""`azdsl export`: the numpy module runs where azdsl is absent and predicts what the reference
interpreter predicts, bit for bit; LaTeX and Markdown spell the algorithm as math."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_simplify_deep import ANY_FLOAT, programs

from azdsl.cli import main
from azdsl.export.math_text import LATEX, MARKDOWN, MINUS, _form, instruction
from azdsl.export.numpy_module import generate
from azdsl.language.fold import fold
from azdsl.language.ops import OPS, Kind, LitType
from azdsl.language.program import Cell, Instr, Program
from azdsl.running.estimator import Algorithm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Run by the child: azdsl must be missing, the exported module must work.
CHILD = """\
import json, sys
sys.path[:0] = [sys.argv[1], "."]
try:
    import azdsl
except ImportError:
    pass
else:
    raise SystemExit("azdsl is importable here")
import numpy as np
import exported
kind, seed, epochs, error = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
model = exported.Model(kind=kind, seed=seed, epochs=epochs, max_abs_error=error)
model.fit(np.load("x.npy"), np.load("y.npy"))
scores = model.predict(np.load("x_new.npy"))
print(json.dumps({"bits": scores.view(np.uint64).tolist(), "steps": model.n_train_steps_,
                  "diverged": model.diverged_, "modules": sorted(m for m in sys.modules
                                                                 if m.startswith("azdsl"))}))
"""


@pytest.fixture(scope="module")
def numpy_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding numpy and nothing else (links to the installed one)."""
    folder = tmp_path_factory.mktemp("deps")
    installed = Path(np.__file__).resolve().parent
    for entry in installed.parent.iterdir():
        if entry.name == "numpy" or entry.name.startswith("numpy.libs"):
            (folder / entry.name).symlink_to(entry)
    return folder


def run_exported(source: str, folder: Path, deps: Path, x: np.ndarray, y: np.ndarray,
                 x_new: np.ndarray, kind: str, seed: int, epochs: int,
                 error: float) -> dict[str, object]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "exported.py").write_text(source)
    (folder / "child.py").write_text(CHILD)
    for name, array in (("x", x), ("y", y), ("x_new", x_new)):
        np.save(folder / f"{name}.npy", array)
    done = subprocess.run([sys.executable, "-I", "-S", "-B", "child.py", str(deps), kind, str(seed),
                           str(epochs), repr(error)], cwd=folder, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def reference(program: Program, x: np.ndarray, y: np.ndarray, x_new: np.ndarray, kind: str,
              seed: int, epochs: int, error: float) -> dict[str, object]:
    algorithm = Algorithm(program, kind=kind, seed=seed, epochs=epochs, max_abs_error=error,
                          predict_mode="stateful")  # the export predicts as validation does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        algorithm.fit(x, y)
    scores = algorithm.decision_function(x_new)
    return {"bits": scores.view(np.uint64).tolist(), "steps": algorithm.n_train_steps_,
            "diverged": algorithm.diverged_, "modules": []}


def regression_data(seed: int, n: int = 30, dim: int = 4
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, dim))
    return x, x @ g.normal(size=dim), g.normal(size=(12, dim))


@pytest.mark.parametrize(("name", "kind"), [("linear_sgd", "regression"),
                                            ("neural_net", "regression"),
                                            ("neural_net", "classification"),
                                            ("logistic_sgd", "classification")])
def test_examples_predict_as_the_interpreter(name: str, kind: str, tmp_path: Path,
                                             numpy_only: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = EXAMPLES / f"{name}.az"
    assert main(["export", str(path)]) == 0
    source = capsys.readouterr().out
    imported = {alias.name for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import) for alias in node.names}
    assert imported == {"math", "numpy"}
    assert not any(isinstance(node, ast.ImportFrom) for node in ast.walk(ast.parse(source)))
    x, y, x_new = regression_data(7)
    if kind == "classification":
        y = (y > 0).astype(np.float64)
    got = run_exported(source, tmp_path, numpy_only, x, y, x_new, kind, 3, 2, 100.0)
    expected = reference(Algorithm(path).program, x, y, x_new, kind, 3, 2, 100.0)
    assert got == expected
    assert got["steps"] == 2 * len(y)  # trained through both epochs


def test_the_module_refuses_too_few_features(tmp_path: Path, numpy_only: Path) -> None:
    program = Algorithm("def Setup():\ndef Predict():\n  v1[2] = 1.0\n  s1 = dot(v0, v1)\n"
                        "def Learn():\n").program
    x, y, x_new = regression_data(1, dim=2)
    with pytest.raises(AssertionError, match="F must be at least 3"):
        run_exported(generate(program), tmp_path, numpy_only, x, y, x_new, "regression", 0, 1,
                     100.0)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(program=programs(tuple(op.code for op in OPS), ANY_FLOAT), seed=st.integers(0, 2**16),
       kind=st.sampled_from(["regression", "classification"]), special=st.booleans())
def test_generated_programs_predict_as_the_interpreter(
        program: Program, seed: int, kind: str, special: bool, tmp_path: Path,
        numpy_only: Path) -> None:
    x, y, x_new = regression_data(seed, n=6, dim=3)
    if special:  # NaN, inf and -0.0 in the features and labels
        x[1, 0], x[2, 1], y[3], x_new[0, 2] = np.nan, np.inf, -0.0, -np.inf
    if kind == "classification":
        y = (y > 0).astype(np.float64)
    folder = tmp_path / f"p{seed}_{kind}_{special}"
    # huge max_abs_error: keep training through big errors (a NaN still stops)
    got = run_exported(generate(fold(program)), folder, numpy_only, x, y, x_new, kind, seed, 2,
                       1e300)
    assert got == reference(program, x, y, x_new, kind, seed, 2, 1e300)


def test_math_spells_sgd(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "linear_sgd.az")
    assert main(["export", path, "--to", "markdown"]) == 0
    markdown = capsys.readouterr().out
    for line in ("- s2 ← 0.001", "- s1 ← ⟨v0, v1⟩", f"- s3 ← s0 {MINUS} s1", "- v2 ← s4·v0",
                 "- v1 ← v1 + v2"):
        assert line in markdown.splitlines()
    assert main(["export", path, "--to", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.startswith("\\begin{align*}\n") and latex.endswith("\\end{align*}\n")
    assert r"&\quad \mathbf{v}_{1} \leftarrow \mathbf{v}_{1} + \mathbf{v}_{2}" in latex


def test_every_op_has_a_math_spelling() -> None:
    spelled = set()
    for op in OPS:
        if op.out is None:
            continue
        literals = tuple(1 if lit.type is LitType.INDEX else 1e-05 for lit in op.literals)
        instr = Instr(op.code, Cell(op.out, 3), tuple(Cell(k, 1 + n) for n, k in
                                                      enumerate(op.ins)), literals)
        latex, markdown = instruction(instr, LATEX), instruction(instr, MARKDOWN)
        assert "{" not in markdown
        assert "1 \\times 10^{-5}" in latex or not op.literals
        spelled.add((op.out, tuple(op.ins), markdown.split(" ", 1)[1]))
    assert len(spelled) == sum(op.out is not None for op in OPS)  # no two ops read the same


def test_a_users_op_is_written_as_a_named_function() -> None:
    softsign = replace(next(op for op in OPS if op.func == "abs" and op.out is Kind.VECTOR),
                       func="softsign")
    latex, markdown = _form(softsign)
    assert markdown.format(a="v1") == "softsign(v1)"
    assert latex.format(a="v1") == r"\operatorname{softsign}(v1)"
