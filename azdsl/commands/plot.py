"""`azdsl plot DIR... [--journey]`: figures of runs, sized for a paper.

The progress figure: the best search fitness so far against individuals (from each run's
progress.jsonl), as steps; runs of the same config (the seeds of an experiment's cell) are one
curve, their median, with the band between the quartiles; each experiment's select fitness and
each run's final fitness (report.json) are marked. The journey figure (`--journey`): the
fitness of the best program's ancestry (azdsl.search.journey) against individuals, the largest
jumps labelled with the mutation and an instruction it changed.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azdsl.commands._args import positive
from azdsl.errors import ConfigError

# What `--out`'s suffix may choose; any other is an error rather than matplotlib's guess.
FORMATS = ("png", "pdf", "svg")
_SUFFIXES = ", ".join(f".{name}" for name in FORMATS)
# Figure sizes in inches: a column of a two-column paper, and the page's width.
SIZES = {"single": (3.5, 2.5), "double": (7.0, 3.2)}
_DPI = 200  # PNG only; PDF and SVG are vector
_PROGRESS = "progress.jsonl"
# The same figure, the same bytes: no creation dates or versions in the files.
_NO_DATES: dict[str, dict[str, None]] = {"png": {"Software": None}, "svg": {"Date": None},
                                         "pdf": {"CreationDate": None}}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plot",
        help="plot runs' best fitness against individuals, or a run's journey (needs "
        "matplotlib)",
        description="Draw the best search fitness so far against individuals from each "
        "DIR/progress.jsonl: a run folder, or an experiment folder (each cell one curve). "
        "Runs of the same config are one curve, their median with the interquartile band; "
        "select fitness (o) and final fitness (*) are marked. With --journey, draw instead "
        "the fitness of the best program's ancestry (DIR/lineage.json, as `azdsl lineage`), "
        "its largest jumps labelled with what changed. Needs the `plot` extra: pip install "
        "'azdsl[plot]'.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run folders or experiment folders")
    p.add_argument("--journey", action="store_true",
                   help="the journey of one run's best program (one DIR)")
    p.add_argument("--experiment", type=positive, metavar="N",
                   help="with --journey: the experiment (default: the chosen program's)")
    p.add_argument("--labels", type=positive, default=6, metavar="K",
                   help="with --journey: label the K largest jumps (default 6)")
    p.add_argument("--out", metavar="FILE", help="the image file; its suffix chooses the format: "
                   f"{_SUFFIXES} (default DIR/progress.png, DIR/journey.png with --journey)")
    p.add_argument("--format", choices=FORMATS,
                   help="the format of the default file (with --out, its suffix decides)")
    p.add_argument("--size", choices=tuple(SIZES),
                   help="single column (3.5 in wide) or double (7 in); default single, "
                   "double for --journey")
    p.set_defaults(func=run)


def read_progress(path: Path) -> list[dict[str, Any]]:
    """A run folder's progress records, in order (format keys and all)."""
    file = path / _PROGRESS
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror or exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise ConfigError(f"{file}:{number}: not a JSON line") from None
    if not records:
        raise ConfigError(f"{file}: no progress reports yet")
    return records


@dataclass
class Curve:
    """One run's best search fitness so far, its ends of experiments and its scores."""

    x: list[float]  # total individuals at each record
    best: list[float]  # the best search fitness so far at each record
    selects: list[tuple[float, float]]  # (total individuals, select fitness) per experiment
    final: tuple[float, float] | None  # (total individuals, final fitness) once finished


def read_curve(path: Path) -> Curve:
    records = read_progress(path)
    x, best, top = [], [], -math.inf
    try:
        for r in records:
            top = max(top, float(r.get("best_ever", r["best_fitness"])))
            x.append(float(r["total_individuals"]))
            best.append(top)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path / _PROGRESS}: not azdsl progress records") from None
    selects: list[tuple[float, float]] = []
    final = None
    report = path / "report.json"
    if report.is_file():
        try:
            data = json.loads(report.read_text())
            total = 0.0
            for e in data["experiments"]:
                total += float(e["individuals"])
                selects.append((total, float(e["select_fitness"])))
            final = (float(data["individuals"]), float(data["final_fitness"]))
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{report}: not an azdsl report") from None
    return Curve(x, best, selects, final)


