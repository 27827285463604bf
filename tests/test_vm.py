"""The VM's lowering, task packing, batches and sessions (its results are held to the
interpreter's in test_backends_differential.py)."""

from __future__ import annotations

import numpy as np
import pytest
from support import sgd

from azdsl.language.liveness import random_ordinals
from azdsl.language.parse import parse
from azdsl.language.program import Program
from azdsl.running import interp, rng, vm
from azdsl.running.evaluate import Settings, evaluate, get_backend
from azdsl.running.tasks import Task, TaskSpec, make_tasks

SGD = parse(sgd())

RANDOM = parse("""\
def Setup():
  v1 = gaussian(0.0, 0.5)
  s3 = uniform(-1.0, 1.0)
  m1 = gaussian(1.0, 1.0)
  v1 = uniform(0.0, 1.0)
def Predict():
  s1 = dot(v0, v1)
def Learn():
  v2 = gaussian(0.0, 0.1)
  v1 = v1 + v2
""")


def test_lowering_layout_and_offsets() -> None:
    program = parse("def Setup():\n  m1[2, 3] = 1.5\n  v2[1] = -2.0\n"
                    "def Predict():\n  s1 = dot(v0, v2)\n")
    low = vm.lower(program, (2, 3, 2), 4)
    rows = low.ints.reshape(-1, vm.ROW)
    assert low.bounds == (0, 2, 3, 3)
    assert low.mem_size == 2 + 3 * 4 + 2 * 16 and low.features == 2
    assert rows[0, vm.COL_OUT] == 2 + 12 + 16  # m1: after the scalars, vectors and m0
    assert (rows[0, vm.COL_IDX1], rows[0, vm.COL_IDX2]) == (2, 3)
    assert (rows[1, vm.COL_OUT], rows[1, vm.COL_IDX1]) == (2 + 8, 1)
    assert rows[2].tolist()[:4] == [27, 1, 2, 10]
    assert low.floats.reshape(-1, vm.FLOAT_ROW)[:2, 0].tolist() == [1.5, -2.0]


def test_lowering_is_cached_but_equal_to_a_fresh_one() -> None:
    first = vm.lower(SGD, (5, 3, 0), 4)
    again = vm.lower(SGD, (5, 3, 0), 4)
    copy = parse(vm_text := "def Learn():\n  s3 = s0 - s1\n")
    assert np.array_equal(first.ints, again.ints) and first.bounds == again.bounds
    assert vm.lower(copy, (4, 1, 0), 4).ints.tolist() == vm.lower(parse(vm_text), (4, 1, 0),
                                                                   4).ints.tolist()
    other_layout = vm.lower(SGD, (6, 3, 0), 4)  # vectors move when there are more scalars
    assert not np.array_equal(first.ints, other_layout.ints)


def test_random_ordinals_follow_liveness() -> None:
    low = vm.lower(RANDOM, (4, 3, 2), 4)
    ordinals = [int(x) for x in low.ints.reshape(-1, vm.ROW)[:, vm.COL_ORDINAL]]
    expected = [o for part in random_ordinals(RANDOM) for o in part]
    # v1 = gaussian(...) is overwritten before use and m1, s3 are never read: dead, -1.
    assert ordinals == expected and ordinals[:4] == [-1, -1, -1, 0]
    pruned = Program((RANDOM.setup[3],), RANDOM.predict, RANDOM.learn)
    fast = vm.lower(pruned, (4, 3, 2), 4, all_live=True)
    assert fast.ints.tolist() == vm.lower(pruned, (4, 3, 2), 4).ints.tolist()


def test_memory_views_share_the_flat_memory() -> None:
    flat = np.arange(2 + 3 * 4 + 16.0)
    s, v, m = vm.memory_views(flat, (2, 3, 1), 4)
    assert s.tolist() == [0.0, 1.0] and v[2, 3] == 13.0 and m[0, 3, 3] == 29.0
    v[0, 0] = -1.0
    assert flat[2] == -1.0


def test_packed_tasks_pad_and_limit() -> None:
    short = make_tasks(TaskSpec(num_tasks=1, num_train=5, num_valid=3))[0]
    long = make_tasks(TaskSpec(num_tasks=2, num_train=9, num_valid=7, epochs=3))[1]
    packed = vm.PackedTasks.pack([short, long], Settings(num_train=8))
    assert packed.x_train.shape == (2, 9, 4) and packed.x_valid.shape == (2, 7, 4)
    assert packed.n_train.tolist() == [5, 8] and packed.n_valid.tolist() == [3, 7]
    assert packed.epochs.tolist() == [1, 3] and packed.task_index.tolist() == [0, 1]
    assert np.array_equal(packed.x_train[1], long.x_train)
    assert np.array_equal(packed.perm[1], long.perm)
    assert not packed.classification.any() and len(packed) == 2
    with pytest.raises(ValueError, match="one F"):
        vm.PackedTasks.pack([short, make_tasks(TaskSpec(dim=3))[0]], Settings())


