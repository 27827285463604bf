"""Your own ops, task kinds and fitnesses, added without editing azdsl (docs/extending.md).

`register_op` appends a checked row to the op table (azdsl.language.ops): from then on the
parser, the printer, the op listing, the interpreter (its numpy function), codegen and the VM (its
statement template), mutation (when a config lists it) and the search use it. Compiled modules
are named by the text generated from the rows, so a new op compiles a new VM and no stale
cache is used. `register_task_kind` adds a task generator a config's `kind` may name;
`register_fitness` a fitness a config's `[search] fitness` may name (azdsl.running.fitness:
compiled by Numba here, its code's digest in the text of the modules that call it).
`load_extensions` imports the modules a config's `[extensions] modules` names; island workers
load the same list before they build their searches.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import keyword
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from azdsl.errors import ConfigError
from azdsl.language import ops as op_table
from azdsl.language.ops import OPS, Form, Kind, Op
from azdsl.language.spelling import FUNCTIONS, spelled_by
from azdsl.running import fitness as fitness_table
from azdsl.running import tasks as task_table
from azdsl.running.template import expand, free_names

__all__ = ["load_extensions", "register_fitness", "register_op", "register_task_kind",
           "restore", "snapshot", "user_ops"]

_KINDS = {kind.prefix: kind for kind in Kind}
_OPERAND = r"\s*([A-Za-z_]\w*)\s*"
_CALL = re.compile(rf"^{_OPERAND}=\s*([A-Za-z_]\w*)\s*\(({_OPERAND}(?:,{_OPERAND})?)"
                   r"(?:,\s*axis\s*=\s*([01])\s*)?\)\s*$")
_INFIX = re.compile(rf"^{_OPERAND}={_OPERAND}([-+*/@]){_OPERAND}$")
_CELL_LIKE = re.compile(r"^[svm]\d+$")
_RESERVED = frozenset({"pass", "def", "axis", "inf", "nan", "s", "v", "m"})
# Names a template may use without assigning them: the backends provide these (the random
# draws need a random op's key, which user ops do not have).
_PROVIDED = frozenset({"F", "tv", "tm", "min", "max", *op_table.TEMPLATE_HELPERS}
                      - {"uniform01", "gauss01"})
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SYMBOL_WORDS = {"+": "sum", "-": "diff", "*": "product", "/": "division", "@": "matmul"}


class _Semantics:
    """A user's numpy function of the input values as an op row's semantics: the result is
    stored as float64 of the output cell's shape (a wrong shape is the user's error)."""

    def __init__(self, fn: Callable[..., Any], out: Kind) -> None:
        self.fn = fn
        self.out = out
        functools.update_wrapper(self, fn)

    def __call__(self, old: Any, ins: Sequence[Any], lits: Sequence[Any], draws: Any) -> Any:
        value = self.fn(*ins)
        if self.out is Kind.SCALAR:
            return np.float64(value)
        result = np.asarray(value, dtype=np.float64)
        if result.shape != np.shape(old):
            raise ValueError(f"{getattr(self.fn, '__name__', 'numpy')} returned shape "
                             f"{result.shape}; the output cell is {np.shape(old)}")
        return result


def _kind(letter: str, spelling: str, what: str) -> Kind:
    kind = _KINDS.get(letter.rstrip("0123456789"))
    if kind is None:
        raise ConfigError(f"op `{spelling}`: {what} `{letter}` is not a kind letter "
                          "(s, v or m)")
    return kind


def _parse_spelling(spelling: str) -> tuple[Kind, Form, str, tuple[Kind, ...], int | None]:
    """(output kind, form, function or operator, input kinds, axis) of `v = f(v)`,
    `s = f(v, v)`, `v = f(m, axis=0)` or `m = v @ v`."""
    call = _CALL.match(spelling)
    if call:
        out, func, _, a, b, axis = call.groups()
        ins = tuple(_kind(x, spelling, "operand") for x in (a, b) if x is not None)
        return (_kind(out, spelling, "output"), Form.CALL, func, ins,
                None if axis is None else int(axis))
    infix = _INFIX.match(spelling)
    if infix:
        out, a, symbol, b = infix.groups()
        return (_kind(out, spelling, "output"), Form.INFIX, symbol,
                (_kind(a, spelling, "operand"), _kind(b, spelling, "operand")), None)
    raise ConfigError(f"op `{spelling}`: write the spelling as `v = name(v)`, `s = name(v, v)`, "
                      "`v = name(m, axis=0)` or `m = v @ v`, with kind letters for the cells")


def _check_function(func: str, spelling: str) -> None:
    if func in _RESERVED or _CELL_LIKE.match(func) or keyword.iskeyword(func):
        raise ConfigError(f"op `{spelling}`: `{func}` cannot name a function (a cell name, "
                          "a keyword or a float word)")
    if FUNCTIONS.get(func, Form.CALL) is not Form.CALL:
        raise ConfigError(f"op `{spelling}`: `{func}` is a random op's function; pick "
                          "another name")


def _check_template(op: Op) -> None:
    """The template must expand for the op's cells, compile as Python and use only names it
    assigns itself or the backends provide; it must write the output."""
    where = f"op {op.name} (`{op.spelling()}`)"
    if not isinstance(op.template, str) or not op.template.strip():
        raise ConfigError(f"{where}: the template is empty")
    if not re.search(r"\bO\b", op.template):
        raise ConfigError(f"{where}: the template never writes the output cell `O`")
    try:
        lines = expand(op, lambda role, kind, index: f"{role}_[{', '.join(index) or '0'}]",
                       lambda lit, pos: "0.0")
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    body = "\n".join(f"    {line}" for line in lines)
    try:
        compile(f"def _op(O_, A_, B_, F, tv, tm):\n{body}\n", f"<{op.name}>", "exec")
    except SyntaxError as exc:
        raise ConfigError(f"{where}: the template does not compile: {exc.msg} "
                          f"(line {(exc.lineno or 2) - 1}: {(exc.text or '').strip()})") from None
    assigned = set(re.findall(r"\b([A-Za-z_]\w*)\s*(?:[-+*/]?=(?!=)|\bin\b)", op.template))
    assigned |= set(re.findall(r"\bfor\s+([A-Za-z_]\w*)", op.template))
    clobbered = sorted(assigned & (_backend_names() | _PROVIDED))
    if clobbered:
        raise ConfigError(f"{where}: the template assigns "
                          f"{', '.join(f'`{n}`' for n in clobbered)}, which the compiled "
                          "backends use themselves: rename it")
    unknown = sorted(free_names(op) - assigned - _PROVIDED - {"O", "A", "B"})
    if unknown:
        raise ConfigError(f"{where}: the template uses {', '.join(f'`{n}`' for n in unknown)}, "
                          "which it never assigns (it may use `np.` functions, `abs`, F, tv, "
                          f"tm and {', '.join(op_table.TEMPLATE_HELPERS)})")


def _backend_names() -> frozenset[str]:
    """Every name the generated VM and program modules use besides the templates' own:
    a template's locals must not overwrite them (found in the generated code itself)."""
    import ast

    from azdsl.language.parse import parse
    from azdsl.running import codegen, vm  # Numba: only once an op is registered

    sample = parse("def Setup():\n  s2 = uniform(0.0, 1.0)\ndef Predict():\n"
                   "  s1 = dot(v0, v1)\ndef Learn():\n  v1 = v1 + v0\n")
    names: set[str] = set()
    for source in (vm.vm_source(1), codegen.generate(sample, 1, jit=True),
                   codegen.generate(sample, 1, jit=False)):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.FunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name)
    for op in OPS:
        names -= free_names(op)
    return frozenset(names)