def groups(dirs: list[str]) -> dict[str, list[Path]]:
    """The runs to draw, by curve: an experiment folder's cells, and run folders with the
    same config.toml together (named by their common parent folder, as CELL/seed-N are)."""
    from azdsl.commands.lineage import run_folders_below

    out: dict[str, list[Path]] = {}
    by_config: dict[bytes, list[Path]] = {}
    for name in dirs:
        path = Path(name)
        below = [] if (path / _PROGRESS).exists() else run_folders_below(path)
        if below:
            for run in below:
                out.setdefault(run.parent.name, []).append(run)
            continue
        try:
            key = (path / "config.toml").read_bytes()
        except OSError:
            key = str(path).encode()  # read_progress says what is wrong with it
        by_config.setdefault(key, []).append(path)
    for runs in by_config.values():
        parents = {p.resolve().parent for p in runs}
        name = next(iter(parents)).name if len(runs) > 1 and len(parents) == 1 else (
            runs[0].name + (f" and {len(runs) - 1} more" if len(runs) > 1 else ""))
        out.setdefault(name, []).extend(runs)
    return out


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'azdsl[plot]'") from None
    plt.rcParams.update({"font.size": 7, "axes.titlesize": 7, "legend.fontsize": 6,
                         # text as text (small files); ids the same in every file
                         "svg.fonttype": "none", "svg.hashsalt": "azdsl", "pdf.fonttype": 42})
    return plt


