"""A program as a standalone Python module that needs numpy only (`azdsl export --to numpy`).

The module holds `setup`, `predict` and `learn` (one function per component, each op expanded
from its op-table template as the compiled backends expand it) and a class `Model` that trains
and predicts as `azdsl.Algorithm` does: Setup once, then per epoch Predict and Learn on every
row (the first epoch in order, later ones in the permutation azdsl draws from the seed), the
sigmoid stored in s1 before Learn for classification, a stop when the error is NaN or above
max_abs_error; `predict` runs Predict over the rows in order, memory persisting, and returns
the raw s1 (the logit, for classification). Random ops draw azdsl's counter-based stream, so
predictions equal the reference interpreter's bit for bit.

Nothing is written twice: the random stream, the template helpers, the sigmoid, the epoch
permutation and the libm wrapper are copied into the module from their azdsl definitions
(read from the source files with `ast`, decorators and type hints removed), and which numpy
names are C-library functions comes from the op table.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from collections.abc import Callable

from azdsl.language.liveness import random_ordinals
from azdsl.language.ops import OPS, Kind, Literal, LitType, Op
from azdsl.language.printer import format_instr, unparse
from azdsl.language.program import Instr, Program
from azdsl.running.codegen import float_source
from azdsl.running.template import expand

COMPONENT_FUNCTIONS = ("setup", "predict", "learn")
ARGS = "s, v, m, tv, tm, F, stream, execution"
# What the module copies from azdsl, per module: constants and functions, in this order.
COPIED = (
    ("azdsl.running.rng", ("MASK", "GOLDEN", "COUNTER_STEP", "TWO_PI", "INV_2_53", "mix64",
                           "stream", "draw_key", "uniform01", "gauss01")),
    ("azdsl.running.kernels", ("nan_min", "nan_max", "heaviside_scalar", "heaviside_strict")),
    ("azdsl.running.evaluate", ("EXP_MAX", "sigmoid")),
    ("azdsl.running.tasks", ("_PERM_SALT", "generator", "epoch_permutation")),
    ("azdsl.language.ops", ("_libm",)),
)
_NP_NAME = re.compile(r"\bnp\.(\w+)")


def _plain(node: ast.stmt) -> ast.stmt:
    """A definition without decorators and type hints (so it needs no imports)."""
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return ast.Assign([node.target], node.value, lineno=node.lineno)
    for sub in ast.walk(node):
        if isinstance(sub, ast.FunctionDef):
            sub.decorator_list = []
            sub.returns = None
            for arg in (*sub.args.posonlyargs, *sub.args.args, *sub.args.kwonlyargs):
                arg.annotation = None
    return node


def copied_source(module: str, names: tuple[str, ...]) -> str:
    """The top-level definitions `names` of an azdsl module, as source, read from its file
    (kernels.py imports Numba, so the module is parsed, never imported)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    found: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node
    missing = [name for name in names if name not in found]
    if missing:
        raise RuntimeError(f"{module} no longer defines {', '.join(missing)}")
    return "\n\n".join(ast.unparse(_plain(found[name])) for name in names)


def _libm_names() -> list[str]:
    """`libm.f = ...` for every numpy function a template calls: the op's C-library
    function where its reference semantics uses one (ops._libm), else numpy's."""
    lines = []
    for name in sorted({n for op in OPS for n in _NP_NAME.findall(op.template)}):
        wrapped = [op for op in OPS if op.template == f"O = np.{name}(A)"
                   and op.ins == (Kind.SCALAR,)]
        if wrapped:
            closure = inspect.getclosurevars(wrapped[0].semantics).nonlocals
            fn, fallback = closure["fn"], closure["fallback"]
            lines.append(f"    {name} = staticmethod(_scalar(_libm(math.{fn.__name__}, "
                         f"np.{fallback.__name__})))")
        else:
            lines.append(f"    {name} = staticmethod(np.{name})")
    return lines


def _cell(instr: Instr) -> Callable[[str, Kind, tuple[str, ...]], str]:
    cells = {"O": instr.out, **dict(zip("AB", instr.ins, strict=False))}

    def render(role: str, kind: Kind, index: tuple[str, ...]) -> str:
        cell = cells[role]
        assert cell is not None
        return f"{kind.prefix}[{', '.join((str(cell.index), *index))}]"

    return render


def _literal(instr: Instr) -> Callable[[Literal, int], str]:
    def render(lit: Literal, position: int) -> str:
        value = instr.literals[position]
        return str(int(value)) if lit.type is LitType.INDEX else float_source(float(value))

    return render


def _body(instrs: tuple[Instr, ...], component: int, ordinals: tuple[int, ...]) -> list[str]:
    lines: list[str] = []
    for instr, ordinal in zip(instrs, ordinals, strict=True):
        op: Op = instr.op
        if instr.out is None:
            continue
        lines.append(f"# {format_instr(instr)}")
        if op.is_random:
            lines.append(f"key = draw_key(stream, {component}, {ordinal}, int(execution))")
        lines += expand(op, _cell(instr), _literal(instr), {"KEY": "key", "np": "libm"})
    return lines