def register_op(spelling: str, numpy: Callable[..., Any], template: str, *, cost: int,
                doc: str = "", name: str | None = None) -> Op:
    """Add an op, e.g. `register_op("v = softsign(v)", lambda a: a / (1 + np.abs(a)),
    "for k in range(F):\\n    O[k] = A[k] / (1.0 + abs(A[k]))", cost=4_000_000)`.

    `spelling` uses kind letters for the cells; `numpy(*inputs)` computes the output for the
    interpreter; `template` is the statement the compiled backends expand (ops.py's template
    language: O, A, B, F, tv, tm, the helpers); `cost` counts toward the train budget; `name`
    (default e.g. VECTOR_SOFTSIGN) is how configs and `azdsl ops` may call it. Registering
    the same op again returns it; any clash with another op raises ConfigError naming it.
    """
    out, form, func, ins, axis = _parse_spelling(spelling)
    if form is Form.CALL:
        _check_function(func, spelling)
    if name is None:
        words = f"{out.word}_{func}" if form is Form.CALL else (
            "_".join(kind.word for kind in ins) + "_" + _SYMBOL_WORDS[func])
        name = words.upper()
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"op `{spelling}`: its name {name!r} must be upper case letters, "
                          "digits and `_`, such as VECTOR_SOFTSIGN")
    if not callable(numpy):
        raise ConfigError(f"op {name}: `numpy` must be a function of the input values")
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ConfigError(f"op {name}: cost must be a whole number >= 0, got {cost!r}")
    op = Op(len(OPS), name, out, ins, form, func, _Semantics(numpy, out), template, cost,
            doc or f"{func} (user op)", axis=axis)
    same_name = next((o for o in OPS if o.name == name), None)
    if same_name is not None and (op_table.row_text(replace(op, code=same_name.code))
                                  == op_table.row_text(same_name)):
        return same_name  # the same op again (an extension loaded twice)
    clash = spelled_by(op)
    if clash is not None:
        raise ConfigError(f"op {name}: `{op.spelling()}` already means op {clash.code} "
                          f"({clash.name}: {clash.doc})")
    if same_name is not None:
        raise ConfigError(f"op {name}: the name is taken by op {same_name.code} "
                          f"(`{same_name.spelling()}`)")
    _check_template(op)
    op_table.add_op(op)
    return op


