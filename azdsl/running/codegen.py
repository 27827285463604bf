"""Compile a program to a readable Python module (one function per component), jitted by Numba.

The module is expanded from the op templates (azdsl.running.template), written to the cache folder
under a name derived from its own text and run as that file, so Numba's `cache=True` works
across processes. Registers two backends: "jit" (the module under numba.njit) and "py" (the
same code as plain Python, for differential tests).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from azdsl.errors import ConfigError
from azdsl.language.liveness import random_ordinals
from azdsl.language.ops import OPS, Kind, Literal, LitType, on_table_change
from azdsl.language.printer import format_instr
from azdsl.language.program import Instr, Program
from azdsl.running import rng
from azdsl.running.evaluate import (
    READ_PREDICTION,
    STORE_PREDICTION,
    Backend,
    PackedTasks,
    Settings,
    TaskOutcome,
    by_dim,
    memory_sizes,
    outcomes_of,
    register_backend,
)
from azdsl.running.fitness import generated_lines
from azdsl.running.tasks import Task
from azdsl.running.template import expand

COMPONENT_NAMES = ("setup", "predict", "learn")
MEMORY_ARGS = "s, v, m, tv, tm, stream, execution"
CALL_ARGS = "s, v, m, tv, tm, stream, count"
_JIT_OPTIONS = 'cache=True, error_model="numpy"'
_HELPERS = ("nan_max", "nan_min", "heaviside_scalar", "heaviside_strict")
_DRAWS = ("draw_key", "gauss01", "uniform01")


# ---- the cache folder and importing generated modules -----------------------------------------


def cache_dir() -> Path:
    """$AZDSL_CACHE_DIR, else $XDG_CACHE_HOME/azdsl, else ~/.cache/azdsl."""
    configured = os.environ.get("AZDSL_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "azdsl"


def load_module(stem: str, source: str) -> ModuleType:
    """Write `source` to <cache>/<stem>.py (once; the stem names its content) and import it."""
    folder = cache_dir()
    name = f"{stem}_{folder_tag(folder)}"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    folder_mode, pycache_mode = private_folders(folder)
    path = folder / f"{stem}.py"
    data = source.encode()
    if not path.exists() or trusted(path, folder, folder_mode).read_bytes() != data:
        # Rewriting changes the file's stamp and voids Numba's cache, so only a missing or wrong
        # file is (re)written; atomically, for processes importing it at the same time.
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    for entry in (folder / "__pycache__").glob(f"{stem}.*"):  # Numba's files: pickles it loads
        trusted(entry, folder, folder_mode & pycache_mode)
    # Run the bytes just checked, not the file again (nor a .pyc of it): nothing can change in
    # between. The file stays the functions' source, which Numba's cache stamps.
    module = ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(compile(data, str(path), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# Generated modules are run and Numba unpickles its cache files, so no one else may change
# them: the cache folder and the __pycache__ Numba uses in it must be the user's and writable
# by the user only, and so must every file in them that group or others can reach.


def private_folders(folder: Path) -> tuple[int, int]:
    """Create the cache folder and its __pycache__ (0700) unless they exist, check both, and
    return their modes. (Made here, __pycache__ does not get Numba's umask-given mode.)"""
    modes = []
    for path in (folder, folder / "__pycache__"):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
        check_private(path, info, stat.S_IWGRP | stat.S_IWOTH, folder)
        modes.append(info.st_mode)
    return modes[0], modes[1]


def trusted(path: Path, folder: Path, enter: int) -> Path:
    """`path`, a file in the cache `folder`, after checking that no one else can change it;
    `enter` is the mode of the folders above it there: group and others reach it only if they
    may enter (x) each. (A class's x bit, shifted left, is its w bit.)"""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise cache_error(path, "is not a plain file", folder)
    check_private(path, info, (enter & (stat.S_IXGRP | stat.S_IXOTH)) << 1, folder)
    return path


def check_private(path: Path, info: os.stat_result, writes: int, folder: Path) -> None:
    """Refuse `path` unless it is the user's and lacks the mode bits `writes`."""
    if os.name != "posix":  # owners and mode bits are POSIX's; Windows guards files by ACLs
        return
    if info.st_uid != os.getuid():
        raise cache_error(path, f"belongs to another user (uid {info.st_uid})", folder)
    if info.st_mode & writes:
        raise cache_error(path, f"can be changed by other users (mode "
                                f"{stat.S_IMODE(info.st_mode):o})", folder)


def cache_error(path: Path, problem: str, folder: Path) -> ConfigError:
    return ConfigError(
        f"{path}: {problem}; azdsl runs the compiled code it keeps in {folder}, so it will not "
        "use it: remove that folder (it holds only compiled code, rebuilt when needed) or set "
        "AZDSL_CACHE_DIR to a folder of your own")


@cache
def folder_tag(folder: Path) -> str:
    """A short tag that keeps modules of different cache folders apart in sys.modules."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]


@cache
def dependency_stamp(*names: str) -> str:
    """A hash of the code that generated modules call or inline (kernels, the protocol, the op
    table, and the modules `names`): Numba's cache only watches a module's own file, so its
    name must change with them."""
    digest = hashlib.sha256()
    for name in ("azdsl.running.kernels", "azdsl.running.evaluate", "azdsl.language.ops", *names):
        module = importlib.import_module(name)
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def content_stem(prefix: str, source: str) -> str:
    return f"{prefix}_{hashlib.sha256(source.encode()).hexdigest()[:20]}"


# ---- source generation --------------------------------------------------------------------------


def float_source(value: float) -> str:
    """A float64 literal that reads back exactly, spelled so Numba and Python both accept it."""
    value = float(value)
    if value != value:
        return "np.nan"
    if value in (np.inf, -np.inf):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


def describe(instr: Instr) -> str:
    """The instruction as azdsl text (for comments in generated code)."""
    return format_instr(instr)


def _cell_renderer(instr: Instr) -> Callable[[str, Kind, tuple[str, ...]], str]:
    cells = {"O": instr.out, "A": instr.ins[0] if instr.ins else None,
             "B": instr.ins[1] if len(instr.ins) > 1 else None}

    def render(role: str, kind: Kind, index: tuple[str, ...]) -> str:
        target = cells[role]
        assert target is not None
        return f"{kind.prefix}[{', '.join((str(target.index), *index))}]"

    return render


def _literal_renderer(instr: Instr) -> Callable[[Literal, int], str]:
    def render(lit: Literal, position: int) -> str:
        value = instr.literals[position]
        if lit.type is LitType.INDEX:
            return str(int(value))
        return float_source(float(value))

    return render


def instruction_lines(instr: Instr, component: int, ordinal: int) -> list[str]:
    """Source lines of one instruction inside a component function."""
    if instr.out is None:
        return []
    lines = [f"# {describe(instr)}"]
    if instr.op.is_random:
        lines.append(f"key = draw_key(stream, {component}, {ordinal}, int(execution))")
    lines += expand(instr.op, _cell_renderer(instr), _literal_renderer(instr), {"KEY": "key"})
    return lines


def generate(program: Program, dim: int, *, jit: bool = True,
             fitness: str | None = None) -> str:
    """The module for `program` at F = `dim`: jitted with Numba, or plain Python; `fitness`
    names a registered fitness (default: built in, by task kind)."""
    ordinals = random_ordinals(program)
    needs = program.memory_needs()
    memory = (needs[Kind.SCALAR], needs[Kind.VECTOR], needs[Kind.MATRIX])
    decorator = [f"@njit({_JIT_OPTIONS})"] if jit else []
    out = [
        f'"""An azdsl program compiled for F = {dim} by azdsl.running.codegen '
        '(generated; do not edit).',
        "",
        f"Memory layout: s[cell], v[cell, k], m[cell, i, j]; the program needs {memory[0]}",
        f"scalars, {memory[1]} vectors, {memory[2]} matrices. Built against azdsl code "
        f"{dependency_stamp()}.",
        '"""',
        "",
    ]
    if jit:
        out += [
            "import numpy as np",
            "from numba import njit",
            "",
            "from azdsl.running.evaluate import run_lockstep as protocol",
            "from azdsl.running.kernels import (",
            *(f"    {name}," for name in sorted(_DRAWS + _HELPERS)),
            ")",
        ]
    else:
        out += [
            "from azdsl.running import kernels",
            "# numpy, with the ops' libm functions",
            "from azdsl.running.codegen import PLAIN_NUMPY as np",
            "from azdsl.running.evaluate import run_lockstep as protocol",
            f"from azdsl.running.rng import {', '.join(_DRAWS)}",
            "",
            *(f"{name} = kernels.{name}.py_func" for name in sorted(_HELPERS)),
        ]
    binding, fitness_args = generated_lines(fitness, jit=jit)
    out += ["", *binding, f"F = {dim}", f"MEMORY = {memory}", ""]
    for index, (name, instrs) in enumerate(zip(COMPONENT_NAMES, program.components, strict=True)):
        body: list[str] = []
        for instr, ordinal in zip(instrs, ordinals[index], strict=True):
            body += instruction_lines(instr, index, ordinal)
        out += ["", *decorator, f"def {name}({MEMORY_ARGS}):"]
        out += [f"    {line}" for line in body] or ["    pass"]
        out.append("")
    out += [
        "",
        *([f'@njit({_JIT_OPTIONS}, inline="always")'] if jit else []),
        "def runner(ctx, component, execution, x, y):",
        '    """One step of one task (see interp.runner); ctx is (s, v, m, tv, tm, stream)."""',
        "    # Inlined into the protocol, where `component` and `execution` are often constants:",
        "    # np.int64 keeps the component functions from compiling once per constant.",
        "    s, v, m, tv, tm, stream = ctx",
        "    count = np.int64(execution)",
        "    if component == 3:",
        "        s[1] = y",
        "    elif component == 0:",
        f"        setup({CALL_ARGS})",
        "    else:",
        "        for k in range(F):",
        "            v[0, k] = x[k]",
        "        s[0] = y",
        "        if component == 1:",
        f"            predict({CALL_ARGS})",
        "        else:",
        f"            learn({CALL_ARGS})",
        "    return s[1]",
        "",
        *protocol_lines(jit, fitness_args),
    ]
    return "\n".join(out)


