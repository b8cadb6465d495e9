"""Splits and difficulty of procedural suites: one independent random stream per task.

Task ``i`` of split ``s`` draws from a generator seeded by ``(seed, s, difficulty, i)``
through :class:`numpy.random.SeedSequence`. Different tuples give independent streams,
so the splits never share a task, any task can be made on its own (sources stay lazy),
and the same arguments always give the same task.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelis_env.errors import PixelisError, did_you_mean

SPLITS = ("train", "val", "test")
DEFAULT_NUM_TASKS = 200


def task_rng(seed: int, split: str, difficulty: int, index: int) -> np.random.Generator:
    """The random generator of one task (see the module docstring)."""
    return np.random.default_rng([int(seed), SPLITS.index(split), int(difficulty), int(index)])


def check_source_args(split: str, num_tasks: int, seed: int, difficulty: int, levels: int) -> None:
    """Reject arguments a generator cannot honour, naming the accepted values."""
    if split not in SPLITS:
        raise PixelisError(f"unknown split `{split}`; use one of {list(SPLITS)}." + did_you_mean(split, SPLITS))
    if num_tasks < 1:
        raise PixelisError(f"num_tasks must be >= 1, got {num_tasks}")
    if seed < 0:
        raise PixelisError(f"seed must be >= 0, got {seed}")
    if not 0 <= difficulty < levels:
        raise PixelisError(f"difficulty must be in 0..{levels - 1}, got {difficulty}")


def check_kinds(kinds: Sequence[str], known: Sequence[str], what: str) -> tuple[str, ...]:
    """A non-empty tuple of known question/event kinds, or an error naming the bad one."""
    kinds = tuple(kinds)
    if not kinds:
        raise PixelisError(f"{what} is empty; use some of {list(known)}")
    for kind in kinds:
        if kind not in known:
            raise PixelisError(f"unknown {what} entry `{kind}`; use {list(known)}." + did_you_mean(kind, known))
    return kinds
