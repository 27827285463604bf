"""The progress display on stderr: one updating line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from azdsl.language.program import Program


def _count(n: float) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{suffix}"
    return f"{n:.0f}"


def progress_line(record: dict[str, Any]) -> str:
    hits, misses = record.get("fec_hits", 0), record.get("fec_misses", 0)
    fec = f"  FEC {100 * hits / (hits + misses):.0f}%" if hits + misses else ""
    return (f"experiment {record['experiment']}: {record['individuals']:,} individuals, "
            f"{record['individuals_per_second']:,.0f}/s, best {record['best_fitness']:.6f}, "
            f"mean {record['mean_fitness']:.6f}, {_count(record['train_steps'])} steps{fec}")


class ProgressBar:
    """Hooks that draw progress; pass-through for everything else."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self._open = False

    def _line(self, text: str, final: bool) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self._open = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, record: dict[str, Any]) -> None:
        self._line(progress_line(record), final=False)

    def checkpoint(self, state: dict[str, Any]) -> None:
        pass

    def best(self, program: Program, fitness: float) -> None:
        pass

    def experiment(self, record: dict[str, Any]) -> None:
        self._line(progress_line_end(record), final=True)

    def close(self) -> None:
        if self._open and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def progress_line_end(record: dict[str, Any]) -> str:
    return (f"experiment {record['experiment']} done: {record['individuals']:,} individuals in "
            f"{record['seconds']:.1f} s, search fitness {record['search_fitness']:.6f}, "
            f"select fitness {record['select_fitness']:.6f}")


class Tee:
    """Several hooks as one."""

    def __init__(self, *hooks: Any) -> None:
        self.hooks = hooks

    def progress(self, record: dict[str, Any]) -> None:
        for h in self.hooks:
            h.progress(record)

    def checkpoint(self, state: dict[str, Any]) -> None:
        for h in self.hooks:
            h.checkpoint(state)

    def best(self, program: Program, fitness: float) -> None:
        for h in self.hooks:
            h.best(program, fitness)

    def experiment(self, record: dict[str, Any]) -> None:
        for h in self.hooks:
            h.experiment(record)
