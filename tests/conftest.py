"""Shared test set-up: one folder for compiled code, so the VM compiles once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Generated modules and Numba's on-disk cache are content-addressed, so a folder kept
    # between runs is never stale; every test and every subprocess it starts shares it.
    if "AZDSL_CACHE_DIR" not in os.environ:
        os.environ["AZDSL_CACHE_DIR"] = str(Path(config.rootpath) / ".azdsl_cache")


@pytest.fixture(scope="session")
def compiled_cache() -> Path:
    """The folder compiled code goes to (AZDSL_CACHE_DIR)."""
    folder = Path(os.environ["AZDSL_CACHE_DIR"])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # as codegen makes it, whatever umask
    return folder


@pytest.fixture(autouse=True)
def no_registration_outlives_its_test() -> object:
    """Ops, task kinds, fitnesses and extensions a test registers are forgotten after it: a
    leaked op changes the op table every later test (and every worker's check of it) sees."""
    from azdsl import extend

    state = extend.snapshot()
    yield
    extend.restore(state)
