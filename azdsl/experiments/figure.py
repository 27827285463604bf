"""An experiment's figure, DIR/results.png and DIR/results.svg, drawn from its results document.

Experiments that search problems with evolution and with random search (Fig. 4) get the
success rate of each method per problem, with a 95 % Wilson interval: with ten seeds a cell's
rate is known only to within about ±0.3, and the figure should say so. Experiments judged
against a reference program get each seed's final fitness beside the reference's on the same
tasks. Needs matplotlib (the `plot` extra); without it nothing is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azdsl.experiments.definitions import EVOLUTION, RANDOM

FIGURE_NAMES = ("results.png", "results.svg")
_WIDTH_IN = 3.5  # a paper's single column
_Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval


def wilson_interval(successes: int, trials: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval of a success rate: unlike the normal approximation it stays
    inside [0, 1] and is not empty at 0 or n successes."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def write_figure(out: Path, document: Mapping[str, Any]) -> list[Path]:
    """Draw the document's figure into `out` (DIR/results.png and .svg); the files written,
    none when matplotlib is missing or no run has finished."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    if document["comparison"]:
        rows = [r for r in document["comparison"]
                if r[EVOLUTION]["finished"] or r[RANDOM]["finished"]]
        if not rows:
            return []
        fig = _success_rates(plt, rows, document)
    else:
        seeds = [(c["cell"], r) for c in document["cells"] for r in c["seeds"]
                 if r.get("final_fitness") is not None]
        if not seeds:
            return []
        fig = _final_fitness(plt, seeds, document)
    paths = [out / name for name in FIGURE_NAMES]
    try:
        for path in paths:
            fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    finally:
        plt.close(fig)
    return paths


def _success_rates(plt: Any, rows: Sequence[Mapping[str, Any]],
                   document: Mapping[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(_WIDTH_IN * 2, 2.6), layout="constrained")
    width = 0.38
    for offset, method, colour, label in ((-width / 2, EVOLUTION, "#1f77b4", "evolution"),
                                          (width / 2, RANDOM, "#bbbbbb", "random search")):
        rates, low, high = [], [], []
        for row in rows:
            done, won = row[method]["finished"], row[method]["successes"]
            rate = won / done if done else 0.0
            lo, hi = wilson_interval(won, done)
            rates.append(rate)
            low.append(rate - lo)
            high.append(hi - rate)
        xs = [i + offset for i in range(len(rows))]
        ax.bar(xs, rates, width, color=colour, edgecolor="black", linewidth=0.5, label=label,
               yerr=[low, high], capsize=3, error_kw={"linewidth": 0.8})
        for x, row in zip(xs, rows, strict=True):
            ax.annotate(f"{row[method]['successes']}/{row[method]['finished']}", (x, 0),
                        xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
    ax.set_xticks(range(len(rows)), [str(r["problem"]) for r in rows], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(f"{document['title']} (seeds {document['seeds']}, budget scale "
                 f"{document['budget_scale']:g}; bars: 95 % Wilson intervals)", fontsize=8)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    return fig


def _final_fitness(plt: Any, seeds: Sequence[tuple[str, Mapping[str, Any]]],
                   document: Mapping[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(_WIDTH_IN, 2.6), layout="constrained")
    xs = list(range(len(seeds)))
    finals = [r["final_fitness"] for _, r in seeds]
    colours = ["#2ca02c" if r.get("success") else "#d62728" for _, r in seeds]
    ax.scatter(xs, finals, c=colours, s=18, zorder=3, label="evolved (green: success)")
    references = [r.get("reference_fitness") for _, r in seeds]
    if any(v is not None for v in references):
        ax.scatter(xs, [math.nan if v is None else v for v in references], marker="_", s=120,
                   color="black", zorder=2, label="hand-written reference")
    ax.set_xticks(xs, [str(r["seed"]) for _, r in seeds], fontsize=7)
    ax.set_xlabel("seed")
    ax.set_ylabel("final fitness (unseen tasks)")
    won = sum(1 for _, r in seeds if r.get("success"))
    ax.set_title(f"{document['experiment']}: {won}/{len(seeds)} successes", fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig
