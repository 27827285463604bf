"""User ops and task kinds (azdsl.extend): the example extension's `v = softsign(v)` through
the parser and printer, every backend bit for bit, mutation, a search, an island worker
process; clashing or broken registrations; compiled code keyed by the op table's content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_backends_differential import (
    check_generated,
    check_vm,
    outcome_fingerprint,
    random_memory,
)

from azdsl.errors import ConfigError
from azdsl.extend import (
    load_extensions,
    register_op,
    register_task_kind,
    restore,
    snapshot,
    user_ops,
)
from azdsl.language import ops
from azdsl.language.ops import OPS, Op
from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.running import rng, vm
from azdsl.running.tasks import TaskSpec, make_tasks
from azdsl.scale.islands import Begin, RunSpec, Step
from azdsl.scale.local_pool import LocalPool
from azdsl.scale.workers import WorkerError
from azdsl.search.config import op_spellings, parse_config, resolve_op
from azdsl.search.engine import loop_module
from azdsl.search.evolve import Search
from azdsl.search.mutate import MutationConfig, mutate_with_key, random_program_from_key

EXAMPLES = Path(__file__).parent.parent / "examples"
EXTENSION = EXAMPLES / "softsign_ops.py"
SOFTSIGN_TEMPLATE = "for k in range(F):\n    O[k] = A[k] / (1.0 + abs(A[k]))"
PROGRAM = """\
def Setup():
  v1 = softsign(v0)
def Predict():
  v2 = softsign(v0)
  v2 = softsign(v2)
  s1 = dot(v2, v1)
def Learn():
  s2 = s0 - s1
  v1 = softsign(v1)
"""


@pytest.fixture
def softsign() -> Iterator[Op]:
    """The example extension loaded; the table as it was afterwards."""
    before = snapshot()
    load_extensions([str(EXTENSION)])
    try:
        yield next(op for op in OPS if op.func == "softsign")
    finally:
        restore(before)


def config_text(*, extensions: bool = True, kind: str = "softsign_teacher") -> str:
    head = f'[extensions]\nmodules = ["{EXTENSION}"]\n' if extensions else ""
    return head + f"""
[search_tasks]
kind = "{kind}"
num_tasks = 2
num_train = 20
num_valid = 10
[memory]
scalars = 4
vectors = 3
matrices = 0
[setup]
ops = ["s = c", "v = softsign(v)"]
size = 2
[predict]
ops = ["s = dot(v, v)", "v = softsign(v)", "v = v + v"]
size = 3
[learn]
# More than vm.INLINE_MAX ops: the search runs the general VM, which the backend test compiled.
ops = ["s = s - s", "v = s * v", "v = softsign(v)", "s = s + s", "s = s * s", "v = v - v",
       "v = v * v", "s = c", "s = abs(s)", "v = abs(v)", "s = s / s", "v = v / v"]
