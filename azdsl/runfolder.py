"""A run folder: the config, the seed, progress.jsonl, best.az, checkpoints and the report.

Layout of DIR:
  config.toml        the config as given (byte for byte)
  run.json           seed, backend, and the text of every program file the config names
  progress.jsonl     one JSON object per progress report
  best.az            the best program so far, canonical text (replaced atomically)
  checkpoint.json    the search state: one JSON document (format, version, the SHA-256 and
                     length of the state, then the state), written to a temporary file and
                     moved into place; the one before it is kept as checkpoint.prev.json
  lineage.json       per finished experiment, the ancestry of its best program: its first
                     program's text and one row per individual from there to the best
                     (azdsl.search.lineage; format and version keys, the row fields named)
  hall_of_fame.json  the best distinct programs so far with fitness, live size and where they
                     appeared, and their fitness-vs-size front (azdsl.search.hall_of_fame)
  report.json / report.txt   when the run is finished (report.json has format and version)

`azdsl resume DIR` restores the last checkpoint, cuts progress.jsonl back to the reports it
had seen, and goes on; a run resumed this way ends exactly where an uninterrupted run ends.
Nothing here is a pickle: programs are text, random streams are counter-based keys.

Every file of a folder is read as user input (it can be edited, its checksum is no defence):
run.json and the checkpoint field by field (azdsl.state), all of it before anything in the
folder changes. A file the OS will not let us write is a RunError naming it, and leaves no
temporary file behind; a folder that cannot be made whole is removed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from azdsl import __version__
from azdsl import state as st
from azdsl.errors import AzdslError, ConfigError
from azdsl.language.printer import unparse
from azdsl.language.program import Program
from azdsl.limits import SEED_LIMIT
from azdsl.running.evaluate import SEARCH_BACKENDS
from azdsl.search import hall_of_fame as hof
from azdsl.search.config import Config, ProgramFile, load_config, parse_config
from azdsl.search.evolve import Result, Search
from azdsl.search.lineage import lineage_document

RUN_FORMAT = "azdsl-run"
CHECKPOINT_FORMAT = "azdsl-checkpoint"
REPORT_FORMAT = "azdsl-report"
PROGRESS_FORMAT = "azdsl-progress"  # every line of progress.jsonl
CHECKPOINT_VERSION = 2  # 1: a header line, then the state on the next line
VERSION = 1

CONFIG = "config.toml"
RUN = "run.json"
PROGRESS = "progress.jsonl"
BEST = "best.az"
CHECKPOINT = "checkpoint.json"
PREVIOUS = "checkpoint.prev.json"
REPORT_JSON = "report.json"
REPORT_TEXT = "report.txt"
LINEAGE = "lineage.json"
HALL_OF_FAME = "hall_of_fame.json"


class RunError(ConfigError):
    """A run folder that cannot be created or resumed."""


class WriteError(RunError):
    """A file of a run folder that the OS would not write (a full disk, a read-only place)."""


def message(error: AzdslError) -> str:
    """An error's text without the `azdsl: error:` a report puts before it."""
    return "\n".join(d.message for d in error.diagnostics)


def write_atomic(path: Path, data: str | bytes, *, keep: Path | None = None,
                 tmp: Path | None = None) -> None:
    """Write a file so that readers see the old content or the new, never a part; with
    `keep`, the old file is moved there first. WriteError, the temporary file removed, when
    the OS refuses."""
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep is not None and path.exists():
            os.replace(path, keep)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None


def read_text(path: Path) -> str:
    """A run folder file's text; RunError naming it when it cannot be read or is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise RunError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_json(path: Path) -> Any:
    """A run folder file's JSON value; RunError naming it otherwise."""
    try:
        return json.loads(read_text(path))
    except (ValueError, RecursionError) as exc:  # not JSON, or nested beyond reason
        raise RunError(f"{path}: not valid JSON ({exc})") from None


def _state_text(state: dict[str, Any]) -> str:
    """The state as the checksum covers it: compact JSON, keys in their order (json reads back
    every value it writes exactly, so a decoded state re-encodes to the same text)."""
    return json.dumps(state, separators=(",", ":"))


