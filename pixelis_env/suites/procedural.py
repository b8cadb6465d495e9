"""What the procedural image suites share: split-seeded randomness, argument checks, zoom boxes.

Task ``i`` of split ``s`` draws everything from one generator seeded by the tuple
``(suite, seed, s, i)``. Splits get different tuple entries, so a training split and a
held-out split never produce the same task, and task ``i`` does not depend on how many
tasks the source holds (growing ``num_tasks`` keeps the earlier tasks).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from pixelis_env.actions import BoxT
from pixelis_env.errors import PixelisError, did_you_mean
from pixelis_env.task import Task, TaskList
from pixelis_env.views import pixels_to_box

SPLITS = {"train": 0, "val": 1, "test": 2}
PixelBox = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive."""


def task_rng(suite: str, seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of task ``index`` of ``split`` (independent of the source size)."""
    return np.random.default_rng([zlib.crc32(suite.encode()), seed, SPLITS[split], index])


def check_generator_args(split: str, num_tasks: int, seed: int, difficulty: int, levels: int) -> None:
    """Reject generator arguments that would fail later or silently mean something else."""
    if split not in SPLITS:
        raise PixelisError(f"unknown split `{split}`; expected one of {list(SPLITS)}." + did_you_mean(split, SPLITS))
    if int(num_tasks) < 1:
        raise PixelisError(f"num_tasks must be at least 1, got {num_tasks}")
    if int(seed) < 0:
        raise PixelisError(f"seed must be non-negative, got {seed}")
    if not 1 <= int(difficulty) <= levels:
        raise PixelisError(f"difficulty must be in 1..{levels}, got {difficulty}")


def generated_source(suite: str, make: Callable[[np.random.Generator, str], Task], *, split: str, num_tasks: int,
                     seed: int, difficulty: int, levels: int) -> TaskList:
    """A lazy :class:`TaskList` whose task ``i`` is ``make(task_rng(...), task_id)``."""
    check_generator_args(split, num_tasks, seed, difficulty, levels)

    def make_task(index: int) -> Task:
        return make(task_rng(suite, int(seed), split, index), f"{suite}-{split}-{seed}-{index}")

    return TaskList(make=make_task, size=int(num_tasks), name=f"{suite}-{split}",
                    media_kinds=frozenset({"image"}), max_frames=1)


def square_window(box: Sequence[float], width: int, height: int, factor: float, min_side: float = 0.0) -> BoxT:
    """A square window ``factor`` times the box's longer side (at least ``min_side``), centred
    on the box and shifted inside the frame, as a normalised box.

    Zooming into it shows the object at ``view_size / factor`` pixels whatever the image
    size, which is what makes an oracle zoom resolve a small detail.
    """
    side = min(max(max(box[2] - box[0], box[3] - box[1]) * factor, min_side), width, height)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    return tuple(pixels_to_box(x0, y0, x0 + side, y0 + side, width, height))


def padded_box(box: Sequence[float], width: int, height: int, pad: float) -> BoxT:
    """The box grown by ``pad`` pixels on every side and clipped to the frame (for text lines)."""
    return tuple(pixels_to_box(box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad, width, height))


def union(boxes: list[PixelBox]) -> PixelBox:
    """The smallest pixel box holding all ``boxes``."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))

