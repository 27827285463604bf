"""What a run may ask for: hard bounds on numbers, and the memory it will allocate, estimated
before anything is allocated or written, so that a size too large is a message, not numpy's
MemoryError minutes later.

The estimate is a model, deliberately simple and on the safe side:
- task data: tasks x examples x (F + 2) floats (features, label, epoch order), held up to
  TASK_COPIES times at once, plus the one-off F x F teacher of a nonlinear task or the
  pixels x F projection of an image task;
- memory cells: scalars + vectors * F + matrices * F * F floats, plus the vector and matrix
  temporaries every backend keeps (one program runs at a time);
- a search: population x instruction slots, the FEC cache and the structural memo.
It is compared with the memory available now: /proc/meminfo's MemAvailable (or the cgroup's
room, when less), else os.sysconf; AZDSL_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix)
overrides both.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azdsl.errors import CheckError, ConfigError, Diagnostic

if TYPE_CHECKING:
    from azdsl.language.program import Program
    from azdsl.running.tasks import TaskSpec
    from azdsl.search.config import Config

# Any count, size or budget a user gives: exact as a float64, and sums of a few of them stay
# far from int64's overflow (the compiled search's counters are int64).
MAX_INT = 2**53
# Seeds, as `--seed` takes them.
SEED_LIMIT = 2**63
# Cells of each kind a program or a config may use: indices run 0 .. MAX_CELLS - 1. The
# original's memories have a few dozen; the bound keeps a typo such as s99999999999 from
# asking for terabytes (the memory estimate then checks what F makes of the cells), and the
# mutator's per-op cell tables small (they take 0.3 s to build at this size, 30 s at 2**16).
MAX_CELLS = 2**10
# The most bytes of a config or program file read: /dev/zero or a huge file is no config.
MAX_FILE_BYTES = 2**24
MEMORY_LIMIT_ENV = "AZDSL_MEMORY_LIMIT"

FLOAT = 8
TASK_COPIES = 3  # as built, packed for the VM, packed again for the compiled search loop
# Both on the safe side: the compiled loop's arrays take 56 bytes per instruction slot and ~80
# per FEC entry; the rest covers the programs decoded for reports and checkpoints, and the
# lineage table (64 bytes per row, about 4 rows per member).
INSTRUCTION_BYTES = 256  # one instruction slot of a population member
FEC_ENTRY_BYTES = 300  # one FEC cache entry
MEMO_ENTRY_BYTES = 256  # one structural memo entry, plus MEMO_TASK_BYTES per search task
MEMO_TASK_BYTES = 96
# The most images of one class a projected task takes (a pair of classes: twice that).
MAX_PER_CLASS = 5000
# Pixels of one flattened image of each data set (what a projection maps to F features).
IMAGE_PIXELS = {"digits": 64, "cifar10": 3072, "mnist": 784, "fashion_mnist": 784}

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class Need:
    """Memory one part of a run needs: the key (or option) that sets it, what it holds."""

    key: str
    what: str
    bytes: int


def read_capped_text(path: str | Path, what: str) -> str:
    """A user's config or program file (`-` is stdin): UTF-8, a byte-order mark skipped,
    newlines untranslated, at most MAX_FILE_BYTES. Raises OSError, or ValueError saying what
    is wrong with the bytes (`what` names the file's role: "a config", "a program")."""
    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {size_text(MAX_FILE_BYTES)}, too large for {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})") \
            from None


