"""`azdsl simplify FILE [--dim F]`: print a program without dead code, cells named canonically."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azdsl.commands._args import feature_size
from azdsl.commands.fmt import read_source
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.simplify import simplify


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simplify",
        help="print a program without dead code, cells renamed canonically",
        description="Print the program with every instruction that cannot reach the "
        "prediction (and every `pass`) removed and its cells renumbered in order of first "
        "appearance, keeping s0, s1 and v0. It computes exactly what the original computes; "
        "two programs that differ only in dead code or cell names print the same. "
        "`-` reads stdin.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--dim", type=feature_size, metavar="F",
                   help="also check index literals against the feature size F")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program = parse(read_source(args.file), args.file, args.dim)
    sys.stdout.write(unparse(simplify(program)))
    return 0
