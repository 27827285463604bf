"""The search VM: one Numba dispatch loop per F runs lowered programs (azdsl.running.lowering).

The loop is generated from the op templates (template.py) into a module per F in the cache
folder (F is a compile-time constant there), so it is compiled once per machine and F. One
call of `evaluate_batch` runs every task of a batch of programs through evaluate.run_lockstep:
the tasks of a program run in lockstep, each with its own block of one flat memory, and the
loop dispatches each instruction once for all of them (dispatch, not arithmetic, was most of
an evaluation's time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from azdsl.language.ops import OPS, Kind, Literal, LitType, on_table_change
from azdsl.language.program import Program
from azdsl.running import rng
from azdsl.running.codegen import content_stem, dependency_stamp, load_module
from azdsl.running.evaluate import (
    FEED_PREDICT,
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
from azdsl.running.fitness import generated_lines, user_fitness
from azdsl.running.lowering import (
    COL_IDX1,
    COL_IDX2,
    COL_IN1,
    COL_IN2,
    COL_OP,
    COL_ORDINAL,
    COL_OUT,
    FLOAT_ROW,
    INDEX_COLS,
    ROW,
    FloatArray,
    IntArray,
    Lowered,
    address,
    concatenate,
    describe_lowered,
    layout,
    lower,
    memory_views,
)
from azdsl.running.tasks import Task
from azdsl.running.template import expand

__all__ = [
    "COL_IDX1", "COL_IDX2", "COL_IN1", "COL_IN2", "COL_OP", "COL_ORDINAL", "COL_OUT",
    "FLOAT_ROW", "ROW", "Batch", "BatchResult", "Lowered", "PackedTasks", "address",
    "concatenate", "describe_lowered", "evaluate_lowered", "evaluate_programs", "layout", "lower",
    "memory_views", "open_session", "run_component", "vm_module", "warm",
]

_ROLE_COLS = {"O": "o", "A": "a", "B": "b"}
# where an input's value is read from: a local for a scalar, a stack buffer otherwise
_ROLE_COPIES = {"A": ("xa", "sa"), "B": ("xb", "sb")}


# ---- the dispatch loop, generated from the templates --------------------------------------------


# Matrix inputs are copied only up to this F, where their loops unroll into straight-line
# code that the copy lets LLVM vectorise; beyond, the copy costs more than it saves. The
# 2-layer network (measured): F = 4 1.2x faster with matrices copied; F = 8 2.7x and F = 16
# 1.8x slower (scalars and vectors copied in all three).
COPY_MATRIX_DIM_MAX = 4


def _branch(code: int, dim: int) -> list[str]:
    """The body of one op's branch in the dispatch loop for F = `dim`."""
    op = OPS[code]
    copied = tuple(role for role, kind in zip(("A", "B"), op.ins, strict=False)
                   if kind is not Kind.MATRIX or dim <= COPY_MATRIX_DIM_MAX)
    float_pos: dict[int, int] = {}
    index_pos: dict[int, int] = {}
    for pos, lit in enumerate(op.literals):
        table = index_pos if lit.type is LitType.INDEX else float_pos
        table[pos] = len(table)

    def cell(role: str, kind: Kind, index: tuple[str, ...]) -> str:
        if role in copied:
            local, buffer = _ROLE_COPIES[role]
            if kind is Kind.SCALAR:
                return local
            if kind is Kind.VECTOR:
                return f"{buffer}[{index[0]}]"
            return f"{buffer}[({index[0]}) * F + {index[1]}]"
        base = _ROLE_COLS[role]
        if kind is Kind.SCALAR:
            return f"mem[{base}]"
        if kind is Kind.VECTOR:
            return f"mem[{base} + {index[0]}]"
        return f"mem[{base} + ({index[0]}) * F + {index[1]}]"

    def literal(lit: Literal, pos: int) -> str:
        if lit.type is LitType.INDEX:
            return f"prog[row + {INDEX_COLS[index_pos[pos]]}]"
        return f"lits[pc * {FLOAT_ROW} + {float_pos[pos]}]"

    # The inputs are read first, into locals and stack buffers, which no store to the memory
    # can change: the op's own loop then vectorises (an output may be an input). Inputs not
    # copied are read in place, which the templates allow (they never read a cell after
    # writing one that may be the same).
    lines = []
    for role, kind in zip(("A", "B"), op.ins, strict=False):
        if role not in copied:
            continue
        local, buffer = _ROLE_COPIES[role]
        if kind is Kind.SCALAR:
            lines.append(f"{local} = mem[{_ROLE_COLS[role]}]")
        else:
            width = "F" if kind is Kind.VECTOR else "F * F"
            lines += [f"for e in range({width}):",
                      f"    {buffer}[e] = mem[{_ROLE_COLS[role]} + e]"]
    if op.is_random:
        lines.append(f"key = draw_key(streams[t], component, prog[row + {COL_ORDINAL}], "
                     "execution - behind[t])")
    lines += expand(op, cell, literal, {"KEY": "key"})
    return lines or ["pass"]


