"""An experiment's results from its run folders: DIR/results.json and DIR/results.md.

Everything is read back from the runs' own files (report.json, progress.jsonl, cpu.json), so
the tables can be rebuilt at any time and say nothing a run folder does not hold. Per cell:
the budget (from the config the cell runs), the successes over the finished seeds, and per
seed its fitnesses, individuals and CPU time; for experiments that search one problem with
evolution and with random search, the ratio of their success rates.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azdsl import __version__
from azdsl.errors import AzdslError
from azdsl.experiments import transfer
from azdsl.experiments.configs import cell_config, shipped_program
from azdsl.experiments.definitions import (
    EVOLUTION,
    RANDOM,
    Cell,
    Experiment,
    SelectAbove,
    Success,
    format_seeds,
    seed_folder,
)
from azdsl.runfolder import PROGRESS, REPORT_FORMAT, REPORT_JSON, RunFolder, write_atomic

RESULTS_FORMAT = "azdsl-experiment-results"
RESULTS_VERSION = 1
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
CPU = "cpu.json"  # the CPU seconds of the sessions that ran a seed (azdsl.experiments.runner)

# A seed's status.
FINISHED, UNFINISHED, NOT_STARTED, FAILED = "finished", "unfinished", "not started", "error"


def read_json_file(path: Path) -> Any:
    """A JSON file's value, None when it is missing or unreadable (a run may be writing it)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def last_progress(folder: Path) -> dict[str, Any] | None:
    """The last complete record of a run folder's progress.jsonl."""
    try:
        with (folder / PROGRESS).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().split(b"\n")
    except OSError:
        return None
    for line in reversed(tail[:-1]):  # the part after the last newline may be half-written
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return record
    return None


class References:
    """A reference program's fitness on a run's final tasks, with the evaluation seed of the
    run's final score (so that the evolved program and the reference start from the same
    random draws); computed once per run folder."""

    def __init__(self) -> None:
        self._known: dict[tuple[Path, str, bool], float] = {}

    def fitness(self, folder: Path, reference: str, tuned: bool = False) -> float:
        key = (folder.resolve(), reference, tuned)
        if key not in self._known:
            self._known[key] = _reference_fitness(folder, reference, tuned)
        return self._known[key]


def _reference_fitness(folder: Path, reference: str, tuned: bool) -> float:
    from azdsl.running.compare import tuned as tune_rate
    from azdsl.running.evaluate import evaluate
    from azdsl.search.evolve import final_seed, make_tasks

    run = RunFolder(folder)
    info = run.read_run()
    config = run.load_config(info)
    program = shipped_program(reference)
    seed = final_seed(info["seed"])
    if tuned:  # as `azdsl compare` tunes it: the grid and its own rate, on the select tasks
        program = tune_rate(program, make_tasks(config.select_tasks, None), seed=seed,
                            backend=info["backend"], max_abs_error=config.max_abs_error)
    tasks = make_tasks(config.final_tasks, None)
    return evaluate(program, tasks, seed=seed, backend=info["backend"],
                    max_abs_error=config.max_abs_error).fitness


def seed_record(experiment: Experiment, out: Path, cell: Cell, seed: int,
                references: References, error: str | None) -> dict[str, Any]:
    """One seed of one cell, as its run folder has it."""
    folder = seed_folder(out, cell, seed)
    cpu = read_json_file(folder / CPU)
    record: dict[str, Any] = {
        "seed": seed, "status": NOT_STARTED, "success": None,
        "cpu_seconds": round(float(cpu["cpu_seconds"]), 1)
        if isinstance(cpu, dict) and isinstance(cpu.get("cpu_seconds"), int | float) else None,
    }
    report = read_json_file(folder / REPORT_JSON)
    if isinstance(report, dict) and report.get("format") == REPORT_FORMAT:
        try:
            record.update({
                "status": FINISHED,
                "search_fitness": max(float(e["search_fitness"])
                                      for e in report["experiments"]),
                "select_fitness": float(report["select_fitness"]),
                "final_fitness": float(report["final_fitness"]),
                "individuals": int(report["individuals"]),
                "train_steps": int(report["train_steps"]),
                "experiments": len(report["experiments"]),
                "search_seconds": float(report["seconds"]),
            })
        except (KeyError, TypeError, ValueError):  # an edited report
            error = f"{folder / REPORT_JSON}: not a report azdsl wrote (`azdsl resume` " \
                    "writes it again)"
        else:
            record["success"] = _success(experiment.success, record, folder, references)
    elif folder.exists():
        record["status"] = UNFINISHED
        progress = last_progress(folder)
        if progress is not None:
            record["individuals"] = progress.get("total_individuals")
            record["search_fitness"] = progress.get("best_ever")
    if error is not None:
        record["status"], record["error"] = FAILED, error
    return record


