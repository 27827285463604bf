"""The `azdsl` command line: argparse built from the command modules in azdsl/commands/."""

from __future__ import annotations

import argparse
import importlib
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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
    "export",
    "evolve",
    "resume",
    "demo",
    "plot",
    "lineage",
    "compare",
    "ablate",
    "experiment",
    "examples",
    "docs",
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


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that `finally` blocks (fmt's clean-up) run."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 ok, 1 user error (messages on stderr), 2 usage,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."""
    try:
        with _sigterm_raises():
            return _run(argv)
    except AzdslError as e:
        e.report()
        return 1
    except BrokenPipeError:
        if not _reader_left():
            print("azdsl: error: broken pipe", file=sys.stderr)
            return 1
        # `azdsl ops | head`: the reader had enough, which is no error; say nothing more (and
        # let nothing more be written, at exit either)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # evolve, resume, demo checkpoint at a first Ctrl-C (drive)
        print("azdsl: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("azdsl: terminated", file=sys.stderr)
        return 143


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors end here, not the caller
        return e.code if isinstance(e.code, int) else 2
    status = int(args.func(args))
    sys.stdout.flush()  # here, so that a reader that left is seen in main, not at exit
    return status


def _reader_left() -> bool:
    """Whether stdout is a pipe that its reader has closed (poll says: error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), stdout not a file
        return False


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated for the duration (signals can only be set in the main thread;
    commands that handle SIGTERM themselves set and restore their own handler inside)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
