"""Task generators, seeds, loaders (CIFAR pickles, idx files, .npz) and projected pairs."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from azdsl.errors import ConfigError
from azdsl.running import tasks as T
from azdsl.running.tasks import Task, TaskSpec, make_collection, make_tasks
from azdsl.search.config import parse_config


def digest(task_list: list[Task]) -> str:
    h = hashlib.sha256()
    for t in task_list:
        for a in (t.x_train, t.y_train, t.x_valid, t.y_valid, t.perm):
            h.update(a.tobytes())
        h.update(t.name.encode())
    return h.hexdigest()


SPECS = {
    "linear": TaskSpec("linear", dim=4, num_tasks=3, num_train=20, num_valid=10),
    "affine": TaskSpec("affine", dim=4, num_tasks=2, num_train=20, num_valid=10, seed=5),
    "nonlinear": TaskSpec("nonlinear", dim=4, num_tasks=2, num_train=20, num_valid=10),
    "projected": TaskSpec("projected", dim=8, num_tasks=2, num_train=100, num_valid=40),
}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_same_seeds_same_bits(kind: str) -> None:
    T.load_images.cache_clear()
    assert digest(make_tasks(SPECS[kind])) == digest(make_tasks(SPECS[kind]))


def test_same_bits_in_a_fresh_process() -> None:
    here = digest([t for spec in SPECS.values() for t in make_tasks(spec)])
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_tasks import SPECS, digest\nfrom azdsl.running.tasks import make_tasks\n"
        "print(digest([t for s in SPECS.values() for t in make_tasks(s)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == here


def test_seeds_follow_lists_bases_and_defaults() -> None:
    assert [T.task_seed(i, (5, 9), None, (1,)) for i in range(4)] == [5, 9, 10, 11]
    assert [T.task_seed(i, (), 100, (1,)) for i in range(3)] == [100, 101, 102]
    assert [T.task_seed(i, (), None, T.DEFAULT_PARAM_SEEDS) for i in (0, 7, 8)] == [
        1001, 1003, 1004]
    # Past the end, seeds the list holds are skipped: no task is drawn twice.
    assert [T.task_seed(i, (5, 9, 6), None, (1,)) for i in range(6)] == [5, 9, 6, 7, 8, 10]
    defaults = [T.task_seed(i, (), None, T.DEFAULT_DATA_SEEDS) for i in range(100)]
    assert len(set(defaults)) == 100 and defaults[:10] == [*T.DEFAULT_DATA_SEEDS, 11004, 11005]
    tasks = make_tasks(TaskSpec("linear", num_tasks=2, seed=40))
    assert [t.name for t in tasks] == ["linear-F4-p40-d40", "linear-F4-p41-d41"]
    other = make_tasks(TaskSpec("linear", num_tasks=1, seed=41))[0]
    assert np.array_equal(other.x_train, tasks[1].x_train)
    assert not np.array_equal(tasks[0].x_train, tasks[1].x_train)


def test_indices_run_across_a_collection() -> None:
    tasks = make_collection([SPECS["linear"], SPECS["nonlinear"]])
    assert [t.index for t in tasks] == list(range(5))


def test_linear_labels_are_the_weights_dot_features_summed_in_order() -> None:
    task = T.linear_task(3, 30, 10, param_seed=4, data_seed=6)
    w = T.generator(4, T._PARAM_SALT["linear"]).standard_normal(3)
    x = np.concatenate([task.x_train, task.x_valid])
    y = np.concatenate([task.y_train, task.y_valid])
    assert [((0.0 + r[0] * w[0]) + r[1] * w[1]) + r[2] * w[2] for r in x] == y.tolist()
    assert task.kind == "regression" and task.dim == 3
    assert abs(x.mean()) < 0.5 and 0.5 < x.std() < 1.5


def test_affine_adds_one_bias() -> None:
    plain = T.linear_task(3, 30, 10, 4, 6)
    affine = T.linear_task(3, 30, 10, 4, 6, bias=True)
    offsets = affine.y_train - T._rows_dot(affine.x_train, T.generator(
        4, T._PARAM_SALT["affine"]).standard_normal(3))
    assert np.ptp(offsets) < 1e-12 and abs(offsets[0]) > 0
    assert not np.array_equal(plain.y_train, affine.y_train)


def test_nonlinear_teacher_ignores_hidden_units_zero_and_two() -> None:
    task = T.nonlinear_task(4, 50, 10, param_seed=3, data_seed=9)
    weights = T.generator(3, T._PARAM_SALT["nonlinear"])
    w1, w2 = weights.standard_normal((4, 4)), weights.standard_normal(4)
    expected = []
    for row in task.x_train:
        total = 0.0
        for i in (1, 3):  # rows/entries 0 and 2 are zeroed
            hidden = 0.0
            for j in range(4):
                hidden += w1[i, j] * row[j]
            total += w2[i] * max(hidden, 0.0)
        expected.append(total)
    assert task.y_train.tolist() == expected


def test_permutation_is_fixed_per_data_seed() -> None:
    a, b = T.linear_task(2, 40, 5, 1, 2, epochs=3), T.linear_task(2, 40, 5, 9, 2)
    assert sorted(a.perm.tolist()) == list(range(40)) and a.epochs == 3
    assert np.array_equal(a.perm, b.perm)
    assert not np.array_equal(a.perm, np.arange(40))


def test_unknown_kind_and_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown task kind"):
        make_tasks(TaskSpec("quadratic"))
    with pytest.raises(ConfigError, match="num_train"):
        make_tasks(TaskSpec("linear", num_train=0))


# ---- projected binary classification -------------------------------------------------------------


def test_digits_projected_pairs() -> None:
    search = make_tasks(TaskSpec("projected", dim=8, num_tasks=12, num_train=150, num_valid=60,
                                 num_test=60))
    held = make_tasks(TaskSpec("projected", dim=8, num_tasks=6, num_train=150, num_valid=60,
                               pairs="heldout", seed=1000))
    for task, allowed in [(t, T.SEARCH_PAIRS) for t in search] + [(t, T.HELD_OUT_PAIRS)
                                                                   for t in held]:
        pos, neg = (int(p.split("_")[1]) for p in task.name.split("-")[1:3])
        assert (pos, neg) in allowed and pos < neg
        assert task.kind == "classification" and task.dim == 8
        assert set(np.unique(task.y_train)) == {0.0, 1.0}
        assert 0.35 < task.y_train.mean() < 0.65  # stratified: classes are ~180 each
        assert np.allclose(task.x_train.mean(axis=0), 0.0, atol=1e-9)
        assert np.allclose(task.x_train.std(axis=0), 1.0)
        assert task.x_valid.shape == (60, 8)
    assert len(T.SEARCH_PAIRS) == 36 and not set(T.SEARCH_PAIRS) & set(T.HELD_OUT_PAIRS)
    assert len({t.name.split("-seed")[0] for t in search}) > 3  # pairs vary with the seed
    assert search[0].x_test is not None and search[0].x_test.shape == (60, 8)


def test_explicit_pair_and_too_many_examples() -> None:
    task = make_tasks(TaskSpec("projected", dim=4, num_train=100, num_valid=50,
                               pairs=((7, 2),)))[0]
    assert task.name.startswith("digits-pos_2-neg_7-")
    with pytest.raises(ConfigError, match="do not fit"):
        make_tasks(TaskSpec("projected", num_train=5000, num_valid=100))


def test_stratified_split_is_disjoint_and_keeps_the_class_mix() -> None:
    labels = np.array([1] * 30 + [0] * 70)
    rng = np.random.default_rng(0)
    splits = T.stratified_split(labels, (50, 20, 30), rng)
    assert sorted(np.concatenate(splits).tolist()) == list(range(100))
    assert [int(labels[s].sum()) for s in splits] == [15, 6, 9]


def write_cifar(folder: Path, per_batch: int = 40) -> None:
    rng = np.random.default_rng(1)
    for k in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [(i + k) % 10 for i in range(per_batch)],
                 b"batch_label": b"training batch"}
        with (folder / f"data_batch_{k}").open("wb") as handle:
            pickle.dump(batch, handle)


def test_cifar_batches_load_and_project(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    images = T.load_cifar10(tmp_path)
    assert images.images.shape == (200, 3072) and images.labels.shape == (200,)
    task = T.projected_task(images, 16, 20, 8, data_seed=3, pairs=((0, 1),))
    assert task.x_train.shape == (20, 16) and task.name.startswith("cifar10-pos_0-neg_1")
    spec_task = make_tasks(TaskSpec("projected", dataset="cifar10", data_path=str(tmp_path),
                                    dim=16, num_train=20, num_valid=8, pairs=((0, 1),),
                                    data_seeds=(3,)))[0]
    assert np.array_equal(spec_task.x_train, task.x_train)
    (tmp_path / "data_batch_5").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="data_batch_5"):
        T.load_cifar10(tmp_path)


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_load(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (60, 28, 28))
    labels = np.arange(60) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte", images, gz)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz)
    loaded = T.load_idx(tmp_path, "fashion_mnist")
    assert np.array_equal(loaded.images, images.reshape(60, 784).astype(np.uint8))
    assert loaded.labels.tolist() == labels.tolist()
    task = T.projected_task(loaded, 4, 6, 4, data_seed=0, pairs=((3, 5),))
    assert task.y_train.sum() == 3  # 6 images of each class: stratified halves


def test_truncated_idx_file_is_a_config_error(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2)), False)
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-1])
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3), False)
    with pytest.raises(ConfigError, match="does not match its header"):
        T.load_idx(tmp_path)
    with pytest.raises(ConfigError, match="missing"):
        T.load_idx(tmp_path / "nowhere")


def test_missing_data_path_and_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match="needs a data path"):
        T.load_images("fashion_mnist", None)
    with pytest.raises(ConfigError, match="unknown data set"):
        T.load_images("imagenet", "/tmp")


# ---- user .npz data ------------------------------------------------------------------------------


Arrays = dict[str, np.ndarray]


def good_arrays(kind: str | None = "regression") -> Arrays:
    rng = np.random.default_rng(3)
    arrays = {"x_train": rng.normal(size=(12, 3)), "y_train": rng.normal(size=12),
              "x_valid": rng.normal(size=(5, 3)), "y_valid": rng.normal(size=5)}
    if kind is not None:
        arrays["kind"] = np.array(kind)
    return arrays


def binary_arrays(kind: str | None) -> Arrays:
    """good_arrays with 0/1 labels, which fit either kind."""
    arrays = good_arrays(kind)
    for name in ("y_train", "y_valid"):
        arrays[name] = (arrays[name] > 0).astype(float)
    return arrays


def test_npz_task_loads(tmp_path: Path) -> None:
    arrays = good_arrays()
    np.savez(tmp_path / "mine.npz", **arrays)
    task = make_tasks(TaskSpec("npz", data_path=str(tmp_path / "mine.npz")))[0]
    assert task.name == "mine" and task.dim == 3 and task.kind == "regression"
    assert np.array_equal(task.x_valid, arrays["x_valid"])
    np.savez(tmp_path / "cls.npz", **binary_arrays("classification"))
    task = T.npz_task(tmp_path / "cls.npz", num_train=4)
    assert task.kind == "classification" and len(task.y_train) == 4


def test_an_npz_files_kind_is_never_guessed(tmp_path: Path) -> None:
    np.savez(tmp_path / "labels.npz", **binary_arrays(None))
    spec = TaskSpec("npz", data_path=str(tmp_path / "labels.npz"))
    with pytest.raises(ConfigError) as info:
        make_tasks(spec)
    assert info.value.diagnostics[0].message == (
        f"{tmp_path / 'labels.npz'} does not say whether it is regression or classification: "
        'add a `kind` array to the file ("regression" or "classification"), pass --kind, or '
        "set label_kind in the config")
    for kind in ("regression", "classification"):
        assert make_tasks(replace(spec, label_kind=kind))[0].kind == kind
    np.savez(tmp_path / "said.npz", **binary_arrays("classification"))
    said = replace(spec, data_path=str(tmp_path / "said.npz"))
    assert make_tasks(replace(said, label_kind="classification"))[0].kind == "classification"
    with pytest.raises(ConfigError, match="its `kind` array says 'classification' but "
                                          "'regression' was asked for"):
        make_tasks(replace(said, label_kind="regression"))


def test_one_npz_file_is_one_task(tmp_path: Path) -> None:
    np.savez(tmp_path / "mine.npz", **good_arrays())
    spec = TaskSpec("npz", data_path=str(tmp_path / "mine.npz"), num_tasks=2)
    with pytest.raises(ConfigError) as info:
        make_tasks(spec)
    assert info.value.diagnostics[0].message == (
        f"{tmp_path / 'mine.npz'}: one .npz file is one task; num_tasks must be 1, not 2")
    config = """[[search_tasks]]
