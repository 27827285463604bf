"""Scale-out options of `azdsl evolve` and `azdsl resume`: --workers, --islands, --ray.

One island is the single-process search (azdsl.search.evolve.Search, unchanged). More islands run
through azdsl.scale.parallel; the island settings are written to DIR/islands.json when the run
starts (`settings_files`) and read back by `azdsl resume` (`read_settings`), so a resumed run
keeps them whatever --workers or --ray it is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azdsl.commands._args import positive

if TYPE_CHECKING:
    from azdsl.scale.parallel import IslandSettings
    from azdsl.search.config import Config
    from azdsl.search.evolve import Hooks

ISLANDS = "islands.json"
ISLANDS_FORMAT = "azdsl-islands"
ISLANDS_VERSION = 1  # folders from before the key was written hold none: read as 1


def add_arguments(parser: Any, *, new_run: bool) -> None:
    group = parser.add_argument_group(
        "scale-out", "Islands (populations that exchange their best members) on local "
        "processes or Ray actors; the result depends on --islands, never on --workers.")
    group.add_argument("--workers", type=positive, metavar="N",
                       help="processes (or Ray actors) that run the islands (default: every "
                            "core here, or every CPU of the Ray cluster)")
    if new_run:
        group.add_argument("--islands", type=positive, metavar="N",
                           help="island count (default: the worker count; 1 is the "
                                "single-process search); kept for `azdsl resume`")
        group.add_argument("--migrate-every", type=positive, default=10_000, metavar="K",
                           help="individuals each island searches between migrations "
                                "(default 10000)")
    group.add_argument("--ray", metavar="ADDRESS",
                       help="run the islands as Ray actors: 'local' (a private cluster on "
                            "127.0.0.1), 'auto' (the cluster `ray start` made here) or "
                            "HOST:PORT (needs azdsl[ray])")


def plan(args: argparse.Namespace) -> IslandSettings:
    """The island settings of a new run (before its folder is made: Ray errors come first)."""
    from azdsl.scale.parallel import IslandSettings
    from azdsl.scale.workers import local_cores

    cpus = local_cores()
    if args.ray is not None:  # connect now: a cluster that cannot be reached is a user error
        from azdsl.scale.ray_pool import cluster_cpus

        cpus = cluster_cpus(args.ray, args.workers)
    return IslandSettings(args.islands or args.workers or cpus, args.migrate_every)


def make_search(args: argparse.Namespace, settings: IslandSettings, config: Config, seed: int,
                hooks: Hooks) -> Any:
    """A Search for one island, else an IslandRun."""
    from azdsl.search.evolve import Search

    if settings.islands == 1:
        return Search(config, seed, args.backend, hooks)
    return island_run(args, settings, config, seed, args.backend, hooks)


def settings_files(settings: IslandSettings) -> dict[str, str]:
    """The files a new run folder holds for its island settings (none for one island)."""
    if settings.islands == 1:
        return {}
    return {ISLANDS: json.dumps({"format": ISLANDS_FORMAT, "version": ISLANDS_VERSION,
                                 **settings.to_json()}, indent=2) + "\n"}


def read_settings(folder: Path) -> IslandSettings | None:
    """The island settings of a run folder; None for a single-process run."""
    file = folder / ISLANDS
    if not file.exists():
        return None
    from azdsl.runfolder import RunError, read_json
    from azdsl.scale.parallel import IslandSettings
    from azdsl.state import StateError

    data = read_json(file)
    if not isinstance(data, dict) or data.get("format") != ISLANDS_FORMAT:
        raise RunError(f"{file}: not azdsl island settings")
    version = data.get("version", ISLANDS_VERSION)
    if version != ISLANDS_VERSION or isinstance(version, bool):
        raise RunError(f"{file}: version {version!r} of the island settings; this azdsl reads "
                       f"version {ISLANDS_VERSION} (nothing was changed)")
    try:
        return IslandSettings.from_json(data, "")
    except StateError as exc:
        raise RunError(f"{file}: {exc} (nothing was changed)") from None


def island_run(args: argparse.Namespace, settings: IslandSettings, config: Config, seed: int,
               backend: str, hooks: Hooks) -> Any:
    """The IslandRun of a new or resumed run, where --workers and --ray say."""
    from azdsl.limits import check_memory, island_needs
    from azdsl.scale.parallel import Execution, IslandRun
    from azdsl.scale.workers import assignment, local_cores

    execution = Execution(args.workers, args.ray)
    workers = len(assignment(settings.islands, args.workers or local_cores()))
    if args.ray is None:  # Ray's workers may be elsewhere; local ones share this machine's memory
        check_memory(island_needs(config, settings.islands, workers))
    if not args.quiet:
        where = f"Ray ({args.ray})" if args.ray is not None else f"{workers} local worker(s)"
        print(f"{settings.islands} islands, migration every {settings.migrate_every:,} "
              f"individuals, on {where}", file=sys.stderr)
    return IslandRun(config, seed, settings, backend=backend, hooks=hooks, execution=execution)
