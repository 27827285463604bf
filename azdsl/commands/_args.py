"""The argparse value types the subcommands share (F, counts, seeds)."""

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
