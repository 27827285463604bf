"""Deeper simplification (azdsl.language.fold): folded programs predict what the originals
predict, bit for bit on every input (NaN and inf included) in the strict form, within rounding
on finite inputs in the loose form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from azdsl.cli import main
from azdsl.language.fold import fold
from azdsl.language.ops import OPS, OPS_BY_CODE, Kind, LitType
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import Cell, Instr, Program
from azdsl.language.simplify import simplify
from azdsl.running import interp, rng
from azdsl.running.evaluate import evaluate, memory_sizes, sigmoid
from azdsl.running.tasks import CLASSIFICATION, REGRESSION, Task

F = 3
CELLS = {Kind.SCALAR: 5, Kind.VECTOR: 3, Kind.MATRIX: 2}
# Values that make identities and folding fire, and the ones that break the naive forms.
SPECIAL = (0.0, -0.0, 1.0, -1.0, 2.0, np.inf, -np.inf, np.nan, 1e308, 5e-324)
FINITE_CODES = tuple(op.code for op in OPS if op.func in ("+", "-", "*", "dot", "")
                     and not op.is_random and op.code != 0)

DEMO = """\
def Setup():
  s1 = s1 - s1
  v1 = s1 * v1
  s2 = 1.0
def Predict():
  s1 = dot(v1, v0)
  s1 = s1 * s2
def Learn():
  s3 = s0 - s1
  s4 = s3 * s2
  v2 = s4 * v0
  v1 = v1 + v2