def _success(success: Success, record: dict[str, Any], folder: Path,
             references: References) -> bool | None:
    """Whether a finished run succeeded (records the reference's fitness where there is one);
    None when the reference cannot be scored (its error recorded)."""
    if isinstance(success, SelectAbove):
        return bool(record["select_fitness"] > success.threshold)
    try:
        reference = references.fitness(folder, success.reference, success.tuned)
    except AzdslError as exc:
        record["status"] = FAILED
        record["error"] = f"the reference {success.reference} could not be scored: {exc}"
        return None
    record["reference_fitness"] = reference
    return bool(record["final_fitness"] >= reference - success.margin)


def budget(cell: Cell, budget_scale: float) -> dict[str, Any]:
    """The budget a cell's runs have (per run), from the config it runs."""
    config = cell_config(cell, budget_scale).parse()
    b = config.budget
    return {"max_individuals": b.max_individuals, "max_train_steps": b.max_train_steps,
            "max_seconds": b.max_seconds, "max_experiments": b.max_experiments,
            "sufficient_fitness": b.sufficient_fitness,
            "population_size": config.population_size, "method": config.method}


def collect(experiment: Experiment, out: Path, seeds: Sequence[int], budget_scale: float,
            references: References, errors: Mapping[tuple[str, int], str]) -> dict[str, Any]:
    """The results document of `seeds` (and of every other seed DIR holds)."""
    cells = []
    for cell in experiment.cells:
        held = {int(p.name.removeprefix("seed-")) for p in (out / cell.name).glob("seed-*")
                if p.name.removeprefix("seed-").isdigit()}
        records = [seed_record(experiment, out, cell, seed, references,
                               errors.get((cell.name, seed)))
                   for seed in sorted(set(seeds) | held)]
        finished = [r for r in records if r["status"] == FINISHED]
        successes = sum(1 for r in finished if r["success"])
        cpu = [r["cpu_seconds"] for r in records if r["cpu_seconds"] is not None]
        cells.append({
            "cell": cell.name, "config": cell.config,
            "overrides": {k: v for k, v in cell.overrides}, "problem": cell.problem,
            "method": cell.method, "budget": budget(cell, budget_scale),
            "runs": len(records), "finished": len(finished), "successes": successes,
            "success_rate": successes / len(finished) if finished else None,
            "cpu_seconds": round(sum(cpu), 1), "seeds": records,
        })
    by_name = {c["cell"]: c for c in cells}
    comparison = []
    for problem, evolution, random in experiment.compared():
        a, b = by_name[evolution.name], by_name[random.name]
        ratio = (a["success_rate"] / b["success_rate"]
                 if a["success_rate"] is not None and b["success_rate"] else None)
        comparison.append({"problem": problem,
                           EVOLUTION: {"successes": a["successes"], "finished": a["finished"]},
                           RANDOM: {"successes": b["successes"], "finished": b["finished"]},
                           "ratio": ratio})
    document = {
        "format": RESULTS_FORMAT, "version": RESULTS_VERSION,
        "experiment": experiment.name, "title": experiment.title,
        "reproduces": experiment.reproduces, "success": experiment.success.describe(),
        "seeds": format_seeds([r["seed"] for c in cells for r in c["seeds"]]),
        "budget_scale": budget_scale,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "azdsl_version": __version__,
        "machine": machine(),
        "cpu_seconds": round(sum(c["cpu_seconds"] for c in cells), 1),
        "cells": cells, "comparison": comparison,
    }
    if experiment.transfer:
        document["transfer"] = transfer.matrix(experiment, out, budget_scale, cells)
    return document


