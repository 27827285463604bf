"""The projected-binary experiment config and the original's train budget (reference §3.7, §9.5)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from azdsl.language.parse import parse
from azdsl.language.printer import unparse
from azdsl.language.program import Program
from azdsl.running.tasks import HELD_OUT_PAIRS, TaskSpec, make_collection
from azdsl.search.config import ProgramFile, load_config, resolve_op
from azdsl.search.engine import budget_limits
from azdsl.search.evolve import Search

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NEURAL_NET = parse((EXAMPLES / "neural_net.az").read_text())


def doubled(program: Program) -> Program:
    """Every component twice over: exactly twice the cost of the program."""
    return Program(program.setup * 2, program.predict * 2, program.learn * 2)


def test_config_is_the_originals_baseline_space() -> None:
    config = load_config(EXAMPLES / "projected_binary.toml")
    assert config.memory == (5, 9, 2)
    setup, predict, learn = config.components
    assert (setup.min_size, predict.min_size, learn.min_size) == (1, 1, 1)
    # The original's effective sizes: its max 7/11/23 stops inserts one short (§4.3).
    assert (setup.max_size, predict.max_size, learn.max_size) == (6, 10, 22)
    names = {
        "SCALAR_CONST_SET", "SCALAR_GAUSSIAN_SET", "SCALAR_UNIFORM_SET", "VECTOR_GAUSSIAN_SET",
        "VECTOR_UNIFORM_SET", "MATRIX_GAUSSIAN_SET", "MATRIX_UNIFORM_SET"}
    assert set(setup.ops) == {resolve_op(n) for n in names}
    # Predict and Learn may use exactly the ops of the 2-layer network.
    assert set(predict.ops) == {i.code for i in NEURAL_NET.predict}
    assert set(learn.ops) == {i.code for i in NEURAL_NET.learn}
    assert config.train_budget is not None and config.train_budget.threshold_factor == 2.0
    assert parse(config.train_budget.baseline.text) == NEURAL_NET
    assert config.initial_program is not None
    assert parse(config.initial_program.text) == NEURAL_NET
    assert config.fec.enabled and config.hurdles.enabled
    for task_set, pairs in ((config.search_tasks, "search"), (config.select_tasks, "heldout"),
                            (config.final_tasks, "heldout")):
        (spec,) = task_set.specs
        assert (spec.kind, spec.dataset, spec.dim, spec.pairs) == ("projected", "digits", 16,
                                                                    pairs)


def test_tasks_use_the_pairs_they_should() -> None:
    config = load_config(EXAMPLES / "projected_binary.toml")
    spec = config.final_tasks.specs[0]
    tasks = make_collection([TaskSpec(**{**spec.__dict__, "num_tasks": 6})])
    held = {f"pos_{a}-neg_{b}" for a, b in HELD_OUT_PAIRS}
    assert all(any(h in t.name for h in held) for t in tasks)
    search = make_collection([TaskSpec(**{**config.search_tasks.specs[0].__dict__,
                                          "num_tasks": 6})])
    assert not any(any(h in t.name for h in held) for t in search)


def cost(program: Program, examples: int) -> int:
    """Reference §3.7: Setup once, Predict and Learn once per training example."""
    setup, predict, learn = (sum(i.op.cost for i in c) for c in program.components)
    return setup + examples * (predict + learn)


def test_component_costs_match_the_original() -> None:
    # Reference §3.7's derived example for the stock NEURAL_NET baseline.
    costs = [sum(i.op.cost for i in c) for c in NEURAL_NET.components]
    assert costs == [358_864_510, 26_984_126, 54_920_587]
    assert budget_limits(NEURAL_NET, 1.0, [8000]) == (358_864_510 + 8000 * (
        26_984_126 + 54_920_587),)


def _first_child(initial: Program, fec: bool) -> tuple[float, int]:
    """The fitness and train steps of the first child of the projected search, started
    from `initial` under the config's budget (twice the network's cost)."""
    config = load_config(EXAMPLES / "projected_binary.toml")
    config = replace(config, initial_program=ProgramFile("x.az", "x.az", unparse(initial)),
                     fec=replace(config.fec, enabled=fec),
                     hurdles=replace(config.hurdles, enabled=False),
                     search_tasks=replace(config.search_tasks, specs=(replace(
                         config.search_tasks.specs[0], num_tasks=2, num_train=60,
                         num_valid=30),)))
    search = Search(config, 3)
    search.begin(0)
    search.advance(1)
    return search.engine().fitness()[0], search.engine().train_steps


def test_within_twice_the_network_passes_above_is_rejected() -> None:
    limit = budget_limits(NEURAL_NET, 2.0, [250])[0]
    assert cost(NEURAL_NET, 250) <= limit
    exactly_twice = doubled(NEURAL_NET)
    assert cost(exactly_twice, 250) == 2 * cost(NEURAL_NET, 250) <= limit  # C <= f * B
    one_more = Program(exactly_twice.setup, exactly_twice.predict,
                       (*exactly_twice.learn, NEURAL_NET.learn[0]))
    assert cost(one_more, 250) > limit
    # Setup is paid once, Predict and Learn once per example: a costly Setup may still pass.
    heavy_setup = Program(NEURAL_NET.setup * 3, NEURAL_NET.predict, NEURAL_NET.learn)
    assert cost(heavy_setup, 250) <= limit


def test_a_rejected_program_scores_zero_on_every_task() -> None:
    too_costly = Program(NEURAL_NET.setup, NEURAL_NET.predict,
                         NEURAL_NET.learn * 2 + (NEURAL_NET.learn[-2],) * 4)
    assert cost(too_costly, 60) > budget_limits(NEURAL_NET, 2.0, [60])[0]
    # It scores 0; without FEC nothing runs, with FEC only the probe (10 examples per task).
    assert _first_child(too_costly, False) == (0.0, 0)
    assert _first_child(too_costly, True) == (0.0, 2 * 10)
    fitness, steps = _first_child(NEURAL_NET, True)
    assert fitness > 0.6  # within budget: trained and scored as usual
    assert steps > 2 * 60  # it trained on every example of both tasks
