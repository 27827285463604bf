"""`azdsl resume DIR`: continue a stopped or killed run from its last checkpoint."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from azdsl.commands._scale import add_arguments as add_scale_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "resume",
        help="continue a run folder from its last checkpoint",
        description="Continue the run in DIR (made by `azdsl evolve`) from its last checkpoint. "
        "The resumed run ends exactly where the run would have ended without the stop. A "
        "finished run prints its report again.",
    )
    p.add_argument("dir", metavar="DIR", help="the run folder")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_scale_arguments(p, new_run=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azdsl.commands._scale import island_run, read_settings
    from azdsl.commands.evolve import drive
    from azdsl.progress import ProgressBar, Tee
    from azdsl.runfolder import RunFolder, open_search, restore_checkpoint

    folder = RunFolder(args.dir)
    settings = read_settings(folder.path)
    bar = ProgressBar(quiet=args.quiet)
    if settings is None:
        search, run_info = open_search(folder, hooks=Tee(folder, bar))
        after = f"{search.individuals_done():,} individuals"
    else:  # a run of several islands: they continue from its checkpoint
        run_info = folder.read_run()
        search = island_run(args, settings, folder.load_config(run_info), run_info["seed"],
                            run_info["backend"], Tee(folder, bar))
        restore_checkpoint(folder, search)
        after = f"{search.total_individuals:,} individuals of finished experiments"
    if not args.quiet and search.final is None:
        print(f"resuming {folder.path} (seed {run_info['seed']}) after {after}",
              file=sys.stderr)
    return drive(folder, search, run_info, bar)