def protocol_lines(jit: bool, fitness_args: str = "") -> list[str]:
    """`lockstep_runner`, `access` and `evaluate_tasks` (evaluate.run_lockstep bound to
    them, and to a registered fitness's functions: `fitness_args`), for a context (S, V, M,
    tv, tm, streams) whose memories have a leading task axis.

    Numba lowers a dispatcher passed as a value to its address, which makes a function
    uncacheable; inlined at the IR level, the protocol calls this module's runner directly
    and `evaluate_tasks` caches across processes."""
    head = "ctx, x_train, y_train, x_valid, y_valid, perm, n_train, n_valid, epochs,"
    tail = "classification, max_abs_error, errors, counts, fitness"
    inline = [f'@njit({_JIT_OPTIONS}, inline="always")'] if jit else []
    return [
        "",
        *inline,
        "def lockstep_runner(ctx, component, execution, behind, tasks, n):",
        '    """evaluate.run_lockstep\'s runner: a component for each task given."""',
        "    S, V, M, tv, tm, streams = ctx",
        "    for q in range(n):",
        "        t = tasks[q]",
        "        s, v, m, stream = S[t], V[t], M[t], streams[t]",
        "        count = np.int64(execution - behind[t])",
        "        if component == 0:",
        f"            setup({CALL_ARGS})",
        "        elif component == 1:",
        f"            predict({CALL_ARGS})",
        "        else:",
        f"            learn({CALL_ARGS})",
        "",
        "",
        *inline,
        "def access(ctx, action, t, xs, row, y):",
        '    """evaluate.run_lockstep\'s access to task t\'s memory."""',
        "    S, V = ctx[0], ctx[1]",
        f"    if action == {READ_PREDICTION}:",
        "        return S[t, 1]",
        f"    if action == {STORE_PREDICTION}:",
        "        S[t, 1] = y",
        "        return y",
        "    for k in range(F):",
        "        V[t, 0, k] = xs[t, row, k]",
        "    S[t, 0] = y",
        "    return 0.0",
        "",
        "",
        'run_lockstep = njit(inline="always")(protocol)' if jit
        else "run_lockstep = protocol",
        "",
        "",
        *([f"@njit({_JIT_OPTIONS})"] if jit else []),
        f"def evaluate_tasks({head}",
        f"                   {tail}):",
        '    """evaluate.run_lockstep with this module\'s runner."""',
        f"    run_lockstep(lockstep_runner, access, {head}",
        f"                 {tail}{fitness_args})",
        "",
    ]


class _PlainNumpy:
    """numpy for the plain-Python modules, except the scalar functions of ops whose template
    is `O = np.f(A)`: those compute as the op's reference semantics does (libm, like Numba),
    since numpy's own SIMD versions may differ in the last bit on some CPUs."""

    def __init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Take the scalar functions from the op table as it is now (user ops join it)."""
        self.__dict__.clear()
        for op in OPS:
            match = re.fullmatch(r"O = np\.(\w+)\(A\)", op.template)
            if match and op.ins == (Kind.SCALAR,):
                setattr(self, match[1], partial(_scalar_op, op.semantics))

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


def _scalar_op(semantics: Any, x: Any) -> Any:
    return semantics(None, (x,), (), None)


PLAIN_NUMPY: Any = _PlainNumpy()
on_table_change(PLAIN_NUMPY.refresh)


def compile_program(program: Program, dim: int, *, jit: bool = True,
                    fitness: str | None = None) -> ModuleType:
    """The generated module for `program` at F = `dim` (and the fitness named): jitted and
    imported from the cache folder, or (jit=False) plain Python executed in memory (no file,
    nothing to cache)."""
    source = generate(program, dim, jit=jit, fitness=fitness)
    if jit:
        return load_module(content_stem(f"azdsl_prog_F{dim}", source), source)
    module = ModuleType(content_stem(f"azdsl_py_F{dim}", source))
    exec(compile(source, f"<{module.__name__}>", "exec"), module.__dict__)
    return module


# ---- backends -----------------------------------------------------------------------------------


def make_context(program: Program, dim: int, settings: Settings, task_index: int,
                 *, jit: bool = True) -> tuple[Any, ...]:
    """Fresh memory and scratch for one task: the runner's ctx (s, v, m, tv, tm, stream)."""
    ns, nv, nm = memory_sizes(program, settings.memory)
    stream_id = rng.stream(settings.seed, task_index)
    return (np.zeros(ns), np.zeros((nv, dim)), np.zeros((nm, dim, dim)), np.zeros(dim),
            np.zeros((dim, dim)), np.uint64(stream_id) if jit else stream_id)