def encode_checkpoint(state: dict[str, Any]) -> str:
    """One JSON document: format, version, the state's SHA-256 and length, then the state."""
    payload = _state_text(state)
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
              "sha256": hashlib.sha256(payload.encode()).hexdigest(), "length": len(payload)}
    return json.dumps(header)[:-1] + ', "state": ' + payload + "}\n"


def decode_checkpoint(text: str, name: str) -> dict[str, Any]:
    """The state in a checkpoint file (this version's, or version 1's header line followed by
    the state); RunError saying what is wrong otherwise."""
    head, _, rest = text.partition("\n")
    try:
        first = json.loads(head)
        whole = not rest.strip(" \t\n\r")  # the first line is all of it (this version's)
    except (ValueError, RecursionError):
        first, whole = None, False
    if isinstance(first, dict) and first.get("format") == CHECKPOINT_FORMAT and first.get(
            "version") == 1:
        header, payload, state = first, rest.rstrip("\n"), None
    else:
        try:
            document = first if whole else json.loads(text)  # the whole state parsed once
        except RecursionError:
            raise RunError(f"{name}: corrupt checkpoint (nested too deeply)") from None
        except ValueError as exc:
            looks_like = text.lstrip().startswith('{"format": "' + CHECKPOINT_FORMAT)
            raise RunError(f"{name}: corrupt checkpoint ({exc})" if looks_like else
                           f"{name}: not an azdsl checkpoint") from None
        if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{name}: not an azdsl checkpoint")
        if document.get("version") != CHECKPOINT_VERSION:
            raise RunError(f"{name}: checkpoint version {document.get('version')!r} is not "
                           f"supported (this azdsl reads versions 1 and {CHECKPOINT_VERSION})")
        header, state = document, document.get("state")
        if not isinstance(state, dict):
            raise RunError(f"{name}: corrupt checkpoint (no state object)")
        payload = _state_text(state)
    if hashlib.sha256(payload.encode()).hexdigest() != header.get("sha256"):
        raise RunError(f"{name}: corrupt checkpoint (its content does not match its "
                       f"checksum: {len(payload)} of {header.get('length')} characters)")
    if state is None:
        try:
            state = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # a checksum made for text that is no JSON
            raise RunError(f"{name}: corrupt checkpoint ({exc})") from None
    if not isinstance(state, dict):
        raise RunError(f"{name}: corrupt checkpoint (no state object)")
    return state