def register_task_kind(name: str, generator: task_table.TaskGenerator, *,
                       label: str = task_table.REGRESSION, default_dim: int = 4) -> None:
    """Add a task kind a config's `kind = "name"` may use. `generator(dim, num_train,
    num_valid, param_seed, data_seed)` returns (x_train, y_train, x_valid, y_valid) or a Task,
    the same for the same arguments; `label` says how the labels score (regression, or
    classification with labels 0 and 1)."""
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][\w-]*$", name):
        raise ConfigError(f"task kind {name!r}: a name is letters, digits, `_` and `-`")
    if name in task_table.TASK_KINDS:
        raise ConfigError(f"task kind {name!r} is built in")
    if label not in (task_table.REGRESSION, task_table.CLASSIFICATION):
        raise ConfigError(f"task kind {name!r}: label must be {task_table.REGRESSION!r} or "
                          f"{task_table.CLASSIFICATION!r}, got {label!r}")
    if not callable(generator):
        raise ConfigError(f"task kind {name!r}: the generator must be a function")
    if isinstance(default_dim, bool) or not isinstance(default_dim, int) or default_dim < 1:
        raise ConfigError(f"task kind {name!r}: default_dim must be at least 1")
    kind = task_table.TaskKind(name, generator, label, default_dim)
    known = task_table.USER_TASK_KINDS.get(name)
    if known is not None and _same_function(known.generator, generator) and (
            known.label, known.default_dim) == (label, default_dim):
        return
    if known is not None:
        raise ConfigError(f"task kind {name!r} is already registered (by "
                          f"{getattr(known.generator, '__module__', '?')})")
    task_table.USER_TASK_KINDS[name] = kind


# (y, prediction) and (total, count) the functions of a fitness are tried on when registered
_EXAMPLE_TRIALS = ((0.0, 0.5), (1.0, -2.0), (0.25, 1e3))
_SCORE_TRIALS = ((1.5, 3), (0.0, 1))