size = 3
[search]
population_size = 20
tournament_size = 4
[budget]
max_individuals = 300
max_experiments = 1
"""


def test_the_op_round_trips_through_the_parser_the_printer_and_configs(softsign: Op) -> None:
    assert softsign.code == ops.BUILTIN_COUNT == 65  # built-in codes never move
    assert OPS[23].name == "VECTOR_SUM" and user_ops() == (softsign,)
    program = parse(PROGRAM)
    assert unparse(program) == PROGRAM
    assert [i.code for i in program.predict[:2]] == [softsign.code] * 2
    assert resolve_op("v = softsign(v)") == resolve_op("VECTOR_SOFTSIGN") == softsign.code
    assert (softsign.code, "VECTOR_SOFTSIGN", "v = softsign(v)") in op_spellings()
    with pytest.raises(Exception, match="softsign"):
        parse("def Predict():\n  s1 = softsign(v0)\n")  # a vector op written into a scalar


def test_the_op_is_unknown_before_and_after_its_registration() -> None:
    with pytest.raises(Exception, match="unknown function `softsign`"):
        parse(PROGRAM)
    before = snapshot()
    load_extensions([str(EXTENSION)])
    restore(before)
    with pytest.raises(Exception, match="unknown function"):
        parse(PROGRAM)
    with pytest.raises(ValueError, match="unknown op"):
        resolve_op("v = softsign(v)")


def test_every_backend_runs_it_bit_for_bit(softsign: Op) -> None:
    program = parse(PROGRAM)
    for seed in range(3):  # memories holding NaN, inf, -0.0, subnormals
        memory = random_memory(seed)
        check_generated(program, memory, rng.stream(seed, 1), jit=False)
        check_vm(program, memory, rng.stream(seed, 1))
    check_generated(program, random_memory(7), 7, jit=True)
    expected = outcome_fingerprint(program, "interp", 3)
    for backend in ("py", "vm", "jit"):
        assert outcome_fingerprint(program, backend, 3) == expected, backend
    x = np.array([-3.0, -0.0, 0.5, 1e308])
    assert np.array_equal(softsign.semantics(np.zeros(4), [x], (), None), x / (1.0 + np.abs(x)))


def _column_sums(m: np.ndarray) -> np.ndarray:
    total = np.zeros(m.shape[1])
    for i in range(m.shape[0]):  # in index order, as the template adds
        total = total + m[i]
    return total


def test_infix_and_axis_spellings_register_too() -> None:
    before = snapshot()
    try:
        outer = register_op("m = v @ v", np.outer, "for i in range(F):\n    for j in range(F):\n"
                            "        O[i, j] = A[i] * B[j]", cost=1)
        sums = register_op("v = colsum(m, axis=0)", _column_sums,
                           "for j in range(F):\n    acc = 0.0\n    for i in range(F):\n"
                           "        acc += A[i, j]\n    tv[j] = acc\nfor k in range(F):\n"
                           "    O[k] = tv[k]", cost=1)
        assert (outer.name, sums.name) == ("VECTOR_VECTOR_MATMUL", "VECTOR_COLSUM")
        text = "def Setup():\n  m1 = v1 @ v2\n  v1 = colsum(m1, axis=0)\ndef Predict():\n" \
               "  m0 = v0 @ v0\n  v2 = colsum(m0, axis=0)\ndef Learn():\n"
        program = parse(text)
        assert unparse(program) == text
        for seed in range(3):  # the generated Python against the numpy functions (no Numba)
            check_generated(program, random_memory(seed), seed, jit=False)
        with pytest.raises(Exception, match="axis"):
            parse("def Setup():\n  v1 = colsum(m1)\n")
    finally:
        restore(before)


def test_mutation_draws_it_where_a_config_lists_it(softsign: Op) -> None:
    codes = (softsign.code, 23)
    cfg = MutationConfig(dim=4, scalars=4, vectors=3, matrices=0, ops=(codes,) * 3,
                         init_sizes=(3, 3, 3), mutation_types=("randomize_instruction",),
                         mutate_prob=1.0)
    drawn = [i.code for key in range(40) for i in random_program_from_key(key, cfg).instructions()]
    assert set(drawn) == set(codes) and 0.3 < drawn.count(softsign.code) / len(drawn) < 0.7
    parent = random_program_from_key(0, cfg)
    children = [mutate_with_key(parent, key, cfg)[0] for key in range(20)]
    assert all({i.code for i in c.instructions()} <= set(codes) for c in children)
    assert any(c != parent for c in children)


def test_a_short_search_uses_the_op_and_the_task_kind() -> None:
    before = snapshot()
    try:
        config = parse_config(config_text())
        assert config.extensions == (str(EXTENSION),)
        code = resolve_op("v = softsign(v)")
        search = Search(config, 3, "vm")
        search.begin(0)
        search.advance(300)
        members = search.fittest(20)
        assert any(code in {i.code for i in p.instructions()} for p, _, _ in members)
        assert all(-1.0 <= fitness <= 1.0 for _, fitness, _ in members)
        tasks = search.tasks(0)[0]
        assert [t.name.split("-")[0] for t in tasks] == ["softsign_teacher"] * 2
    finally:
        restore(before)


def test_a_worker_process_loads_the_extensions_of_the_config() -> None:
    before = snapshot()
    try:
        config = parse_config(config_text())
        pool = LocalPool(RunSpec(config, 5, "vm", 1, 1), [[0]])
        try:
            pool.call({0: Begin(0)})
            summary = pool.call({0: Step(60, {})})[0][0]
            assert summary.individuals >= 60
            for text, _, _ in summary.emigrants:  # the worker's programs read back here
                assert unparse(parse(text)) == text
        finally:
            pool.close()
    finally:
        restore(before)


def test_a_worker_refuses_ops_that_no_extension_registers() -> None:
    before = snapshot()
    try:
        # Registered by hand in this process only: a worker cannot see it, and says so.
        register_op("v = halve(v)", lambda a: a * 0.5, "for k in range(F):\n    O[k] = A[k] * 0.5",
                    cost=1)
        config = parse_config(config_text(extensions=False, kind="linear").replace(
            '"v = softsign(v)"', '"v = halve(v)"'))
        pool = LocalPool(RunSpec(config, 5, "vm", 1, 1), [[0]])
        try:
            with pytest.raises(WorkerError, match="ops differ from the driver's"):
                pool.call({0: Begin(0)})
        finally:
            pool.close()
    finally:
        restore(before)


@pytest.mark.parametrize(("spelling", "template", "message"), [
    ("v = abs(v)", "for k in range(F):\n    O[k] = A[k]", r"already means op 22 \(VECTOR_ABS"),
    ("s = s + s", "O = A + B", "already means op 1"),
    ("q = twice(v)", "O = A", "`q` is not a kind letter"),
    ("v = twice(x)", "O = A", "`x` is not a kind letter"),
    ("v = twice v", "O = A", "write the spelling as"),
    ("v = uniform(v)", "O = A", "random op's function"),
    ("v = s1(v)", "O = A", "cannot name a function"),
    ("v = twice(v)", "for k in range(F):\n    O[k] = (A[k]",
     r"VECTOR_TWICE .*: the template does not compile"),
    ("v = twice(v)", "for k in range(F):\n    O[k] = helper(A[k])", r"VECTOR_TWICE.*`helper`"),
    ("v = twice(v)", "for k in range(F):\n    O[k] = A[k] + B[k]", "uses B, which the op lacks"),
    ("v = twice(v)", "tv[0] = 1.0", "never writes the output"),
    ("v = twice(v)", "for pc in range(F):\n    O[pc] = A[pc]", "`pc`, which the compiled "
     "backends use"),
    ("v = twice(v)", "for k in range(F):\n    O[k] = A[k] * KEY", "uses `KEY`"),
])
def test_bad_registrations_are_config_errors_naming_the_op(spelling: str, template: str,
                                                           message: str) -> None:
    count = len(OPS)
    with pytest.raises(ConfigError, match=message):
        register_op(spelling, lambda a: a, template, cost=1)
    assert len(OPS) == count


def test_a_name_or_spelling_taken_by_a_user_op_is_refused(softsign: Op) -> None:
    again = load_extensions([str(EXTENSION)])  # loading twice registers nothing new
    assert again == (str(EXTENSION),) and user_ops() == (softsign,)
    same = register_op("v = softsign(v)", softsign.semantics.fn,  # type: ignore[attr-defined]
                       SOFTSIGN_TEMPLATE, cost=4_500_000, doc="elementwise x / (1 + |x|)")
    assert same is softsign
    with pytest.raises(ConfigError, match="VECTOR_SOFTSIGN: the name is taken by op 65"):
        register_op("v = other(v)", lambda a: a, "for k in range(F):\n    O[k] = A[k]",
                    cost=1, name="VECTOR_SOFTSIGN")
    with pytest.raises(ConfigError, match=r"OTHER: `v = softsign.* already means op 65"):
        register_op("v = softsign(v)", lambda a: a, SOFTSIGN_TEMPLATE, cost=1, name="OTHER")
    with pytest.raises(ConfigError, match="cost must be"):
        register_op("v = other(v)", lambda a: a, SOFTSIGN_TEMPLATE, cost=-1)
    with pytest.raises(ConfigError, match="already registered"):
        register_task_kind("softsign_teacher", lambda *a: None)
    with pytest.raises(ConfigError, match="built in"):
        register_task_kind("linear", lambda *a: None)


def test_compiled_code_is_keyed_by_the_op_table() -> None:
    stem = vm.general_stem(3)
    loop = loop_module(3)  # the search's loop, bound to the VM (importing compiles nothing)
    assert "softsign" not in vm.vm_source(3)
    before = snapshot()
    try:
        load_extensions([str(EXTENSION)])
        bound = loop_module(3)
        assert bound is not loop and bound.evaluate_batch is vm.vm_module(3).evaluate_batch
        assert "VECTOR_SOFTSIGN" in Path(vm.vm_module(3).__file__ or "").read_text()
        source = vm.vm_source(3)
        assert "elif op == 65:  # VECTOR_SOFTSIGN" in source and "(1.0 + abs(" in source
        assert vm.general_stem(3) != stem
        changed = vm.general_stem(3)
        restore(before)
        assert vm.general_stem(3) == stem  # the built-in table names the same modules again
        register_op("v = softsign(v)", lambda a: a / (2.0 + np.abs(a)),
                    "for k in range(F):\n    O[k] = A[k] / (2.0 + abs(A[k]))", cost=1)
        assert vm.general_stem(3) not in (stem, changed)  # same op, other template: other VM
    finally:
        restore(before)


def test_task_kinds_generate_checked_tasks(softsign: Op) -> None:
    spec = TaskSpec(kind="softsign_teacher", dim=3, num_tasks=2, num_train=8, num_valid=4,
                    seed=11)
    first, second = make_tasks(spec)
    again = make_tasks(spec)[0]
    assert first.x_train.shape == (8, 3) and first.kind == "regression" and second.index == 1
    assert np.array_equal(first.y_valid, again.y_valid)
    assert not np.array_equal(first.y_train, second.y_train)
    before = snapshot()
    try:
        register_task_kind("bad_labels", lambda d, n, v, p, s: (np.ones((n, d)), np.full(n, 2.0),
                                                                 np.ones((v, d)), np.ones(v)),
                           label="classification")
        with pytest.raises(ConfigError, match="labels must be 0 or 1"):
            make_tasks(TaskSpec(kind="bad_labels"))
        register_task_kind("not_arrays", lambda d, n, v, p, s: 3)
        with pytest.raises(ConfigError, match=r"not_arrays.*must return"):
            make_tasks(TaskSpec(kind="not_arrays"))
    finally:
        restore(before)
    with pytest.raises(ConfigError, match="unknown task kind 'bad_labels'"):
        make_tasks(TaskSpec(kind="bad_labels"))


def test_config_errors_for_extensions_and_kinds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kind.*must be one of.*got 'softsign_teacher'"):
        parse_config(config_text(extensions=False))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no such thing')\n")
    for modules, message in ((['"missing.py"'], "no such file"),
                             (['"broken.py"'], "RuntimeError: no such thing"),
                             (["3"], "must be a list of .py files")):
        text = config_text().replace(f'["{EXTENSION}"]', f"[{', '.join(modules)}]")
        with pytest.raises(ConfigError, match=message) as caught:
            parse_config(text, base_dir=tmp_path)
        assert "extensions.modules" in str(caught.value)
    assert user_ops() == ()
