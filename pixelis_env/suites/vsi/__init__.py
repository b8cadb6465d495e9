"""``Pixelis-VSI-v0``: spatial questions about walkthrough videos of rooms (VSI-Bench's types).

Without ``data_root`` the tasks come from the embedded generator: a box room with
3-8 pieces of furniture filmed by a camera walking and panning at eye height
(``frames`` frames at 4 fps, rendered on demand), asked one of VSI-Bench's ten
question types with exact ground truth and an oracle tool trace. ``task.meta`` holds
what tools and tests may use and the agent never sees:

* ``depth``: ``frame -> (H, W) float32`` z-depth in metres;
* ``intrinsics``: ``(fx, fy, cx, cy)`` in pixels (OpenCV convention);
* ``object_masks``: ``frame -> (H, W) int32`` labels, 0 for room surfaces, ``id + 1`` for objects;
* ``objects``: dicts with ``id``, ``category``, ``center`` and ``size`` (metres), ``colour``;
* ``visible``: per frame, the ids of objects covering at least 0.15% of it;
* ``room``, ``question_objects`` (ids the question is about), ``difficulty``, ``scene``.

Task ``i`` of a split is drawn from ``SeedSequence([seed, split code, i])`` (train 0,
test 1), so the two splits never share a task and equal arguments give byte-identical
frames and questions.

With ``data_root`` the tasks are VSI-Bench's published test split (see :mod:`.loader`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pixelis_env.errors import PixelisError, did_you_mean
from pixelis_env.suites.vsi.aggregate import aggregate
from pixelis_env.suites.vsi.generate import Generator, check_generator_args
from pixelis_env.suites.vsi.loader import load_vsibench
from pixelis_env.suites.vsi.questions import QUESTION_TYPES
from pixelis_env.suites.vsi.scene import FPS
from pixelis_env.task import TaskList, TaskSource

__all__ = ["MAX_STEPS", "QUESTION_TYPES", "aggregate", "load_vsibench", "make_source"]

MAX_STEPS = 12
DEFAULT_NUM_TASKS = 200


def _question_types(question_types: Sequence[str] | None) -> tuple[str, ...]:
    if question_types is None:
        return QUESTION_TYPES
    if isinstance(question_types, str):
        question_types = [question_types]
    for name in question_types:
        if name not in QUESTION_TYPES:
            raise PixelisError(f"unknown VSI question type `{name}`." + did_you_mean(name, QUESTION_TYPES)
                               + f" Types: {list(QUESTION_TYPES)}")
    return tuple(dict.fromkeys(question_types))


def make_source(split: str | None = None, num_tasks: int | None = None, seed: int = 0, difficulty: int = 1,
                data_root: str | os.PathLike | None = None, question_types: Sequence[str] | None = None,
                frames: int = 32, resolution: tuple[int, int] = (320, 240), max_frames: int = 64,
                skip_missing: bool = False, exclude_pruned: bool = False,
                oracle_tools: Sequence[str] | None = None) -> TaskSource:
    """The task source behind ``Pixelis-VSI-v0``.

    Embedded generator (no ``data_root``): ``split`` is ``"train"`` (default) or ``"test"``,
    ``num_tasks`` defaults to 200, ``difficulty`` 0 (few objects, wide margins, slow pan),
    1 or 2 (cluttered, tight margins, fast pan); ``frames`` and ``resolution`` shape the video.
    ``oracle_tools`` limits the tools oracle traces call (default: every tool registered
    when a task is built; pass the env's ``tools`` when the env offers fewer).

    Real data (``data_root``): VSI-Bench's only split is ``"test"`` (the default there);
    ``num_tasks`` keeps the first rows, ``max_frames`` sizes the action space,
    ``skip_missing`` drops rows without video, ``exclude_pruned`` keeps the debiased set.
    ``seed``, ``difficulty``, ``frames``, ``resolution`` and ``oracle_tools`` only shape generated tasks.
    """
    types = _question_types(question_types)
    if num_tasks is not None and num_tasks < 1:
        raise PixelisError(f"num_tasks must be positive, got {num_tasks}")
    if data_root is not None:
        if split not in (None, "test"):
            raise PixelisError(f"VSI-Bench publishes only a test split; got split={split!r} with data_root")
        return load_vsibench(data_root, question_types=types, num_tasks=num_tasks, max_frames=max_frames,
                             skip_missing=skip_missing, exclude_pruned=exclude_pruned)
    split = split or "train"
    resolution = tuple(resolution)
    check_generator_args(split, seed, difficulty, types, frames, resolution)
    generator = Generator(split, int(seed), int(difficulty), types, int(frames),
                          (int(resolution[0]), int(resolution[1])),
                          None if oracle_tools is None else frozenset(oracle_tools))
    return TaskList(make=generator.task, size=num_tasks or DEFAULT_NUM_TASKS, name=f"vsi-{split}",
                    media_kinds=frozenset({"video"}), max_frames=frames, max_seconds=frames / FPS)