def register_fitness(name: str, example: Callable[[float, float], float],
                     score: Callable[[float, int], float], *,
                     kinds: Sequence[str] = (task_table.REGRESSION, task_table.CLASSIFICATION),
                     description: str = "") -> fitness_table.Fitness:
    """Add a fitness a config's `[search] fitness = "name"` may use, e.g. the mean absolute
    error as `register_fitness("mae", lambda y, p: abs(y - p), lambda total, n: 1.0 / (1.0 +
    total / n))` (but with `def`s: lambdas are fine, yet a module's functions read better).

    `example(y, prediction)` is one validation example's term (prediction: the raw s1; for
    classification y is 0 or 1), summed in example order; `score(total, count)` turns the sum
    into the task's fitness, higher better, in [0, 1] like the built-in ones (below 0 or not
    finite counts as 0). Both must be plain Python functions Numba compiles: the compiled
    backends call them compiled, the interpreter as they are. `kinds`: the task kinds it
    scores. Registering the same fitness again does nothing; another one of that name raises
    ConfigError."""
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][\w-]*$", name):
        raise ConfigError(f"fitness {name!r}: a name is letters, digits, `_` and `-`")
    if name in fitness_table.BUILTIN_FITNESSES:
        raise ConfigError(f"fitness {name!r} is built in")
    where = f"fitness {name!r}"
    chosen = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not chosen or any(kind not in fitness_table.LABELS for kind in chosen):
        raise ConfigError(f"{where}: kinds must be one or both of "
                          f"{', '.join(map(repr, fitness_table.LABELS))}, got {kinds!r}")
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be a string")
    # njit functions given: their Python (what the interpreter calls)
    functions: list[Callable[..., float]] = [getattr(fn, "py_func", fn) for fn in (example, score)]
    for role, fn in zip(("example", "score"), functions, strict=True):
        if not inspect.isfunction(fn):
            raise ConfigError(f"{where}: {role} must be a Python function, got {fn!r}")
    known = fitness_table.FITNESSES.get(name)
    if known is not None:
        if (_same_function(known.example, functions[0])
                and _same_function(known.score, functions[1]) and known.kinds == chosen):
            return known  # the same fitness again (an extension loaded twice)
        raise ConfigError(f"{where} is already registered (by "
                          f"{getattr(known.example, '__module__', '?')})")
    compiled = tuple(_compiled(fn, role, where, trials) for fn, role, trials in zip(
        functions, ("example", "score"), (_EXAMPLE_TRIALS, _SCORE_TRIALS), strict=True))
    digest = hashlib.sha256(repr(chosen).encode())
    for fn in functions:
        digest.update(_code_digest(fn))
    entry = fitness_table.Fitness(name, functions[0], functions[1], chosen,
                                  description or f"{name} (user fitness)",
                                  compiled=(compiled[0], compiled[1]),
                                  digest=digest.hexdigest()[:16])
    fitness_table.FITNESSES[name] = entry
    return entry


def _compiled(fn: Callable[..., Any], role: str, where: str,
              trials: Sequence[tuple[float, float | int]]) -> Any:
    """`fn` under numba.njit, tried on `trials` compiled and as Python: both must return
    floats. The numpy error model is that of the generated code."""
    import numba  # only once a fitness is registered

    # Inlined at Numba's IR level into the generated code: compiled apart, it would be linked
    # in with an environment that names its module, and Numba's cache of the generated code
    # would then import that module by name (an extension file's depends on its path).
    jitted = numba.njit(error_model="numpy", inline="always")(fn)
    for args in trials:
        for how, call in (("compiled by Numba", jitted), ("as Python", fn)):
            try:
                with np.errstate(all="ignore"):
                    value = call(*(np.float64(a) if isinstance(a, float) else np.int64(a)
                                   for a in args))
            except Exception as exc:  # the user's code, or Numba refusing it: say which
                text = str(exc).strip().splitlines()
                raise ConfigError(f"{where}: {role}{args} failed {how}: {type(exc).__name__}: "
                                  f"{text[0] if text else ''}") from None
            if isinstance(value, bool) or not isinstance(value, float):
                raise ConfigError(f"{where}: {role}{args} returned {value!r} {how}; it must "
                                  "return a float")
    return jitted


