"""`azdsl lineage DIR [--experiment N] [--json]`: where the best program of a run came from."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from azdsl.commands._args import positive
from azdsl.errors import ConfigError
from azdsl.search.journey import Journey

_BEST = "best.az"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lineage",
        help="the ancestry of a run's best program: each mutation, fitness and jump",
        description="Read DIR/lineage.json, rebuild every program from the first one of the "
        "best program's ancestry to the best, and print the ancestry: its mutations, its "
        "fitness jumps (the steps that raised the search fitness above every ancestor's), and "
        "at each jump the diff of the simplified programs of its parent and itself. DIR is a "
        "run folder (azdsl evolve --out, azdsl demo --out, or an experiment's CELL/seed-N).",
    )
    p.add_argument("dir", metavar="DIR", help="the run folder")
    p.add_argument("--experiment", type=positive, metavar="N",
                   help="the experiment (from 1; default: the one whose program was chosen)")
    p.add_argument("--min-gain", type=_gain, default=0.0, metavar="G",
                   help="count as jumps only rises of more than G over the jump before "
                   "(default 0: every improvement)")
    p.add_argument("--steps", action="store_true", help="also list every step")
    p.add_argument("--json", action="store_true",
                   help="print the whole ancestry as one JSON document (docs/run-folder.md)")
    p.set_defaults(func=run)


def _gain(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be in [0, 1]")
    return value


def run_folders_below(path: Path) -> list[Path]:
    """The run folders of an experiment folder (DIR/CELL/seed-N/), sorted."""
    return sorted(p.parent for p in path.glob("*/seed-*/run.json"))


def load(path: Path, experiment: int | None = None, min_gain: float = 0.0
         ) -> tuple[Journey, int, bool]:
    """The journey of a run folder's experiment (default: the chosen program's), how many
    experiments the folder's lineage holds, and whether this one's program is the chosen."""
    from azdsl import state as st
    from azdsl.commands._scale import read_settings
    from azdsl.runfolder import LINEAGE, RUN, RunError, RunFolder, read_json
    from azdsl.search.evolve import Search
    from azdsl.search.journey import journey, read_lineage

    if not (path / RUN).exists() and (runs := run_folders_below(path)):
        shown = ", ".join(str(p) for p in runs[:3]) + (", ..." if len(runs) > 3 else "")
        raise RunError(f"{path}: an experiment folder, not a run folder; give one of its "
                       f"runs: {shown}")
    folder = RunFolder(path)
    run = folder.read_run()
    file = path / LINEAGE
    if not file.exists():
        raise RunError(f"{file}: missing (it is written when an experiment ends, and no "
                       "experiment of this run has ended)")
    try:
        entries = read_lineage(file, read_json(file))
    except st.StateError as exc:
        raise RunError(f"{file}: {exc}") from None
    if not entries:
        raise RunError(f"{file}: holds no experiment")
    best = (path / _BEST).read_text() if (path / _BEST).is_file() else None
    chosen = [e for e in entries if e.program == best]
    if experiment is None:
        entry = chosen[-1] if chosen else entries[-1]
    else:
        found = [e for e in entries if e.experiment == experiment]
        if not found:
            raise ConfigError(f"--experiment {experiment}: {file} holds experiments "
                              f"{', '.join(str(e.experiment) for e in entries)}")
        entry = found[0]
    if not entry.ancestry.steps:
        raise RunError(f"{file}: experiment {entry.experiment} has no lineage (its best "
                       "program came from outside the search, without one)")
    search = Search(folder.load_config(run), run["seed"], run["backend"])
    index = entries.index(entry)
    first = None
    if entry.first is not None:
        try:
            first = search.checked_program(entry.first, f"experiments[{index}].first")
        except st.StateError as exc:
            raise RunError(f"{file}: {exc}") from None
    settings = read_settings(path)
    return (journey(entry, first, search.mutation, min_gain,
                    settings.islands if settings is not None else 1),
            len(entries), bool(chosen) and entry is chosen[-1])


def run(args: argparse.Namespace) -> int:
    from azdsl.search.journey import to_json

    j, experiments, chosen = load(Path(args.dir), args.experiment, args.min_gain)
    if args.json:
        print(json.dumps(to_json(j, args.dir, experiments), indent=1, allow_nan=False))
    else:
        print(text(j, args.dir, experiments, chosen, args.steps), end="")
    return 0


def _where(j: Journey, index: int) -> str:
    from azdsl.language.program import COMPONENTS
    from azdsl.search.journey import island

    step = j.steps[index]
    place = f"island {island(step.id)}, " if j.islands > 1 else ""
    parent = j.steps[index - 1] if index else None
    if parent is not None and island(parent.id) != island(step.id):
        place = f"island {island(step.id)} (from a migrant of island {island(parent.id)}), "
    where = ""
    if step.component >= 0:
        where = f" in {COMPONENTS[step.component].value}"
        if step.position >= 0:
            where += f" at {step.position}"
    return f"{place}individual {step.individual:,}: {step.mutation}{where}"


def text(j: Journey, run: str, experiments: int, chosen: bool, all_steps: bool = False
         ) -> str:
    """The human form: a summary, the first program, each jump with its diff, the best."""
    from azdsl.language.printer import unparse
    from azdsl.language.simplify import simplify

    steps = j.steps
    which = "the chosen program's" if chosen else "not the chosen program's"
    made = Counter(s.mutation for s in steps[1:])
    lines = [f"azdsl lineage {run}: experiment {j.entry.experiment} of {experiments} ({which})",
             f"{len(steps):,} steps, from {_where(j, 0)}, search fitness "
             f"{steps[0].fitness:.6f}, to individual {steps[-1].individual:,}, search fitness "
             f"{steps[-1].fitness:.6f}; {len(j.jumps)} fitness jumps",
             "made by: " + (", ".join(f"{n:,} {name}" for name, n in made.most_common())
                            or "nothing (the first program is the best)")]
    if j.note is not None:
        lines.append(f"note: {j.note}")
    if j.programs:
        lines += ["", "the first program (simplified):",
                  unparse(simplify(j.programs[0])).rstrip("\n")]
    if all_steps:
        lines += ["", "every step:"]
        lines += [f"  {i:>6}  {_where(j, i)}  fitness {s.fitness:.6f}"
                  for i, s in enumerate(steps)]
    lines.append("")
    for number, jump in enumerate(j.jumps, 1):
        fitness = steps[jump.index].fitness
        gain = "" if number == 1 else f" (+{_number(jump.gain)})"
        lines.append(f"jump {number}, step {jump.index}, {_where(j, jump.index)}: "
                     f"fitness {fitness:.6f}{gain}")
        for component, changed in (jump.diff or {}).items():
            lines += [f"  {component}: {line}" for line in changed]
    if len(j.programs) == len(steps):
        lines += ["", "the best program (simplified):",
                  unparse(simplify(j.programs[-1])).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _number(gain: float) -> str:
    """A gain with 6 decimals, more where it is smaller (2 significant digits), never in e
    notation."""
    if gain <= 0 or not math.isfinite(gain):
        return f"{gain:.6f}"
    digits = max(6, 1 - math.floor(math.log10(gain)))
    return f"{gain:.{digits}f}"