class RunFolder:
    """The files of one run; also the search's Hooks (progress, best, checkpoints)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.progress_file = self.path / PROGRESS

    # ---- creating and opening ---------------------------------------------------------------

    def check_new(self) -> None:
        """RunError unless the folder can be a new run's: absent, or an empty folder."""
        if self.path.is_dir():
            try:
                used = any(self.path.iterdir())
            except OSError as exc:
                raise RunError(f"{self.path}: cannot read the folder "
                               f"({exc.strerror or exc})") from None
            if used:
                hint = " (resume it with `azdsl resume`)" if (self.path / RUN).exists() else ""
                raise RunError(f"{self.path}: the folder exists and is not empty{hint}; "
                               "choose another --out")
        elif self.path.exists() or self.path.is_symlink():
            raise RunError(f"{self.path}: exists and is not a folder; choose another --out")

    @staticmethod
    def create(path: str | Path, config_text: str, config: Config, seed: int,
               backend: str, config_source: str, extra: Mapping[str, str] | None = None
               ) -> RunFolder:
        """A new run's folder with its first files (`extra`: more, by name). When it cannot
        be made whole, what was made is removed again (never a folder that was there)."""
        folder = RunFolder(path)
        folder.check_new()
        run = {
            "format": RUN_FORMAT, "version": VERSION, "seed": seed, "backend": backend,
            "config_source": config_source, "azdsl_version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": {key: {"path": f.path, "resolved": f.resolved, "text": f.text}
                      for key, f in config.files().items()},
        }
        files = {CONFIG: config_text, RUN: json.dumps(run, indent=2) + "\n", **(extra or {}),
                 PROGRESS: ""}
        made: list[Path] = []
        try:
            for directory in reversed([p for p in (folder.path, *folder.path.parents)
                                       if not p.exists()]):
                try:
                    directory.mkdir()
                except OSError as exc:
                    raise RunError(f"{directory}: cannot make the folder "
                                   f"({exc.strerror or exc})") from None
                made.append(directory)
            for name, text in files.items():
                write_atomic(folder.path / name, text)
                made.append(folder.path / name)
        except RunError:
            for made_path in reversed(made):  # files first, then the folders, innermost first
                with contextlib.suppress(OSError):
                    if made_path.is_dir():
                        made_path.rmdir()
                    else:
                        made_path.unlink()
            raise
        return folder

    def read_run(self) -> dict[str, Any]:
        """run.json, every field checked."""
        file = self.path / RUN
        if not file.exists() and not file.is_symlink():
            raise RunError(f"{self.path}: not a run folder (no {RUN})")
        run = read_json(file)
        if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
            raise RunError(f"{file}: not an azdsl run description")
        f = st.Fields(run, "")
        try:
            f.integer("version", VERSION, VERSION)
            f.integer("seed", 0, SEED_LIMIT - 1)
            if f.text("backend") not in SEARCH_BACKENDS:
                raise st.StateError(f"backend: {run['backend']!r} is not a backend (known: "
                                    f"{', '.join(SEARCH_BACKENDS)})")
            f.text("config_source")
            files = f.table("files")
            for key in files.data:
                entry = files.table(key)
                for name in ("path", "resolved", "text"):
                    entry.text(name)
        except st.StateError as exc:
            raise RunError(f"{file}: {exc} (nothing was changed)") from None
        return run

    def load_config(self, run: dict[str, Any]) -> Config:
        file = self.path / CONFIG
        text = read_text(file)
        files = {key: ProgramFile(f["path"], f["resolved"], f["text"])
                 for key, f in run["files"].items()}
        source = Path(run["config_source"])
        return parse_config(text, filename=str(file), base_dir=source.parent, files=files)

    def load_checkpoint(self) -> tuple[dict[str, Any], Path] | None:
        """The last checkpoint's state and file, None when the run never wrote one."""
        current, previous = self.path / CHECKPOINT, self.path / PREVIOUS
        for file in (current, previous):  # only the previous: stopped between two renames
            if file.exists() or file.is_symlink():
                try:
                    return decode_checkpoint(read_text(file), str(file)), file
                except RunError as exc:
                    raise self.rejected(file, message(exc)) from None
        return None

    def rejected(self, file: Path, problem: str) -> RunError:
        """A checkpoint that cannot be resumed from: the problem, and what to do instead."""
        previous = self.path / PREVIOUS
        extra = (f"; the checkpoint before it is {previous}: copy it over {file} to resume "
                 "from there") if file != previous and previous.exists() else ""
        return RunError(f"{problem}{extra} (nothing was changed)")

    # ---- hooks ------------------------------------------------------------------------------

    def progress(self, record: dict[str, Any]) -> None:
        try:
            with self.progress_file.open("a") as handle:
                # each record names its format, so a line read alone says what it is
                handle.write(json.dumps({"format": PROGRESS_FORMAT, "version": VERSION,
                                         **record}) + "\n")
        except OSError as exc:  # a part of a line is dropped when the run is resumed
            raise WriteError(f"{self.progress_file}: cannot write "
                             f"({exc.strerror or exc})") from None

    def checkpoint(self, state: dict[str, Any]) -> None:
        write_atomic(self.path / CHECKPOINT, encode_checkpoint(state),
                     keep=self.path / PREVIOUS, tmp=self.path / f".{CHECKPOINT}.tmp")
        # hall_of_fame.json: the state's, rewritten when an experiment's end changed it
        fame = state.get("hall_of_fame") or []
        if fame and fame != getattr(self, "_fame_written", None):
            write_atomic(self.path / HALL_OF_FAME, json.dumps(hof.document(fame), indent=1)
                         + "\n")
            self._fame_written = fame

    def best(self, program: Program, fitness: float) -> None:
        write_atomic(self.path / BEST, unparse(program))

    def experiment(self, record: dict[str, Any]) -> None:
        """lineage.json: the ancestry of each finished experiment's best program, this one's
        added to (or, after a resume, put again over) those the file holds."""
        entries: dict[int, Any] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            for entry in json.loads((self.path / LINEAGE).read_text())["experiments"]:
                entries[int(entry["experiment"])] = entry
        entries[int(record["experiment"])] = {"experiment": record["experiment"],
                                              "program": record["program"],
                                              **record["lineage"]}
        write_atomic(self.path / LINEAGE, json.dumps(lineage_document(
            [entries[k] for k in sorted(entries)])) + "\n")

    def truncate_progress(self, records: int) -> None:
        """Keep the first `records` lines of progress.jsonl (those before the checkpoint)."""
        try:
            data = self.progress_file.read_bytes()
        except FileNotFoundError:
            write_atomic(self.progress_file, "")
            return
        except OSError as exc:
            raise RunError(f"{self.progress_file}: cannot read ({exc.strerror or exc})"
                           ) from None
        *complete, partial = data.split(b"\n")
        if len(complete) != records or partial:
            write_atomic(self.progress_file, b"".join(line + b"\n"
                                                      for line in complete[:records]))

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
        "format": REPORT_FORMAT, "version": VERSION,
        "seed": run.get("seed", search.seed),
        "backend": run.get("backend", search.backend),
        # each experiment's record, its lineage kept in lineage.json
        "experiments": [{k: v for k, v in e.items() if k != "lineage"}
                        for e in result.experiments],
        "individuals": result.individuals,
        "train_steps": result.train_steps,
        "seconds": round(sum(float(e["seconds"]) for e in result.experiments), 3),
        "program": unparse(result.program),
        "simplified": unparse(result.simplified),
        "select_fitness": result.select_fitness,
        "final_fitness": result.final_fitness,
        "final_task_fitness": final.get("task_fitness", []),
        # "" when the config has its own select / final tasks, else what stood in for them
        "select_tasks_stand_in": search.config.select_tasks.scored_on("select_tasks"),
        "final_tasks_stand_in": search.config.final_tasks.scored_on("final_tasks"),
        # the hall of fame's fitness-vs-size front (all of it in hall_of_fame.json)
        "front": [e.to_json() for e in result.pareto_front()],
    }


