"""Experiment configs: a TOML file read, checked and turned into one frozen Config.

Every mistake is reported with the key it concerns (`search.population_size: ...`), at the
key's line when it can be found, all of them at once; unknown keys are errors with a
suggestion. Op lists accept op codes, op names (`SCALAR_CONST_SET`) or spellings with kind
letters for the cells (`s = dot(v, v)`, `v = s * v`, `s = c`); cell numbers are ignored, so a
real instruction such as `s1 = dot(v0, v1)` names its op too. Program files (an initial
population, a train-budget baseline) are read when the config is loaded, and their text is
kept, so a run folder can be resumed without them.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azdsl.errors import ConfigError, Diagnostic, Span
from azdsl.mutate import MUTATION_TYPES
from azdsl.ops import OPS, Form, Op
from azdsl.tasks import DATASETS, TASK_KINDS, TaskSpec

COMPONENT_KEYS = ("setup", "predict", "learn")
METHODS = ("evolution", "random")
COMBINE = ("mean", "median")
INITIAL = ("empty", "random")


@dataclass(frozen=True)
class TaskSet:
    """Task specs searched or scored together, and whether experiments draw fresh seeds."""

    specs: tuple[TaskSpec, ...]
    randomize: bool = False


@dataclass(frozen=True)
class ComponentSpace:
    """The allowed ops (codes, repeats weigh more) and the size limits of one component."""

    ops: tuple[int, ...]
    init_size: int
    min_size: int
    max_size: int


@dataclass(frozen=True)
class ProgramFile:
    """A program file a config names: its path as written, where it was found, its text."""

    path: str
    resolved: str
    text: str


@dataclass(frozen=True)
class Fec:
    enabled: bool = False
    num_train: int = 10
    num_valid: int = 10
    cache_size: int = 100_000
    forget_every: int = 100
    structural_cache_size: int = 100_000  # programs whose probe/fitness are memoised; 0 = off


@dataclass(frozen=True)
class Budget:
    """Per experiment (0 = no limit), plus the experiment loop's limits."""

    max_train_steps: int = 0
    max_individuals: int = 0
    max_seconds: float = 0.0
    max_experiments: int = 1  # 0 = until sufficient_fitness
    sufficient_fitness: float | None = None


@dataclass(frozen=True)
class Hurdles:
    """The paper's hurdles (azdsl.hurdles): stop children weak on the first search tasks."""

    enabled: bool = False
    tasks: int = 1  # the first this many search tasks are the hurdle
    percentile: float = 75.0
    warmup: int = 0  # children scored in full first (0: the population size)


@dataclass(frozen=True)
class TrainBudget:
    """The original's train budget (reference §3.7): reject programs far costlier than a
    baseline program."""

    baseline: ProgramFile
    threshold_factor: float = 2.0


@dataclass(frozen=True)
class Config:
    search_tasks: TaskSet
    select_tasks: TaskSet
    final_tasks: TaskSet
    memory: tuple[int, int, int]
    components: tuple[ComponentSpace, ComponentSpace, ComponentSpace]
    method: str = "evolution"
    population_size: int = 1000
    tournament_size: int = 10
    initial_population: str = "random"  # "empty", "random" or "file"
    initial_program: ProgramFile | None = None
    mutations: tuple[str, ...] = ("alter_param", "randomize_instruction", "randomize_component")
    mutate_prob: float = 0.9
    combine: str = "mean"
    max_abs_error: float = 100.0
    fec: Fec = field(default_factory=Fec)
    hurdles: Hurdles = field(default_factory=Hurdles)
    budget: Budget = field(default_factory=Budget)
    train_budget: TrainBudget | None = None
    progress_every: int = 10_000
    checkpoint_every: int = 0  # individuals between checkpoints (0: by time only)
    checkpoint_seconds: float = 60.0

    def files(self) -> dict[str, ProgramFile]:
        """The program files this config read, by the key that names them."""
        found = {}
        if self.initial_program is not None:
            found["search.initial_population"] = self.initial_program
        if self.train_budget is not None:
            found["train_budget.baseline"] = self.train_budget.baseline
        return found