def count(value: float, _position: object = None) -> str:
    """An axis's individual count: 0, 500, 20k, 1.5M (no offset, no scientific notation)."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _axes(plt: Any, size: tuple[float, float], log: bool = False) -> tuple[Any, Any]:
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    fig, ax = plt.subplots(figsize=size)
    if log:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(count))
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    ax.yaxis.set_major_formatter(plain)
    ax.set_ylabel("search fitness")
    ax.grid(alpha=0.3, linewidth=0.5)
    return fig, ax


def _quartiles(curves: list[Curve]) -> tuple[Any, Any, Any, Any]:
    """The curves on one grid (each holding its last value once it ended): x, and the
    median and quartiles over the runs that had started."""
    import numpy as np

    grid = np.unique(np.concatenate([np.asarray(c.x) for c in curves]))
    values = np.full((len(curves), grid.size), np.nan)
    for row, c in zip(values, curves, strict=True):
        at = np.searchsorted(np.asarray(c.x), grid, side="right") - 1  # steps-post
        row[at >= 0] = np.asarray(c.best)[at[at >= 0]]
    low, mid, high = np.nanpercentile(values, [25, 50, 75], axis=0)
    return grid, mid, low, high


def progress_figure(plt: Any, by_curve: dict[str, list[Path]], size: tuple[float, float]
                    ) -> Any:
    fig, ax = _axes(plt, size)
    for number, (name, runs) in enumerate(by_curve.items()):
        curves = [read_curve(p) for p in runs]
        color = f"C{number % 10}"
        label = name if len(runs) == 1 else f"{name} (median of {len(runs)})"
        if len(curves) == 1:
            ax.plot(curves[0].x, curves[0].best, drawstyle="steps-post", color=color,
                    linewidth=1, label=label)
        else:
            grid, mid, low, high = _quartiles(curves)
            ax.plot(grid, mid, drawstyle="steps-post", color=color, linewidth=1, label=label)
            ax.fill_between(grid, low, high, step="post", color=color, alpha=0.2,
                            linewidth=0)
        for c in curves:
            if c.selects:
                ax.plot(*zip(*c.selects, strict=True), "o", markersize=3, color=color,
                        markerfacecolor="none", markeredgewidth=0.7)
            if c.final is not None:
                ax.plot(*c.final, "*", markersize=5, color=color)
    ax.plot([], [], "o", color="0.3", markersize=3, markerfacecolor="none", label="select")
    ax.plot([], [], "*", color="0.3", markersize=5, label="final")
    ax.set_xlabel("individuals")
    ax.legend(loc="lower right", frameon=False)
    return fig


def journey_figure(plt: Any, path: Path, experiment: int | None, labels: int,
                   size: tuple[float, float]) -> Any:
    from azdsl.commands.lineage import load

    j, experiments, _ = load(path, experiment)
    steps = j.steps
    x = [max(s.individual, 1) for s in steps]
    fig, ax = _axes(plt, size, log=True)
    ax.plot(x, [s.fitness for s in steps], drawstyle="steps-post", color="0.7",
            linewidth=0.6, label="each ancestor")
    top, best = [], -math.inf
    for s in steps:
        best = max(best, s.fitness)
        top.append(best)
    ax.plot(x, top, drawstyle="steps-post", color="C0", linewidth=1, label="best ancestor")
    jumps = [jump for jump in j.jumps if jump.index > 0]
    ax.plot([x[jump.index] for jump in jumps], [steps[jump.index].fitness for jump in jumps],
            "o", markersize=2, color="C0")
    shown = sorted(sorted(jumps, key=lambda jump: -jump.gain)[:labels],
                   key=lambda jump: jump.index)
    _label(fig, ax, [(x[jump.index], steps[jump.index].fitness, jump.label)
                     for jump in shown])
    where = f"experiment {j.entry.experiment}" if experiments > 1 else "the run"
    on = ", on its island" if j.islands > 1 else ""
    ax.set_xlabel(f"individuals of {where}{on} (log scale)")
    ax.legend(loc="upper left", frameon=False)
    if j.note is not None:
        ax.set_title(j.note, fontsize=5)
    return fig


def _label(fig: Any, ax: Any, points: list[tuple[float, float, str]]) -> None:
    """Each point's label below and to the right of it, where a rising curve leaves room,
    pushed down so that no two labels share a line, and kept inside the axes."""
    fig.canvas.draw()  # fixes the limits, so that data maps to axes fractions
    to_axes = ax.transAxes.inverted()
    gap = 0.075
    below = 1.0
    placed = []
    for px, py, text in reversed(points):
        ax_x, ax_y = to_axes.transform(ax.transData.transform((px, py)))
        below = max(min(ax_y - gap, below - gap), 0.02)
        placed.append((px, py, ax_x, below, text))
    width = fig.get_size_inches()[0] * ax.get_position().width * 72  # the axes in points
    for px, py, ax_x, ax_y, text in placed:
        right = ax_x + 0.01 + len(text) * 3.2 / width > 0.99
        ax.annotate(text, (px, py), xytext=(0.99 if right else ax_x + 0.01, ax_y),
                    textcoords="axes fraction", ha="right" if right else "left",
                    va="center", fontsize=5.5,
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.8,
                          "linewidth": 0},
                    arrowprops={"arrowstyle": "-", "linewidth": 0.4, "color": "0.5"})


def _output(args: argparse.Namespace) -> tuple[Path, str]:
    if args.out:
        out = Path(args.out)
        image_format = out.suffix[1:].lower()
        if image_format not in FORMATS:
            raise ConfigError(f"{out}: the suffix chooses the image format; use one of "
                              f"{_SUFFIXES}")
        if args.format is not None and args.format != image_format:
            raise ConfigError(f"--format {args.format} and --out {out} disagree")
        return out, image_format
    if len(args.dirs) > 1:
        raise ConfigError("several folders need --out FILE")
    image_format = args.format or "png"
    name = "journey" if args.journey else "progress"
    return Path(args.dirs[0]) / f"{name}.{image_format}", image_format


def run(args: argparse.Namespace) -> int:
    out, image_format = _output(args)
    if args.journey and len(args.dirs) != 1:
        raise ConfigError("--journey draws one run: give one DIR")
    size = SIZES[args.size or ("double" if args.journey else "single")]
    by_curve = {} if args.journey else groups(args.dirs)
    for runs in by_curve.values():  # errors in the folders before matplotlib is needed
        for p in runs:
            read_progress(p)
    plt = _pyplot()
    if args.journey:
        fig = journey_figure(plt, Path(args.dirs[0]), args.experiment, args.labels, size)
    else:
        fig = progress_figure(plt, by_curve, size)
    fig.tight_layout(pad=0.3)
    try:
        fig.savefig(out, dpi=_DPI, format=image_format, metadata=_NO_DATES[image_format])
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    print(out)
    return 0
