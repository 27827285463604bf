"""`azdsl plot DIR [--out FILE]`: best and mean fitness against individuals, from progress.jsonl."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from azdsl.errors import ConfigError

# What `--out`'s suffix may choose; any other is an error rather than matplotlib's guess.
FORMATS = ("png", "pdf", "svg")
_SUFFIXES = ", ".join(f".{name}" for name in FORMATS)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plot",
        help="plot a run's best and mean fitness against individuals (needs matplotlib)",
        description="Draw the best and the mean fitness of the population against the number "
        "of individuals, one line per experiment, from DIR/progress.jsonl, to an image file "
        "(default DIR/progress.png). Needs the `plot` extra: pip install 'azdsl[plot]'.",
    )
    p.add_argument("dir", metavar="DIR", help="the run folder")
    p.add_argument("--out", metavar="FILE", help="the image file; its suffix chooses the format: "
                   f"{_SUFFIXES} (default DIR/progress.png)")
    p.set_defaults(func=run)


def read_progress(path: Path) -> list[dict[str, Any]]:
    file = path / "progress.jsonl"
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


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.dir) / "progress.png"
    image_format = out.suffix[1:].lower()
    if image_format not in FORMATS:
        raise ConfigError(f"{out}: the suffix chooses the image format; use one of {_SUFFIXES}")
    records = read_progress(Path(args.dir))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'azdsl[plot]'") from None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    experiments = sorted({int(r["experiment"]) for r in records})
    for number in experiments:
        rows = [r for r in records if int(r["experiment"]) == number]
        x = [r["total_individuals"] for r in rows]
        label = f" (experiment {number})" if len(experiments) > 1 else ""
        ax.plot(x, [r["best_fitness"] for r in rows], label="best" + label)
        ax.plot(x, [r["mean_fitness"] for r in rows], linestyle="--", label="mean" + label)
    ax.set_xlabel("individuals")
    ax.set_ylabel("search fitness")
    ax.set_title(f"azdsl run {Path(args.dir).name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=100, format=image_format)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write ({exc.strerror or exc})") from None
    plt.close(fig)
    print(out)
    return 0