def vm_source(dim: int, codes: Sequence[int] | None = None, fitness: str | None = None) -> str:
    """The VM module for F = `dim`: every op, or (`codes` given) a search's few ops; `fitness`
    names a registered fitness its evaluate_batch computes (default: built in, by task kind).

    The general VM calls its dispatch loop, a function with a branch per op, at each of the
    protocol's runner calls. A VM for a few ops inlines a loop with their branches at every
    call instead (about 3 ns less per call, a quarter of a demo evaluation); any other op
    falls back to the general loop, so it runs every program. Inlining all 65 ops would
    take minutes to compile.
    """
    special = codes is not None
    binding, fitness_args = generated_lines(fitness)
    chosen = [op for op in OPS if op.code != 0 and (codes is None or op.code in codes)]
    out = [
        f'"""The azdsl VM for F = {dim}, generated by azdsl.running.vm from the op '
        'templates; do not '
        'edit.',
        "",
        "Arrays travel as addresses (see azdsl.running.kernels.float_ptr); every caller keeps them",
        "alive.",
        f"Built against azdsl code {dependency_stamp()}.",
        '"""',
        "",
        "import numpy as np",
        "from numba import carray, njit",
        "",
        "from azdsl.running.evaluate import run_lockstep as protocol",
        "from azdsl.running.kernels import (",
        "    data_address, draw_key, float_ptr, gauss01, heaviside_scalar, heaviside_strict,",
        "    int_ptr, nan_max, nan_min, stack_buffer, stream, uint_ptr, uniform01,",
        ")",
        *(["from azdsl.running.vm import general_span", ""] if special else []),
        *binding,
        "",
        f"F = {dim}",
        "scratch_vector = stack_buffer(F)",
        "scratch_matrix = stack_buffer(F * F)",
        # The general module's name (its content hash) is part of this text, so that
        # Numba's cache of this module, which holds the general loop compiled in, is
        # replaced whenever that loop changes.
        *([f"GENERAL = general_span(F)  # {general_stem(dim)}: ops other than "
           f"{[o.code for o in chosen]}"] if special else []),
        "",
        "",
        '@njit(cache=True, error_model="numpy"' + (', inline="always")' if special else ")"),
        "def run_span(prog_at, lits_at, start, stop, mem_at, size, streams_at, component,",
        "             execution, behind_at, tasks_at, n):",
        '    """Run instructions start..stop-1 (one component) for tasks[0..n-1], task t\'s',
        '    memory at mem[t * size:]: each instruction is dispatched once, then runs per task."""',
        "    prog = int_ptr(prog_at)",
        "    lits = float_ptr(lits_at)",
        "    mem = float_ptr(mem_at)",
        "    tv = carray(scratch_vector(), F)",
        "    tm = carray(scratch_matrix(), (F, F))",
        "    sa = scratch_matrix()",
        "    sb = scratch_matrix()",
        "    streams = uint_ptr(streams_at)",
        "    behind = int_ptr(behind_at)",
        "    tasks = int_ptr(tasks_at)",
        "    for pc in range(start, stop):",
        f"        row = pc * {ROW}",
        f"        op = prog[row + {COL_OP}]",
        f"        out_cell = prog[row + {COL_OUT}]",
        f"        in1 = prog[row + {COL_IN1}]",
        f"        in2 = prog[row + {COL_IN2}]",
    ]
    for position, op in enumerate(chosen):  # `pass` has no branch in the general loop
        keyword = "if" if position == 0 else "elif"
        out.append(f"        {keyword} op == {op.code}:  # {op.name}")
        out += [
            "            for q in range(n):",
            "                t = tasks[q]",
            "                base = t * size",
            "                o = out_cell + base",
            "                a = in1 + base",
            "                b = in2 + base",
        ]
        out += [f"                {line}" for line in _branch(op.code, dim)]
    if special:
        out += [
            "        elif op != 0:",
            "            GENERAL(prog_at, lits_at, pc, pc + 1, mem_at, size, streams_at,",
            "                    component, execution, behind_at, tasks_at, n)",
        ]
    out += [
        "",
        "",
        '@njit(cache=True, error_model="numpy", inline="always")',
        "def runner(ctx, component, execution, behind, tasks, n):",
        '    """evaluate.run_lockstep\'s runner. ctx: (program, literals, (Setup, Predict, Learn,',
        "    end), memory, streams, offset of v0, memory size per task, whether Predict may",
        "    write v0, ...), arrays as addresses; task t's memory starts at t * size. np.int64",
        '    keeps the inlined protocol\'s constants from specialising."""',
        "    comp = np.int64(component)",
        "    bounds = ctx[2]",
        "    if bounds[comp] < bounds[comp + 1]:  # an empty component runs nothing",
        "        run_span(ctx[0], ctx[1], bounds[comp], bounds[comp + 1], ctx[3], ctx[6], ctx[4],",
        "                 comp, np.int64(execution), data_address(behind), data_address(tasks),",
        "                 n)",
        "",
        "",
        '@njit(cache=True, error_model="numpy", inline="always")',
        "def access(ctx, action, t, xs, row, y):",
        '    """evaluate.run_lockstep\'s access to task t\'s memory."""',
        "    mem = float_ptr(ctx[3])",
        "    base = t * ctx[6]",
        f"    if action == {READ_PREDICTION}:",
        "        return mem[base + 1]",
        f"    if action == {STORE_PREDICTION}:",
        "        mem[base + 1] = y",
        "        return y",
        f"    if action == {FEED_PREDICT} or ctx[7]:  # Learn's v0 may have been written",
        "        features = base + ctx[5]",
        "        for k in range(F):",
        "            mem[features + k] = xs[t, row, k]",
        "    mem[base] = y",
        "    return 0.0",
        "",
        "",
        'run_lockstep = njit(inline="always")(protocol)',
        "",
        "",
        '@njit(cache=True, error_model="numpy")',
        "def step(ctx, component, execution, x, y):",
        '    """One step of one task (interp.runner\'s contract), for sessions: runner and',
        '    access on task 0 (ctx\'s memory holds one)."""',
        "    tasks = np.zeros(1, dtype=np.int64)",
        "    xs = np.zeros((1, 1, F))",
        "    if component == 3:",
        f"        return access(ctx, {STORE_PREDICTION}, 0, xs, 0, y)",
        "    if component != 0:",
        "        for k in range(F):",
        "            xs[0, 0, k] = x[k]",
        "        access(ctx, component, 0, xs, 0, y)",
        "    runner(ctx, component, execution, tasks, tasks, 1)  # tasks: [0], behind by 0",
        f"    return access(ctx, {READ_PREDICTION}, 0, xs, 0, 0.0)",
        "",
        "",
        '@njit(cache=True, error_model="numpy")',
        "def evaluate_batch(prog, lits, bounds, layout, seeds, x_train, y_train, x_valid,",
        "                   y_valid, perm, n_train, n_valid, epochs, classification, task_index,",
        "                   max_abs_error, fitness, errors, counts):",
        '    """Every task of every program: fitness[p, t], errors[p, t], counts[p, t].',
        "",
        "    bounds[p] is (Setup start, Predict start, Learn start, end) of program p in prog;",
        '    layout[p] is (memory size, offset of v0)."""',
        "    n_tasks = x_train.shape[0]",
        "    most = 1",
        "    for p in range(bounds.shape[0]):",
        "        most = max(most, layout[p, 0])",
        "    mem = np.zeros(most * n_tasks)",
        "    streams = np.zeros(n_tasks, dtype=np.uint64)",
        "    if not (x_train.flags.c_contiguous and y_train.flags.c_contiguous",
        "            and x_valid.flags.c_contiguous and y_valid.flags.c_contiguous",
        "            and perm.flags.c_contiguous):",
        '        raise ValueError("evaluate_batch needs C-contiguous task arrays")',
        "    # Views of these carry no reference count (no meminfo), so the protocol's row views",
        "    # cost no atomic increments per example; the caller keeps the arrays alive.",
        "    xt = carray(float_ptr(x_train.ctypes.data), x_train.shape)",
        "    yt = carray(float_ptr(y_train.ctypes.data), y_train.shape)",
        "    xv = carray(float_ptr(x_valid.ctypes.data), x_valid.shape)",
        "    yv = carray(float_ptr(y_valid.ctypes.data), y_valid.shape)",
        "    order = carray(int_ptr(perm.ctypes.data), perm.shape)",
        "    for p in range(bounds.shape[0]):",
        "        spans = (bounds[p, 0], bounds[p, 1], bounds[p, 2], bounds[p, 3])",
        "        size = layout[p, 0]",
        "        mem[: size * n_tasks] = 0.0",
        "        for t in range(n_tasks):",
        "            streams[t] = stream(seeds[p], task_index[t])",
        "        features = layout[p, 1]",
        "        refresh = False  # does Predict write v0 (the only cell at that offset)?",
        "        for r in range(spans[1], spans[2]):",
        f"            if prog[r * {ROW} + {COL_OUT}] == features:",
        "                refresh = True",
        "        ctx = (prog.ctypes.data, lits.ctypes.data, spans, mem.ctypes.data,",
        "               streams.ctypes.data, features, size, refresh)",
        "        run_lockstep(runner, access, ctx, xt, yt, xv, yv, order, n_train, n_valid,",
        "                     epochs, classification, max_abs_error, errors[p], counts[p],",
        f"                     fitness[p]{fitness_args})",
        "",
    ]
    return "\n".join(out)


