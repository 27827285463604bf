"""`azdsl ops [--markdown] [--extension FILE]`: the op table (code, canonical spelling, kinds,
doc) and the fitnesses."""

from __future__ import annotations

import argparse
from typing import Any

from azdsl.commands._args import add_extension_option, load_extension_option
from azdsl.language.ops import OPS, Op


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ops", help="list the ops",
                              description="List the ops of the language, from the op table.")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    add_extension_option(p)
    p.set_defaults(func=run)


def kinds(op: Op) -> str:
    """`s ← v, v`; `v` for ops without inputs; `-` for pass."""
    if op.out is None:
        return "-"
    ins = ", ".join(k.prefix for k in op.ins)
    return f"{op.out.prefix} ← {ins}" if ins else op.out.prefix


def rows() -> list[tuple[str, str, str, str]]:
    return [(str(op.code), op.spelling(), kinds(op), op.doc) for op in OPS]


def run(args: argparse.Namespace) -> int:
    load_extension_option(args)
    header = ("code", "canonical form", "kinds (out ← in)", "doc")
    table = rows()
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for code, spelling, kind, doc in table:
            print(f"| {code} | `{spelling}` | {kind} | {doc} |")
        return 0
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(3)]
    for r in [header, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[3])
    print_fitnesses()
    return 0


def print_fitnesses() -> None:
    """The fitnesses a config's `[search] fitness` may name, built-in and registered."""
    from azdsl.running.fitness import FITNESSES

    print("\nfitnesses ([search] fitness; default: by task kind):")
    named = [(f.name, " and ".join(f.kinds), f.description) for f in FITNESSES.values()]
    width = [max(len(row[i]) for row in named) for i in range(2)]
    for name, kinds_, description in named:
        print(f"  {name.ljust(width[0])}  {kinds_.ljust(width[1])}  {description}")
