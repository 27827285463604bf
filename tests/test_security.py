"""Bad input never runs code: CIFAR-10 pickles, the compiled-code cache, Ray's local cluster."""

from __future__ import annotations

import io
import os
import pickle
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from azdsl.errors import ConfigError
from azdsl.running import codegen
from azdsl.running import tasks as T
from azdsl.scale import ray_pool as parallel_ray

# ---- CIFAR-10 batches -------------------------------------------------------------------------


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote the real batches: every string a byte string
    (BINSTRING), numpy's reconstructor in numpy.core (see `python2_dumps`)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        head = (pickle.SHORT_BINSTRING + bytes([len(raw)]) if len(raw) < 256
                else pickle.BINSTRING + struct.pack("<i", len(raw)))
        self.write(head + raw)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str
    dispatch[str] = save_python2_str


def python2_dumps(obj: Any) -> bytes:
    out = io.BytesIO()
    Python2Pickler(out, protocol=2).dump(obj)
    return out.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def batch(k: int, rows: int = 12) -> dict[bytes, Any]:
    """A batch laid out as the real ones (which hold 10,000 rows each)."""
    rng = np.random.default_rng(k)
    return {b"batch_label": f"training batch {k} of 5".encode(),
            b"labels": [(i * k) % 10 for i in range(rows)],
            b"data": rng.integers(0, 256, (rows, 3072), dtype=np.uint8),
            b"filenames": [f"image_{k}_{i}.png".encode() for i in range(rows)]}


WRITERS: dict[str, Callable[[Any], bytes]] = {
    "python2": python2_dumps,
    "protocol2": lambda obj: pickle.dumps(obj, protocol=2),
    "highest": lambda obj: pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL),
}


def write_batches(folder: Path, dumps: Callable[[Any], bytes],
                  first: Any = None) -> list[dict[bytes, Any]]:
    """Five batches; `first`, if given, stands in for the first."""
    batches = [batch(k) for k in range(1, 6)]
    for k, content in enumerate(batches, 1):
        written = first if k == 1 and first is not None else content
        (folder / f"data_batch_{k}").write_bytes(dumps(written))
    return batches


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_real_cifar_batches_load(tmp_path: Path, writer: str) -> None:
    batches = write_batches(tmp_path, WRITERS[writer])
    images = T.load_cifar10(tmp_path)
    assert np.array_equal(images.images, np.concatenate([b[b"data"] for b in batches]))
    assert images.labels.tolist() == [label for b in batches for label in b[b"labels"]]


class Runs:
    """An object whose unpickling calls `func(*args)`."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.call = (func, args)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.call


def attacks(marker: Path) -> dict[str, Any]:
    return {
        "system": Runs(os.system, f"touch {marker}"),
        "exec": Runs(exec, f"open({str(marker)!r}, 'w').close()"),
        "getattr": Runs(marker.touch),  # a bound method pickles as getattr(obj, name)
    }


@pytest.mark.parametrize("writer", ["protocol2", "highest"])
@pytest.mark.parametrize("culprit", ["system", "exec", "getattr"])
def test_cifar_batch_that_would_run_code_is_refused(tmp_path: Path, writer: str,
                                                    culprit: str) -> None:
    marker = tmp_path / "ran"
    # Inside a real-looking batch, after the numpy globals that are let through.
    evil = batch(1) | {b"labels": [0, attacks(marker)[culprit]]}
    write_batches(tmp_path, WRITERS[writer], first=evil)
    # (posix.system; builtins.exec, or __builtin__.exec as protocol 2 spells it...)
    with pytest.raises(ConfigError, match=rf"data_batch_1: refused.* asks for \w+\.{culprit}, "
                                          "which a CIFAR-10 batch never holds"):
        T.load_cifar10(tmp_path)
    assert not marker.exists()


def test_codecs_encode_only_spells_bytes(tmp_path: Path) -> None:
    """The one function a batch may call (Python 3's protocol 2 spells bytes with it)."""
    import _codecs

    write_batches(tmp_path, WRITERS["protocol2"], first=Runs(_codecs.encode, "x", "rot13"))
    with pytest.raises(ConfigError, match="data_batch_1: not a CIFAR-10 python batch"):
        T.load_cifar10(tmp_path)


# ---- the compiled-code cache ------------------------------------------------------------------

NOBODY = 65534
as_root = pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                             reason="giving a file to another user needs root")
SOURCE = "X = 1\n"
STEM = codegen.content_stem("t", SOURCE)


def folders(*paths: Path, mode: int = 0o700) -> None:
    for path in paths:
        path.mkdir(exist_ok=True)
        path.chmod(mode)  # whatever the umask


