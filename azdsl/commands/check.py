"""`azdsl check FILE... [--dim F]`: report every error of each program, or say it is fine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azdsl.commands._args import feature_size
from azdsl.errors import AzdslError
from azdsl.parse import parse_file


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("check", help="check programs for errors",
                              description="Parse and check .az programs; print every error "
                              "with its line and a caret (stderr), exit 1 if any.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--dim", type=feature_size, metavar="F",
                   help="also check index literals against the feature size F")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    for name in args.files:
        try:
            program = parse_file(name, args.dim)
        except AzdslError as e:
            print(e.render(), file=sys.stderr)
            status = 1
            continue
        setup, predict, learn = program.sizes()
        needs = " ".join(f"{kind.prefix}{n}" for kind, n in program.memory_needs().items())
        print(f"{name}: ok ({setup} setup, {predict} predict, {learn} learn instructions; "
              f"memory {needs})")
    return status