kind = "linear"
[[search_tasks]]
kind = "npz"
path = "mine.npz"
num_tasks = 3
[predict]
ops = ["s = dot(v, v)"]
[budget]
max_individuals = 100
"""
    with pytest.raises(ConfigError) as info:
        parse_config(config, filename="exp.toml", base_dir=tmp_path)
    assert ("`search_tasks[1].num_tasks`: one .npz file is one task; num_tasks must be 1 (or "
            "list several files as [[search_tasks]] entries)") in info.value.render()


def test_a_configs_label_kind_reaches_the_npz_task(tmp_path: Path) -> None:
    np.savez(tmp_path / "labels.npz", **binary_arrays(None))
    config = """[search_tasks]
kind = "npz"
path = "labels.npz"
label_kind = "classification"
[predict]
ops = ["s = dot(v, v)"]
[budget]
max_individuals = 100
"""
    specs = parse_config(config, base_dir=tmp_path).search_tasks.specs
    assert [t.kind for t in make_collection(specs)] == ["classification"]
    unsaid = parse_config(config.replace('label_kind = "classification"\n', ""),
                          base_dir=tmp_path).search_tasks.specs
    with pytest.raises(ConfigError, match="does not say whether"):
        make_collection(unsaid)


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.pop("y_valid"), "missing array"),
    (lambda a: a.update(x_train=a["x_train"][:, :, None]), "must be"),
    (lambda a: a.update(y_train=a["y_train"][:5]), "must be"),
    (lambda a: a.update(x_valid=a["x_valid"][:, :2]), "features"),
    (lambda a: a["x_train"].__setitem__((0, 0), np.nan), "nan or inf"),
    (lambda a: a.update(kind=np.array("clustering")), "`kind` array must be"),
    (lambda a: a.update(kind=np.array("classification")), "labels 0 and 1"),
    (lambda a: a.update(x_train=np.zeros((0, 3)), y_train=np.zeros(0)), "no examples"),
])
def test_malformed_npz_is_one_config_error(tmp_path: Path, change: Callable[[Arrays], object],
                                           message: str) -> None:
    arrays = good_arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError, match=message):
        T.npz_task(tmp_path / "bad.npz")


def test_npz_wrong_dim_unreadable_and_missing_file(tmp_path: Path) -> None:
    np.savez(tmp_path / "ok.npz", **good_arrays())
    with pytest.raises(ConfigError, match="F = 4"):
        T.npz_task(tmp_path / "ok.npz", dim=4)
    with pytest.raises(ConfigError, match="asked for"):
        T.npz_task(tmp_path / "ok.npz", num_train=100)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a readable"):
        T.npz_task(tmp_path / "junk.npz")
    with pytest.raises(ConfigError, match="no such file"):
        T.npz_task(tmp_path / "absent.npz")