INLINE_MAX = 12  # most ops a specialised VM inlines; beyond, compile time grows too fast


def chosen_codes(codes: Sequence[int] | None) -> frozenset[int]:
    return frozenset(op.code for op in OPS if op.code != 0 and (codes is None or op.code in codes))


def vm_module(dim: int, codes: Sequence[int] | None = None,
              fitness: str | None = None) -> ModuleType:
    """The compiled VM for F = `dim` (generated and imported once per process); with `codes`
    (a search's op set), a faster one specialised to those ops when there are at most
    INLINE_MAX of them. Both run every program. `fitness`: a registered fitness's name, for a
    VM whose evaluate_batch computes it (its dispatch loop is the same)."""
    special = chosen_codes(codes)
    user = user_fitness(fitness)
    # the digest keeps a fitness registered anew under the same name apart (tests)
    chosen = None if user is None else (user.name, user.digest)
    if codes is None or len(special) > INLINE_MAX or special == chosen_codes(None):
        return _vm_module(dim, None, chosen)
    return _vm_module(dim, special, chosen)


@cache
def _vm_module(dim: int, codes: frozenset[int] | None,
               chosen: tuple[str, str] | None = None) -> ModuleType:
    fitness = None if chosen is None else chosen[0]
    if codes is None and fitness is None:
        return load_module(general_stem(dim), vm_source(dim))
    source = vm_source(dim, None if codes is None else sorted(codes), fitness)
    ops = "" if codes is None else f"_{len(codes)}ops"
    return load_module(content_stem(f"azdsl_vm_F{dim}{ops}{'_fit' if fitness else ''}", source),
                       source)