def planted(folder: Path, marker: Path, mode: int = 0o700) -> Path:
    """A cache folder holding, under the predictable name, a module that leaves `marker`."""
    folders(folder, mode=mode)
    path = folder / f"{STEM}.py"
    path.write_text(f"open({str(marker)!r}, 'w').close()\nX = 2\n")
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AZDSL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_fresh_cache_folder_is_private(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = cache / "a" / "b"
    monkeypatch.setenv("AZDSL_CACHE_DIR", str(deep))
    old = os.umask(0o002)  # a umask that lets the group write
    try:
        assert codegen.load_module(STEM, SOURCE).X == 1
    finally:
        os.umask(old)
    for folder in (deep, deep / "__pycache__"):
        assert folder.stat().st_mode & 0o777 == 0o700
    assert (deep / f"{STEM}.py").stat().st_mode & 0o077 == 0


def test_a_planted_module_is_replaced_not_run(cache: Path) -> None:
    marker = cache.parent / "ran"
    path = planted(cache, marker)
    module = codegen.load_module(STEM, SOURCE)
    assert module.X == 1 and not marker.exists()
    assert path.read_text() == SOURCE


def test_a_right_module_is_not_rewritten(cache: Path) -> None:
    """Rewriting would change its stamp and void Numba's cache."""
    codegen.load_module(STEM, SOURCE)
    path = cache / f"{STEM}.py"
    stamp = path.stat().st_mtime_ns
    time.sleep(0.01)
    del sys.modules[f"{STEM}_{codegen.folder_tag(cache)}"]  # as in a new process
    assert codegen.load_module(STEM, SOURCE).X == 1
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o720])
def test_a_cache_folder_others_can_write_is_refused(cache: Path, mode: int) -> None:
    marker = cache.parent / "ran"
    planted(cache, marker, mode)
    with pytest.raises(ConfigError, match=rf"{cache}: can be changed by other users "
                                          rf"\(mode {mode:o}\).*AZDSL_CACHE_DIR"):
        codegen.load_module(STEM, SOURCE)
    assert not marker.exists()


def test_a_pycache_others_can_write_is_refused(cache: Path) -> None:
    folders(cache)
    folders(cache / "__pycache__", mode=0o777)
    with pytest.raises(ConfigError, match=r"__pycache__: can be changed by other users"):
        codegen.load_module(STEM, SOURCE)


@as_root
def test_a_cache_folder_of_another_user_is_refused(cache: Path) -> None:
    marker = cache.parent / "ran"
    planted(cache, marker, 0o755)
    os.chown(cache, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=rf"{cache}: belongs to another user \(uid {NOBODY}\)"):
        codegen.load_module(STEM, SOURCE)
    assert not marker.exists()


@as_root
def test_a_cached_module_of_another_user_is_refused(cache: Path) -> None:
    marker = cache.parent / "ran"
    os.chown(planted(cache, marker), NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=rf"{STEM}\.py: belongs to another user"):
        codegen.load_module(STEM, SOURCE)
    assert not marker.exists()


@as_root
def test_numba_files_of_another_user_are_refused(cache: Path) -> None:
    """Numba's index and data files are pickles it loads."""
    folders(cache, cache / "__pycache__")
    index = cache / "__pycache__" / f"{STEM}.setup-25.py311.nbi"
    index.write_bytes(b"")
    os.chown(index, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=r"setup-25\.py311\.nbi: belongs to another user"):
        codegen.load_module(STEM, SOURCE)


@pytest.mark.parametrize(("folder_mode", "refused"), [(0o700, False), (0o755, True)])
def test_group_writable_files_count_where_the_group_can_reach_them(
        cache: Path, folder_mode: int, refused: bool) -> None:
    """Numba writes its files with the umask's mode (0664 under umask 002): harmless in
    folders no one else may enter, refused where the group can."""
    pycache = cache / "__pycache__"
    folders(cache, pycache, mode=folder_mode)
    index = pycache / f"{STEM}.setup-25.py311.nbi"
    index.write_bytes(b"")
    index.chmod(0o664)
    if refused:
        with pytest.raises(ConfigError, match=r"nbi: can be changed by other users \(mode 664"):
            codegen.load_module(STEM, SOURCE)
    else:
        assert codegen.load_module(STEM, SOURCE).X == 1


# ---- Ray's local cluster ----------------------------------------------------------------------


class FakeRay:
    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.environment: dict[str, str | None] = {}

    def init(self, **options: Any) -> None:
        self.options = options
        self.environment = {name: os.environ.get(name) for name in parallel_ray.LOCAL_ENV}
        raise ConnectionError("no cluster here")


def test_a_local_start_keeps_to_loopback_and_restores_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")  # the caller's own
    monkeypatch.delenv("no_proxy", raising=False)
    fake = FakeRay()
    with pytest.raises(ConnectionError):
        parallel_ray.start_local(fake, 3)
    assert fake.options["address"] == "local" and fake.options["num_cpus"] == 3
    assert fake.options["include_dashboard"] is False
    assert fake.options["_node_ip_address"] == fake.options["dashboard_host"] == "127.0.0.1"
    env = fake.environment
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    for proxy in ("http_proxy", "https_proxy"):
        assert str(env[proxy]).startswith("http://127.0.0.1:")
    assert "127.0.0.1" in str(env["no_proxy"]).split(",")
    assert os.environ["http_proxy"] == "http://proxy.example:3128"
    assert "no_proxy" not in os.environ


@pytest.mark.ray
def test_a_local_cluster_asks_nothing_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's dashboard process asks cloud metadata servers where it runs: the requests must
    reach LOCAL_ENV's loopback proxy (here a listener that records them), nowhere else."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray cluster is running in this process")
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def record() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            with conn:
                conn.settimeout(5)
                seen.append(conn.recv(200).split(b"\r\n")[0])

    threading.Thread(target=record, daemon=True).start()
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    monkeypatch.setitem(parallel_ray.LOCAL_ENV, "http_proxy", proxy)
    monkeypatch.setitem(parallel_ray.LOCAL_ENV, "https_proxy", proxy)
    try:
        parallel_ray.start_local(ray, 1)
        assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in ray.nodes())
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen and all(b"169.254.169.254" in r or b"metadata.google.internal" in r
                            for r in seen), seen
    finally:
        ray.shutdown()
        listener.close()
