"""The op table: one row per AutoML-Zero op, the single source of truth for every other module.

Each row says how the op is spelled (parser, printer, docs), which cell kinds it reads and
writes, its literals (how they are drawn and mutated), what it computes (numpy reference
semantics, used by the interpreter), the statement template that compiled backends expand
(codegen and the VM), its train-budget cost, and a one-line doc.

Template language (expanded by running.template): `O`, `A`, `B` are the output and the two input
cells (`O[k]`, `A[i, j]` index into vectors and matrices), `$name` is a literal, `F` the feature
size, `KEY` the random key of this execution, `tv` / `tm` scratch vector / matrix for results
that must be computed before they are stored (aliasing), and the helpers of azdsl.running.kernels
(`uniform01`, `gauss01`, `nan_min`, `nan_max`, `heaviside_scalar`, `heaviside_strict`).

The built-in rows keep codes 0..64 for good (checkpoints, golden files). azdsl.extend appends
user ops after them (`add_op`); modules that derive tables from OPS rebuild them through
`on_table_change`, and compiled code is keyed by the text generated from the rows, so a new op
compiles new modules and never meets a stale cache (docs/extending.md).
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class Kind(enum.Enum):
    """The three kinds of memory cell."""

    SCALAR = "s"
    VECTOR = "v"
    MATRIX = "m"

    @property
    def prefix(self) -> str:
        return self.value

    @property
    def word(self) -> str:
        return {"s": "scalar", "v": "vector", "m": "matrix"}[self.value]

    @property
    def article_word(self) -> str:
        return {"s": "a scalar", "v": "a vector", "m": "a matrix"}[self.value]


S, V, M = Kind.SCALAR, Kind.VECTOR, Kind.MATRIX


class Form(enum.Enum):
    """How an op is spelled on the right of `=`."""

    PASS = "pass"  # `pass`
    INFIX = "infix"  # `O = A op B`
    CALL = "call"  # `O = f(A)`, `O = f(A, B)`, `O = f(A, axis=k)`
    CONST = "const"  # `s = c`, `v[i] = c`, `m[i, j] = c`
    RANDOM = "random"  # `O = uniform(lo, hi)`, `O = gaussian(mean, std)`


class LitType(enum.Enum):
    FLOAT = "float"
    INDEX = "index"


class LitInit(enum.Enum):
    """How a fresh instruction draws a literal (docs/search.md)."""

    OPEN_PM1 = "uniform(-1, 1) open"  # scalar constant
    PM1 = "uniform[-1, 1)"
    UNIT = "uniform[0, 1)"
    INDEX = "uniform integer in [0, F)"


class LitMutation(enum.Enum):
    """How a literal mutates (docs/search.md)."""

    LOG_OR_FLIP = "flip sign with p=0.1, else multiply by exp(N(0,1))"
    LOG = "multiply by exp(N(0,1)); never flips (a std stays non-negative)"
    REDRAW_INDEX = "redraw uniformly in [0, F)"


@dataclass(frozen=True)
class Literal:
    name: str
    type: LitType
    init: LitInit
    mutation: LitMutation


def _float_lit(
    name: str, init: LitInit, mutation: LitMutation = LitMutation.LOG_OR_FLIP
) -> Literal:
    return Literal(name, LitType.FLOAT, init, mutation)


_INDEX_I = Literal("i", LitType.INDEX, LitInit.INDEX, LitMutation.REDRAW_INDEX)
_INDEX_J = Literal("j", LitType.INDEX, LitInit.INDEX, LitMutation.REDRAW_INDEX)

# Reference semantics: fn(old_out, inputs, literals, draws) -> new value of the output cell.
# `draws` gives the random numbers of this execution (see interp.Draws); only random ops use it.
Semantics = Callable[[Any, Sequence[Any], Sequence[Any], Any], Any]


@dataclass(frozen=True)
class Op:
    code: int
    name: str  # the C++ enum name without _OP, for docs and cross-reference
    out: Kind | None
    ins: tuple[Kind, ...]
    form: Form
    func: str  # infix symbol, function name, or "" (pass, const)
    semantics: Semantics
    template: str
    cost: int  # per-op compute cost of the original's train budget (reference, Appendix A)
    doc: str
    axis: int | None = None
    literals: tuple[Literal, ...] = ()
    swapped_alias: bool = False  # also accepts `O = B * A` on input (ops 18, 29)

    @property
    def is_random(self) -> bool:
        return self.form is Form.RANDOM

    @property
    def arity(self) -> int:
        return len(self.ins)

    def spelling(
        self,
        out: str | None = None,
        ins: Sequence[str] = ("a", "b"),
        literals: Sequence[str] | None = None,
    ) -> str:
        """The canonical spelling, e.g. `v = norm(a, axis=0)`; placeholders unless operands given.

        The printer passes the real cell names and formatted literals, so this is the one place
        that knows how each form is written.
        """
        if self.form is Form.PASS:
            return "pass"
        o = out if out is not None else (self.out.prefix if self.out else "")
        args = list(ins[: self.arity])
        lits = list(literals) if literals is not None else [lit.name for lit in self.literals]
        if self.form is Form.INFIX:
            return f"{o} = {args[0]} {self.func} {args[1]}"
        if self.form is Form.CALL:
            if self.axis is not None:
                args.append(f"axis={self.axis}")
            return f"{o} = {self.func}({', '.join(args)})"
        if self.form is Form.CONST:
            pairs = list(zip(self.literals, lits, strict=True))
            index = ", ".join(text for lit, text in pairs if lit.type is LitType.INDEX)
            value = ", ".join(text for lit, text in pairs if lit.type is LitType.FLOAT)
            return f"{o}[{index}] = {value}" if index else f"{o} = {value}"
        return f"{o} = {self.func}({', '.join(lits)})"


# ---- numpy reference semantics ------------------------------------------------------------
# Reductions accumulate one term at a time in index order (docs/semantics.md), never np.sum/np.dot.


def _seq_sum(values: Any) -> np.float64:
    total = np.float64(0.0)
    for x in np.ravel(values):
        total = total + x
    return total


def _vec_norm(x: Any) -> np.float64:
    return np.float64(np.sqrt(_seq_sum(np.ravel(x) * np.ravel(x))))


def _mean(x: Any) -> np.float64:
    return _seq_sum(x) / np.float64(np.size(x))


def _std(x: Any) -> np.float64:
    flat = np.ravel(x)
    mean = _mean(flat)
    radicand = _seq_sum(flat * flat) / np.float64(flat.size) - mean * mean
    return np.float64(np.sqrt(np.float64(0.0) if radicand < 0.0 else radicand))


def _matvec(mat: Any, vec: Any) -> Any:
    return np.array([_seq_sum(row * vec) for row in mat])


def _matmul(a: Any, b: Any) -> Any:
    n = a.shape[0]
    return np.array([[_seq_sum(a[i, :] * b[:, j]) for j in range(n)] for i in range(n)])


def _nan_min(a: Any, b: Any) -> Any:
    return np.where((a < b) | np.isnan(a), a, b)


def _nan_max(a: Any, b: Any) -> Any:
    return np.where((a > b) | np.isnan(a), a, b)


def _set_vector(old: Any, lits: Sequence[Any]) -> Any:
    new = old.copy()
    new[lits[0]] = lits[1]
    return new


def _set_matrix(old: Any, lits: Sequence[Any]) -> Any:
    new = old.copy()
    new[lits[0], lits[1]] = lits[2]
    return new


def _unary(fn: Callable[[Any], Any]) -> Semantics:
    return lambda old, ins, lits, draws: fn(ins[0])


def _libm(fn: Callable[[float], float], fallback: Callable[[Any], Any]) -> Semantics:
    """A scalar function computed by the C library (libm), as compiled code computes it:
    numpy may use its own SIMD versions, which differ in the last bit on some CPUs. numpy
    only answers where `math` refuses (nan/inf results: overflow, outside the domain)."""

    def semantics(old: Any, ins: Sequence[Any], lits: Sequence[Any], draws: Any) -> Any:
        try:
            return np.float64(fn(float(ins[0])))
        except (ValueError, OverflowError):
            return fallback(np.float64(ins[0]))

    return semantics


def _binary(fn: Callable[[Any, Any], Any]) -> Semantics:
    return lambda old, ins, lits, draws: fn(ins[0], ins[1])


def _uniform(old: Any, ins: Sequence[Any], lits: Sequence[Any], draws: Any) -> Any:
    lo, hi = np.float64(lits[0]), np.float64(lits[1])
    return lo + (hi - lo) * draws.uniform01(np.shape(old))


def _gaussian(old: Any, ins: Sequence[Any], lits: Sequence[Any], draws: Any) -> Any:
    mean, std = np.float64(lits[0]), np.float64(lits[1])
    return mean + std * draws.gauss01(np.shape(old))


# ---- templates shared by groups of ops -------------------------------------------------------

_VEC_LOOP = "for k in range(F):\n    O[k] = {expr}"
_MAT_LOOP = "for i in range(F):\n    for j in range(F):\n        O[i, j] = {expr}"


def _vec(expr: str) -> str:
    return _VEC_LOOP.format(expr=expr)


def _mat(expr: str) -> str:
    return _MAT_LOOP.format(expr=expr)


def _row(
    code: int,
    name: str,
    out: Kind | None,
    ins: tuple[Kind, ...],
    form: Form,
    func: str,
    semantics: Semantics,
    template: str,
    cost: int,
    doc: str,
    **extra: Any,
) -> Op:
    return Op(code, name, out, ins, form, func, semantics, template, cost, doc, **extra)


_RANDOM_LITS = {
    "uniform": (_float_lit("lo", LitInit.PM1), _float_lit("hi", LitInit.PM1)),
    "gaussian": (
        _float_lit("mean", LitInit.PM1),
        _float_lit("std", LitInit.UNIT, LitMutation.LOG),
    ),
}

# A list, grown in place by add_op: every `from ... import OPS` sees user ops too.
OPS: list[Op] = [
    _row(0, "NO_OP", None, (), Form.PASS, "", lambda old, ins, lits, draws: old, "pass", 3013921,
         "does nothing; occupies a slot"),
    _row(1, "SCALAR_SUM", S, (S, S), Form.INFIX, "+", _binary(np.add), "O = A + B", 4703759,
         "scalar sum"),
    _row(2, "SCALAR_DIFF", S, (S, S), Form.INFIX, "-", _binary(np.subtract), "O = A - B", 5102027,
         "scalar difference"),
    _row(3, "SCALAR_PRODUCT", S, (S, S), Form.INFIX, "*", _binary(np.multiply), "O = A * B",
         4418347, "scalar product"),
    _row(4, "SCALAR_DIVISION", S, (S, S), Form.INFIX, "/", _binary(np.divide), "O = A / B",
         3963916, "scalar division; x/0 is ±inf or nan"),
    _row(5, "SCALAR_ABS", S, (S,), Form.CALL, "abs", _unary(np.abs), "O = abs(A)", 3684352,
         "absolute value"),
    _row(6, "SCALAR_RECIPROCAL", S, (S,), Form.CALL, "reciprocal",
         _unary(lambda x: np.float64(1.0) / x), "O = 1.0 / A", 4212086, "1 / x"),
    _row(7, "SCALAR_SIN", S, (S,), Form.CALL, "sin", _libm(math.sin, np.sin),
         "O = np.sin(A)", 7538523, "sine"),
    _row(8, "SCALAR_COS", S, (S,), Form.CALL, "cos", _libm(math.cos, np.cos),
         "O = np.cos(A)", 7452807, "cosine"),
    _row(9, "SCALAR_TAN", S, (S,), Form.CALL, "tan", _libm(math.tan, np.tan),
         "O = np.tan(A)", 7583203, "tangent"),
    _row(10, "SCALAR_ARCSIN", S, (S,), Form.CALL, "arcsin", _libm(math.asin, np.arcsin),
         "O = np.arcsin(A)", 9145616, "arcsine; nan outside [-1, 1]"),
    _row(11, "SCALAR_ARCCOS", S, (S,), Form.CALL, "arccos", _libm(math.acos, np.arccos),
         "O = np.arccos(A)", 7673039, "arccosine; nan outside [-1, 1]"),
    _row(12, "SCALAR_ARCTAN", S, (S,), Form.CALL, "arctan", _libm(math.atan, np.arctan),
         "O = np.arctan(A)", 9273978, "arctangent"),
    _row(13, "SCALAR_EXP", S, (S,), Form.CALL, "exp", _libm(math.exp, np.exp),
         "O = np.exp(A)", 11755929, "e^x; overflow gives inf"),
    _row(14, "SCALAR_LOG", S, (S,), Form.CALL, "log", _libm(math.log, np.log),
         "O = np.log(A)", 11627725, "natural log; log(0) = -inf, log(x<0) = nan"),
    _row(15, "SCALAR_HEAVYSIDE", S, (S,), Form.CALL, "heaviside",
         _unary(lambda x: np.float64(1.0) if x >= 0.0 else np.float64(0.0)),
         "O = heaviside_scalar(A)", 4057075, "1.0 where x >= 0, else 0.0 (nan gives 0.0)"),
    _row(16, "VECTOR_HEAVYSIDE", V, (V,), Form.CALL, "heaviside",
         _unary(lambda x: np.where(x > 0.0, 1.0, 0.0)), _vec("heaviside_strict(A[k])"), 3965743,
         "elementwise 1.0 where x > 0, else 0.0 (the ReLU derivative)"),
    _row(17, "MATRIX_HEAVYSIDE", M, (M,), Form.CALL, "heaviside",
         _unary(lambda x: np.where(x > 0.0, 1.0, 0.0)), _mat("heaviside_strict(A[i, j])"),
         6728311, "elementwise 1.0 where x > 0, else 0.0"),
    _row(18, "SCALAR_VECTOR_PRODUCT", V, (S, V), Form.INFIX, "*", _binary(np.multiply),
         _vec("A * B[k]"), 3705015, "scalar times vector", swapped_alias=True),
    _row(19, "SCALAR_BROADCAST", V, (S,), Form.CALL, "broadcast",
         lambda old, ins, lits, draws: np.full(np.shape(old), ins[0]), _vec("A"), 4165814,
         "vector with every coordinate equal to the scalar"),
    _row(20, "VECTOR_RECIPROCAL", V, (V,), Form.CALL, "reciprocal",
         _unary(lambda x: 1.0 / x), _vec("1.0 / A[k]"), 6311851, "elementwise 1 / x"),
    _row(21, "VECTOR_NORM", S, (V,), Form.CALL, "norm", _unary(_vec_norm),
         "acc = 0.0\nfor k in range(F):\n    acc += A[k] * A[k]\nO = np.sqrt(acc)", 4810562,
         "Euclidean norm"),
    _row(22, "VECTOR_ABS", V, (V,), Form.CALL, "abs", _unary(np.abs), _vec("abs(A[k])"), 3713533,
         "elementwise absolute value"),
    _row(23, "VECTOR_SUM", V, (V, V), Form.INFIX, "+", _binary(np.add), _vec("A[k] + B[k]"),
         4701519, "elementwise sum"),
    _row(24, "VECTOR_DIFF", V, (V, V), Form.INFIX, "-", _binary(np.subtract), _vec("A[k] - B[k]"),
         4165747, "elementwise difference"),
    _row(25, "VECTOR_PRODUCT", V, (V, V), Form.INFIX, "*", _binary(np.multiply),
         _vec("A[k] * B[k]"), 4504555, "elementwise product"),
    _row(26, "VECTOR_DIVISION", V, (V, V), Form.INFIX, "/", _binary(np.divide),
         _vec("A[k] / B[k]"), 4556237, "elementwise division"),
    _row(27, "VECTOR_INNER_PRODUCT", S, (V, V), Form.CALL, "dot",
         _binary(lambda a, b: _seq_sum(a * b)),
         "acc = 0.0\nfor k in range(F):\n    acc += A[k] * B[k]\nO = acc", 4294617,
         "inner product, summed in index order"),
    _row(28, "VECTOR_OUTER_PRODUCT", M, (V, V), Form.CALL, "outer", _binary(np.outer),
         _mat("A[i] * B[j]"), 9833707, "outer product: O[i, j] = a[i] * b[j]"),
    _row(29, "SCALAR_MATRIX_PRODUCT", M, (S, M), Form.INFIX, "*", _binary(np.multiply),
         _mat("A * B[i, j]"), 5986302, "scalar times matrix", swapped_alias=True),
    _row(30, "MATRIX_RECIPROCAL", M, (M,), Form.CALL, "reciprocal", _unary(lambda x: 1.0 / x),
         _mat("1.0 / A[i, j]"), 24336141, "elementwise 1 / x"),
    _row(31, "MATRIX_VECTOR_PRODUCT", V, (M, V), Form.INFIX, "@", _binary(_matvec),
         "for i in range(F):\n    acc = 0.0\n    for j in range(F):\n        acc += A[i, j] * B[j]"
         "\n    tv[i] = acc\nfor k in range(F):\n    O[k] = tv[k]", 9310002,
         "matrix-vector product"),
    _row(32, "VECTOR_COLUMN_BROADCAST", M, (V,), Form.CALL, "column_broadcast",
         lambda old, ins, lits, draws: np.repeat(ins[0][:, None], ins[0].size, axis=1),
         _mat("A[i]"), 10993088, "matrix whose every column equals the vector: O[i, j] = a[i]"),
    _row(33, "VECTOR_ROW_BROADCAST", M, (V,), Form.CALL, "row_broadcast",
         lambda old, ins, lits, draws: np.repeat(ins[0][None, :], ins[0].size, axis=0),
         _mat("A[j]"), 11087322, "matrix whose every row equals the vector: O[i, j] = a[j]"),
    _row(34, "MATRIX_NORM", S, (M,), Form.CALL, "norm", _unary(_vec_norm),
         "acc = 0.0\nfor i in range(F):\n    for j in range(F):\n        acc += A[i, j] * A[i, j]"
         "\nO = np.sqrt(acc)", 6422746, "Frobenius norm, summed row-major"),
    _row(35, "MATRIX_COLUMN_NORM", V, (M,), Form.CALL, "norm",
         _unary(lambda x: np.array([_vec_norm(x[:, j]) for j in range(x.shape[1])])),
         "for j in range(F):\n    acc = 0.0\n    for i in range(F):\n"
         "        acc += A[i, j] * A[i, j]\n    O[j] = np.sqrt(acc)", 6682187,
         "norm of each column", axis=0),
    _row(36, "MATRIX_ROW_NORM", V, (M,), Form.CALL, "norm",
         _unary(lambda x: np.array([_vec_norm(row) for row in x])),
         "for i in range(F):\n    acc = 0.0\n    for j in range(F):\n"
         "        acc += A[i, j] * A[i, j]\n    O[i] = np.sqrt(acc)", 13351123,
         "norm of each row", axis=1),
    _row(37, "MATRIX_TRANSPOSE", M, (M,), Form.CALL, "transpose", _unary(lambda x: x.T.copy()),
         "for i in range(F):\n    for j in range(F):\n        tm[i, j] = A[j, i]\n"
         + _mat("tm[i, j]"), 9394756, "transpose"),
    _row(38, "MATRIX_ABS", M, (M,), Form.CALL, "abs", _unary(np.abs), _mat("abs(A[i, j])"),
         4630926, "elementwise absolute value"),
    _row(39, "MATRIX_SUM", M, (M, M), Form.INFIX, "+", _binary(np.add), _mat("A[i, j] + B[i, j]"),
         5579381, "elementwise sum"),
    _row(40, "MATRIX_DIFF", M, (M, M), Form.INFIX, "-", _binary(np.subtract),
         _mat("A[i, j] - B[i, j]"), 5429452, "elementwise difference"),
    _row(41, "MATRIX_PRODUCT", M, (M, M), Form.INFIX, "*", _binary(np.multiply),
         _mat("A[i, j] * B[i, j]"), 5475227, "elementwise product"),
    _row(42, "MATRIX_DIVISION", M, (M, M), Form.INFIX, "/", _binary(np.divide),
         _mat("A[i, j] / B[i, j]"), 18234378, "elementwise division"),
    _row(43, "MATRIX_MATRIX_PRODUCT", M, (M, M), Form.INFIX, "@", _binary(_matmul),
         "for i in range(F):\n    for j in range(F):\n        acc = 0.0\n        for k in range(F):"
         "\n            acc += A[i, k] * B[k, j]\n        tm[i, j] = acc\n" + _mat("tm[i, j]"),
         14516296, "matrix product"),
    _row(44, "SCALAR_MIN", S, (S, S), Form.CALL, "minimum", _binary(_nan_min),
         "O = nan_min(A, B)", 3677265, "smaller of the two; nan if either is nan"),
    _row(45, "VECTOR_MIN", V, (V, V), Form.CALL, "minimum", _binary(_nan_min),
         _vec("nan_min(A[k], B[k])"), 3989956, "elementwise minimum; nan-propagating"),
    _row(46, "MATRIX_MIN", M, (M, M), Form.CALL, "minimum", _binary(_nan_min),
         _mat("nan_min(A[i, j], B[i, j])"), 5457728, "elementwise minimum; nan-propagating"),
    _row(47, "SCALAR_MAX", S, (S, S), Form.CALL, "maximum", _binary(_nan_max),
         "O = nan_max(A, B)", 4573695, "larger of the two; nan if either is nan"),
    _row(48, "VECTOR_MAX", V, (V, V), Form.CALL, "maximum", _binary(_nan_max),
         _vec("nan_max(A[k], B[k])"), 3974229, "elementwise maximum; nan-propagating (ReLU)"),
    _row(49, "MATRIX_MAX", M, (M, M), Form.CALL, "maximum", _binary(_nan_max),
         _mat("nan_max(A[i, j], B[i, j])"), 5840952, "elementwise maximum; nan-propagating"),
    _row(50, "VECTOR_MEAN", S, (V,), Form.CALL, "mean", _unary(_mean),
         "acc = 0.0\nfor k in range(F):\n    acc += A[k]\nO = acc / F", 4280443,
         "mean of the entries"),
    _row(51, "MATRIX_MEAN", S, (M,), Form.CALL, "mean", _unary(_mean),
         "acc = 0.0\nfor i in range(F):\n    for j in range(F):\n        acc += A[i, j]"
         "\nO = acc / (F * F)", 4595196, "mean of all entries"),
    _row(52, "MATRIX_ROW_MEAN", V, (M,), Form.CALL, "mean",
         _unary(lambda x: np.array([_mean(row) for row in x])),
         "for i in range(F):\n    acc = 0.0\n    for j in range(F):\n        acc += A[i, j]"
         "\n    O[i] = acc / F", 9763956, "mean of each row", axis=1),
    _row(53, "MATRIX_ROW_ST_DEV", V, (M,), Form.CALL, "std",
         _unary(lambda x: np.array([_std(row) for row in x])),
         "for i in range(F):\n    acc = 0.0\n    acc2 = 0.0\n    for j in range(F):\n"
         "        acc += A[i, j]\n        acc2 += A[i, j] * A[i, j]\n    mu = acc / F\n"
         "    rad = acc2 / F - mu * mu\n    O[i] = np.sqrt(0.0 if rad < 0.0 else rad)", 16766477,
         "population std of each row", axis=1),
    _row(54, "VECTOR_ST_DEV", S, (V,), Form.CALL, "std", _unary(_std),
         "acc = 0.0\nacc2 = 0.0\nfor k in range(F):\n    acc += A[k]\n    acc2 += A[k] * A[k]\n"
         "mu = acc / F\nrad = acc2 / F - mu * mu\nO = np.sqrt(0.0 if rad < 0.0 else rad)",
         5585730, "population std, sqrt(max(0, mean(x^2) - mean(x)^2))"),
    _row(55, "MATRIX_ST_DEV", S, (M,), Form.CALL, "std", _unary(_std),
         "acc = 0.0\nacc2 = 0.0\nfor i in range(F):\n    for j in range(F):\n"
         "        acc += A[i, j]\n        acc2 += A[i, j] * A[i, j]\n"
         "mu = acc / (F * F)\nrad = acc2 / (F * F) - mu * mu\n"
         "O = np.sqrt(0.0 if rad < 0.0 else rad)", 10640216, "population std of all entries"),
    _row(56, "SCALAR_CONST_SET", S, (), Form.CONST, "",
         lambda old, ins, lits, draws: np.float64(lits[0]), "O = $c", 3691108,
         "set a scalar to a constant", literals=(_float_lit("c", LitInit.OPEN_PM1),)),
    _row(57, "VECTOR_CONST_SET", V, (), Form.CONST, "",
         lambda old, ins, lits, draws: _set_vector(old, lits), "O[$i] = $c", 3991421,
         "set one coordinate of a vector", literals=(_INDEX_I, _float_lit("c", LitInit.PM1))),
    _row(58, "MATRIX_CONST_SET", M, (), Form.CONST, "",
         lambda old, ins, lits, draws: _set_matrix(old, lits), "O[$i, $j] = $c", 3693035,
         "set one entry of a matrix",
         literals=(_INDEX_I, _INDEX_J, _float_lit("c", LitInit.PM1))),
    _row(59, "SCALAR_UNIFORM_SET", S, (), Form.RANDOM, "uniform", _uniform,
         "O = $lo + ($hi - $lo) * uniform01(KEY, 0)", 26610704,
         "draw lo + (hi - lo) * u, u uniform in [0, 1)", literals=_RANDOM_LITS["uniform"]),
    _row(60, "VECTOR_UNIFORM_SET", V, (), Form.RANDOM, "uniform", _uniform,
         _vec("$lo + ($hi - $lo) * uniform01(KEY, k)"), 57817372,
         "each coordinate drawn uniformly", literals=_RANDOM_LITS["uniform"]),
    _row(61, "MATRIX_UNIFORM_SET", M, (), Form.RANDOM, "uniform", _uniform,
         _mat("$lo + ($hi - $lo) * uniform01(KEY, i * F + j)"), 208339446,
         "each entry drawn uniformly, row-major", literals=_RANDOM_LITS["uniform"]),
    _row(62, "SCALAR_GAUSSIAN_SET", S, (), Form.RANDOM, "gaussian", _gaussian,
         "O = $mean + $std * gauss01(KEY, 0)", 20775635, "draw mean + std * z, z standard normal",
         literals=_RANDOM_LITS["gaussian"]),
    _row(63, "VECTOR_GAUSSIAN_SET", V, (), Form.RANDOM, "gaussian", _gaussian,
         _vec("$mean + $std * gauss01(KEY, k)"), 77483018,
         "each coordinate drawn from a normal", literals=_RANDOM_LITS["gaussian"]),
    _row(64, "MATRIX_GAUSSIAN_SET", M, (), Form.RANDOM, "gaussian", _gaussian,
         _mat("$mean + $std * gauss01(KEY, i * F + j)"), 277690384,
         "each entry drawn from a normal, row-major", literals=_RANDOM_LITS["gaussian"]),
]

OPS_BY_CODE: dict[int, Op] = {op.code: op for op in OPS}
assert [op.code for op in OPS] == list(range(len(OPS))), "op codes must be 0..N-1 in order"

NO_OP = OPS_BY_CODE[0]

# Helpers the templates may call; compiled backends must provide each under this name.
TEMPLATE_HELPERS: tuple[str, ...] = (
    "uniform01", "gauss01", "nan_min", "nan_max", "heaviside_scalar", "heaviside_strict",
)


BUILTIN_COUNT = len(OPS)  # codes below this are the paper's ops; user ops follow

# ---- a growing table ----------------------------------------------------------------------------

_LISTENERS: list[Callable[[], None]] = []


def on_table_change(listener: Callable[[], None]) -> Callable[[], None]:
    """Call `listener` whenever rows are added or removed: modules that derive tables from OPS
    at import register their rebuild here (a decorator; returns the listener)."""
    _LISTENERS.append(listener)
    return listener


def _changed() -> None:
    for listener in _LISTENERS:
        listener()


def add_op(op: Op) -> None:
    """Append a checked user op (azdsl.extend.register_op checks it) with the next code."""
    if op.code != len(OPS):
        raise ValueError(f"op {op.name}: the next code is {len(OPS)}, not {op.code}")
    OPS.append(op)
    OPS_BY_CODE[op.code] = op
    _changed()


def truncate(count: int) -> None:
    """Drop the user ops with codes >= `count` (tests restore the table with it)."""
    if count < BUILTIN_COUNT:
        raise ValueError(f"the {BUILTIN_COUNT} built-in ops cannot be removed")
    if count >= len(OPS):
        return
    for op in OPS[count:]:
        del OPS_BY_CODE[op.code]
    del OPS[count:]
    _changed()


def row_text(op: Op) -> str:
    """Everything about a row that compiled code and programs depend on, as text (the semantics
    function, Python code, is named by where it is defined)."""
    fn = op.semantics
    where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
    return repr((op.code, op.name, op.out, op.ins, op.form, op.func, op.axis, op.literals,
                 op.template, op.cost, op.swapped_alias, where))


def table_digest() -> str:
    """A hash of the user rows (empty string when there are none): two processes with the same
    digest number and run every op alike."""
    if len(OPS) == BUILTIN_COUNT:
        return ""
    text = "\n".join(row_text(op) for op in OPS[BUILTIN_COUNT:])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