@cache
def general_stem(dim: int) -> str:
    """The file name (no suffix) of the general VM for F = `dim`: it names its content."""
    return content_stem(f"azdsl_vm_F{dim}", vm_source(dim))


@on_table_change
def _forget_modules() -> None:
    """A changed op table generates other source, so other modules (named by their content)."""
    _vm_module.cache_clear()
    general_stem.cache_clear()


def general_span(dim: int) -> Any:
    """The general dispatch loop for F = `dim` (specialised VMs call it for other ops)."""
    return _vm_module(dim, None).run_span


# ---- running lowered programs ---------------------------------------------------------------


def run_component(low: Lowered, memory: FloatArray, component: int, execution: int,
                  stream_id: int, dim: int) -> None:
    """Run one component of a lowered program on a flat memory (tests, debugging): no
    features or label are written, exactly the instructions run."""
    if memory.dtype != np.float64 or not memory.flags.c_contiguous or memory.size < low.mem_size:
        raise ValueError("memory must be a contiguous float64 array of the program's size")
    ints = np.ascontiguousarray(low.ints)
    floats = np.ascontiguousarray(low.floats)
    streams = np.array([stream_id], dtype=np.uint64)
    tasks = np.zeros(1, dtype=np.int64)  # task 0, behind by 0
    with np.errstate(all="ignore"):
        vm_module(dim).run_span(address(ints), address(floats), low.bounds[component],
                                low.bounds[component + 1], address(memory), memory.size,
                                address(streams), component, execution, address(tasks),
                                address(tasks), 1)


# ---- tasks, batches, the backend ------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    fitness: FloatArray  # (programs, tasks)
    errors: FloatArray  # (programs, tasks, record)
    counts: IntArray  # (programs, tasks, 3): train / valid errors recorded, Learn steps


