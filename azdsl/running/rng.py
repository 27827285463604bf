"""The counter-based random stream used by random ops, the same in every backend.

A draw is a pure function of (stream, component, ordinal, execution, counter): the stream comes
from (evaluation seed, task index), the ordinal is the instruction's rank among the live random
instructions of its component (language.liveness), the execution counts the runs of that component
in this task, and the counter is the coordinate (row-major). Nothing is stateful, so removing
dead code, reordering evaluations or splitting work over processes never changes a draw.
azdsl.running.kernels holds the Numba twin of these functions; tests hold them equal.
"""

from __future__ import annotations

import math

MASK = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
COUNTER_STEP = 0xD1B54A32D192ED03
TWO_PI = 6.283185307179586
INV_2_53 = 1.0 / 9007199254740992.0


def mix64(z: int) -> int:
    """SplitMix64's finaliser: a bijective 64-bit mix."""
    z = (z + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def stream(seed: int, task_index: int) -> int:
    """The stream of one (evaluation seed, task index) pair."""
    return mix64((mix64(seed & MASK) + task_index) & MASK)


def draw_key(stream_id: int, component: int, ordinal: int, execution: int) -> int:
    """The key of one execution of one random instruction."""
    head = mix64(stream_id ^ ((component & 0xFF) << 56) ^ ((ordinal & 0xFFFF) << 40))
    return mix64((head + execution) & MASK)


def uniform01(key: int, counter: int) -> float:
    """Uniform in [0, 1) with 53 random bits."""
    bits = mix64((key + counter * COUNTER_STEP) & MASK)
    return float(bits >> 11) * INV_2_53


def gauss01(key: int, counter: int) -> float:
    """Standard normal by Box-Muller from the draws 2*counter and 2*counter + 1."""
    u1 = uniform01(key, 2 * counter)
    u2 = uniform01(key, 2 * counter + 1)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(TWO_PI * u2)