# ---- op names --------------------------------------------------------------------------------


def _typed_spelling(op: Op) -> str:
    """The op's spelling with each operand written as its kind letter: `v = s * v`."""
    spelling = op.spelling()
    if op.form in (Form.INFIX, Form.CALL):
        names = iter(kind.prefix for kind in op.ins)
        spelling = re.sub(r"\b[ab]\b", lambda _: next(names), spelling)
    return spelling


def _normal(text: str) -> str:
    text = re.sub(r"\b([svm])\d+\b", r"\1", text.strip())
    return re.sub(r"\s+", "", text).lower()


def _op_table() -> dict[str, int]:
    table: dict[str, int] = {}
    plain: dict[str, list[int]] = {}
    for op in OPS:
        table[_normal(_typed_spelling(op))] = op.code
        table[op.name.lower()] = op.code
        table[op.name.lower() + "_op"] = op.code
        plain.setdefault(_normal(op.spelling()), []).append(op.code)
    for text, codes in plain.items():  # `s = dot(a, b)` where it names one op only
        if len(codes) == 1:
            table.setdefault(text, codes[0])
    return table


_OPS_BY_TEXT = _op_table()


def resolve_op(entry: object) -> int:
    """An op code from a code, a name or a spelling; ValueError with a hint otherwise."""
    if isinstance(entry, bool):
        raise ValueError(f"{entry!r} is not an op")
    if isinstance(entry, int):
        if 0 <= entry < len(OPS):
            return entry
        raise ValueError(f"no op with code {entry} (codes run 0..{len(OPS) - 1})")
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not an op (use a code, a name or a spelling)")
    code = _OPS_BY_TEXT.get(_normal(entry))
    if code is not None:
        return code
    close = difflib.get_close_matches(_normal(entry), list(_OPS_BY_TEXT), n=1)
    hint = f"; did you mean {_spelling_hint(_OPS_BY_TEXT[close[0]])!r}?" if close else ""
    raise ValueError(
        f"unknown op {entry!r}: write a code, a name such as 'SCALAR_SUM' or a spelling "
        f"with kind letters such as 's = s + s'{hint}"
    )


def _spelling_hint(code: int) -> str:
    return _typed_spelling(OPS[code])


def op_spellings() -> list[tuple[int, str, str]]:
    """(code, name, typed spelling) for every op: what a config may write."""
    return [(op.code, op.name, _typed_spelling(op)) for op in OPS]


# ---- a checked reader for nested tables ----------------------------------------------------


