"""Hurdles: the running percentile, early stopping in the scorer, determinism in a search."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support import Capture, components, linear_tasks, population, run_search, sgd, without_times

from azdsl.config import parse_config
from azdsl.errors import ConfigError
from azdsl.evolve import Search
from azdsl.fec import FecCache
from azdsl.hurdles import Hurdle
from azdsl.parse import parse
from azdsl.scorer import BackendEngine, ProbeSize, Scorer
from azdsl.tasks import TaskSpec, make_collection

GOOD = parse(sgd(0.1))
SLOW = parse(sgd(0.03))  # learns, more slowly than GOOD
FROZEN = parse(sgd(0.0))  # never learns: predicts 0

SMALL = (
    linear_tasks("search_tasks", 4, 40, 20)
    + linear_tasks("final_tasks", 3, 60, 20, "seed = 777")
    + components(4, 2, 5)
    + population(40, 5)
    + """[hurdles]
tasks = 1
percentile = 75
[budget]
max_individuals = 500
[run]
progress_every = 100
checkpoint_every = 100
"""
)


# ---- the running percentile -------------------------------------------------------------------


def test_every_child_passes_while_warming_up() -> None:
    hurdle = Hurdle(1, 75.0, warmup=3, window=10)
    assert [hurdle.passes(v) for v in (0.9, 0.1, 0.0)] == [True, True, True]
    assert hurdle.threshold() == 0.1  # sorted [0, 0.1, 0.9], rank floor(0.75 * 2) = 1
    assert not hurdle.passes(0.05)
    assert hurdle.passes(0.1)  # at the hurdle passes
    assert hurdle.stopped == 1 and hurdle.recorded == 5


def test_threshold_is_the_lower_nearest_rank_of_the_window() -> None:
    hurdle = Hurdle(2, 50.0, warmup=0, window=4)
    assert hurdle.threshold() is None  # nothing to compare with yet
    for v in (0.4, 0.1, 0.3, 0.2):
        hurdle.passes(v)
    assert hurdle.threshold() == 0.2  # [0.1, 0.2, 0.3, 0.4], rank floor(0.5 * 3) = 1
    assert not hurdle.passes(0.05)  # and the oldest (0.4) leaves the window
    assert hurdle.threshold() == 0.1  # [0.05, 0.1, 0.2, 0.3]
    assert Hurdle(1, 100.0, window=3).threshold() is None
    top = Hurdle(1, 100.0, window=3)
    for v in (0.1, 0.5, 0.3):
        top.passes(v)
    assert top.threshold() == 0.5 and Hurdle(1, 0.0).passes(0.0)


def test_state_round_trip_continues_identically() -> None:
    a = Hurdle(1, 75.0, warmup=2, window=5)
    for v in (0.3, 0.8, 0.1, 0.6, 0.2, 0.7):
        a.passes(v)
    b = Hurdle.from_state(json.loads(json.dumps(a.state())))
    values = (0.65, 0.1, 0.9, 0.5, 0.75)
    assert [a.passes(v) for v in values] == [b.passes(v) for v in values]
    assert a.state() == b.state()


def test_bad_hurdles_are_refused() -> None:
    with pytest.raises(ValueError):
        Hurdle(0)
    with pytest.raises(ValueError):
        Hurdle(1, 101.0)
    with pytest.raises(ConfigError, match=r"hurdles\.tasks"):
        parse_config(SMALL.replace("tasks = 1\n", "tasks = 4\n"))


# ---- the scorer ---------------------------------------------------------------------------------


def _scorer(hurdle: Hurdle | None, fec: bool) -> Scorer:
    tasks = make_collection([TaskSpec(num_tasks=3, num_train=40, num_valid=20)])
    return Scorer(BackendEngine("interp", tasks, ProbeSize()), [40] * 3,
                  fec=FecCache() if fec else None, memo_size=0, hurdle=hurdle)


@pytest.mark.parametrize("fec", [False, True])
def test_a_child_below_the_hurdle_stops_early_and_costs_fewer_steps(fec: bool) -> None:
    plain = _scorer(None, fec)
    full_frozen = plain.score(FROZEN, 0)
    hurdle = Hurdle(1, 75.0, warmup=4, window=10)
    scorer = _scorer(hurdle, fec)
    for _ in range(4):  # the population: programs that learn
        scorer.score(SLOW, 0)
    threshold = hurdle.threshold()
    assert threshold is not None and threshold > 0.5
    assert plain.engine.full(GOOD, [0], 0)[0][0] > threshold

    before = scorer.train_steps
    weak = scorer.score(FROZEN, 0)
    weak_steps = scorer.train_steps - before
    assert hurdle.stopped == 1
    # Only the first task was evaluated; the other two count as fitness 0.
    partial = plain.engine.full(FROZEN, [0], 0)[0][0]
    assert weak == pytest.approx(partial / 3) and weak < full_frozen
    probe = 3 * 10 if fec else 0
    assert weak_steps == 40 + probe

    before = scorer.train_steps
    strong = scorer.score(GOOD, 0)
    assert strong == plain.score(GOOD, 0)  # above the hurdle: the usual fitness
    assert scorer.train_steps - before == 3 * 40 + probe
    assert hurdle.stopped == 1


def test_without_hurdles_the_scorer_is_unchanged() -> None:
    a, b = _scorer(None, True), _scorer(Hurdle(1, 75.0, warmup=10**9), True)
    for program in (GOOD, FROZEN, GOOD):
        assert a.score(program, 3) == b.score(program, 3)  # still warming up: nobody stops
    assert a.train_steps == b.train_steps


# ---- whole searches -----------------------------------------------------------------------------


def test_hurdles_are_deterministic_resumable_and_save_steps() -> None:
    config = parse_config(SMALL)
    assert config.hurdles.enabled and config.hurdles.tasks == 1
    first, a = run_search(config, 5)
    _, b = run_search(config, 5)
    assert without_times(a.states) == without_times(b.states)
    assert a.records[-1]["hurdle_stopped"] > 0
    # Resuming from a checkpoint in the middle ends where the whole run ends.
    middle = a.states[len(a.states) // 2]
    assert middle["current"]["hurdle"] is not None
    hooks = Capture()
    again = Search(config, 5, "vm", hooks)
    again.restore(middle)
    again.run()
    assert without_times(hooks.states[-1]) == without_times(a.states[-1])
    # The same number of individuals without hurdles costs more train steps.
    off = replace(config, hurdles=replace(config.hurdles, enabled=False))
    without, c = run_search(off, 5)
    assert c.records[-1]["individuals"] == a.records[-1]["individuals"] == 500
    assert first.total_train_steps < without.total_train_steps
