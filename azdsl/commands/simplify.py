"""`azdsl simplify FILE [--dim F] [--loose | --shallow]`: print a program simplified: dead code
removed, constants folded, identities and copies propagated (azdsl.language.fold), cells named
canonically."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azdsl.commands._args import feature_size
from azdsl.commands.fmt import read_source
from azdsl.language.fold import fold
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.simplify import simplify


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simplify",
        help="print a program simplified: no dead code, constants folded, cells renamed",
        description="Print the program with every instruction that cannot reach the "
        "prediction (and every `pass`) removed, constants computed ahead, identities such as "
        "x * 1 and copies propagated, and its cells renumbered in order of first appearance, "
        "keeping s0, s1 and v0. It computes exactly what the original computes, bit for bit, "
        "NaN and inf included; two programs that differ only in dead code or cell names "
        "print the same. `-` reads stdin.",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--loose", action="store_true",
                     help="also rewrite x - x and 0 * x to 0 and x + 0 to x, which assumes "
                     "finite values (results then agree within rounding, not bit for bit)")
    how.add_argument("--shallow", action="store_true",
                     help="only remove dead code and rename cells (what the search reports)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--dim", type=feature_size, metavar="F",
                   help="also check index literals against the feature size F")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program = parse(read_source(args.file), args.file, args.dim)
    simple = simplify(program) if args.shallow else fold(program, loose=args.loose)
    sys.stdout.write(unparse(simple))
    return 0