def size_text(count: int) -> str:
    """Bytes for people: `512 B`, `3.1 MiB`, `41.0 GiB`."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def available_memory() -> tuple[int, str] | None:
    """The bytes this process can still allocate and where that figure comes from; None when
    the system does not say."""
    override = os.environ.get(MEMORY_LIMIT_ENV)
    if override:
        found = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", override, re.IGNORECASE)
        if not found:
            raise ConfigError(f"{MEMORY_LIMIT_ENV}: expected bytes such as 4000000000 or 4G, "
                              f"got {override!r}")
        return int(found.group(1)) * _UNITS[found.group(2).upper()], MEMORY_LIMIT_ENV
    free = _meminfo_available()
    source = "MemAvailable in /proc/meminfo"
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            source = "free physical memory"
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    if room is not None and room < free:
        return room, "the cgroup's memory.max"
    return free, source


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), if it has a limit."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def memory_problem(needs: Sequence[Need]) -> tuple[str, str] | None:
    """(key, message) when the needs together exceed the available memory: the key of the
    largest need, what it needs, and the keys and needs of the next two."""
    total = sum(n.bytes for n in needs)
    found = available_memory() if needs else None
    if found is None or total <= found[0]:
        return None
    available, source = found
    parts = sorted(needs, key=lambda n: -n.bytes)[:3]
    detail = "; ".join([f"{parts[0].what} = {size_text(parts[0].bytes)}",
                        *(f"{n.key}: {n.what} = {size_text(n.bytes)}" for n in parts[1:])])
    return parts[0].key, (f"the run would need about {size_text(total)} of memory but "
                          f"{size_text(available)} is available ({source}): {detail}")


def check_memory(needs: Sequence[Need]) -> None:
    """Raise ConfigError, naming the key, when the needs do not fit in memory."""
    problem = memory_problem(needs)
    if problem is not None:
        key, message = problem
        raise ConfigError(f"{key}: {message}" if key else message)


# ---- the model -------------------------------------------------------------------------------


def cells_need(sizes: tuple[int, int, int], dim: int, key: str, where: str = "") -> Need:
    """The memory of one program at F = dim (`where`: the key that sets F), with the
    backends' temporaries."""
    scalars, vectors, matrices = sizes
    floats = scalars + (vectors + 1) * dim + (matrices + 1) * dim * dim
    at = f"F = {dim}" + (f" ({where})" if where else "")
    return Need(key, f"cells s{scalars} v{vectors} m{matrices} at {at}, with temporaries",
                floats * FLOAT)


def task_shape(spec: TaskSpec) -> tuple[int, int, int] | None:
    """(F, training, validation examples) a spec's tasks hold; for npz, the file's arrays
    (all read, whatever the spec keeps of them), None when its headers cannot be read."""
    shape = spec.shape()
    if shape is not None or spec.data_path is None:
        return shape
    import zipfile

    import numpy as np

    found = []
    try:
        with zipfile.ZipFile(spec.data_path) as archive:
            for name in ("x_train", "x_valid"):
                with archive.open(f"{name}.npy") as member:  # its header only
                    version = np.lib.format.read_magic(member)
                    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    found.append(tuple(header(member)[0]))
    except Exception:  # not a zip, an array missing, a bad header: the loader says which
        return None
    if any(len(shape) != 2 for shape in found):
        return None
    (n_train, dim), (n_valid, _) = found
    return dim, n_train, n_valid


def task_need(spec: TaskSpec, key: str) -> Need | None:
    """The data of a task spec's tasks (None for an npz file task_shape cannot read)."""
    return data_need(spec, key, task_shape(spec))


def data_need(spec: TaskSpec, key: str, shape: tuple[int, int, int] | None) -> Need | None:
    """task_need for a caller that has the spec's task_shape already (an npz file's headers
    are then read once)."""
    if shape is None:
        return None
    dim, num_train, num_valid = shape
    examples = num_train + num_valid + spec.num_test
    once = 0
    if spec.kind == "projected":  # a pair has at most this many images; more is an error
        examples = min(examples, 2 * MAX_PER_CLASS)
        once = IMAGE_PIXELS[spec.dataset] * dim
    elif spec.kind == "nonlinear":
        once = dim * dim
    floats = spec.num_tasks * examples * (dim + 2) * TASK_COPIES + once
    what = (f"{spec.num_tasks} task{'s' if spec.num_tasks > 1 else ''} x {examples} examples "
            f"x ({dim} features + 2) floats x {TASK_COPIES} copies")
    return Need(key, what, floats * FLOAT)


