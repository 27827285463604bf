"""`azdsl docs [TOPIC]`: the user documentation (docs/*.md), printed from the installed package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from azdsl.errors import AzdslError
from azdsl.resources import first_comment, resource


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "docs", help="print the documentation",
        description="Print a page of azdsl's documentation (the docs/ folder, shipped inside "
        "the package). Without a topic, list the topics.")
    p.add_argument("topic", nargs="?", metavar="TOPIC",
                   help="a page, e.g. language, semantics, search, config, run-folder, tutorial")
    p.add_argument("--path", action="store_true", help="print the page's file path instead")
    p.set_defaults(func=run)


def pages() -> dict[str, Path]:
    """Topic name -> Markdown file, from the shipped docs folder."""
    return {page.stem: page for page in sorted(resource("docs").glob("*.md"))}


def run(args: argparse.Namespace) -> int:
    available = pages()
    if not available:
        raise AzdslError(f"no documentation found (looked in {resource('docs')})")
    if args.topic is None:
        width = max(map(len, available))
        for name, page in available.items():
            print(f"{name.ljust(width)}  {first_comment(page)}")
        return 0
    chosen = available.get(args.topic.removesuffix(".md"))
    if chosen is None:
        raise AzdslError(f"no documentation topic {args.topic!r}; the topics are: "
                         + ", ".join(available))
    if args.path:
        print(chosen)
    else:
        sys.stdout.write(chosen.read_text(encoding="utf-8"))
    return 0
