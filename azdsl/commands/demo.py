"""`azdsl demo [--seed S] [--out DIR]`: the paper's demo, rediscovering SGD linear regression."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

from azdsl.commands._args import root_seed
from azdsl.resources import resource
from azdsl.running.evaluate import SEARCH_BACKENDS


def demo_config_path() -> Path:
    """examples/demo.toml: inside the installed package (the wheel ships it), else the repo's."""
    return resource("examples", "demo.toml")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the paper's demo: evolve SGD linear regression from random programs",
        description="Run AutoML-Zero's demo (examples/demo.toml): evolution from random "
        "programs on 10 linear regression tasks, experiments repeated until the best program "
        "scores above 0.9999 on 100 fresh tasks. Prints the program found, its simplified "
        "form and its fitness on 100 unseen tasks.",
    )
    p.add_argument("--seed", type=root_seed, default=None, metavar="S",
                   help="the root seed (default: a random one)")
    p.add_argument("--out", metavar="DIR", help="also keep a run folder (resumable)")
    p.add_argument("--backend", choices=SEARCH_BACKENDS, default="vm", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azdsl.commands.evolve import drive
    from azdsl.language.printer import unparse
    from azdsl.progress import ProgressBar, Tee
    from azdsl.runfolder import RunFolder
    from azdsl.search.config import read_config
    from azdsl.search.evolve import Search

    path = demo_config_path()
    config, text = read_config(path)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    bar = ProgressBar(quiet=args.quiet)
    if args.out is not None:
        RunFolder(args.out).check_new()
    search = Search(config, seed, args.backend, bar)  # before the folder: it may fail
    if not args.quiet:
        print(f"azdsl demo, seed {seed}: searching for a learning algorithm "
              "(usually a few minutes)", file=sys.stderr)
    if args.out is not None:
        folder = RunFolder.create(args.out, text, config, seed, args.backend,
                                  str(path))
        search.hooks = Tee(folder, bar)
        status = drive(folder, search, folder.read_run(), bar)
        if status != 0:
            return status
        result = search.result()
    else:
        try:
            result = search.run()
        except KeyboardInterrupt:  # no folder: nothing to resume
            bar.close()
            print("azdsl: interrupted (give --out DIR to keep a run that can be resumed)",
                  file=sys.stderr)
            return 130
        bar.close()
    print("\nthe discovered program:")
    sys.stdout.write(unparse(result.program))
    print("\nsimplified (dead code removed, cells renamed):")
    sys.stdout.write(unparse(result.simplified))
    print(f"\nfitness on {_final_count(config)} unseen tasks: {result.final_fitness:.6f} "
          f"(select fitness {result.select_fitness:.6f}, {len(result.experiments)} "
          f"experiment(s), {result.individuals:,} individuals)")
    return 0


def _final_count(config: Any) -> int:
    return sum(spec.num_tasks for spec in config.final_tasks.specs)
