"""`azdsl export FILE --to numpy | latex | markdown`: take an algorithm away from azdsl."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from azdsl.commands.fmt import read_source
from azdsl.language.parse import parse

TARGETS = ("numpy", "latex", "markdown")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="print a program as a standalone numpy module, LaTeX or Markdown",
        description="Print the program, simplified (`azdsl simplify`: it predicts the same, "
        "bit for bit), as a Python module that needs only numpy (`numpy`: setup, predict and "
        "learn functions and a Model class with fit and predict, trained as azdsl trains), "
        "or as math for a paper (`latex`, `markdown`). `-` reads stdin. "
        "See `azdsl docs export`.")
    p.add_argument("file", metavar="FILE", help="the .az program (`-` reads stdin)")
    p.add_argument("--to", choices=TARGETS, default="numpy", help="what to print (default: numpy)")
    p.add_argument("--as-written", action="store_true",
                   help="export the program as written, dead code included, not simplified")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    program = parse(read_source(args.file), args.file)
    if not args.as_written:
        from azdsl.language.fold import fold

        program = fold(program)
    if args.to == "numpy":
        from azdsl.export.numpy_module import generate

        name = "program" if args.file == "-" else Path(args.file).stem
        sys.stdout.write(generate(program, name))
        return 0
    from azdsl.export.math_text import LATEX, MARKDOWN, render

    sys.stdout.write(render(program, LATEX if args.to == "latex" else MARKDOWN))
    return 0
