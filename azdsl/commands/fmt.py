"""`azdsl fmt FILE... [--check]`: rewrite programs in canonical form, keeping their comments."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from azdsl.errors import AzdslError
from azdsl.parse import parse, read_source
from azdsl.printer import unparse

# read_source lives in azdsl.parse; other commands import it from here too.
__all__ = ["read_source", "register", "run", "write_atomically"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fmt", help="rewrite programs in canonical form",
                              description="Rewrite .az programs in canonical form (DSL.md), "
                              "keeping comments. `-` reads stdin and writes stdout.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 and name the files that are not canonical")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    for name in args.files:
        try:
            text = read_source(name)
            formatted = unparse(parse(text, name))
        except AzdslError as e:
            print(e.render(), file=sys.stderr)
            status = 1
            continue
        if formatted == text:
            if name == "-" and not args.check:
                sys.stdout.write(formatted)
            continue
        if args.check:
            print(f"would reformat {name}")
            status = 1
        elif name == "-":
            sys.stdout.write(formatted)
        else:
            write_atomically(Path(name), formatted)
            print(f"reformatted {name}")
    return status


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one step, so an interrupted write never leaves half a program."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