def config_needs(config: Config, programs: Sequence[Program] = ()) -> list[Need]:
    """What a search on `config` allocates; `programs` are the files it reads (an initial
    population, a baseline), whose cells and sizes count too."""
    needs = []
    dims = []  # (F, the spec's key)
    for name, task_set in (("search_tasks", config.search_tasks),
                           ("select_tasks", config.select_tasks),
                           ("final_tasks", config.final_tasks)):
        for i, spec in enumerate(task_set.specs):
            key = name if len(task_set.specs) == 1 else f"{name}[{i}]"
            shape = task_shape(spec)  # (an npz file's headers are read once)
            need = data_need(spec, key, shape)
            if need is not None:
                needs.append(need)
            where = f"{key}.path" if spec.kind == "npz" else f"{key}.dim"
            dims.append((shape[0] if shape is not None else spec.dim or 1, where))
    sizes = list(config.memory)
    for program in programs:
        used = program.memory_needs()
        sizes = [max(a, b) for a, b in zip(sizes, used.values(), strict=True)]
    dim, where = max(dims, key=lambda d: d[0])
    needs.append(cells_need((sizes[0], sizes[1], sizes[2]), dim, "memory", where))
    slots = sum(c.max_size for c in config.components)
    slots = max([slots, *(sum(p.sizes()) for p in programs)])
    needs.append(Need("search.population_size",
                      f"{config.population_size} programs x {slots} instructions (the sum of "
                      "the max_size)",  # (+ 3: a program's own objects, about 3 slots' worth)
                      config.population_size * (slots + 3) * INSTRUCTION_BYTES))
    fec = config.fec
    searched = sum(spec.num_tasks for spec in config.search_tasks.specs)
    if fec.enabled:
        probes = searched * (fec.num_train + fec.num_valid) * 2 * FLOAT
        needs.append(Need("fec", f"a cache of {fec.cache_size} entries and probes of "
                          f"{fec.num_train + fec.num_valid} examples per task",
                          fec.cache_size * FEC_ENTRY_BYTES + probes))
    needs.append(Need("fec.structural_cache_size",
                      f"{fec.structural_cache_size} programs x {searched} search tasks",
                      fec.structural_cache_size * (MEMO_ENTRY_BYTES + MEMO_TASK_BYTES * searched)))
    return needs


# Needs that every island has its own of (in whichever process it runs), and needs that every
# worker process holds a copy of (the search tasks; the driver alone scores the held-out ones).
_PER_ISLAND = ("search.population_size", "fec", "fec.structural_cache_size")


def island_needs(config: Config, islands: int, workers: int) -> list[Need]:
    """What an island run on `workers` local processes allocates on this machine."""
    scaled = []
    for need in config_needs(config):
        if need.key in _PER_ISLAND and islands > 1:
            need = Need("--islands", f"{islands} islands x ({need.key}: {need.what})",
                        need.bytes * islands)
        elif need.key.startswith("search_tasks") and workers > 1:
            need = Need("--workers", f"{workers} worker processes x ({need.key}: {need.what})",
                        need.bytes * workers)
        scaled.append(need)
    return scaled


# ---- programs ----------------------------------------------------------------------------------


def cell_problems(program: Program) -> list[Diagnostic]:
    """A diagnostic at each instruction with a cell index no memory may have."""
    problems = []
    for instr in program.instructions():
        for cell in instr.cells():
            if cell.index >= MAX_CELLS:
                problems.append(Diagnostic(
                    f"`{cell}`: cell index {cell.index} is above the largest allowed, "
                    f"{cell.kind.prefix}{MAX_CELLS - 1}", instr.span))
                break
    return problems


def check_cells(program: Program, source: str | None = None, filename: str = "<input>") -> None:
    """CheckError at every instruction using a cell no memory may have, whatever F (the
    language allows any index; memory does not)."""
    beyond = cell_problems(program)
    if beyond:
        raise CheckError(beyond, source, filename)


def program_needs(program: Program, dim: int, key: str,
                  configured: tuple[int, int, int] | None = None) -> Need:
    """The memory a program runs in at F = dim (with any configured larger sizes)."""
    used = program.memory_needs()
    sizes = list(used.values())  # scalars, vectors, matrices
    if configured is not None:
        sizes = [max(a, b) for a, b in zip(sizes, configured, strict=True)]
    return cells_need((sizes[0], sizes[1], sizes[2]), dim, key)