def machine() -> dict[str, Any]:
    """What the results were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu or "unknown", "cores": os.cpu_count(), "system": platform.platform()}


def write(out: Path, document: dict[str, Any]) -> str:
    """DIR/results.json and DIR/results.md (each replaced in one step); the Markdown."""
    write_atomic(out / RESULTS_JSON, json.dumps(document, indent=2) + "\n")
    text = markdown(document)
    write_atomic(out / RESULTS_MD, text)
    return text


# ---- Markdown ---------------------------------------------------------------------------------


def _fitness(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, int | float) else "-"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _seconds(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "-"


def _rate(successes: int, finished: int) -> str:
    return f"{successes}/{finished}" if finished else "-"


def budget_text(b: Mapping[str, Any]) -> str:
    """`1 x 2,000,000 individuals, P = 1000`."""
    limits = [f"{b['max_individuals']:,} individuals" if b["max_individuals"] else "",
              f"{b['max_train_steps']:,} train steps" if b["max_train_steps"] else "",
              f"{b['max_seconds']:g} s" if b["max_seconds"] else ""]
    each = " or ".join(x for x in limits if x)
    runs = (f"{b['max_experiments']} x " if b["max_experiments"] else "experiments of ")
    stop = (f", until select > {b['sufficient_fitness']}" if b["sufficient_fitness"] is not None
            else "")
    return f"{runs}{each}{stop}, P = {b['population_size']}"


def markdown(d: Mapping[str, Any]) -> str:
    reference = any("reference_fitness" in r for c in d["cells"] for r in c["seeds"])
    m = d["machine"]
    lines = [
        f"# {d['experiment']}: {d['title']}", "",
        f"Reproduces {d['reproduces']}.", "",
        f"- success: {d['success']}",
        f"- seeds: {d['seeds']}; budget scale {d['budget_scale']:g}",
        f"- CPU time, all runs: {d['cpu_seconds']:,.0f} s",
        f"- written {d['written']} by azdsl {d['azdsl_version']} on {m['cpu']} "
        f"({m['cores']} cores, {m['system']})", "",
        "| cell | config | method | budget per run | successes | CPU s |",
        "|---|---|---|---|---:|---:|",
    ]
    for c in d["cells"]:
        unfinished = c["runs"] - c["finished"]
        note = f" ({unfinished} not finished)" if unfinished else ""
        lines.append(f"| {c['cell']} | {c['config']} | {c['budget']['method']} | "
                     f"{budget_text(c['budget'])} | {_rate(c['successes'], c['finished'])}"
                     f"{note} | {_seconds(c['cpu_seconds'])} |")
    if d["comparison"]:
        lines += ["", "## Evolution against random search", "",
                  "| problem | evolution | random search | ratio of success rates |",
                  "|---|---:|---:|---:|"]
        for row in d["comparison"]:
            e, r = row[EVOLUTION], row[RANDOM]
            ratio = (f"{row['ratio']:.2f}" if row["ratio"] is not None else
                     "inf (random search: none)" if r["finished"] and e["successes"] else "-")
            lines.append(f"| {row['problem']} | {_rate(e['successes'], e['finished'])} | "
                         f"{_rate(r['successes'], r['finished'])} | {ratio} |")
    head = "| cell | seed | status | success | best search | select | final |"
    rule = "|---|---:|---|---|---:|---:|---:|"
    if reference:
        head, rule = head + " reference |", rule + "---:|"
    lines += ["", "## Runs", "", head + " individuals | CPU s |", rule + "---:|---:|"]
    for c in d["cells"]:
        for r in c["seeds"]:
            success = {True: "yes", False: "no", None: "-"}[r["success"]]
            row = (f"| {c['cell']} | {r['seed']} | {r['status']} | {success} | "
                   f"{_fitness(r.get('search_fitness'))} | {_fitness(r.get('select_fitness'))} | "
                   f"{_fitness(r.get('final_fitness'))} |")
            if reference:
                row += f" {_fitness(r.get('reference_fitness'))} |"
            lines.append(row + f" {_count(r.get('individuals'))} | "
                               f"{_seconds(r['cpu_seconds'])} |")
    if "transfer" in d:
        lines += transfer.markdown(d["transfer"])
    failed = [(c["cell"], r) for c in d["cells"] for r in c["seeds"] if r.get("error")]
    if failed:
        lines += ["", "## Errors", ""]
        lines += [f"- {cell} seed {r['seed']}: {r['error']}" for cell, r in failed]
    return "\n".join(lines) + "\n"
