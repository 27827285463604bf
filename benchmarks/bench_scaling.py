"""Scaling: individuals/s of the demo search on 1 and 2 local workers and on Ray (127.0.0.1).

    python benchmarks/bench_scaling.py                      # 200,000 individuals per layout
    python benchmarks/bench_scaling.py --individuals 400000 --no-ray

Every layout searches one experiment of the demo config (examples/demo.toml) for the same
total number of individuals (the experiment's budget, which N islands share). Layouts:
  1 island, 1 process       the single-process search (azdsl.search.evolve.Search)
  2 islands, 1 process      islands run in turn in the driver (the cost of islands alone)
  2 islands, 2 processes    the default on a 2-core machine (azdsl.scale.parallel, local workers)
  2 islands, 2 Ray actors   a head started here with `ray start --head` on 127.0.0.1
Figures are wall-clock: individuals/s over the whole search (workers' start-up and first
segment included) and steady (between the first and the last progress record); CPU s sums
the driver and the workers (Ray's own daemons not counted), start-up and the select and final
scoring included. Numba's caches are warmed first. Shared machines are noisy (±20% between
identical runs): compare figures measured back to back, and read the load average printed
with them; a second process only speeds the search up when a second core is free.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from azdsl.scale.parallel import Execution, IslandRun, IslandSettings  # noqa: E402
from azdsl.search.config import Config, load_config  # noqa: E402
from azdsl.search.evolve import NoHooks, Search  # noqa: E402

# A private head on the loopback interface only; token auth off (nothing else can reach it).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process of this machine (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Records(NoHooks):
    """Hooks that keep the progress records and, at the end, the workers' CPU time."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.run: IslandRun | None = None
        self.worker_cpu = 0.0

    def progress(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if record["done"] and self.run is not None:
            pids = set(self.run.worker_pids()) - {os.getpid()}
            self.worker_cpu = sum(cpu_seconds(pid) for pid in pids)


def one_experiment(config: Config, individuals: int) -> Config:
    return replace(config, budget=replace(config.budget, max_train_steps=0,
                                          max_individuals=individuals, max_experiments=1,
                                          sufficient_fitness=None),
                   progress_every=10_000, checkpoint_seconds=0.0)


def measure(name: str, run: Callable[[Records], Any]) -> dict[str, Any]:
    hooks = Records()
    start, cpu = time.monotonic(), time.process_time()
    run(hooks)
    wall = time.monotonic() - start
    cpu = time.process_time() - cpu + hooks.worker_cpu
    records = [r for r in hooks.records if r["individuals"] > 0]
    first, last = records[0], records[-1]
    steady = (last["individuals"] - first["individuals"]) / max(
        1e-9, last["seconds"] - first["seconds"])
    return {"layout": name, "individuals": last["individuals"], "search_s": last["seconds"],
            "wall_s": wall, "rate": last["individuals"] / last["seconds"], "steady": steady,
            "cpu_s": cpu, "per_cpu": last["individuals"] / cpu}


@contextlib.contextmanager
def ray_head(cpus: int) -> Iterator[str]:
    """`ray start --head` on 127.0.0.1 (its own process group, stopped at the end)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--num-cpus", str(cpus), "--include-dashboard", "false",
         "--disable-usage-stats"], env={**os.environ, **RAY_ENV}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Ray head did not start")
            time.sleep(0.5)
        time.sleep(2)  # the raylet registers after the GCS listens
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--individuals", type=int, default=200_000)
    parser.add_argument("--migrate-every", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    config = one_experiment(load_config(ROOT / "examples" / "demo.toml"), args.individuals)
    settings = IslandSettings(2, args.migrate_every)

    def islands(execution: Execution) -> Callable[[Records], Any]:
        def go(hooks: Records) -> Any:
            hooks.run = IslandRun(config, args.seed, settings, hooks=hooks, execution=execution)
            return hooks.run.run()

        return go

    print("warming Numba's caches ...", file=sys.stderr)
    warm = one_experiment(config, 3_000)
    Search(warm, 12345).run()
    IslandRun(warm, 12345, IslandSettings(2, 1000), execution=Execution(workers=2)).run()

    rows = [
        measure("1 island, 1 process", lambda hooks: Search(config, args.seed, "vm",
                                                             hooks).run()),
        measure("2 islands, 1 process", islands(Execution(workers=1))),
        measure("2 islands, 2 processes", islands(Execution(workers=2))),
    ]
    if not args.no_ray:
        os.environ.update(RAY_ENV)
        print("starting a Ray head on 127.0.0.1 ...", file=sys.stderr)
        with ray_head(2) as address:
            rows.append(measure("2 islands, 2 Ray actors",
                                islands(Execution(workers=2, ray=address))))

    base = rows[0]["steady"]
    print(f"\ndemo search, {args.individuals:,} individuals per layout, seed {args.seed}, "
          f"migration every {args.migrate_every:,}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| layout | search s | wall s | individuals/s | steady individuals/s | speed-up | "
          "CPU s | individuals per CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['layout']} | {row['search_s']:.1f} | {row['wall_s']:.1f} | "
              f"{row['rate']:,.0f} | {row['steady']:,.0f} | {row['steady'] / base:.2f}x | "
              f"{row['cpu_s']:.1f} | {row['per_cpu']:,.0f} |")


if __name__ == "__main__":
    main()
