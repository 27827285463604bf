"""Set-up shared by the test modules: the SGD program, small search configs, recording hooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azdsl.language.ops import OPS
from azdsl.language.program import Program
from azdsl.search.config import Config
from azdsl.search.evolve import Search
from azdsl.search.mutate import MUTATION_TYPES, MutationConfig

ALL_OPS = tuple(op.code for op in OPS)

# The ops of the paper's demo search space, as a TOML list.
DEMO_OPS = '["s = c", "s = dot(v, v)", "s = s - s", "s = s * s", "v = s * v", "v = v + v"]'


def sgd(lr: float | str = 0.01, *, step: str = "s3", setup: str = "") -> str:
    """Linear regression by SGD as program text: rate `lr` in s2, weights in v1.

    `step` holds the scaled error (s3 reuses the error's cell; simplify names it s4);
    `setup` is further Setup lines, each ending in a newline.
    """
    return (
        f"def Setup():\n  s2 = {lr}\n{setup}"
        "def Predict():\n  s1 = dot(v0, v1)\n"
        f"def Learn():\n  s3 = s0 - s1\n  {step} = s3 * s2\n  v2 = {step} * v0\n  v1 = v1 + v2\n"
    )


def linear_tasks(section: str, tasks: int, train: int, valid: int, *lines: str) -> str:
    """A TOML section of linear tasks; `lines` are further `key = value` lines."""
    head = [f"[{section}]", 'kind = "linear"', *lines]
    return "\n".join([*head, f"num_tasks = {tasks}", f"num_train = {train}",
                      f"num_valid = {valid}"]) + "\n"


def components(setup: int, predict: int, learn: int, ops: str = DEMO_OPS) -> str:
    """The [setup], [predict] and [learn] TOML sections: one op list, initial sizes."""
    sizes = {"setup": setup, "predict": predict, "learn": learn}
    return "".join(f"[{name}]\nops = {ops}\nsize = {size}\n" for name, size in sizes.items())


# The search tasks of the small searches in test_evolve, test_parallel and test_runfolder.
SEARCH_TASKS = linear_tasks("search_tasks", 3, 40, 20, "dim = 4", "randomize = true")


def held_out_tasks(tasks: int) -> str:
    """[select_tasks] drawn afresh each experiment and fixed [final_tasks], `tasks` of each."""
    return (linear_tasks("select_tasks", tasks, 100, 20, "dim = 4", "randomize = true")
            + linear_tasks("final_tasks", tasks, 100, 20, "dim = 4", "seed = 777"))


def population(size: int, tournament: int) -> str:
    """The [search] section of a small population, and [fec] on."""
    return (f"[search]\npopulation_size = {size}\ntournament_size = {tournament}\n"
            "[fec]\nenabled = true\n")


def budget(individuals: int, experiments: int, every: int) -> str:
    """The [budget] and [run] sections: `experiments` experiments of `individuals`, progress
    and a checkpoint every `every` individuals."""
    return (f"[budget]\nmax_individuals = {individuals}\nmax_experiments = {experiments}\n"
            f"[run]\nprogress_every = {every}\ncheckpoint_every = {every}\n")


def mutation_config(**fields: Any) -> MutationConfig:
    """A MutationConfig over every op in 3 dimensions, every mutation type, always mutating."""
    defaults: dict[str, Any] = {"dim": 3, "ops": (ALL_OPS,) * 3,
                                "mutation_types": MUTATION_TYPES, "mutate_prob": 1.0}
    return MutationConfig(**{**defaults, **fields})


class Capture:
    """Search hooks that keep progress records, checkpoints (as JSON round trips), experiments."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.experiments: list[dict[str, Any]] = []

    def progress(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def checkpoint(self, state: dict[str, Any]) -> None:
        self.states.append(json.loads(json.dumps(state)))

    def best(self, program: Program, fitness: float) -> None:
        pass

    def experiment(self, record: dict[str, Any]) -> None:
        self.experiments.append(record)


def without_times(value: Any) -> Any:
    """A state or record with wall-clock fields and memo counters dropped."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items()
                if k not in ("seconds", "individuals_per_second", "memo_hits")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def run_search(config: Config, seed: int, backend: str = "vm") -> tuple[Search, Capture]:
    """A whole search with recording hooks."""
    hooks = Capture()
    search = Search(config, seed, backend, hooks)
    search.run()
    return search, hooks


def evolved_run_folder(folder: Path, config_text: str, seed: int) -> Path:
    """The run folder folder/run of a quiet one-island `azdsl evolve` of `config_text`
    (written as folder/exp.toml)."""
    from azdsl.cli import main

    config = folder / "exp.toml"
    config.write_text(config_text)
    out = folder / "run"
    assert main(["evolve", str(config), "--out", str(out), "--seed", str(seed), "--quiet",
                 "--islands", "1"]) == 0
    return out