def _stand_in(report: dict[str, Any], role: str) -> str:
    """` (on the search tasks, as the config has no [final_tasks])` where that happened."""
    stand_in = report.get(f"{role}_tasks_stand_in")
    if not stand_in:
        return ""
    return f" (on {stand_in}; not unseen tasks)" if role == "final" else f" (on {stand_in})"


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
        f"select fitness{_stand_in(report, 'select')}: {report['select_fitness']:.6f}",
        f"final fitness{_stand_in(report, 'final') or ' (unseen tasks)'}: "
        f"{report['final_fitness']:.6f}",
        "",
        "the program (simplified):",
        report["simplified"].rstrip("\n"),
    ]
    front = report.get("front") or []
    if len(front) > 1:  # simpler programs than the fittest: worth a look
        lines += ["", "simpler programs (the hall of fame's fitness-vs-size front):",
                  "live size  search fitness  experiment  individual"]
        lines += [f"{e['size']:>9}  {e['fitness']:>14.6f}  {e['experiment']:>10}  "
                  f"{e['individual']:>10}" for e in front]
    return "\n".join(lines) + "\n"


def config_of(path: str | Path) -> Config:
    """The config a command scores on: a config file, or a run folder's own (the config it ran
    with and the program files it read then, wherever they are now)."""
    if Path(path).is_dir():
        folder = RunFolder(path)
        return folder.load_config(folder.read_run())
    return load_config(path)


def open_search(folder: RunFolder, *, hooks: Any = None) -> tuple[Search, dict[str, Any]]:
    """The search of an existing run folder, restored from its last checkpoint."""
    run = folder.read_run()
    config = folder.load_config(run)
    search = Search(config, run["seed"], run["backend"], hooks or folder)
    restore_checkpoint(folder, search)
    return search, run


class Restorable(Protocol):
    """A search that continues from a state (evolve.Search, parallel.IslandRun)."""

    @property
    def progress_records(self) -> int: ...

    def restore(self, state: Any) -> None: ...


def restore_checkpoint(folder: RunFolder, search: Restorable) -> None:
    """Continue `search` from the folder's last checkpoint, if any, and cut progress.jsonl
    back to the reports it had seen: only once all of the checkpoint is read and checked."""
    found = folder.load_checkpoint()
    if found is not None:
        state, file = found
        try:
            search.restore(state)
        except (KeyError, TypeError, ValueError) as exc:  # st.StateError names the field
            raise folder.rejected(file, f"{file}: {exc}") from None
    folder.truncate_progress(search.progress_records)
