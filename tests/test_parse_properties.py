"""Properties: parse(unparse(p)) == p over all ops and literals; no input escapes as a crash."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from azdsl import parse, unparse
from azdsl.errors import AzdslError
from azdsl.language.ops import OPS, Kind, LitType, Op
from azdsl.language.program import Cell, ComponentComments, Instr, Program

SPECIAL_FLOATS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1e308, -1e308,
                  1.7976931348623157e308, 2.2250738585072014e-308, 1e-05, 3.0, 0.1 + 0.2,
                  1e16, 123456789012345680.0, 1e-300]
floats = st.one_of(st.floats(), st.sampled_from(SPECIAL_FLOATS))
indices = st.one_of(st.integers(0, 40), st.integers(0, 2**62))
# Comment text as the parser stores it: one line, no trailing whitespace.
comment_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                       max_size=8).map(str.rstrip)


CELLS = {kind: st.builds(Cell, st.just(kind), st.integers(0, 12) | st.integers(0, 10**9))
         for kind in Kind}
OP_STRATEGY = st.sampled_from(OPS)
LITERALS = {LitType.INDEX: indices, LitType.FLOAT: floats}
LEADING = st.lists(comment_text, max_size=2).map(tuple)
TRAILING = st.none() | comment_text


@st.composite
def instrs(draw: st.DrawFn, comments: bool = False) -> Instr:
    op: Op = draw(OP_STRATEGY)
    out = draw(CELLS[op.out]) if op.out else None
    ins = tuple(draw(CELLS[k]) for k in op.ins)
    lits = tuple(draw(LITERALS[lit.type]) for lit in op.literals)
    if not comments:
        return Instr(op.code, out, ins, lits)
    return Instr(op.code, out, ins, lits, leading_comments=draw(LEADING),
                 trailing_comment=draw(TRAILING))


def programs(comments: bool = False) -> st.SearchStrategy[Program]:
    component = st.lists(instrs(comments), max_size=6).map(tuple)
    if not comments:
        return st.builds(Program, component, component, component)
    header = st.builds(ComponentComments, LEADING, TRAILING)
    return st.builds(Program, component, component, component,
                     st.tuples(header, header, header), LEADING)


def comments_of(p: Program) -> object:
    headers = p.header_comments or (ComponentComments(),) * 3
    return (headers, p.end_comments,
            [(i.leading_comments, i.trailing_comment) for i in p.instructions()])


@given(programs())
def test_round_trip(program: Program) -> None:
    text = unparse(program)
    again = parse(text)
    assert again == program
    assert unparse(again) == text


@given(programs(comments=True))
def test_round_trip_keeps_comments(program: Program) -> None:
    text = unparse(program)
    again = parse(text)
    assert again == program
    assert unparse(again) == text
    assert comments_of(again) == comments_of(program)


@given(instrs())
def test_literals_survive_bit_for_bit(instr: Instr) -> None:
    (again,) = parse(unparse(Program(predict=(instr,)))).predict
    for a, b in zip(instr.literals, again.literals, strict=True):
        assert (math.isnan(a) and math.isnan(b)) or (a == b and repr(a) == repr(b))


def assert_parses_or_explains(text: str) -> None:
    try:
        program = parse(text, "fuzz.az", dim=4)
    except AzdslError as e:
        assert e.diagnostics
        assert all(d.span is not None and d.span.line >= 1 and d.span.col >= 1
                   for d in e.diagnostics)
        e.render()
    else:
        assert parse(unparse(program)) == program


LANGUAGE_CHARS = "sv m0123456789=+-*/@()[],.#:_\t defPrdicLanSupxiofgs"


@settings(max_examples=300)
@given(st.text(st.sampled_from(LANGUAGE_CHARS) | st.characters(), max_size=120))
def test_any_text_parses_or_gives_positioned_errors(text: str) -> None:
    assert_parses_or_explains(text)


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(LANGUAGE_CHARS + "\n"),
                           st.sampled_from(["insert", "delete", "replace"])),
                 min_size=1, max_size=6)


@settings(max_examples=150)
@given(programs(), EDITS)
def test_edited_programs_parse_or_give_positioned_errors(
        program: Program, edits: list[tuple[int, str, str]]) -> None:
    text = list(unparse(program))
    for at, char, action in edits:
        at %= len(text) + 1
        if action == "insert" or not text:
            text.insert(at, char)
        elif action == "delete":
            del text[min(at, len(text) - 1)]
        else:
            text[min(at, len(text) - 1)] = char
    assert_parses_or_explains("".join(text))


def test_deeply_nested_input_is_an_error_not_a_crash() -> None:
    for text in ["s1 = " + "-" * 5000 + "1", "s1 = " + " + ".join(["s2"] * 5000),
                 "s1 = " + "dot(" * 3000 + ")" * 3000, "s" + "9" * 5000 + " = 1"]:
        assert_parses_or_explains("def Setup():\n  " + text + "\n")
