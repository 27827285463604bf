"""Which op a parsed line spells, found in (and explained from) the op table alone."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from azdsl.language.ops import OPS, Form, Kind, LitType, Op, on_table_change
from azdsl.language.program import Cell, Literal
from azdsl.language.syntax import (
    Assign,
    Binary,
    Call,
    Keyword,
    Name,
    Negative,
    Node,
    Number,
    Pass,
    Subscript,
    SyntaxProblem,
    closest,
    either,
    shorten,
)

# A spelling: form, function or operator, axis, output kind, input kinds, number of indices
# on the left of `=`. Every row of the table has one; ops 18 and 29 also have a swapped one.
Key = tuple[Form, str, int | None, Kind | None, tuple[Kind, ...], int]


def _n_index(op: Op) -> int:
    return sum(lit.type is LitType.INDEX for lit in op.literals) if op.form is Form.CONST else 0


def _key(op: Op, ins: tuple[Kind, ...]) -> Key:
    return (op.form, op.func, op.axis, op.out, ins, _n_index(op))


def _accepted_ins(op: Op) -> tuple[tuple[Kind, ...], ...]:
    return (op.ins, op.ins[::-1]) if op.swapped_alias else (op.ins,)


_BY_KEY: dict[Key, tuple[Op, bool]] = {}  # -> (op, written with its inputs swapped)
_FAMILIES: dict[tuple[Form, str], list[Op]] = defaultdict(list)
FUNCTIONS: dict[str, Form] = {}


@on_table_change
def _index() -> None:
    """(Re)build the lookups from the op table, in place (user ops join them)."""
    _BY_KEY.clear()
    _FAMILIES.clear()
    FUNCTIONS.clear()
    for op in OPS:
        for ins in _accepted_ins(op):
            _BY_KEY.setdefault(_key(op, ins), (op, ins != op.ins))
        _FAMILIES[(op.form, op.func)].append(op)
        if op.form in (Form.CALL, Form.RANDOM):
            FUNCTIONS.setdefault(op.func, op.form)


_index()


def spelled_by(op: Op) -> Op | None:
    """The op already in the table that a line spelled like `op` would resolve to, if any."""
    for ins in _accepted_ins(op):
        found = _BY_KEY.get(_key(op, ins))
        if found is not None:
            return found[0]
    return None

_FLOAT_WORDS = {"inf": math.inf, "nan": math.nan}
_PLURAL = {Kind.SCALAR: "scalars", Kind.VECTOR: "vectors", Kind.MATRIX: "matrices"}
_COUNT = {0: "none", 1: "one", 2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class Resolved:
    op: Op
    out: Cell | None
    ins: tuple[Cell, ...]
    literals: tuple[Literal, ...]


class _Problem(SyntaxProblem):
    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message, node.col, node.end)


def resolve(stmt: Pass | Assign, line: str) -> Resolved:
    """The op, cells and literals a statement spells. Raises SyntaxProblem with a clear message."""
    if isinstance(stmt, Pass):
        op, _ = _BY_KEY[(Form.PASS, "", None, None, (), 0)]
        return Resolved(op, None, (), ())
    return _Resolver(line).assign(stmt)


class _Resolver:
    def __init__(self, line: str) -> None:
        self.line = line

    def text(self, node: Node) -> str:
        """The source of a node, shortened for a message."""
        return shorten(self.line[node.col - 1 : node.end - 1])

    # -- the left of `=`

    def assign(self, stmt: Assign) -> Resolved:
        out, indices = self.target(stmt.target)
        value = stmt.value
        if _is_number(value):
            return self.const(out, indices, value, stmt)
        if indices:
            raise _Problem(f"only a number can be written into `{self.text(stmt.target)}`", value)
        if isinstance(value, Binary):
            return self.infix(out, value)
        if isinstance(value, Call):
            return self.call(out, value)
        if isinstance(value, Name):
            self.cell(value)
            raise _Problem(f"`{value.text}` alone is not an operation: there is no copy op "
                           "(`azdsl ops` lists the ops)", value)
        if isinstance(value, Subscript):
            raise _Problem(f"`{self.text(value)}`: reading one coordinate is not an op "
                           "(an index may only stand left of `=`)", value)
        raise _Problem("a minus sign can only stand before a number", value)

    def target(self, node: Node) -> tuple[Cell, tuple[Node, ...]]:
        if isinstance(node, Name) and node.text not in _FLOAT_WORDS:
            return self.cell(node), ()
        if isinstance(node, Subscript):
            if not node.args:
                raise _Problem(f"`{self.text(node)}` needs an index", node)
            return self.cell(node.base), node.args
        what = ("a number" if _is_number(node) else
                "a function call" if isinstance(node, Call) else "an expression")
        raise _Problem(f"cannot write into {what}: the left of `=` must be a cell", node)

    def cell(self, node: Node) -> Cell:
        if not isinstance(node, Name):
            if _is_number(node):
                raise _Problem(f"expected a cell; `{self.text(node)}` is a number", node)
            raise _Problem(f"one operation per instruction: compute `{self.text(node)}` into a "
                           "cell on its own line first", node)
        try:
            return Cell.parse(node.text)
        except ValueError:
            raise _Problem(_bad_cell_name(node.text), node) from None

    # -- `x = c`, `v[i] = c`, `m[i, j] = c`

    def const(self, out: Cell, indices: tuple[Node, ...], value: Node, stmt: Assign) -> Resolved:
        hit = _BY_KEY.get((Form.CONST, "", None, out.kind, (), len(indices)))
        if hit is None:
            rows = [op for op in _FAMILIES[(Form.CONST, "")] if op.out is out.kind]
            if not rows:
                raise _Problem(f"{out.kind.article_word} cannot be set to a number", stmt)
            n = _n_index(rows[0])
            takes = "no index" if n == 0 else f"{_count(n)} ind{'ex' if n == 1 else 'ices'}"
            example = rows[0].spelling(str(out), literals=[
                lit.name if lit.type is LitType.INDEX else self.text(value)
                for lit in rows[0].literals])
            raise _Problem(f"`{out}` is {out.kind.article_word} and takes {takes}: "
                           f"write `{example}`", stmt.target)
        op = hit[0]
        index_nodes, value_nodes = iter(indices), iter((value,))
        literals = tuple(
            _literal(lit.type, next(index_nodes if lit.type is LitType.INDEX else value_nodes),
                     self.text)
            for lit in op.literals
        )
        return Resolved(op, out, (), literals)

    # -- `x = a op b`

    def infix(self, out: Cell, value: Binary) -> Resolved:
        ins = []
        for side in (value.left, value.right):
            if _is_number(side):
                raise _Problem(f"`{value.op}` works on cells; `{self.text(side)}` is a number: "
                               f"set a scalar to it on its own line first", side)
            ins.append(self.cell(side))
        return self.lookup(Form.INFIX, value.op, None, out, tuple(ins), value, [value.left,
                                                                             value.right])

    # -- `x = f(a, b)`, `x = f(a, axis=k)`, `x = uniform(lo, hi)`

    def call(self, out: Cell, value: Call) -> Resolved:
        name = value.func.text
        form = FUNCTIONS.get(name)
        if form is None:
            raise _Problem(_unknown_function(name), value.func)
        positional = [a for a in value.args if not isinstance(a, Keyword)]
        keywords = [a for a in value.args if isinstance(a, Keyword)]
        if keywords and value.args.index(keywords[0]) < len(positional):
            raise _Problem(f"`{shorten(keywords[0].name.text)}=` must come last", keywords[0])
        if form is Form.RANDOM:
            return self.random(out, value, positional, keywords)
        axis = self.axis(name, keywords)
        ins = []
        for arg in positional:
            if _is_number(arg):
                raise _Problem(f"`{name}` works on cells; `{self.text(arg)}` is a number", arg)
            ins.append(self.cell(arg))
        return self.lookup(Form.CALL, name, axis, out, tuple(ins), value, positional)

    def axis(self, name: str, keywords: list[Keyword]) -> int | None:
        axis: int | None = None
        for i, kw in enumerate(keywords):
            if kw.name.text != "axis":
                raise _Problem(f"`{name}` has no keyword `{shorten(kw.name.text)}` "
                               "(the only keyword is `axis`)", kw.name)
            if i > 0:
                raise _Problem("`axis` is given twice", kw)
            axis = int(_literal(LitType.INDEX, kw.value, self.text, what="`axis`"))
        return axis

    def random(self, out: Cell, value: Call, positional: list[Node],
               keywords: list[Keyword]) -> Resolved:
        name = value.func.text
        family = _FAMILIES[(Form.RANDOM, name)]
        names = ", ".join(lit.name for lit in family[0].literals)
        if keywords:
            raise _Problem(f"`{name}` takes no keywords: write `{name}({names})`", keywords[0])
        for arg in positional:
            if not _is_number(arg):
                what = "a cell" if isinstance(arg, Name) else "not a number"
                raise _Problem(f"`{name}` takes numbers ({names}); `{self.text(arg)}` is {what}",
                               arg)
        hit = _BY_KEY.get((Form.RANDOM, name, None, out.kind, (), 0))
        if hit is None:
            kinds = either([_PLURAL[op.out] for op in family if op.out is not None])
            raise _Problem(f"`{name}` can set {kinds}, not {_PLURAL[out.kind]}", value)
        op = hit[0]
        if len(positional) != len(op.literals):
            raise _Problem(f"`{name}` takes {_count(len(op.literals))} numbers ({names}); "
                           f"got {_count(len(positional))}", value)
        literals = tuple(_literal(lit.type, arg, self.text)
                         for lit, arg in zip(op.literals, positional, strict=True))
        return Resolved(op, out, (), literals)

    # -- the table lookup, and why it failed

    def lookup(self, form: Form, func: str, axis: int | None, out: Cell, ins: tuple[Cell, ...],
               value: Node, arg_nodes: list[Node]) -> Resolved:
        kinds = tuple(c.kind for c in ins)
        hit = _BY_KEY.get((form, func, axis, out.kind, kinds, 0))
        if hit is not None:
            op, swapped = hit
            return Resolved(op, out, ins[::-1] if swapped else ins, ())
        raise self.mismatch(form, func, axis, out, ins, value, arg_nodes)

    def mismatch(self, form: Form, func: str, axis: int | None, out: Cell,
                 ins: tuple[Cell, ...], value: Node, arg_nodes: list[Node]) -> _Problem:
        kinds = tuple(c.kind for c in ins)
        family = _FAMILIES[(form, func)]
        by_arity = [op for op in family if op.arity == len(ins)]
        if not by_arity:
            arities = either([_count(n) for n in sorted({op.arity for op in family})])
            plural = "" if arities == "one" else "s"
            return _Problem(f"`{func}` takes {arities} argument{plural}; got {_count(len(ins))}",
                            value)
        by_ins = [op for op in by_arity if kinds in _accepted_ins(op)]
        if not by_ins:
            signatures = list(dict.fromkeys(op.ins for op in by_arity))
            takes = either([_describe(s) for s in signatures])
            if len(signatures) == 1:
                i = next(i for i, (k, c) in enumerate(zip(signatures[0], ins, strict=True))
                         if k is not c.kind)
                return _Problem(f"`{func}` takes {takes}; `{ins[i]}` is "
                                f"{ins[i].kind.article_word}" + _hint(out, ins), arg_nodes[i])
            return _Problem(f"`{func}` takes {takes}; got {_describe(kinds)}" + _hint(out, ins),
                            value)
        same_out = [op for op in by_ins if op.out is out.kind]
        if same_out:  # only the axis is wrong
            options = either([f"`{_spell(op, out, ins)}` ({op.doc})" for op in same_out])
            return _Problem(f"`{self.text(value)}` cannot be written into "
                            f"{out.kind.article_word}; did you mean {options}?", value)
        results = [op for op in by_ins if op.axis == axis]
        if results:
            result = results[0].out.article_word if results[0].out else "nothing"
            return _Problem(f"`{self.text(value)}` is {result}; `{out}` is "
                            f"{out.kind.article_word}" + _hint(out, ins), value)
        axes = ["no axis" if op.axis is None else f"`axis={op.axis}`" for op in by_ins]
        return _Problem(f"`{func}` of {_describe(kinds)} takes {either(axes)}", value)


def _spell(op: Op, out: Cell, ins: tuple[Cell, ...]) -> str:
    ordered = ins if tuple(c.kind for c in ins) == op.ins else ins[::-1]
    return op.spelling(str(out), [str(c) for c in ordered])


def _hint(out: Cell, ins: tuple[Cell, ...]) -> str:
    """` (did you mean ...?)` when exactly one op turns these inputs into this output kind."""
    kinds = tuple(c.kind for c in ins)
    fits = [op for op in OPS if op.out is out.kind and not op.literals
            and kinds in _accepted_ins(op)]
    return f" (did you mean `{_spell(fits[0], out, ins)}`?)" if len(fits) == 1 else ""


def _count(n: int) -> str:
    return _COUNT.get(n, str(n))


def _describe(kinds: tuple[Kind, ...]) -> str:
    if len(kinds) == 2 and kinds[0] is kinds[1]:
        return f"two {_PLURAL[kinds[0]]}"
    return " and ".join(k.article_word for k in kinds) or "nothing"


def _is_number(node: Node) -> bool:
    if isinstance(node, Negative):
        node = node.operand
    return isinstance(node, Number) or (isinstance(node, Name) and node.text in _FLOAT_WORDS)


def _literal(kind: LitType, node: Node, text: Callable[[Node], str],
             what: str = "an index") -> Literal:
    """A float or index literal from `3`, `-0.5`, `1e-05`, `-inf`, `nan`."""
    shown = text(node)
    negative = isinstance(node, Negative)
    base = node.operand if isinstance(node, Negative) else node
    if kind is LitType.INDEX:
        if not isinstance(base, Number) or negative or not base.text.isdigit():
            raise _Problem(f"{what} must be a whole number >= 0; got `{shown}`", node)
        try:
            return int(base.text)
        except ValueError:  # more digits than Python converts
            raise _Problem(f"`{shown}` is too large for {what}", node) from None
    if isinstance(base, Name):
        value = _FLOAT_WORDS[base.text]
    elif isinstance(base, Number):
        value = float(base.text)
        if math.isinf(value):
            raise _Problem(f"`{shown}` is too large for a float64 (write `inf` for infinity)",
                           node)
    else:
        raise _Problem(f"expected a number; got `{shown}`", node)
    return -value if negative else value


def _unknown_function(name: str) -> str:
    close = closest(name, FUNCTIONS)
    if close:
        return f"unknown function `{name}`, did you mean `{close}`?"
    return f"unknown function `{shorten(name)}` (`azdsl ops` lists the ops)"


def _bad_cell_name(name: str) -> str:
    kinds = either([f"`{k.prefix}N` ({_PLURAL[k]})" for k in Kind])
    shown = shorten(name)
    if name in FUNCTIONS:
        return f"`{name}` is a function, not a cell"
    if name[0] in {k.prefix for k in Kind} and name[1:].isdigit():
        if name[1] == "0":
            fixed = shorten(name[0] + (name[1:].lstrip("0") or "0"))
            return f"bad cell name `{shown}`: write `{fixed}` (no leading zeros)"
        return f"cell index of `{name[:20]}` is too large"
    try:
        return f"bad cell name `{shown}`; did you mean `{shorten(str(Cell.parse(name.lower())))}`?"
    except ValueError:
        return f"bad cell name `{shown}`: cells are named {kinds}"