def lockstep_context(program: Program, packed: PackedTasks, settings: Settings,
                     *, jit: bool = True) -> tuple[Any, ...]:
    """Fresh memories of every packed task: the lockstep runner's ctx
    (S, V, M, tv, tm, streams), S[t] task t's scalars and so on."""
    ns, nv, nm = memory_sizes(program, settings.memory)
    n, dim = len(packed), packed.dim
    streams = [rng.stream(settings.seed, int(index)) for index in packed.task_index]
    return (np.zeros((n, ns)), np.zeros((n, nv, dim)), np.zeros((n, nm, dim, dim)),
            np.zeros(dim), np.zeros((dim, dim)),
            np.array(streams, dtype=np.uint64) if jit else streams)


def _backend(name: str, jit: bool) -> Backend:
    def evaluate_tasks(program: Program, tasks: Sequence[Task],
                       settings: Settings) -> list[TaskOutcome]:
        def evaluate_group(group: list[Task]) -> list[TaskOutcome]:
            packed = PackedTasks.pack(group, settings)
            module = compile_program(program, packed.dim, jit=jit, fitness=settings.fitness)
            n = len(packed)
            fitness = np.zeros(n)
            errors = np.zeros((n, settings.record))
            counts = np.zeros((n, 3), dtype=np.int64)
            with np.errstate(all="ignore"):
                module.evaluate_tasks(lockstep_context(program, packed, settings, jit=jit),
                                      *packed.arrays(), settings.max_abs_error, errors,
                                      counts, fitness)
            return outcomes_of(fitness, errors, counts)

        return by_dim(tasks, evaluate_group)

    def open_session(program: Program, dim: int, settings: Settings,
                     task_index: int) -> tuple[Callable[..., float], Any]:
        module = compile_program(program, dim, jit=jit)
        return module.runner, make_context(program, dim, settings, task_index, jit=jit)

    return Backend(name, evaluate_tasks, open_session)


register_backend(_backend("jit", jit=True))
register_backend(_backend("py", jit=False))
