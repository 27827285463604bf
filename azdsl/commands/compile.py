"""`azdsl compile FILE --dim F --emit python`: print what a compiled backend runs for a program."""

from __future__ import annotations

import argparse
from typing import Any

from azdsl.commands._args import feature_size
from azdsl.commands.fmt import read_source
from azdsl.language.parse import parse

EMIT_CHOICES = ("python", "plain", "vm")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compile", help="print the generated code of a program",
        description="Print the Python module the jit backend compiles with Numba (`python`), "
        "the same code without Numba (`plain`), or the VM's instruction table (`vm`).")
    p.add_argument("file", metavar="FILE", help="the .az program (`-` reads stdin)")
    p.add_argument("--dim", type=feature_size, default=4, metavar="F",
                   help="feature size F, a constant of the generated code (default 4)")
    p.add_argument("--emit", choices=EMIT_CHOICES, default="python",
                   help="what to print (default: python)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program = parse(read_source(args.file), args.file, args.dim)
    if args.emit == "vm":
        from azdsl.language.ops import Kind
        from azdsl.running.lowering import describe_lowered

        needs = program.memory_needs()
        sizes = (needs[Kind.SCALAR], needs[Kind.VECTOR], needs[Kind.MATRIX])
        print(describe_lowered(program, sizes, args.dim), end="")
        return 0
    from azdsl.running.codegen import generate

    print(generate(program, args.dim, jit=args.emit == "python"), end="")
    return 0
