"""Island workers as Ray actors: the same islands on a cluster (`--ray local|auto|ADDRESS`).

`local` starts a private single-machine cluster on 127.0.0.1 (shut down at the end); `auto`
joins the cluster `ray start` made on this machine (or RAY_ADDRESS); anything else is a
cluster address (HOST:PORT, ray://...). Every node needs azdsl installed in the Python that
runs Ray. An actor that dies (its process or node lost) surfaces as RayActorError and is
reported as LOST; the driver replaces it and replays its islands from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from azdsl.errors import ConfigError
from azdsl.scale.islands import IslandHost, Pid, Request, RunSpec
from azdsl.scale.workers import LOST, WorkerError, assignment, local_cores

# The environment a private cluster (--ray local) starts its processes in, so that nothing
# leaves 127.0.0.1. Ray swaps 127.0.0.1 for the machine's routable address unless "clusters"
# are off (its Windows/macOS switch); usage stats stay off. Ray's dashboard process, started
# even with the dashboard off, asks cloud metadata servers (169.254.169.254,
# metadata.google.internal) which cloud it runs on: sent to a proxy on a closed loopback port
# (the discard port), those requests fail at once, with no DNS look-up. Ray's own traffic is
# direct: no_proxy covers its addresses, and its gRPC ignores proxies.
LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost",
}


def local_options(cpus: int) -> dict[str, Any]:
    """ray.init's arguments for a private cluster: every process on 127.0.0.1, no dashboard."""
    return {"address": "local", "num_cpus": cpus, "include_dashboard": False,
            "dashboard_host": "127.0.0.1", "_node_ip_address": "127.0.0.1",
            "log_to_driver": False, "configure_logging": False}


def import_ray() -> Any:
    """The ray module, or a ConfigError saying how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray, which is not installed ({exc}); install it with "
                          "`pip install 'azdsl[ray]'`") from None
    return ray


def start_local(ray: Any, cpus: int) -> None:
    """Start a private cluster under LOCAL_ENV; the caller's environment is restored after (the
    cluster's processes keep their copy), so the proxies never reach the caller's own code."""
    saved = {name: os.environ.get(name) for name in LOCAL_ENV}
    os.environ.update(LOCAL_ENV)
    try:
        with contextlib.suppress(ImportError):  # another Ray layout: the variable is all we have
            from ray._private import ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False  # read at import, before LOCAL_ENV was set
        ray.init(**local_options(cpus))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_connected_here = False  # this module called ray.init (and so shuts Ray down at the end)


def connect(address: str, cpus: int | None = None) -> Any:
    """Join (or start, for "local") a cluster, unless this process is connected already."""
    global _connected_here
    if not address:
        raise ConfigError("--ray needs 'local', 'auto' or a cluster address")
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        if address == "local":
            start_local(ray, max(cpus or 0, local_cores()))
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise ConfigError(f"--ray {address}: cannot reach a Ray cluster ({exc}); start one "
                          "with `ray start --head` or use --ray local") from None
    _connected_here = True
    return ray


def cluster_cpus(address: str, workers: int | None = None) -> int:
    """The CPUs of the cluster (the default worker and island count with --ray)."""
    return max(1, int(connect(address, workers).cluster_resources().get("CPU", 1)))


def disconnect() -> None:
    """Shut Ray down if this module connected it (a cluster started by `ray start` stays)."""
    global _connected_here
    if _connected_here:
        import_ray().shutdown()
        _connected_here = False


class RayPool:
    """One Ray actor per worker (1 CPU each), each holding `islands[w]`."""

    def __init__(self, spec: RunSpec, address: str, workers: int | None = None) -> None:
        ray = self._ray = connect(address, workers)
        cpus = cluster_cpus(address)
        self.spec = spec
        self.islands = assignment(spec.islands, workers or cpus)
        # One CPU per actor; more actors than CPUs share them (else the rest never start).
        share = min(1.0, cpus / len(self.islands))
        self._actor = ray.remote(num_cpus=share, max_restarts=0)(IslandHost)
        self._actors = [self._actor.remote(spec, i) for i in self.islands]

    def call(self, requests: Mapping[int, Request]) -> dict[int, Any]:
        ray = self._ray
        refs = {w: self._actors[w].handle.remote(r) for w, r in requests.items()}
        replies: dict[int, Any] = {}
        errors = []
        for worker, ref in refs.items():
            try:
                replies[worker] = ray.get(ref)
            except ray.exceptions.RayActorError:
                replies[worker] = LOST
            except ray.exceptions.RayTaskError as exc:
                errors.append(f"worker {worker}: {exc}")
        if errors:
            raise WorkerError("a worker failed:\n" + "\n".join(errors))
        return replies

    def restart(self, worker: int) -> None:
        with contextlib.suppress(Exception):  # already gone with its node: nothing to stop
            self._ray.kill(self._actors[worker], no_restart=True)
        self._actors[worker] = self._actor.remote(self.spec, self.islands[worker])

    def pids(self) -> list[int]:
        replies = self.call({w: Pid() for w in range(len(self._actors))})
        return [int(replies[w]) if replies[w] is not LOST else 0
                for w in range(len(self._actors))]

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor, no_restart=True)
        self._actors = []
        disconnect()