def test_batch_reuses_its_arrays_and_grows() -> None:
    tasks = vm.PackedTasks.pack(make_tasks(TaskSpec(num_tasks=3, num_train=20, num_valid=10)),
                                Settings())
    batch = vm.Batch(tasks, record=4)
    one = batch.run([vm.lower(SGD, (5, 3, 0), 4)], [7])
    first = one.fitness.copy()
    assert one.fitness.shape == (1, 3) and one.errors.shape == (1, 3, 4)
    assert one.counts[0, :, 2].tolist() == [20, 20, 20]  # Learn steps
    three = batch.run([vm.lower(p, (5, 3, 2), 4) for p in (RANDOM, SGD, RANDOM)], [1, 7, 2])
    assert batch.size == 3 and three.fitness.shape == (1 * 3, 3)
    assert three.fitness[1].tolist() == first[0].tolist()
    assert three.fitness[0].tolist() != three.fitness[2].tolist()  # other seed, other draws


def test_evaluate_batch_rejects_strided_task_arrays() -> None:
    tasks = vm.PackedTasks.pack(make_tasks(TaskSpec(num_tasks=2, num_train=6, num_valid=4)),
                                Settings())
    low = vm.lower(SGD, (5, 3, 0), 4)
    ints, floats, bounds, layouts = vm.concatenate([low])
    with pytest.raises(ValueError, match="C-contiguous"):
        vm.vm_module(4).evaluate_batch(
            ints, floats, bounds, layouts, np.zeros(1, np.uint64), tasks.x_train[:, ::2],
            tasks.y_train[:, ::2], tasks.x_valid, tasks.y_valid, tasks.perm, tasks.n_train,
            tasks.n_valid, tasks.epochs, tasks.classification, tasks.task_index, 100.0,
            np.zeros((1, 2)), np.zeros((1, 2, 0)), np.zeros((1, 2, 3), np.int64))


def test_session_steps_like_the_interpreter() -> None:
    """open_session gives a runner the estimator calls one example at a time."""
    settings = Settings(seed=4)
    runner, ctx = get_backend("vm").open_session(RANDOM, 4, settings, 2)  # type: ignore[misc]
    machine = interp.Machine.fresh(RANDOM, (4, 3, 2), 4, rng.stream(4, 2))
    x = np.array([0.5, -1.0, 2.0, 0.25])
    expected = [interp.runner(machine, 0, 0, np.zeros(4), 0.0)]
    got = [runner(ctx, 0, 0, np.zeros(4), 0.0)]
    for step in range(3):
        expected.append(interp.runner(machine, 1, step, x, 0.0))
        got.append(runner(ctx, 1, step, x, 0.0))
        expected.append(interp.runner(machine, 2, step, x, 1.5))
        got.append(runner(ctx, 2, step, x, 1.5))
    assert got == expected


def test_mixed_feature_sizes_are_grouped(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, list[int]]] = []
    real = vm.evaluate_programs

    def spy(programs: list[Program], tasks: vm.PackedTasks, settings: Settings,
            seeds: list[int] | None = None) -> vm.BatchResult:
        calls.append((tasks.dim, tasks.task_index.tolist()))
        if tasks.dim == 4:
            return real(programs, tasks, settings, seeds)
        count = len(tasks)  # another F would compile another VM; fake its results
        return vm.BatchResult(np.full((1, count), 0.5), np.zeros((1, count, 0)),
                              np.zeros((1, count, 3), dtype=np.int64))

    monkeypatch.setattr(vm, "evaluate_programs", spy)
    four = make_tasks(TaskSpec(num_tasks=2, num_train=10, num_valid=5))
    three = Task("f3", "regression", 3, np.zeros((4, 3)), np.zeros(4), np.zeros((2, 3)),
                 np.zeros(2), index=5)
    result = evaluate(SGD, [four[0], three, four[1]], backend="vm")
    assert calls == [(3, [5]), (4, [0, 1])]
    expected = evaluate(SGD, four, backend="interp").task_fitness
    assert result.task_fitness == (expected[0], 0.5, expected[1])


def test_lowering_rejects_what_the_vm_would_not_check() -> None:
    with pytest.raises(ValueError, match="outside the memory"):
        vm.lower(SGD, (3, 3, 0), 4)  # s3 does not fit 3 scalars
    with pytest.raises(ValueError, match="out of range for F = 4"):
        vm.lower(parse("def Setup():\n  v1[4] = 1.0\n"), (2, 2, 0), 4)


def test_lowering_cache_clears_without_changing_results(monkeypatch: pytest.MonkeyPatch) -> None:
    from azdsl.running import lowering
    from azdsl.search.mutate import MutationConfig, random_program

    g = np.random.default_rng(1)
    programs = [random_program(g, MutationConfig()) for _ in range(30)]
    expected = [vm.lower(p, (4, 3, 1), 4).ints.tolist() for p in programs]
    monkeypatch.setattr(lowering, "_CACHE_MAX", 7)
    lowering._LAYOUTS.clear()
    for _ in range(2):
        assert [vm.lower(p, (4, 3, 1), 4).ints.tolist() for p in programs] == expected
    cache = lowering._LAYOUTS[(4, 3, 1, 4)]
    assert len(cache.components) <= 7 and len(cache.rows) <= 7 + 10  # + one component


def test_warm_loads_the_vm() -> None:
    vm.warm(4)
    assert vm.vm_module(4).evaluate_batch.signatures  # compiled or loaded, ready to run