def _code_digest(fn: Callable[..., Any]) -> bytes:
    """What names a function's code: its own bytecode, and the whole file it comes from
    (globals it reads, helpers it calls), so compiled code that inlines it is rebuilt when
    any of that changes."""
    # Not the module's name: an extension file's depends on its path, and the same code
    # loaded from elsewhere should find the code compiled for it in the cache.
    parts = [fn.__qualname__.encode(), _code_bytes(fn.__code__)]
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    if source is not None and Path(source).is_file():
        parts.append(Path(source).read_bytes())
    return hashlib.sha256(b"\0".join(parts)).digest()


def _code_bytes(code: Any) -> bytes:
    """A code object's instructions, names and constants (nested code too), without its file
    name and line numbers."""
    consts = [_code_bytes(c) if inspect.iscode(c) else repr(c).encode() for c in code.co_consts]
    return b"\1".join([code.co_code, repr((code.co_names, code.co_varnames)).encode(), *consts])


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def user_ops() -> tuple[Op, ...]:
    """The ops registered in this process, in code order."""
    return tuple(OPS[op_table.BUILTIN_COUNT:])


# ---- extension modules ------------------------------------------------------------------------

_LOADED: dict[str, str] = {}  # resolved entry -> the sys.modules name it was loaded as


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"azdsl_extension_{stem}_{digest}"


def resolve_entry(entry: str, base_dir: str | Path = ".") -> str:
    """A `.py` entry as an absolute path (relative to `base_dir`); a module name as is."""
    if entry.endswith(".py") or "/" in entry or "\\" in entry:
        return str((Path(base_dir) / entry).resolve())
    return entry


def load_extensions(entries: Sequence[str], base_dir: str | Path = ".") -> tuple[str, ...]:
    """Import each extension (a `.py` file or a module name) once per process, in order;
    returns the resolved entries (what workers load). Errors are ConfigErrors naming it."""
    resolved = []
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"extension {entry!r}: give a .py file or a module name")
        target = resolve_entry(entry, base_dir)
        resolved.append(target)
        if target in _LOADED and _LOADED[target] in sys.modules:
            continue
        try:
            _LOADED[target] = _import(target)
        except ConfigError as exc:  # its messages, not its rendering ("azdsl: error: ...")
            raise ConfigError([replace(d, message=f"extension {entry}: {d.message}")
                               for d in exc.diagnostics]) from None
        except Exception as exc:  # the user's code: say where it failed
            raise ConfigError(f"extension {entry}: importing it failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    return tuple(resolved)


def _import(target: str) -> str:
    if not target.endswith(".py"):
        importlib.import_module(target)
        return target
    path = Path(target)
    if not path.is_file():
        raise ConfigError(f"no such file {target}")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return name


# ---- for tests and notebooks: undo registrations -------------------------------------------------


class Snapshot(NamedTuple):
    ops: int
    task_kinds: tuple[str, ...]
    loaded: tuple[str, ...]
    fitnesses: tuple[str, ...] = fitness_table.BUILTIN_FITNESSES


def snapshot() -> Snapshot:
    """What is registered now, for `restore`."""
    return Snapshot(len(OPS), tuple(task_table.USER_TASK_KINDS), tuple(_LOADED),
                    tuple(fitness_table.FITNESSES))


def restore(state: Snapshot) -> None:
    """Forget what was registered (and the extensions loaded) since `state`."""
    op_table.truncate(state.ops)
    for name in list(task_table.USER_TASK_KINDS):
        if name not in state.task_kinds:
            del task_table.USER_TASK_KINDS[name]
    for name in list(fitness_table.FITNESSES):
        if name not in state.fitnesses:
            del fitness_table.FITNESSES[name]
    for target in list(_LOADED):
        if target not in state.loaded:
            sys.modules.pop(_LOADED.pop(target), None)

