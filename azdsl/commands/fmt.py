"""`azdsl fmt FILE... [--check]`: rewrite programs in canonical form, keeping their comments."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from azdsl.errors import SHOWN, AzdslError
from azdsl.language.parse import parse, read_source
from azdsl.language.printer import unparse

# read_source lives in azdsl.language.parse; other commands import it from here too.
__all__ = ["read_source", "register", "run", "write_atomically"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("fmt", help="rewrite programs in canonical form",
                              description="Rewrite .az programs in canonical form "
                              "(`azdsl docs language`), "
                              "keeping comments. `-` reads stdin and writes stdout. A file "
                              "is replaced in one step, keeping its mode and owner; through a "
                              "symlink, its target is. A file that is read-only or has other "
                              "hard links is left alone (exit 1), as is one with errors: at "
                              f"most {SHOWN} of them are shown.")
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
            if formatted == text:
                if name == "-" and not args.check:
                    sys.stdout.write(formatted)
            elif args.check:
                print(f"would reformat {name}")
                status = 1
            elif name == "-":
                sys.stdout.write(formatted)
            else:
                write_atomically(Path(name), formatted)
                print(f"reformatted {name}")
        except AzdslError as e:
            e.report()
            status = 1
    return status


def write_atomically(path: Path, text: str) -> None:
    """Replace the file at `path` in one step (a rename over it), so that a write interrupted
    or killed leaves the old program or the new, never half of one. Through a symlink, the
    target is replaced and the link kept; the new file gets the old one's mode, owner and group.

    Raises AzdslError, changing nothing, where a replacement would not be faithful: a file that
    is read-only (its mode says: leave me; root too), not a regular file, owned by a user or
    group this process cannot give the new file, or with more than one hard link (renaming over
    one link cuts it from the others, which would keep the old program; writing in place
    instead would lose the one-step guarantee)."""
    target = Path(os.path.realpath(path))

    def refused(why: str) -> AzdslError:
        return AzdslError(f"{why}; not rewritten", filename=str(path))

    try:
        old = target.stat()
    except OSError as e:
        raise refused(f"cannot read its status ({e.strerror})") from None
    if not stat.S_ISREG(old.st_mode):
        raise refused("not a regular file")
    if not old.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise refused("read-only")
    if old.st_nlink > 1:
        raise refused(f"it has {old.st_nlink} hard links, and a rewrite would cut this one "
                      "from the others")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            new = os.fstat(fd)
            if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
                try:
                    os.fchown(fd, old.st_uid, old.st_gid)
                except PermissionError:
                    raise refused("its owner or group could not be kept") from None
            os.fchmod(fd, stat.S_IMODE(old.st_mode))  # after fchown, which clears set-id bits
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(fd)
        os.replace(tmp, target)
    except OSError as e:
        raise refused(f"cannot write ({e.strerror})") from None
    finally:  # also on Ctrl-C or SIGTERM (cli.main makes it an exception): no temporary left
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
