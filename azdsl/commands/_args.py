"""What the subcommands share: argparse value types (F, counts, seeds) and the `--extension`
option of ops, check and run."""

from __future__ import annotations

import argparse

from azdsl.limits import MAX_INT


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def feature_size(text: str) -> int:
    """The feature size F (`--dim`): a whole number >= 1."""
    if _integer(text, "a whole number") < 1:
        raise argparse.ArgumentTypeError("F must be at least 1")
    return positive(text)


def positive(text: str) -> int:
    """A count in [1, MAX_INT]."""
    if not 1 <= _integer(text, "an integer") <= MAX_INT:
        raise argparse.ArgumentTypeError(f"must be in [1, {MAX_INT}]")
    return int(text)


def root_seed(text: str) -> int:
    """A root seed in [0, 2**63)."""
    if not 0 <= _integer(text, "an integer") < 2**63:
        raise argparse.ArgumentTypeError("the seed must be in [0, 2**63)")
    return int(text)


def add_extension_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--extension", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="load an extension first (a .py file or a module name, as a config's "
                   "[extensions] modules), so its ops, task kinds and fitnesses are known "
                   "(repeatable)")


def load_extension_option(args: argparse.Namespace) -> None:
    """Import the `--extension` entries (relative paths from the current folder)."""
    from azdsl.extend import load_extensions

    load_extensions(args.extension)
