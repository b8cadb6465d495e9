"""The embedded TextVQA generator: street scenes, document pages, or a mix of both."""

from __future__ import annotations

import numpy as np

from pixelis_env.errors import PixelisError
from pixelis_env.suites.procedural import generated_source
from pixelis_env.suites.textvqa import documents, scenes
from pixelis_env.task import Task, TaskList

SUITE = "textvqa"
KINDS = ("mixed", "scene", "document")
LEVELS = 3


def make_task(rng: np.random.Generator, task_id: str, difficulty: int, kind: str) -> Task:
    """A scene or a document task (half each for ``"mixed"``)."""
    if kind == "mixed":
        kind = "scene" if rng.random() < 0.5 else "document"
    maker = scenes.make_task if kind == "scene" else documents.make_task
    return maker(rng, task_id, difficulty)


def make_generated_source(split: str, num_tasks: int, seed: int, difficulty: int, kind: str) -> TaskList:
    """The embedded generator as a lazy task source."""
    if kind not in KINDS:
        raise PixelisError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return generated_source(SUITE, lambda rng, task_id: make_task(rng, task_id, difficulty, kind), split=split,
                            num_tasks=num_tasks, seed=seed, difficulty=difficulty, levels=LEVELS)
