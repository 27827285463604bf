"""Bad program text never hurts: many errors, huge lines, characters that look like line
breaks, Ctrl-C and SIGTERM, links and read-only files under `fmt`, and readers that leave."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from azdsl.cli import main
from azdsl.errors import SHOWN, AzdslError, Diagnostic, Span, source_lines
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import Program
from azdsl.limits import MAX_FILE_BYTES, size_text

MESSY = "def Setup():\n  s2=0.5\n"
CANONICAL = "def Setup():\n  s2 = 0.5\ndef Predict():\ndef Learn():\n"
BAD_LINE = "  s1 = sine(s2)\n"


def azdsl(*args: str, stdout: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "azdsl", *args], text=True, stdout=stdout,
                            stderr=subprocess.PIPE)


def errors_of(text: str) -> list[Diagnostic]:
    with pytest.raises(AzdslError) as e:
        parse(text)
    return e.value.diagnostics


# ---- many errors: linear, and at most SHOWN printed ------------------------------------------


def test_twenty_thousand_errors_are_reported_quickly_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.az"
    path.write_text("def Setup():\n" + BAD_LINE * 20_000, encoding="utf-8")
    for command in ("check", "fmt"):
        start = time.monotonic()
        assert main([command, str(path)]) == 1
        assert time.monotonic() - start < 10  # rendering each error split the file: ~20 s
        err = capsys.readouterr().err
        assert err.count(": error: unknown function `sine`") == SHOWN
        assert err.endswith(f"\n... and {20_000 - SHOWN} more errors in {path}\n")
        assert err.startswith(f"{path}:2:8: error:")


def test_an_error_renders_all_its_diagnostics_when_asked() -> None:
    with pytest.raises(AzdslError) as e:
        parse("def Setup():\n" + BAD_LINE * 3, "f.az")
    assert str(e.value) == e.value.render()
    assert e.value.render().count("error:") == 3
    assert e.value.render(2).endswith("\n... and 1 more error in f.az")


# ---- huge lines: fast, and echoed as a window around the caret -------------------------------


@pytest.mark.parametrize("line", [
    "s1 = " + " + ".join(["s2"] * 1_500_000),  # a few tokens a line is all Lark need read
    "s1 = s1 + s2 " + "$" * 6_000_000,
    "s1 = " + "a" * 6_000_000 + "(s2)",  # no close match is looked for, nor quoted whole
    "s1 = 1" + " " * 6_000_000 + "s2",
])
def test_a_megabyte_line_is_one_short_error(tmp_path: Path, line: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "long.az"
    path.write_text(f"def Setup():\n  {line}\n", encoding="utf-8")
    start = time.monotonic()
    assert main(["check", str(path)]) == 1
    assert time.monotonic() - start < 10  # it took 70 s and more
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:2:") and len(err) < 1000
    head, shown, caret = err.splitlines()
    assert "..." in shown and len(shown) < 140
    col = int(head.split(":")[2])
    assert shown[caret.index("^")] == f"  {line}"[col - 1]  # the caret is under its column


def test_the_window_follows_the_caret() -> None:
    line = "x" * 500 + "HERE" + "y" * 500
    text = Diagnostic("bad", Span(1, 501, 505)).render(line)
    _, shown, caret = text.splitlines()
    assert shown.startswith("  ...x") and shown.endswith("y...")
    assert shown[caret.index("^"):caret.index("^") + 4] == "HERE" and caret.count("^") == 4
    short = Diagnostic("bad", Span(1, 3)).render("s1 = s2\n")
    assert short.splitlines()[1:] == ["  s1 = s2", "    ^"]
    end = Diagnostic("bad", Span(1, 1002, 1003)).render("z" * 1001)
    assert end.splitlines()[1].endswith("zzz") and end.splitlines()[2].endswith(" ^")


def test_a_huge_file_is_refused_without_reading_it_all(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["check", "/dev/zero"]) == 1  # it never ends: only so much is read
    assert f"/dev/zero: error: larger than {size_text(MAX_FILE_BYTES)}" in capsys.readouterr().err


# ---- lines end only at a newline ---------------------------------------------------------------

# What str.splitlines takes for a line break besides `\n` (and `\r\n`).
OTHER_BREAKS = ["\v", "\f", "\r", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", OTHER_BREAKS)
def test_no_instruction_hides_behind_a_line_break_in_a_comment(
        tmp_path: Path, char: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = f"  s1 = s1 + s2  # note{char}s3 = s3 + s4"
    col = line.index(char) + 1
    text = f"def Setup():\n{line}\n  s5 = s5 + s6\n"
    (problem,) = errors_of(text)
    assert problem.span == Span(2, col, col + 1)
    assert problem.message.startswith(f"U+{ord(char):04X} (")
    assert "only a newline ends a line" in problem.message
    path = tmp_path / "hidden.az"
    path.write_bytes(text.encode("utf-8"))
    assert main(["fmt", str(path)]) == 1  # refused: fmt never turns the comment into code
    assert path.read_bytes() == text.encode("utf-8")
    err = capsys.readouterr().err
    assert f"{path}:2:{col}: error: U+{ord(char):04X}" in err
    assert char not in err and "# note?s3 = s3 + s4" in err  # echoed harmlessly


@pytest.mark.parametrize("char", OTHER_BREAKS)
def test_no_line_break_but_a_newline_in_code(char: str) -> None:
    (problem,) = errors_of(f"def Setup():\n  s1 = s1{char}+ s2\n")
    assert problem.span == Span(2, 10, 11) and f"U+{ord(char):04X}" in problem.message


@pytest.mark.parametrize(("char", "says"), [
    ("\x1b", "control character U+001B"),  # an escape sequence can rewrite what a terminal shows
    ("\x00", "control character U+0000"),
    ("\u202e", "U+202E (right-to-left override)"),  # Trojan Source reordering
    ("\u2067", "U+2067 (right-to-left isolate)"),
])
def test_controls_and_bidi_overrides_are_refused_even_in_comments(char: str, says: str) -> None:
    (problem,) = errors_of(f"def Setup():\n  s1 = s1 + s2  # x{char}y\n")
    assert problem.message.startswith(says) and problem.span == Span(2, 20, 21)


def test_lines_are_counted_by_newlines_alone() -> None:
    assert source_lines("a\r\nb\u2028c\x85d\n\ne\r") == ["a", "b\u2028c\x85d", "", "e\r"]
    problems = errors_of("def Setup():  # \u2028\n  s1 = sine(s2)\r\n")
    assert [p.span.line for p in problems if p.span] == [1, 2]
    with pytest.raises(AzdslError) as e:
        parse("def Setup():  # \u2028\n  s1 = sine(s2)\r\n")
    assert "\n    s1 = sine(s2)\n" in e.value.render()  # line 2 as an editor shows it


def test_crlf_tabs_and_other_unicode_in_comments_still_parse() -> None:
    program = parse("# a → b, ü, 日本\r\ndef Setup():\r\n\ts2 = 0.5\t# rate\r\n")
    assert unparse(program) == "# a → b, ü, 日本\ndef Setup():\n  s2 = 0.5  # rate\n" \
        "def Predict():\ndef Learn():\n"


def test_comments_made_in_code_print_as_one_line_that_parses() -> None:
    instr = parse("def Setup():\n  s2 = 0.5\n").setup[0]
    noted = replace(instr, leading_comments=("a\u2028b\nc",),
                    trailing_comment="d\x1b[2Ke\u202ef")
    text = unparse(Program(setup=(noted,)))
    assert "  # a b c\n  s2 = 0.5  # d [2Ke f\n" in text
    assert unparse(parse(text)) == text


# ---- Ctrl-C and SIGTERM --------------------------------------------------------------------


def test_ctrl_c_in_a_command_is_a_message_and_status_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("azdsl.commands.check.read_source", interrupted)
    monkeypatch.setattr("azdsl.commands.fmt.read_source", interrupted)
    assert main(["check", "x.az"]) == 130
    assert main(["fmt", "x.az"]) == 130
    assert capsys.readouterr().err == "azdsl: interrupted\n" * 2


@pytest.mark.parametrize(("command", "sig", "status", "says"), [
    ("check", signal.SIGINT, 130, "azdsl: interrupted"),
    ("fmt", signal.SIGINT, 130, "azdsl: interrupted"),
    ("fmt", signal.SIGTERM, 143, "azdsl: terminated"),
])
def test_a_signal_while_a_command_waits_as_a_process(
        tmp_path: Path, command: str, sig: int, status: int, says: str) -> None:
    bad = tmp_path / "bad.az"
    bad.write_text("def Setup():\n" + BAD_LINE, encoding="utf-8")
    fifo = tmp_path / "fifo.az"
    os.mkfifo(fifo)  # opening it waits for a writer that never comes
    proc = azdsl(command, str(bad), str(fifo))
    assert proc.stderr is not None
    report = [proc.stderr.readline() for _ in range(3)]  # bad.az's error, caret line and all
    assert "unknown function `sine`" in report[0] and "^" in report[2]  # it waits on the FIFO
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == status
    assert proc.stderr.read().splitlines()[-1] == says


@pytest.mark.parametrize(("hook", "status"), [("interrupt", 130), ("terminate", 143)])
def test_an_interrupted_fmt_leaves_the_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: str, status: int) -> None:
    path = tmp_path / "messy.az"
    path.write_text(MESSY, encoding="utf-8")

    def stop(fd: int) -> None:
        if hook == "interrupt":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)  # a real SIGTERM, mid-write
        time.sleep(5)

    def unhandled(signum: int, frame: object) -> None:
        raise AssertionError("main let SIGTERM through")  # rather than end the test run

    monkeypatch.setattr(os, "fsync", stop)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert main(["fmt", str(path)]) == status
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert path.read_text(encoding="utf-8") == MESSY
    assert [p.name for p in tmp_path.iterdir()] == ["messy.az"]


def test_fmt_killed_mid_write_leaves_the_old_program(tmp_path: Path) -> None:
    path = tmp_path / "messy.az"
    path.write_text(MESSY, encoding="utf-8")
    code = ("import os, signal, sys\n"
            "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
            "from azdsl.cli import main\n"
            "sys.exit(main(['fmt', sys.argv[1]]))\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert path.read_text(encoding="utf-8") == MESSY


# ---- fmt's write: links, modes, owners -------------------------------------------------------


def test_fmt_through_a_symlink_rewrites_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real" / "prog.az"
    target.parent.mkdir()
    target.write_text(MESSY, encoding="utf-8")
    link = tmp_path / "link.az"
    link.symlink_to(target)
    assert main(["fmt", str(link)]) == 0
    assert link.is_symlink() and link.readlink() == target
    assert target.read_text(encoding="utf-8") == CANONICAL
    assert sorted(p.name for p in target.parent.iterdir()) == ["prog.az"]


def test_fmt_refuses_a_hard_linked_file(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prog.az"
    path.write_text(MESSY, encoding="utf-8")
    other = tmp_path / "other.az"
    os.link(path, other)
    assert main(["fmt", str(path)]) == 1
    assert f"{path}: error: it has 2 hard links" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == MESSY and path.samefile(other)
    assert main(["fmt", "--check", str(path)]) == 1  # checking is fine: it writes nothing


def test_fmt_refuses_a_read_only_file(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prog.az"
    path.write_text(MESSY, encoding="utf-8")
    path.chmod(0o444)  # root may write it, but its mode says: leave it
    assert main(["fmt", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: error: read-only; not rewritten\n"
    assert path.read_text(encoding="utf-8") == MESSY


def test_fmt_keeps_mode_owner_and_group(tmp_path: Path) -> None:
    path = tmp_path / "prog.az"
    path.write_text(MESSY, encoding="utf-8")
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)  # another user's file, formatted by root
    before = path.stat()
    assert main(["fmt", str(path)]) == 0
    after = path.stat()
    assert path.read_text(encoding="utf-8") == CANONICAL
    assert after.st_ino != before.st_ino  # replaced in one step, not written over
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == \
        (0o640, before.st_uid, before.st_gid)


def test_fmt_refuses_what_is_not_a_regular_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.az"  # as /dev/null would be: root once replaced it by a file
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf 'def Setup():\\n  s2=1\\n' > '{fifo}'"])
    assert main(["fmt", str(fifo)]) == 1
    writer.wait(timeout=60)
    assert capsys.readouterr().err.endswith("not a regular file; not rewritten\n")


# ---- a reader that leaves early --------------------------------------------------------------


def test_a_reader_that_left_is_no_error() -> None:
    read, write = os.pipe()
    os.close(read)  # `azdsl ops | head -0`: gone before the first line
    proc = azdsl("ops", stdout=write)
    os.close(write)
    assert proc.wait(timeout=120) == 0
    assert proc.stderr is not None and proc.stderr.read() == ""
