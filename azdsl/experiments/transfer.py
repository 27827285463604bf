"""An experiment's transfer matrix: every cell's evolved programs, and tuned baselines, scored
on every cell's final tasks (rows: evolved on; columns: tested on).

This is how the paper shows evolution adapting to its task: a program evolved on a variant
should do best on that variant. A cell's row holds, per column, the mean over its finished
seeds of the run's chosen program's fitness on the column's final tasks, each scored with the
evaluation seed of that run's own final score (on its own column this is the run's final
fitness). A baseline (a shipped program) has its learning rate tuned on each column's select
tasks first, as `azdsl compare` tunes it, and is scored with evaluation seed 0. Every score
is kept, per task, in DIR/transfer.json, so that rewriting the tables after each finished run
scores only what is new.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azdsl.experiments.configs import cell_config, shipped_program
from azdsl.experiments.definitions import Cell, Experiment, seed_folder
from azdsl.runfolder import REPORT_JSON, RunFolder, write_atomic

TRANSFER_JSON = "transfer.json"
TRANSFER_FORMAT = "azdsl-transfer-scores"
TRANSFER_VERSION = 1
BASELINE_SEED = 0


class Scores:
    """DIR/transfer.json: per-task fitness by (row, column), read once and saved when grown."""

    def __init__(self, out: Path) -> None:
        self.file = out / TRANSFER_JSON
        self.scores: dict[str, list[float]] = {}
        self.changed = False
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or unreadable: scored again (it only caches)
        if isinstance(data, dict) and data.get("format") == TRANSFER_FORMAT:
            found = data.get("scores")
            if isinstance(found, dict):
                self.scores = {k: [float(x) for x in v] for k, v in found.items()
                               if isinstance(v, list)}

    def get(self, key: str, score: Any) -> list[float]:
        if key not in self.scores:
            self.scores[key] = [float(x) for x in score()]
            self.changed = True
        return self.scores[key]

    def save(self) -> None:
        if self.changed:
            write_atomic(self.file, json.dumps({"format": TRANSFER_FORMAT,
                                                "version": TRANSFER_VERSION,
                                                "scores": self.scores}) + "\n")
            self.changed = False


def _tasks(cell: Cell, budget_scale: float) -> tuple[Any, list[Any], list[Any]]:
    from azdsl.search.evolve import make_tasks

    config = cell_config(cell, budget_scale).parse()
    return config, make_tasks(config.select_tasks, None), make_tasks(config.final_tasks, None)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def matrix(experiment: Experiment, out: Path, budget_scale: float,
           cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The transfer section of the results document (`cells` as results.collect makes them)."""
    from azdsl.language.parse import parse
    from azdsl.running.compare import tuned
    from azdsl.running.evaluate import evaluate
    from azdsl.search.evolve import final_seed

    scores = Scores(out)
    columns = list(experiment.cells)
    loaded: dict[str, tuple[Any, list[Any], list[Any]]] = {}

    def tasks_of(column: Cell) -> tuple[Any, list[Any], list[Any]]:
        if column.name not in loaded:
            loaded[column.name] = _tasks(column, budget_scale)
        return loaded[column.name]

    rows = []
    for cell, summary in zip(experiment.cells, cells, strict=True):
        finished = [r["seed"] for r in summary["seeds"] if r["status"] == "finished"]
        per_column: list[float | None] = []
        for column in columns:
            values = []
            for seed in finished:
                folder = seed_folder(out, cell, seed)

                def score(folder: Path = folder, seed: int = seed,
                          column: Cell = column) -> tuple[float, ...]:
                    run = RunFolder(folder).read_run()
                    report = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
                    config, _, final = tasks_of(column)
                    program = parse(report["program"], str(folder / REPORT_JSON))
                    return evaluate(program, final, seed=final_seed(seed),
                                    backend=run["backend"],
                                    max_abs_error=config.max_abs_error).task_fitness

                values.append(_mean(scores.get(f"{cell.name}/seed-{seed}|{column.name}",
                                               score)))
            per_column.append(_mean(values) if values else None)
        rows.append({"row": cell.name, "kind": "evolved", "seeds": len(finished),
                     "fitness": per_column})
    for name in experiment.baselines:
        program = shipped_program(name)
        per_column = []
        for column in columns:

            def score_baseline(column: Cell = column, program: Any = program
                               ) -> tuple[float, ...]:
                config, select, final = tasks_of(column)
                best = tuned(program, select, seed=BASELINE_SEED,
                             max_abs_error=config.max_abs_error)
                return evaluate(best, final, seed=BASELINE_SEED, backend="vm",
                                max_abs_error=config.max_abs_error).task_fitness

            per_column.append(_mean(scores.get(f"baseline:{name}|{column.name}",
                                               score_baseline)))
        rows.append({"row": name, "kind": "tuned baseline", "seeds": None,
                     "fitness": per_column})
    scores.save()
    return {"columns": [c.name for c in columns], "rows": rows}


def markdown(transfer: Mapping[str, Any]) -> list[str]:
    """The matrix as Markdown lines: mean final fitness, the best of each column in bold."""
    columns = transfer["columns"]
    best = [max((r["fitness"][k] for r in transfer["rows"] if r["fitness"][k] is not None),
                default=None) for k in range(len(columns))]
    lines = ["", "## Transfer: rows evolved on, columns tested on", "",
             "Mean final fitness (accuracy for classification) on each column's final tasks; "
             "evolved rows average their finished seeds, baselines are tuned per column.", "",
             "| evolved on \\ tested on | seeds | " + " | ".join(columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for row in transfer["rows"]:
        cells = []
        for k, value in enumerate(row["fitness"]):
            text = "-" if value is None else f"{value:.4f}"
            cells.append(f"**{text}**" if value is not None and value == best[k] else text)
        seeds = "-" if row["seeds"] is None else str(row["seeds"])
        lines.append(f"| {row['row']} ({row['kind']}) | {seeds} | " + " | ".join(cells) + " |")
    return lines