class Batch:
    """Evaluates lowered programs on fixed tasks, reusing its output arrays: the lean path
    for a search (one dispatch into the VM per call, nothing allocated but the inputs)."""

    def __init__(self, tasks: PackedTasks, max_abs_error: float = 100.0, record: int = 0,
                 size: int = 1, codes: Sequence[int] | None = None,
                 fitness: str | None = None) -> None:
        """`codes`: the ops most programs use (a search's op set), for a VM specialised to
        them (see vm_module); any program still runs. `fitness`: a registered fitness's name
        (default: built in, by task kind)."""
        self.tasks = tasks
        self.max_abs_error = float(max_abs_error)
        self.record = record
        self.size = 0
        self._run = vm_module(tasks.dim, codes, fitness).evaluate_batch
        self._tasks = (tasks.x_train, tasks.y_train, tasks.x_valid, tasks.y_valid, tasks.perm,
                       tasks.n_train, tasks.n_valid, tasks.epochs, tasks.classification,
                       tasks.task_index)
        self._grow(size)

    def _grow(self, size: int) -> None:
        n = len(self.tasks)
        self.size = size
        self.fitness = np.zeros((size, n))
        self.errors = np.zeros((size, n, self.record))
        self.counts = np.zeros((size, n, 3), dtype=np.int64)
        self.seeds = np.zeros(size, dtype=np.uint64)

    def run(self, lowered: Sequence[Lowered], seeds: Sequence[int]) -> BatchResult:
        """Results of every program on every task (views into arrays the next call reuses)."""
        count = len(lowered)
        if count > self.size:
            self._grow(count)
        for p, seed in enumerate(seeds):
            self.seeds[p] = int(seed) & rng.MASK
        ints, floats, bounds, layouts = concatenate(lowered)
        # No np.errstate needed: compiled code never consults numpy's error state.
        self._run(ints, floats, bounds, layouts, self.seeds, *self._tasks, self.max_abs_error,
                  self.fitness, self.errors, self.counts)
        return BatchResult(self.fitness[:count], self.errors[:count], self.counts[:count])


def evaluate_lowered(
    lowered: Sequence[Lowered],
    tasks: PackedTasks,
    seeds: Sequence[int] | npt.NDArray[np.uint64],
    max_abs_error: float = 100.0,
    record: int = 0,
    fitness: str | None = None,
) -> BatchResult:
    """Run every program on every task in one VM call (fresh result arrays)."""
    result = Batch(tasks, max_abs_error, record, len(lowered), fitness=fitness).run(
        lowered, list(seeds))
    return BatchResult(result.fitness.copy(), result.errors.copy(), result.counts.copy())


def warm(dim: int, codes: Sequence[int] | None = None, fitness: str | None = None) -> None:
    """Compile (or load from the cache) the VM for F = `dim` now, e.g. in a parent process
    before it starts workers, so that they find it in the cache instead of each compiling it."""
    task = Task("warm", "regression", dim, np.zeros((1, dim)), np.zeros(1), np.zeros((1, dim)),
                np.zeros(1))
    Batch(PackedTasks.pack([task], Settings()), codes=codes, fitness=fitness).run(
        [lower(Program(), (2, 1, 0), dim)], [0])


def evaluate_programs(
    programs: Sequence[Program],
    tasks: PackedTasks,
    settings: Settings,
    seeds: Sequence[int] | None = None,
) -> BatchResult:
    """Lower and run a batch of programs (seed per program, default settings.seed)."""
    lowered = [
        lower(p, memory_sizes(p, settings.memory), tasks.dim) for p in programs
    ]
    return evaluate_lowered(lowered, tasks,
                            seeds if seeds is not None else [settings.seed] * len(programs),
                            settings.max_abs_error, settings.record, settings.fitness)


def _evaluate_tasks(program: Program, tasks: Sequence[Task],
                    settings: Settings) -> list[TaskOutcome]:
    def evaluate_group(group: list[Task]) -> list[TaskOutcome]:
        result = evaluate_programs([program], PackedTasks.pack(group, settings), settings)
        return outcomes_of(result.fitness[0], result.errors[0], result.counts[0])

    return by_dim(tasks, evaluate_group)


def open_session(program: Program, dim: int, settings: Settings,
                 task_index: int) -> tuple[Any, Any]:
    """(step, ctx) for calling the VM one step of one task at a time (the estimator). The
    ctx holds the arrays it points to as its last element, which keeps them alive."""
    low = lower(program, memory_sizes(program, settings.memory), dim)
    mem = np.zeros(max(1, low.mem_size))
    streams = np.array([rng.stream(settings.seed, task_index)], dtype=np.uint64)
    ctx = (address(low.ints), address(low.floats), low.bounds, address(mem), address(streams),
           low.features, mem.size, True, (low.ints, low.floats, mem, streams))
    return vm_module(dim).step, ctx


register_backend(Backend("vm", _evaluate_tasks, open_session))
