"""Islands as Ray actors on a real single-machine cluster on 127.0.0.1 (started here)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from support import Capture, without_times
from test_parallel import SETTINGS, config, same

from azdsl.scale.parallel import Execution, IslandRun
from azdsl.scale.ray_pool import RayPool, start_local

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import ray

    start_local(ray, 2)  # as --ray local starts one (a run that did not start it leaves it)
    try:
        yield ray
    finally:
        ray.shutdown()


class Killer(Capture):
    def __init__(self) -> None:
        super().__init__()
        self.run: IslandRun | None = None
        self.killed: list[int] = []

    def progress(self, record: dict[str, Any]) -> None:
        super().progress(record)
        if len(self.records) == 3 and self.run is not None:
            pid = self.run.worker_pids()[0]
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)


def test_ray_actors_give_the_local_result_even_when_one_is_killed(cluster: Any) -> None:
    assert cluster.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in cluster.nodes())
    expected = Capture()
    reference = IslandRun(config(), 3, SETTINGS, hooks=expected,
                          execution=Execution(workers=1)).run()
    hooks = Killer()
    run = IslandRun(config(), 3, SETTINGS, hooks=hooks,
                    execution=Execution(workers=2, ray="local"))
    hooks.run = run
    result = run.run()
    assert hooks.killed and run.restarts == 1 and hooks.killed[0] != os.getpid()
    assert same(result, reference)
    assert without_times(hooks.records) == without_times(expected.records)
    assert cluster.is_initialized()  # a cluster the run did not start is left running


def test_ray_pool_holds_islands_round_robin(cluster: Any) -> None:
    from azdsl.scale.islands import RunSpec

    pool = RayPool(RunSpec(config(), 1, "vm", 3, 1), "local", None)
    try:
        assert pool.islands == [[0, 2], [1]]  # the cluster's 2 CPUs
        assert len(set(pool.pids())) == 2
    finally:
        pool.close()
