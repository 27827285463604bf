"""`azdsl examples [--copy DIR]`: the example programs (.az), configs (.toml) and extension
modules (.py, which configs name) shipped with the package: list them, print one, or copy them
all into a folder to edit."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from azdsl.errors import AzdslError
from azdsl.resources import first_comment, resource


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "examples", help="list, print or copy the example programs and configs",
        description="The example programs (.az), experiment configs (.toml) and extension "
        "modules (.py, named by configs' [extensions]) shipped with azdsl. Without arguments, "
        "list them with their paths.")
    p.add_argument("name", nargs="?", metavar="NAME", help="print this example (e.g. "
                   "linear_sgd.az)")
    p.add_argument("--copy", metavar="DIR",
                   help="copy every example into DIR (created if needed; existing files are "
                   "left alone and named)")
    p.set_defaults(func=run)


EXAMPLE_SUFFIXES = (".az", ".toml", ".py")  # a config may name a .py extension beside it


def example_files() -> list[Path]:
    folder = resource("examples")
    return sorted(p for p in folder.iterdir() if p.suffix in EXAMPLE_SUFFIXES)



def run(args: argparse.Namespace) -> int:
    files = example_files()
    if args.copy is not None:
        return _copy(files, Path(args.copy))
    if args.name is not None:
        by_name = {f.name: f for f in files} | {f.stem: f for f in files}
        file = by_name.get(args.name)
        if file is None:
            raise AzdslError(f"no example {args.name!r}; the examples are: "
                             + ", ".join(f.name for f in files))
        sys.stdout.write(file.read_text(encoding="utf-8"))
        return 0
    width = max(len(f.name) for f in files)
    for file in files:
        print(f"{file.name.ljust(width)}  {first_comment(file)}")
    print(f"\n(in {files[0].parent}; `azdsl examples --copy DIR` copies them)")
    return 0


def _copy(files: list[Path], target: Path) -> int:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AzdslError(f"{target}: cannot create the folder ({exc.strerror or exc})") from None
    kept = []
    for file in files:
        destination = target / file.name
        if destination.exists():
            kept.append(destination.name)
            continue
        try:
            shutil.copyfile(file, destination)
        except OSError as exc:
            raise AzdslError(f"{destination}: cannot write ({exc.strerror or exc})") from None
    copied = len(files) - len(kept)
    print(f"copied {copied} example{'s' * (copied != 1)} into {target}")
    if kept:
        print("left alone (already there): " + ", ".join(kept))
    return 0