class _Reader:
    """Reads one TOML table, records problems under dotted keys, then reports unknown keys."""

    def __init__(self, data: Mapping[str, Any], prefix: str, problems: list[Diagnostic],
                 locate: Callable[[str], Span | None]) -> None:
        self.data = data
        self.prefix = prefix
        self.problems = problems
        self.locate = locate
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> None:
        key = self.key(name)
        self.problems.append(Diagnostic(f"`{key}`: {message}", self.locate(key)))

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def integer(self, name: str, default: int, low: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, f"must be an integer, got {value!r}")
            return default
        if value < low:
            self.error(name, f"must be at least {low}, got {value}")
            return default
        return value

    def optional_int(self, name: str, low: int = 0) -> int | None:
        return self.integer(name, 0, low) if self.has(name) else None

    def number(self, name: str, default: float, low: float | None = None,
               high: float | None = None) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(name, f"must be a number, got {value!r}")
            return default
        value = float(value)
        if math.isnan(value) or (low is not None and value < low) or (
            high is not None and value > high
        ):
            bounds = f"in [{low}, {high}]" if high is not None else f"at least {low}"
            self.error(name, f"must be {bounds}, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(name, f"must be true or false, got {value!r}")
            return default
        return value

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in options:
            self.error(name, f"must be one of {', '.join(repr(o) for o in options)}, "
                             f"got {value!r}")
            return default
        return str(value)

    def string(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not isinstance(value, str):
            self.error(name, f"must be a string, got {value!r}")
            return None
        return value

    def int_list(self, name: str) -> tuple[int, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value
        ):
            self.error(name, f"must be a list of non-negative integers, got {value!r}")
            return ()
        return tuple(value)

    def table(self, name: str) -> _Reader:
        value = self.raw(name)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            self.error(name, f"must be a table, got {value!r}")
            value = {}
        return _Reader(value, self.key(name), self.problems, self.locate)

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(name, sorted(self.used), n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                self.error(name, f"unknown key{hint}")


def _locator(text: str) -> Callable[[str], Span | None]:
    """Finds the line of a dotted key (`section.key`) in TOML text, for carets."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
    assign = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")

    def locate(dotted: str) -> Span | None:
        table, _, key = dotted.rpartition(".")
        table = re.sub(r"\[\d+\]", "", table)
        current = ""
        for number, line in enumerate(lines, 1):
            found = header.match(line)
            if found:
                current = found.group(1)
                if current == dotted:
                    return Span(number, found.start(1) + 1, found.end(1) + 1)
                continue
            found = assign.match(line)
            if found and current == table and found.group(1).strip("\"'") == key:
                return Span(number, found.start(1) + 1, found.end(1) + 1)
        return None

    return locate


# ---- sections --------------------------------------------------------------------------------


def _task_spec(r: _Reader, base_dir: Path) -> TaskSpec:
    kind = r.choice("kind", "linear", TASK_KINDS)
    dataset = r.choice("dataset", "digits", DATASETS)
    path = r.string("path")
    if path is not None:
        path = str((base_dir / path).resolve())
    if kind == "npz" and path is None:
        r.error("path", "npz tasks need the .npz file's path")
    if kind == "projected" and dataset != "digits" and path is None:
        r.error("path", f"the {dataset} data set needs the folder that holds it")
    pairs_raw = r.raw("pairs")
    pairs: str | tuple[tuple[int, int], ...] = "search"
    if isinstance(pairs_raw, str) and pairs_raw in ("search", "heldout"):
        pairs = pairs_raw
    elif isinstance(pairs_raw, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(c, int) and 0 <= c < 10 for c in p)
        and p[0] != p[1] for p in pairs_raw
    ) and pairs_raw:
        pairs = tuple((min(p), max(p)) for p in pairs_raw)
    elif pairs_raw is not None:
        r.error("pairs", "must be 'search', 'heldout' or a list of class pairs like [[4, 6]]")
    label_kind = r.raw("label_kind")
    if label_kind not in (None, "regression", "classification"):
        r.error("label_kind", "must be 'regression' or 'classification'")
        label_kind = None
    seed = r.optional_int("seed")
    num_tasks = r.integer("num_tasks", 1, 1)
    return TaskSpec(
        kind=kind,
        dim=r.optional_int("dim", 1),
        num_tasks=num_tasks,
        num_train=r.optional_int("num_train", 1),
        num_valid=r.optional_int("num_valid", 1),
        num_test=r.integer("num_test", 0),
        epochs=r.integer("epochs", 1, 1),
        param_seeds=r.int_list("param_seeds"),
        data_seeds=r.int_list("data_seeds"),
        seed=seed,
        dataset=dataset,
        data_path=path,
        pairs=pairs,
        label_kind=label_kind,
    )


def _task_set(root: _Reader, name: str, base_dir: Path, fallback: TaskSet | None) -> TaskSet:
    raw = root.raw(name)
    if raw is None:
        if fallback is None:
            root.error(name, "missing: say which tasks to search on")
            return TaskSet((TaskSpec(),))
        return TaskSet(fallback.specs, False)
    entries = raw if isinstance(raw, list) else [raw]
    specs, randomize = [], []
    for i, entry in enumerate(entries):
        prefix = root.key(name) + (f"[{i}]" if isinstance(raw, list) else "")
        if not isinstance(entry, dict):
            root.error(name, "must be a table ([name]) or an array of tables ([[name]])")
            continue
        r = _Reader(entry, prefix, root.problems, root.locate)
        randomize.append(r.boolean("randomize", False))
        specs.append(_task_spec(r, base_dir))
        r.finish()
    if not specs:
        root.error(name, "holds no task spec")
        return TaskSet((TaskSpec(),))
    return TaskSet(tuple(specs), any(randomize))


def _component(r: _Reader) -> ComponentSpace:
    ops_raw = r.raw("ops")
    codes: list[int] = []
    if ops_raw is not None and not isinstance(ops_raw, list):
        r.error("ops", "must be a list of ops")
    for entry in ops_raw or []:
        try:
            codes.append(resolve_op(entry))
        except ValueError as exc:
            r.error("ops", str(exc))
    fixed = r.optional_int("size")
    init = r.integer("init_size", fixed if fixed is not None else 0)
    low = r.integer("min_size", fixed if fixed is not None else 0)
    high = r.integer("max_size", fixed if fixed is not None else max(init, 100))
    if fixed is not None and any(r.has(k) for k in ("init_size", "min_size", "max_size")):
        r.error("size", "fixes init, min and max at once; give either `size` or the other three")
    if not low <= high:
        r.error("min_size", f"must not exceed max_size ({low} > {high})")
    r.finish()
    return ComponentSpace(tuple(codes), init, low, high)


def _program_file(r: _Reader, name: str, path: str, base_dir: Path,
                  files: Mapping[str, ProgramFile] | None) -> ProgramFile | None:
    key = r.key(name)
    if files is not None and key in files:
        return files[key]
    resolved = (base_dir / path).resolve()
    try:
        text = resolved.read_text()
    except OSError as exc:
        r.error(name, f"cannot read {path!r} ({exc.strerror or exc})")
        return None
    return ProgramFile(path, str(resolved), text)


def parse_config(text: str, *, filename: str = "<config>", base_dir: str | Path = ".",
                 files: Mapping[str, ProgramFile] | None = None) -> Config:
    """A Config from TOML text. `files` supplies program files already read (a resume)."""
    base = Path(base_dir)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        span = Span(int(found.group(1)), int(found.group(2))) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError([Diagnostic(f"not valid TOML: {message}", span)], text,
                          filename) from None
    problems: list[Diagnostic] = []
    root = _Reader(data, "", problems, _locator(text))

    search_tasks = _task_set(root, "search_tasks", base, None)
    select_tasks = _task_set(root, "select_tasks", base, search_tasks)
    final_tasks = _task_set(root, "final_tasks", base, select_tasks)

    mem = root.table("memory")
    memory = (mem.integer("scalars", 4, 2), mem.integer("vectors", 3, 1),
              mem.integer("matrices", 1, 0))
    mem.finish()
    comps = [_component(root.table(name)) for name in COMPONENT_KEYS]

    s = root.table("search")
    method = s.choice("method", "evolution", METHODS)
    population = s.integer("population_size", 1000, 1)
    tournament = s.integer("tournament_size", 10, 1)
    initial_raw = s.string("initial_population") or "random"
    initial_program = None
    initial = initial_raw
    if initial_raw not in INITIAL:
        initial = "file"
        initial_program = _program_file(s, "initial_population", initial_raw, base, files)
    mutations_raw = s.raw("mutations")
    mutations: tuple[str, ...] = Config.mutations
    if mutations_raw is not None:
        if not isinstance(mutations_raw, list) or not mutations_raw:
            s.error("mutations", "must be a non-empty list of mutation types")
        else:
            bad = [m for m in mutations_raw if m not in MUTATION_TYPES]
            if bad:
                s.error("mutations", f"unknown mutation type(s) {', '.join(map(repr, bad))} "
                                     f"(known: {', '.join(MUTATION_TYPES)})")
            else:
                mutations = tuple(mutations_raw)
    mutate_prob = s.number("mutate_prob", 0.9, 0.0, 1.0)
    combine = s.choice("combine", "mean", COMBINE)
    max_abs_error = s.number("max_abs_error", 100.0, 0.0)
    s.finish()

    f = root.table("fec")
    fec = Fec(f.boolean("enabled", bool(f.data)), f.integer("num_train", 10, 1),
              f.integer("num_valid", 10, 0), f.integer("cache_size", 100_000, 1),
              f.integer("forget_every", 100, 0), f.integer("structural_cache_size", 100_000, 0))
    f.finish()

    h = root.table("hurdles")
    hurdles = Hurdles(h.boolean("enabled", bool(h.data)), h.integer("tasks", 1, 1),
                      h.number("percentile", 75.0, 0.0, 100.0), h.integer("warmup", 0))
    searched = sum(spec.num_tasks for spec in search_tasks.specs)
    if hurdles.enabled and hurdles.tasks >= searched:
        h.error("tasks", f"must be fewer than the {searched} search tasks, got {hurdles.tasks}")
    h.finish()

    b = root.table("budget")
    sufficient = b.number("sufficient_fitness", math.nan, 0.0) if b.has(
        "sufficient_fitness") else None
    budget = Budget(b.integer("max_train_steps", 0), b.integer("max_individuals", 0),
                    b.number("max_seconds", 0.0, 0.0), b.integer("max_experiments", 1),
                    None if sufficient is None or math.isnan(sufficient) else sufficient)
    if not (budget.max_train_steps or budget.max_individuals or budget.max_seconds):
        b.error("max_train_steps", "give at least one of max_train_steps, max_individuals "
                                   "and max_seconds, or an experiment never ends")
    if budget.max_experiments == 0 and budget.sufficient_fitness is None:
        b.error("max_experiments", "0 (unlimited) needs a sufficient_fitness to stop at")
    b.finish()

    train_budget = None
    if root.has("train_budget"):
        t = root.table("train_budget")
        baseline_path = t.string("baseline")
        factor = t.number("threshold_factor", 2.0, 0.0)
        if baseline_path is None:
            t.error("baseline", "missing: the program file the budget compares with")
        else:
            baseline = _program_file(t, "baseline", baseline_path, base, files)
            if baseline is not None:
                train_budget = TrainBudget(baseline, factor)
        t.finish()

    run = root.table("run")
    progress_every = run.integer("progress_every", 10_000, 1)
    checkpoint_every = run.integer("checkpoint_every", 0)
    checkpoint_seconds = run.number("checkpoint_seconds", 60.0, 0.0)
    run.finish()
    root.finish()

    if initial == "file" and initial_program is not None:
        _check_program_file(initial_program, "search.initial_population", problems,
                            root.locate)
    if train_budget is not None:
        _check_program_file(train_budget.baseline, "train_budget.baseline", problems,
                            root.locate)
    if problems:
        raise ConfigError(problems, text, filename)
    return Config(
        search_tasks=search_tasks, select_tasks=select_tasks, final_tasks=final_tasks,
        memory=memory, components=(comps[0], comps[1], comps[2]), method=method,
        population_size=population, tournament_size=tournament, initial_population=initial,
        initial_program=initial_program, mutations=mutations, mutate_prob=mutate_prob,
        combine=combine, max_abs_error=max_abs_error, fec=fec, hurdles=hurdles, budget=budget,
        train_budget=train_budget, progress_every=progress_every,
        checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
    )


def _check_program_file(pf: ProgramFile, key: str, problems: list[Diagnostic],
                        locate: Callable[[str], Span | None]) -> None:
    """A named program file must parse; its errors are reported with the key."""
    from azdsl.errors import AzdslError
    from azdsl.parse import parse

    try:
        parse(pf.text)
    except AzdslError as exc:
        rendered = exc.with_file(pf.text, pf.path).render()
        problems.append(Diagnostic(f"`{key}`: {pf.path} is not a valid program:\n{rendered}",
                                   locate(key)))


def load_config(path: str | Path, *, files: Mapping[str, ProgramFile] | None = None) -> Config:
    """Read and check a config file; relative paths in it are relative to its folder."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config ({exc.strerror or exc})") from None
    return parse_config(text, filename=str(file), base_dir=file.parent, files=files)