"""


def text(source: str, *, loose: bool = False) -> str:
    return unparse(fold(parse(source), loose=loose))


def test_the_demo_reads_as_sgd() -> None:
    assert text(DEMO) == ("def Setup():\ndef Predict():\n  s1 = dot(v1, v0)\ndef Learn():\n"
                          "  s2 = s0 - s1\n  v2 = s2 * v0\n  v1 = v1 + v2\n")


def test_x_minus_x_is_zero_only_in_the_loose_form() -> None:
    source = ("def Setup():\ndef Predict():\n  s1 = s1 + s2\ndef Learn():\n"
              "  s3 = s0 * s0\n  s2 = s3 - s3\n")
    assert "s2 = s3 - s3" in text(source)  # inf - inf is nan
    # loose: s2 is always 0, so s1 = s1 + 0 is s1 and nothing is left
    assert text(source, loose=True) == "def Setup():\ndef Predict():\ndef Learn():\n"


def test_a_cell_learn_writes_is_not_setups_value_in_predict() -> None:
    predict = "def Predict():\n  s3 = dot(v0, v0)\n  s1 = s3 * s2\n"
    kept = text("def Setup():\n  s2 = 1.0\n" + predict + "def Learn():\n  s2 = s0 + s1\n")
    assert "s1 = s2 * s3" in kept or "s1 = s3 * s2" in kept
    alone = text("def Setup():\n  s2 = 1.0\n" + predict + "def Learn():\n")
    assert alone == "def Setup():\ndef Predict():\n  s1 = dot(v0, v0)\ndef Learn():\n"


def test_s0_is_zero_in_predict_and_a_label_in_learn() -> None:
    source = ("def Setup():\n  s2 = 3.0\ndef Predict():\n  s3 = s0 * s2\n  s1 = s1 + s3\n"
              "def Learn():\n  s4 = s0 * s2\n  s1 = s1 + s4\n")
    folded = text(source)
    predict, learn = folded.split("def Learn")
    # s0 * 3 is 0 in Predict: s3 always holds 0.0 (Setup's zero), so nothing writes it;
    # s1 + s3 stays, since -0.0 + 0.0 is +0.0
    assert predict.endswith("def Predict():\n  s1 = s1 + s3\n")
    assert "s0 * s" in learn


def test_random_ops_are_never_folded_and_keep_their_draws() -> None:
    source = ("def Setup():\ndef Predict():\n  s2 = uniform(-1.0, 1.0)\n  s3 = s2 - s2\n"
              "  s4 = gaussian(0.0, 1.0)\n  s1 = s3 + s4\ndef Learn():\n")
    for loose in (False, True):
        folded = fold(parse(source), loose=loose)
        assert [i.op.func for i in folded.predict if i.op.is_random] == ["uniform", "gaussian"]


def test_fold_is_idempotent_and_leaves_shallow_simplify_alone() -> None:
    program = parse(DEMO)
    assert fold(fold(program)) == fold(program)
    assert "s1 = s1 - s1" in unparse(simplify(program))  # the search's contract


def test_cli_simplify_folds_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.az"
    path.write_text(DEMO)
    assert main(["simplify", str(path)]) == 0
    assert capsys.readouterr().out == text(DEMO)
    assert main(["simplify", str(path), "--shallow"]) == 0
    assert capsys.readouterr().out == unparse(simplify(parse(DEMO)))
    assert main(["simplify", str(path), "--loose", "--shallow"]) == 2
    capsys.readouterr()


# ---- the differential test ---------------------------------------------------------------------


@st.composite
def instructions(draw: st.DrawFn, codes: tuple[int, ...], literals: st.SearchStrategy[float]
                 ) -> Instr:
    op = OPS_BY_CODE[draw(st.sampled_from(codes))]
    ins = tuple(Cell(kind, draw(st.integers(0, CELLS[kind] - 1))) for kind in op.ins)
    if op.ins and op.arity == 2 and op.ins[0] == op.ins[1] and draw(st.booleans()):
        ins = (ins[0], ins[0])  # x - x, minimum(x, x), ...
    out = None
    if op.out is not None:
        out = Cell(op.out, draw(st.integers(0, CELLS[op.out] - 1)))
    values = tuple(draw(st.integers(0, F - 1)) if lit.type is LitType.INDEX else draw(literals)
                   for lit in op.literals)
    return Instr(op.code, out, ins, values)


def programs(codes: tuple[int, ...], literals: st.SearchStrategy[float]
             ) -> st.SearchStrategy[Program]:
    part = st.lists(instructions(codes, literals), max_size=7).map(tuple)
    return st.builds(Program, part, part, part)


def trace(program: Program, x: np.ndarray, y: np.ndarray, classification: bool,
          seed: int) -> np.ndarray:
    """s1 after every Predict (what the framework reads): two epochs of training (the
    second in reverse order, never stopping), then Predict over the rows again, memory
    persisting."""
    sizes = memory_sizes(program, None)
    machine = interp.Machine.fresh(program, sizes, F, rng.stream(seed, 0))
    interp.runner(machine, interp.SETUP, 0, np.zeros(F), 0.0)
    out: list[float] = []
    predicts = learns = 0
    for order in (range(len(y)), range(len(y) - 1, -1, -1)):
        for row in order:
            prediction = interp.runner(machine, interp.PREDICT, predicts, x[row], 0.0)
            predicts += 1
            out.append(prediction)
            if classification:
                interp.runner(machine, interp.STORE_PREDICTION, 0, x[row], sigmoid(prediction))
            interp.runner(machine, interp.LEARN, learns, x[row], float(y[row]))
            learns += 1
    for row in range(len(y)):
        out.append(interp.runner(machine, interp.PREDICT, predicts, x[row], 0.0))
        predicts += 1
    return np.array(out, dtype=np.float64)


def data(drawn: st.DataObject, values: st.SearchStrategy[float]
         ) -> tuple[np.ndarray, np.ndarray]:
    n = drawn.draw(st.integers(1, 4))
    x = np.array(drawn.draw(st.lists(values, min_size=n * F, max_size=n * F))).reshape(n, F)
    y = np.array(drawn.draw(st.lists(values, min_size=n, max_size=n)))
    return x, y


ANY_FLOAT = st.one_of(st.sampled_from(SPECIAL), st.floats(-3.0, 3.0),
                      st.floats(allow_nan=True, allow_infinity=True))
ALL_CODES = tuple(op.code for op in OPS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(ALL_CODES, ANY_FLOAT), st.data(), st.booleans(), st.integers(0, 2**32))
def test_strict_fold_predicts_the_same_bits(program: Program, drawn: st.DataObject,
                                            classification: bool, seed: int) -> None:
    x, y = data(drawn, ANY_FLOAT)
    folded = fold(program)
    expected = trace(program, x, y, classification, seed).view(np.uint64)
    assert np.array_equal(trace(folded, x, y, classification, seed).view(np.uint64), expected)
    # and the protocol's scores: fitness, train steps and recorded errors
    kind = CLASSIFICATION if classification else REGRESSION
    task = Task("t", kind, F, x, y, x[::-1], y[::-1], epochs=2, perm=np.arange(len(y))[::-1])
    assert score(folded, task, seed) == score(program, task, seed)


def score(program: Program, task: Task, seed: int) -> list[object]:
    result = evaluate(program, task, seed=seed, record=40)
    outcome = result.outcomes[0]
    return [np.float64(result.fitness).view(np.uint64), result.train_steps,
            outcome.errors.view(np.uint64).tolist()]


FINITE = st.one_of(st.sampled_from((0.0, -0.0, 1.0, -1.0, 0.5)), st.floats(-2.0, 2.0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(FINITE_CODES, FINITE), st.data(), st.integers(0, 2**32))
def test_loose_fold_agrees_within_rounding_on_finite_inputs(
        program: Program, drawn: st.DataObject, seed: int) -> None:
    x, y = data(drawn, FINITE)
    loose = fold(program, loose=True)
    expected = trace(program, x, y, False, seed)
    assume(np.all(np.isfinite(expected)))  # what the loose form assumes
    got = trace(loose, x, y, False, seed)
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert len(loose.instructions()) <= len(fold(program).instructions())