_MODEL = '''

class Model:
    """Train and predict as azdsl.Algorithm does (docs/semantics.md)."""

    def __init__(self, kind="regression", seed=0, epochs=1, max_abs_error=100.0):
        if kind not in ("regression", "classification"):
            raise ValueError("kind must be 'regression' or 'classification'")
        self.kind, self.seed, self.epochs = kind, seed, epochs
        self.max_abs_error = max_abs_error
        self.memory = None

    def _run(self, component, execution, x, y):
        s, v, m, tv, tm = self.memory
        if component != 0:
            v[0] = x  # the features; s0 is the label (0 for Predict)
            s[0] = y
        COMPONENTS[component](s, v, m, tv, tm, self.n_features_in_, self.stream, execution)
        return float(s[1])

    def fit(self, X, y):
        """Setup, then Predict and Learn on every row per epoch; stops (diverged_ True) when
        the error is NaN or above max_abs_error."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        if X.ndim != 2 or y.shape != (X.shape[0],) or 0 in X.shape:
            raise ValueError(f"fit needs X (n, F) and y (n,), got {X.shape} and {y.shape}")
        n, F = X.shape
        if F < MIN_FEATURES:
            raise ValueError(f"the program indexes coordinate {MIN_FEATURES - 1}: F must be "
                             f"at least {MIN_FEATURES}, got {F}")
        ns, nv, nm = MEMORY
        self.memory = (np.zeros(ns), np.zeros((nv, F)), np.zeros((nm, F, F)), np.zeros(F),
                       np.zeros((F, F)))
        self.n_features_in_, self.stream = F, stream(self.seed, 0)
        self._predict_runs = 0
        self._run(0, 0, np.zeros(F), 0.0)
        later = epoch_permutation(n, self.seed)
        steps = 0
        self.diverged_ = False
        for epoch in range(self.epochs):
            for k in (range(n) if epoch == 0 else later):
                prediction = self._run(1, self._predict_runs, X[k], 0.0)
                self._predict_runs += 1
                if self.kind == "classification":
                    prediction = sigmoid(prediction)
                    self.memory[0][1] = prediction  # Learn sees the probability
                if not abs(y[k] - prediction) <= self.max_abs_error:
                    self.diverged_ = True
                    self.n_train_steps_ = steps
                    return self
                self._run(2, steps, X[k], float(y[k]))
                steps += 1
        self.n_train_steps_ = steps
        return self

    def predict(self, X):
        """Predict over the rows in order (its writes persist): the raw s1 of each, the
        logit for classification."""
        if self.memory is None:
            raise ValueError("call fit before predict")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), got {X.shape}")
        out = np.empty(X.shape[0])
        for i, row in enumerate(X):
            out[i] = self._run(1, self._predict_runs, row, 0.0)
            self._predict_runs += 1
        return out
'''


def _min_features(program: Program) -> int:
    indices = [int(value) for instr in program.instructions()
               for lit, value in zip(instr.op.literals, instr.literals, strict=True)
               if lit.type is LitType.INDEX]
    return max(indices, default=0) + 1


def generate(program: Program, name: str = "program") -> str:
    """The module's source for `program` (run as given: callers simplify first if they wish)."""
    ordinals = random_ordinals(program)
    needs = program.memory_needs()
    memory = (needs[Kind.SCALAR], needs[Kind.VECTOR], needs[Kind.MATRIX])
    text = unparse(program, comments=False).replace("\\", "\\\\")
    out = [
        f'"""{name}: an azdsl program as a standalone module (numpy only), made by '
        "`azdsl export --to numpy`.",
        "",
        "    model = Model(kind=\"regression\", seed=0).fit(X, y)  # or kind=\"classification\"",
        "    scores = model.predict(X_new)  # raw s1 per row: the logit, for classification",
        "",
        "Memory: s[cell], v[cell, k], m[cell, i, j], F features; random ops draw azdsl's",
        "counter-based stream, so results equal azdsl's reference interpreter bit for bit.",
        "",
        "The program:",
        "",
        *(f"    {line}" for line in text.splitlines()),
        '"""',
        "",
        "import math",
        "",
        "import numpy as np",
        "",
        f"MEMORY = {memory}  # scalars, vectors, matrices",
        f"MIN_FEATURES = {_min_features(program)}  # 1 + the largest index literal",
        "",
        "# ---- copied from azdsl: the random stream, op helpers, sigmoid, epoch order ----",
        "",
    ]
    for module, names in COPIED:
        out += [copied_source(module, names), ""]
    out += [
        "",
        "def _scalar(semantics):",
        "    return lambda x: semantics(None, (x,), (), None)",
        "",
        "",
        "class libm:",
        '    """numpy, with the scalar functions computed by the C library as azdsl does."""',
        "",
        *_libm_names(),
    ]
    for index, (function, instrs) in enumerate(zip(COMPONENT_FUNCTIONS, program.components,
                                                   strict=True)):
        body = _body(instrs, index, ordinals[index])
        out += ["", "", f"def {function}({ARGS}):"]
        out += [f"    {line}" for line in body] or ["    pass"]
    out += ["", "", "COMPONENTS = (setup, predict, learn)", _MODEL]
    return "\n".join(out)
