"""The printer: canonical layout, lossless literals, comments in their places."""

from __future__ import annotations

import math

from azdsl import parse, unparse
from azdsl.language.ops import Kind
from azdsl.language.printer import format_instr
from azdsl.language.program import Cell, ComponentComments, Instr, Program


def S(i: int) -> Cell:
    return Cell(Kind.SCALAR, i)


def V(i: int) -> Cell:
    return Cell(Kind.VECTOR, i)


def M(i: int) -> Cell:
    return Cell(Kind.MATRIX, i)


def test_canonical_spellings() -> None:
    assert format_instr(Instr(0)) == "pass"
    assert format_instr(Instr(27, S(1), (V(0), V(1)))) == "s1 = dot(v0, v1)"
    assert format_instr(Instr(18, V(2), (S(4), V(0)))) == "v2 = s4 * v0"
    assert format_instr(Instr(35, V(3), (M(0),))) == "v3 = norm(m0, axis=0)"
    assert format_instr(Instr(58, M(1), (), (2, 0, 1))) == "m1[2, 0] = 1.0"
    assert format_instr(Instr(63, V(1), (), (0.0, 0.1))) == "v1 = gaussian(0.0, 0.1)"


def test_floats_print_losslessly() -> None:
    def text(value: float) -> str:
        return format_instr(Instr(56, S(2), (), (value,)))

    assert text(3) == "s2 = 3.0"
    assert text(1e-05) == "s2 = 1e-05"
    assert text(-0.0) == "s2 = -0.0"
    assert text(math.inf) == "s2 = inf"
    assert text(-math.inf) == "s2 = -inf"
    assert text(math.nan) == "s2 = nan"
    assert text(5e-324) == "s2 = 5e-324"
    assert text(0.1 + 0.2) == "s2 = 0.30000000000000004"
    assert text(1e16) == "s2 = 1e+16"


def test_layout() -> None:
    program = Program(learn=(Instr(2, S(3), (S(0), S(1))),))
    assert unparse(program) == "def Setup():\ndef Predict():\ndef Learn():\n  s3 = s0 - s1\n"
    assert unparse(Program()) == "def Setup():\ndef Predict():\ndef Learn():\n"


def test_comments_keep_their_places() -> None:
    text = (
        "# top\n"
        "def Setup():  # setup\n"
        "  # about s2\n"
        "  s2 = 0.001  # rate\n"
        "# before predict\n"
        "def Predict():\n"
        "  s1 = dot(v0, v1)\n"
        "def Learn():\n"
        "  #####\n"
        "  #   indented\n"
        "  pass  #\n"
        "  # the end\n"
    )
    assert unparse(parse(text)) == text
    assert unparse(parse(text), comments=False) == (
        "def Setup():\n  s2 = 0.001\ndef Predict():\n  s1 = dot(v0, v1)\ndef Learn():\n  pass\n")


def test_comments_are_normalised_once() -> None:
    messy = "def Setup():\n      #tight   \n\ts2 = 1   #x\n"
    once = unparse(parse(messy))
    assert once == "def Setup():\n  # tight\n  s2 = 1.0  # x\ndef Predict():\ndef Learn():\n"
    assert unparse(parse(once)) == once


def test_comments_made_in_code_print_on_one_line() -> None:
    program = Program(
        setup=(Instr(56, S(2), (), (1.0,), leading_comments=("a\nb",), trailing_comment="c"),),
        header_comments=(ComponentComments(("title",)),),
    )
    assert unparse(program) == "# title\ndef Setup():\n  # a b\n  s2 = 1.0  # c\ndef Predict():\n" \
        "def Learn():\n"
    assert parse(unparse(program)) == program
