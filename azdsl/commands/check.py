"""`azdsl check FILE... [--dim F] [--extension FILE]`: report every error of each program, or
say it is fine."""

from __future__ import annotations

import argparse
from typing import Any

from azdsl.commands._args import add_extension_option, feature_size, load_extension_option
from azdsl.errors import SHOWN, AzdslError
from azdsl.language.parse import parse, read_source
from azdsl.limits import check_cells, check_memory, program_needs


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("check", help="check programs for errors",
                              description="Parse and check .az programs; print each error with "
                              f"its line and a caret (stderr; at most {SHOWN} a file, then how "
                              "many more), exit 1 if any.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--dim", type=feature_size, metavar="F",
                   help="also check index literals against the feature size F, and that "
                   "the program's memory at F fits in this machine's")
    add_extension_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    load_extension_option(args)
    status = 0
    for name in args.files:
        try:
            source = read_source(name)
            program = parse(source, name, args.dim)
            check_cells(program, source, name)
            if args.dim is not None:
                check_memory([program_needs(program, args.dim, name)])
        except AzdslError as e:
            e.report()
            status = 1
            continue
        setup, predict, learn = program.sizes()
        needs = " ".join(f"{kind.prefix}{n}" for kind, n in program.memory_needs().items())
        print(f"{name}: ok ({setup} setup, {predict} predict, {learn} learn instructions; "
              f"memory {needs})")
    return status
