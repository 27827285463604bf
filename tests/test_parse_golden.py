"""Golden error messages: tests/golden/NAME.az checked with F = 4 must print NAME.err exactly.

Set AZDSL_UPDATE_GOLDEN=1 to rewrite the .err files after an intended change of wording.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from azdsl import parse
from azdsl.errors import AzdslError

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.az"))


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden_message(case: Path) -> None:
    with pytest.raises(AzdslError) as e:
        parse(case.read_text(encoding="utf-8"), case.name, dim=4)
    rendered = e.value.render() + "\n"
    expected = case.with_suffix(".err")
    if os.environ.get("AZDSL_UPDATE_GOLDEN"):
        expected.write_text(rendered, encoding="utf-8")
    assert rendered == expected.read_text(encoding="utf-8")


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(AzdslError) as e:
        parse((GOLDEN / "several_errors.az").read_text(encoding="utf-8"), dim=4)
    assert len(e.value.diagnostics) >= 5
