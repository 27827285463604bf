"""`azdsl fmt`, `azdsl check` and `azdsl ops`, through main() and as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from azdsl.cli import main
from azdsl.language.ops import OPS

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.az"))
MESSY = "# a program\ndef Setup():\n\ts2=0.001   # rate\n\ndef Learn():\n    s3 = s0-s1\n"
CANONICAL = "# a program\ndef Setup():\n  s2 = 0.001  # rate\ndef Predict():\ndef Learn():\n" \
    "  s3 = s0 - s1\n"


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    path = tmp_path / "messy.az"
    path.write_text(MESSY, encoding="utf-8")
    return path


def test_fmt_rewrites_in_place_keeping_comments(messy: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", str(messy)]) == 0
    assert messy.read_text(encoding="utf-8") == CANONICAL
    assert "reformatted" in capsys.readouterr().out
    assert main(["fmt", str(messy)]) == 0
    assert capsys.readouterr().out == ""
    assert [p.name for p in messy.parent.iterdir()] == ["messy.az"]  # no temporary left


def test_fmt_check_names_files_that_are_not_canonical(
        messy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.az"
    good.write_text(CANONICAL, encoding="utf-8")
    assert main(["fmt", "--check", str(good)]) == 0
    assert main(["fmt", "--check", str(good), str(messy)]) == 1
    out = capsys.readouterr().out
    assert str(messy) in out and str(good) not in out
    assert messy.read_text(encoding="utf-8") == MESSY


def test_fmt_check_sees_crlf_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "crlf.az"
    path.write_bytes(CANONICAL.replace("\n", "\r\n").encode())
    assert main(["fmt", "--check", str(path)]) == 1


def test_fmt_leaves_a_broken_file_alone(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.az"
    path.write_text("def Setup():\n  s2 = sine(s1)\n", encoding="utf-8")
    assert main(["fmt", str(path)]) == 1
    assert "did you mean `sin`?" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "def Setup():\n  s2 = sine(s1)\n"


def test_check_reports_every_error_on_stderr(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.az"
    path.write_text("def Setup():\n  v1[7] = 1.0\n  s1 = dot(v0, s2)\n", encoding="utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:16: error: `dot` takes two vectors; `s2` is a scalar" in err
    assert "out of range" not in err
    assert main(["check", "--dim", "4", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:3: error: `v1[7]`: index 7 is out of range for F = 4" in err


def test_check_accepts_good_programs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--dim", "4", *map(str, EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.count(": ok") == len(EXAMPLES)
    assert "memory s5 v9 m2" in out  # neural_net.az


def test_check_missing_file_is_a_user_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.az")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["check", "--dim", "0", "x.az"]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["--version"]) == 0
    assert "azdsl" in capsys.readouterr().out


def test_ops_lists_every_op(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[len(OPS) + 1:len(OPS) + 3] == [
        "", "fitnesses ([search] fitness; default: by task kind):"]  # then the fitnesses
    for op, line in zip(OPS, lines[1:len(OPS) + 1], strict=True):
        assert line.split()[0] == str(op.code)
        assert op.spelling() in line and op.doc in line


def test_ops_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| code |") and lines[1].startswith("|---|")
    assert lines[2 + 35] == "| 35 | `v = norm(a, axis=0)` | v ← m | norm of each column |"


def run_azdsl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "azdsl", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_examples_are_canonical_as_a_process() -> None:
    result = run_azdsl("fmt", "--check", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(EXAMPLES) >= 4


def test_fmt_reads_stdin_and_errors_exit_1_as_a_process() -> None:
    result = run_azdsl("fmt", "-", stdin=MESSY)
    assert (result.returncode, result.stdout) == (0, CANONICAL)
    result = run_azdsl("check", "-", stdin="def Setup():\n  s1 = dot(v0)\n")
    assert result.returncode == 1
    assert result.stderr.startswith("-:2:8: error: `dot` takes two arguments; got one")
    assert "Traceback" not in result.stderr
