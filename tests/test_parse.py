"""Parsing: every op from the table, literals, layout, comments, and the checks against F."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from azdsl import parse, unparse
from azdsl.errors import CheckError, ParseError
from azdsl.language.ops import OPS, Kind, LitType, Op
from azdsl.language.parse import parse_file
from azdsl.language.printer import format_instr
from azdsl.language.program import Cell, Instr, Program

EXAMPLES = Path(__file__).parent.parent / "examples"


def one(line: str, component: str = "Setup") -> Instr:
    """The single instruction of a one-line program."""
    program = parse(f"def {component}():\n  {line}\n")
    (instr,) = program.instructions()
    return instr


def sample(op: Op) -> tuple[Instr, str]:
    """An instance of `op` with distinct cells and literals, and its canonical text."""
    out = Cell(op.out, 7) if op.out else None
    ins = tuple(Cell(kind, 2 + i) for i, kind in enumerate(op.ins))
    lits = tuple(3 if lit.type is LitType.INDEX else -0.25 for lit in op.literals)
    texts = ["3" if lit.type is LitType.INDEX else "-0.25" for lit in op.literals]
    return Instr(op.code, out, ins, lits), op.spelling(str(out), [str(c) for c in ins], texts)


@pytest.mark.parametrize("op", OPS, ids=lambda op: f"{op.code}-{op.name}")
def test_every_op_parses_from_its_canonical_spelling_and_prints_back(op: Op) -> None:
    instr, text = sample(op)
    parsed = one(text)
    assert parsed.code == op.code
    assert parsed == instr
    assert format_instr(parsed) == text


@pytest.mark.parametrize("op", [op for op in OPS if op.swapped_alias], ids=lambda op: op.name)
def test_swapped_alias_reads_as_the_same_op_and_prints_canonically(op: Op) -> None:
    instr, text = sample(op)
    a, b = instr.ins
    swapped = one(f"{instr.out} = {b} {op.func} {a}")
    assert swapped == instr
    assert format_instr(swapped) == text


def test_no_other_infix_spelling_is_accepted_swapped() -> None:
    with pytest.raises(ParseError):
        one("v1 = v0 @ m0")


def test_op_kinds_come_from_the_operands_and_the_destination() -> None:
    assert one("s1 = heaviside(s2)").code != one("v1 = heaviside(v2)").code
    assert one("v1 = norm(m0, axis=0)").op.axis == 0
    assert one("s3 = uniform(-1, 1)").op.out is Kind.SCALAR
    assert one("m3 = uniform(-1, 1)").op.out is Kind.MATRIX


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3.0), ("-2", -2.0), ("0.001", 0.001), ("1e-05", 1e-05), ("-0.5", -0.5),
     ("1e+308", 1e308), ("5e-324", 5e-324), (".5", 0.5), ("7.", 7.0), ("2E3", 2000.0),
     ("inf", math.inf), ("-inf", -math.inf)],
)
def test_float_literals(text: str, value: float) -> None:
    (lit,) = one(f"s2 = {text}").literals
    assert type(lit) is float and lit == value


def test_negative_zero_and_nan_are_kept_exactly() -> None:
    (zero,) = one("s2 = -0.0").literals
    assert math.copysign(1.0, zero) == -1.0
    assert one("s2 = -0.0") != one("s2 = 0.0")
    (nan,) = one("s2 = nan").literals
    assert math.isnan(nan)
    assert one("s2 = nan") == one("s2 = nan")


def test_index_literals_are_ints_and_the_value_a_float() -> None:
    instr = one("m1[2, 0] = 1")
    assert instr.literals == (2, 0, 1.0)
    assert [type(x) for x in instr.literals] == [int, int, float]


def test_layout_is_free_on_input() -> None:
    text = ("\n\n  def Setup():\n\ts2 = 0.001\n\n def Learn():   \n"
            "      s3   =   s0-s1\n  v1=v1+v2\r\n")
    program = parse(text)
    assert program == parse("def Setup():\n  s2 = 0.001\ndef Learn():\n  s3 = s0 - s1\n"
                            "  v1 = v1 + v2\n")
    assert program.predict == ()


def test_missing_components_are_empty_and_empty_text_is_the_empty_program() -> None:
    assert parse("") == Program()
    assert parse("# nothing\n\n") == Program()
    assert parse("def Learn():\n  pass\n") == Program(learn=(Instr(0),))


def test_pass_occupies_a_slot() -> None:
    assert parse("def Predict():\n  pass\n  pass\n").sizes() == (0, 2, 0)


def test_comments_attach_to_their_lines() -> None:
    program = parse_file(EXAMPLES / "linear_sgd.az")
    setup_comments, predict_comments, learn_comments = program.header_comments
    assert learn_comments.header_trailing == "s0 = label"
    assert setup_comments.before_header == ("Linear regression trained by SGD.",)
    assert predict_comments.header_trailing == "v0 = features"
    assert program.setup[0].trailing_comment == "learning rate"
    assert program.learn[1].trailing_comment is None
    text = "def Learn():\n  # first\n  #   second\n  s3 = s0 - s1\n# last\n"
    program = parse(text)
    assert program.learn[0].leading_comments == ("first", "  second")
    assert program.end_comments == ("last",)


def test_comments_before_the_first_header_stay_at_the_top() -> None:
    program = parse("# about\ndef Predict():\n  s1 = s1 + s2\n")
    assert program.header_comments[0].before_header == ("about",)
    assert unparse(program).startswith("# about\ndef Setup():\ndef Predict():\n")


def test_comments_and_spans_take_no_part_in_equality() -> None:
    plain = parse_file(EXAMPLES / "linear_sgd.az").without_comments()
    assert parse_file(EXAMPLES / "linear_sgd.az") == plain


def test_spans_point_at_the_instruction() -> None:
    instr = parse("def Setup():\n\n    s2 = 0.5  # c\n").setup[0]
    assert instr.span is not None
    assert (instr.span.line, instr.span.col, instr.span.end_col) == (3, 5, 13)


def test_examples_have_the_documented_memory() -> None:
    nn = parse_file(EXAMPLES / "neural_net.az")
    assert nn.sizes() == (3, 5, 11)
    assert nn.memory_needs() == {Kind.SCALAR: 5, Kind.VECTOR: 9, Kind.MATRIX: 2}
    assert parse_file(EXAMPLES / "teacher.az").sizes() == (0, 3, 0)


def test_index_checks_need_a_feature_size() -> None:
    text = "def Setup():\n  v1[3] = 1.0\n  m1[1, 9] = 2.0\n"
    parse(text)
    parse(text, dim=10)
    with pytest.raises(CheckError) as e:
        parse(text, "x.az", dim=4)
    assert [d.span.line for d in e.value.diagnostics if d.span] == [3]
    assert "index 9 is out of range for F = 4" in e.value.render()


def test_parse_errors_and_index_errors_are_reported_together() -> None:
    with pytest.raises(ParseError) as e:
        parse("def Setup():\n  v1[5] = 1.0\n  s1 = sine(s2)\n", dim=4)
    assert len(e.value.diagnostics) == 2


def test_every_error_of_a_file_is_reported_in_line_order() -> None:
    text = "def Setup():\n  s1 = foo(s2)\n  ok = 1\n  s2 = s3 +\ndef Setup():\n"
    with pytest.raises(ParseError) as e:
        parse(text, "f.az")
    assert [d.span.line for d in e.value.diagnostics if d.span] == [2, 3, 4, 5]
    assert e.value.render().startswith("f.az:2:8: error: unknown function `foo`")


def test_parse_file_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot read"):
        parse_file(tmp_path / "missing.az")
    latin1 = tmp_path / "latin1.az"
    latin1.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ParseError, match="not UTF-8"):
        parse_file(latin1)
    bom = tmp_path / "bom.az"
    bom.write_bytes(b"\xef\xbb\xbfdef Setup():\n  s2 = 1.0\n")
    assert parse_file(bom).sizes() == (1, 0, 0)


def test_parser_and_printer_do_not_import_numba() -> None:
    code = ("import sys, azdsl, azdsl.language.parse, azdsl.language.printer, azdsl.cli\n"
            "azdsl.parse('def Setup():\\n  s1 = 1.0\\n')\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'numba'], 'numba'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_new_op_needs_only_a_table_row() -> None:
    code = """
import dataclasses, importlib, sys
import azdsl.language.ops as ops
row = dataclasses.replace(ops.OPS_BY_CODE[7], code=len(ops.OPS), name="SCALAR_SOFTPLUS",
                          func="softplus", doc="log(1 + e^x)")
ops.add_op(row)  # what azdsl.extend.register_op ends with, once it has checked the row
importlib.reload(sys.modules["azdsl.language.spelling"])
parser = importlib.reload(sys.modules["azdsl.language.parse"])
from azdsl.language.printer import unparse
program = parser.parse("def Setup():\\n  s1 = softplus(s2)\\n")
assert program.setup[0].code == row.code
assert unparse(program) == "def Setup():\\n  s1 = softplus(s2)\\ndef Predict():\\ndef Learn():\\n"
try:
    parser.parse("def Setup():\\n  s1 = softplus(v2)\\n")
except parser.ParseError as e:
    assert "`softplus` takes a scalar; `v2` is a vector" in str(e), str(e)
else:
    raise AssertionError("no error")
"""
    subprocess.run([sys.executable, "-c", code], check=True)
