"""A run folder: the config, the seed, progress.jsonl, best.az, checkpoints and the report.

Layout of DIR:
  config.toml        the config as given (byte for byte)
  run.json           seed, backend, and the text of every program file the config names
  progress.jsonl     one JSON object per progress report
  best.az            the best program so far, canonical text (replaced atomically)
  checkpoint.json    the search state (a header line with a SHA-256, then the JSON state),
                     written to a temporary file and moved into place; the one before it is
                     kept as checkpoint.prev.json
  report.json / report.txt   when the run is finished

`azdsl resume DIR` restores the last checkpoint, cuts progress.jsonl back to the reports it
had seen, and goes on; a run resumed this way ends exactly where an uninterrupted run ends.
Nothing here is a pickle: programs are text, generators are their state dicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

from azdsl import __version__
from azdsl.config import Config, ProgramFile, parse_config
from azdsl.errors import ConfigError
from azdsl.evolve import Result, Search
from azdsl.printer import unparse
from azdsl.program import Program

RUN_FORMAT = "azdsl-run"
CHECKPOINT_FORMAT = "azdsl-checkpoint"
VERSION = 1

CONFIG = "config.toml"
RUN = "run.json"
PROGRESS = "progress.jsonl"
BEST = "best.az"
CHECKPOINT = "checkpoint.json"
PREVIOUS = "checkpoint.prev.json"
REPORT_JSON = "report.json"
REPORT_TEXT = "report.txt"


class RunError(ConfigError):
    """A run folder that cannot be created or resumed."""


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def encode_checkpoint(state: dict[str, Any]) -> str:
    payload = json.dumps(state, separators=(",", ":"))
    header = {"format": CHECKPOINT_FORMAT, "version": VERSION,
              "sha256": hashlib.sha256(payload.encode()).hexdigest(), "length": len(payload)}
    return json.dumps(header) + "\n" + payload + "\n"


def decode_checkpoint(text: str, name: str) -> dict[str, Any]:
    """The state in a checkpoint file; RunError saying what is wrong otherwise."""
    head, _, rest = text.partition("\n")
    try:
        header = json.loads(head)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise RunError(f"{name}: not an azdsl checkpoint (the first line is not its header)")
    if header.get("version") != VERSION:
        raise RunError(f"{name}: checkpoint version {header.get('version')} is not supported "
                       f"(this azdsl reads version {VERSION})")
    payload = rest.rstrip("\n")
    if hashlib.sha256(payload.encode()).hexdigest() != header.get("sha256"):
        raise RunError(f"{name}: corrupt checkpoint (its content does not match its "
                       f"checksum: {len(payload)} of {header.get('length')} characters)")
    state = json.loads(payload)
    if not isinstance(state, dict):
        raise RunError(f"{name}: corrupt checkpoint (no state object)")
    return state


class RunFolder:
    """The files of one run; also the search's Hooks (progress, best, checkpoints)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.progress_file = self.path / PROGRESS

    # ---- creating and opening ---------------------------------------------------------------

    @staticmethod
    def create(path: str | Path, config_text: str, config: Config, seed: int,
               backend: str, config_source: str) -> RunFolder:
        folder = RunFolder(path)
        if folder.path.exists() and any(folder.path.iterdir()):
            hint = " (resume it with `azdsl resume`)" if (folder.path / RUN).exists() else ""
            raise RunError(f"{folder.path}: the folder exists and is not empty{hint}; "
                           "choose another --out")
        folder.path.mkdir(parents=True, exist_ok=True)
        (folder.path / CONFIG).write_text(config_text)
        run = {
            "format": RUN_FORMAT, "version": VERSION, "seed": seed, "backend": backend,
            "config_source": config_source, "azdsl_version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": {key: {"path": f.path, "resolved": f.resolved, "text": f.text}
                      for key, f in config.files().items()},
        }
        write_atomic(folder.path / RUN, json.dumps(run, indent=2) + "\n")
        folder.progress_file.touch()
        return folder

    def read_run(self) -> dict[str, Any]:
        file = self.path / RUN
        try:
            run = json.loads(file.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path}: not a run folder (no {RUN})") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{file}: unreadable ({exc})") from None
        if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
            raise RunError(f"{file}: not an azdsl run description")
        return run

    def load_config(self, run: dict[str, Any]) -> Config:
        file = self.path / CONFIG
        try:
            text = file.read_text()
        except OSError as exc:
            raise RunError(f"{file}: cannot read ({exc.strerror or exc})") from None
        files = {key: ProgramFile(f["path"], f["resolved"], f["text"])
                 for key, f in run.get("files", {}).items()}
        source = Path(run.get("config_source", str(file)))
        return parse_config(text, filename=str(file), base_dir=source.parent, files=files)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint's state, None when the run never wrote one."""
        current, previous = self.path / CHECKPOINT, self.path / PREVIOUS
        if current.exists():
            try:
                return decode_checkpoint(current.read_text(), str(current))
            except (RunError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                extra = (f"; the checkpoint before it is {previous}: copy it over {current} "
                         "to resume from there") if previous.exists() else ""
                message = exc.render() if isinstance(exc, RunError) else (
                    f"{current}: corrupt checkpoint ({exc})")
                raise RunError(message + extra + " (nothing was changed)") from None
        if previous.exists():  # stopped between the two renames of a checkpoint
            return decode_checkpoint(previous.read_text(), str(previous))
        return None

    # ---- hooks ------------------------------------------------------------------------------

    def progress(self, record: dict[str, Any]) -> None:
        with self.progress_file.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def checkpoint(self, state: dict[str, Any]) -> None:
        current = self.path / CHECKPOINT
        tmp = self.path / f".{CHECKPOINT}.tmp"
        with tmp.open("w") as handle:
            handle.write(encode_checkpoint(state))
            handle.flush()
            os.fsync(handle.fileno())
        if current.exists():
            os.replace(current, self.path / PREVIOUS)
        os.replace(tmp, current)

    def best(self, program: Program, fitness: float) -> None:
        write_atomic(self.path / BEST, unparse(program))

    def experiment(self, record: dict[str, Any]) -> None:
        pass

    def truncate_progress(self, records: int) -> None:
        """Keep the first `records` lines of progress.jsonl (those before the checkpoint)."""
        if not self.progress_file.exists():
            self.progress_file.touch()
            return
        lines = self.progress_file.read_text().splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n")]
        if len(complete) != records or len(lines) != records:
            write_atomic(self.progress_file, "".join(complete[:records]))

    # ---- the report -------------------------------------------------------------------------

    def write_report(self, search: Search, result: Result, run: dict[str, Any]) -> str:
        report = report_data(search, result, run)
        write_atomic(self.path / REPORT_JSON, json.dumps(report, indent=2) + "\n")
        text = report_text(report)
        write_atomic(self.path / REPORT_TEXT, text)
        return text


def report_data(search: Search, result: Result, run: dict[str, Any]) -> dict[str, Any]:
    final = search.final or {}
    return {
        "seed": run.get("seed", search.seed),
        "backend": run.get("backend", search.backend),
        "experiments": result.experiments,
        "individuals": result.individuals,
        "train_steps": result.train_steps,
        "seconds": round(sum(float(e["seconds"]) for e in result.experiments), 3),
        "program": unparse(result.program),
        "simplified": unparse(result.simplified),
        "select_fitness": result.select_fitness,
        "final_fitness": result.final_fitness,
        "final_task_fitness": final.get("task_fitness", []),
    }


def report_text(report: dict[str, Any]) -> str:
    lines = [f"azdsl evolve, seed {report['seed']}, backend {report['backend']}", "",
             "experiment  individuals  seconds  search fitness  select fitness"]
    for e in report["experiments"]:
        lines.append(f"{e['experiment']:>10}  {e['individuals']:>11,}  {e['seconds']:>7.1f}  "
                     f"{e['search_fitness']:>14.6f}  {e['select_fitness']:>14.6f}")
    lines += [
        "",
        f"individuals: {report['individuals']:,}  train steps: {report['train_steps']:,}  "
        f"search time: {report['seconds']:.1f} s",
        f"select fitness: {report['select_fitness']:.6f}",
        f"final fitness (unseen tasks): {report['final_fitness']:.6f}",
        "",
        "the program (simplified):",
        report["simplified"].rstrip("\n"),
    ]
    return "\n".join(lines) + "\n"


def open_search(folder: RunFolder, *, hooks: Any = None) -> tuple[Search, dict[str, Any]]:
    """The search of an existing run folder, restored from its last checkpoint."""
    run = folder.read_run()
    config = folder.load_config(run)
    search = Search(config, int(run["seed"]), str(run["backend"]), hooks or folder)
    restore_checkpoint(folder, search, folder.load_checkpoint())
    return search, run


class Restorable(Protocol):
    """A search that continues from a state (evolve.Search, parallel.IslandRun)."""

    @property
    def progress_records(self) -> int: ...

    def restore(self, state: dict[str, Any]) -> None: ...


def restore_checkpoint(folder: RunFolder, search: Restorable,
                       state: dict[str, Any] | None) -> None:
    """Continue `search` from `state` (the folder's last checkpoint, if any) and cut
    progress.jsonl back to the reports that state had seen."""
    if state is not None:
        try:
            search.restore(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{folder.path / CHECKPOINT}: does not fit this run ({exc}); "
                           "nothing was changed") from None
    folder.truncate_progress(search.progress_records)
