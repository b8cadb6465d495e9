"""``Pixelis-Count-v0``: counting objects of a named kind in cluttered images.

Without ``data_root`` the embedded generator makes the tasks (see
:mod:`~pixelis_env.suites.count.generator`); with it, CountBench / CountBenchQA parquet
files or a JSONL of the user's own images are loaded
(:mod:`~pixelis_env.suites.count.countbench`). Answers are scored by ``count``
(lmms-eval's CountBench exact match, number words accepted) unless ``metric="mra"``
asks for VSI-Bench's mean relative accuracy, which gives partial credit for near misses.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelis_env.errors import DataError, PixelisError
from pixelis_env.suites.count import countbench, generator
from pixelis_env.task import TaskList

MAX_STEPS = 8


def make_source(split: str = "train", num_tasks: int = 200, seed: int = 0, difficulty: int = 1,
                data_root: str | os.PathLike | None = None, metric: str = "count") -> TaskList:
    """The Count task source: generated, or loaded from ``data_root``.

    Args:
        split, num_tasks, seed, difficulty: the generator's split (``train``/``val``/``test``,
            disjoint), size, seed and level (1-3: more, smaller, closer shapes; at 3 some
            touch-close and the oracle zooms per quadrant).
        data_root: a ``.parquet`` or ``.jsonl`` file, or a folder of parquet files
            (CountBench, CountBenchQA). Every row is loaded.
        metric: ``"count"`` (exact, default) or ``"mra"``.
    """
    if metric not in generator.METRICS:
        raise PixelisError(f"metric must be one of {list(generator.METRICS)}, got {metric!r}")
    if data_root is None:
        return generator.make_generated_source(split, int(num_tasks), int(seed), int(difficulty), metric)
    root = Path(data_root)
    if not root.exists():
        raise DataError(f"{root}: data_root not found")
    paths = countbench.find_files(root)
    if not paths:
        raise DataError(f"{root}: no parquet files (CountBench / CountBenchQA) and not a .jsonl file")
    return countbench.load(paths, metric)
