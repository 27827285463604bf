"""The `azdsl` command line: argparse built from the command modules in azdsl/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from azdsl.errors import AzdslError

# One module of azdsl/commands per subcommand, in `azdsl --help` order. A module exposes
# `register(subparsers) -> None`, which sets `func=run` with `run(args) -> int`; it imports
# heavy things (numba, the VM) inside `run`, so that every command starts fast.
COMMANDS: tuple[str, ...] = (
    "fmt",
    "check",
    "ops",
    "simplify",
    "run",
    "compile",
    "evolve",
    "resume",
    "demo",
    "plot",
    "compare",
)


def build_parser() -> argparse.ArgumentParser:
    from azdsl import __version__

    parser = argparse.ArgumentParser(
        prog="azdsl",
        description="Write, run, evolve and study AutoML-Zero algorithms as programs.",
    )
    parser.add_argument("--version", action="version", version=f"azdsl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"azdsl.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 ok, 1 user error (messages on stderr), 2 usage."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors end here, not the caller
        return e.code if isinstance(e.code, int) else 2
    try:
        return int(args.func(args))
    except AzdslError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except BrokenPipeError:  # `azdsl ops | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
