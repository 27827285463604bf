"""`azdsl evolve CONFIG --out DIR [--seed S] [--backend vm|interp]`: run a search in a folder."""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azdsl.commands._args import root_seed
from azdsl.commands._scale import add_arguments as add_scale_arguments
from azdsl.running.evaluate import SEARCH_BACKENDS


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evolve",
        help="search for an algorithm as an experiment config describes (a run folder)",
        description="Run the experiments of a TOML config (see examples/*.toml): evolution on "
        "the search tasks, each experiment's best scored on the select tasks, the chosen "
        "program scored on the final tasks. The folder gets the config, the seed, "
        "progress.jsonl, best.az, checkpoints and the report; `azdsl resume DIR` continues a "
        "stopped run and ends exactly where an uninterrupted run would.",
    )
    p.add_argument("config", metavar="CONFIG", help="the experiment config (.toml)")
    p.add_argument("--out", required=True, metavar="DIR", help="the run folder (new or empty)")
    p.add_argument("--seed", type=root_seed, default=None, metavar="S",
                   help="the root seed (default: a random one, written to the folder)")
    p.add_argument("--backend", choices=SEARCH_BACKENDS, default="vm",
                   help="the backend of the select and final scores (children are always "
                   "scored on the VM; every backend gives the same bits)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_scale_arguments(p, new_run=True)
    p.set_defaults(func=run)


@contextmanager
def stop_on_signal() -> Iterator[Callable[[], bool]]:
    """A flag raised by Ctrl-C or SIGTERM: the search checkpoints and stops at the next child."""
    raised = [False]

    def handler(signum: int, frame: object) -> None:
        if raised[0]:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        raised[0] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: raised[0]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def drive(folder: Any, search: Any, run_info: dict[str, Any], bar: Any) -> int:
    """Run a folder's search to the end (or a signal); print the report."""
    from azdsl.runfolder import RunError, WriteError, message
    from azdsl.scale.workers import WorkersLost
    from azdsl.search.evolve import Interrupted

    resume = f"azdsl resume {folder.path}"
    with stop_on_signal() as stop:
        search.stop_requested = stop
        try:
            result = search.run()
            report = folder.write_report(search, result, run_info)
        except Interrupted:
            bar.close()
            print(f"stopped; continue with: {resume}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:  # a second Ctrl-C: no checkpoint now, the last one holds
            bar.close()
            print(f"stopped at once; continue from the last checkpoint with: {resume}",
                  file=sys.stderr)
            return 130
        except (WriteError, WorkersLost) as exc:  # the folder holds the last checkpoint
            bar.close()
            raise RunError(f"{message(exc)}; once that is mended, continue with: {resume}"
                           ) from None
    bar.close()
    sys.stdout.write(report)
    return 0


def run(args: argparse.Namespace) -> int:
    from azdsl.commands._scale import make_search, plan, settings_files
    from azdsl.progress import ProgressBar, Tee
    from azdsl.runfolder import RunFolder
    from azdsl.search.config import read_config
    from azdsl.search.evolve import NoHooks

    path = Path(args.config)
    config, text = read_config(path)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    RunFolder(args.out).check_new()
    islands = plan(args)
    # Everything that can fail on the config (tasks, data files, programs) fails here, before
    # the folder is made: a failed start leaves no folder that blocks the same --out.
    search = make_search(args, islands, config, seed, NoHooks())
    folder = RunFolder.create(args.out, text, config, seed, args.backend, str(path.resolve()),
                              settings_files(islands))
    bar = ProgressBar(quiet=args.quiet)
    search.hooks = Tee(folder, bar)
    if not args.quiet:
        print(f"seed {seed}; run folder {folder.path}", file=sys.stderr)
    return drive(folder, search, folder.read_run(), bar)
