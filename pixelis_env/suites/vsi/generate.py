"""The embedded task generator: task ``i`` of a split is a pure function of its arguments.

Task ``i`` of ``split`` draws everything (question type, scene, question) from
``numpy.random.SeedSequence([seed, SPLIT_CODES[split], i])``: the split code is part
of the entropy, so train and test tasks come from different random streams and never
coincide, and the same arguments always give the same task, frames included
(rendering is deterministic). A task is cheap to build: the scene, a low-resolution
label render of every frame (to know what the video shows) and the question; full
frames are rendered only when the env or a tool asks for them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pixelis_env.errors import PixelisError
from pixelis_env.media import RenderedVideo
from pixelis_env.suites.vsi.oracle import build_oracle
from pixelis_env.suites.vsi.questions import SCENE_NEEDS, Question, make_question
from pixelis_env.suites.vsi.render import Intrinsics, Renderer, Visibility
from pixelis_env.suites.vsi.scene import DIFFICULTIES, FPS, Scene, sample_scene
from pixelis_env.task import Task

SPLIT_CODES = {"train": 0, "test": 1}
MAX_ATTEMPTS = 60
"""Scenes sampled per task before giving up (a question type always fits far sooner)."""


@dataclass(frozen=True)
class Generator:
    """Makes the tasks of one split; ``task(i)`` is what ``TaskList(make=...)`` calls."""

    split: str
    seed: int
    difficulty: int
    question_types: tuple[str, ...]
    frames: int
    resolution: tuple[int, int]
    oracle_tools: frozenset[str] | None = None
    """Tools oracle traces may call; ``None``: those registered when a task is built."""

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, SPLIT_CODES[self.split], index]))

    def task_id(self, index: int) -> str:
        return f"vsi-{self.split}-s{self.seed}-d{self.difficulty}-{index}"

    def sample(self, question_type: str, rng: np.random.Generator) -> tuple[Scene, Renderer, Visibility, Question]:
        """Sample scenes until one gives a well-posed question of the type."""
        level = DIFFICULTIES[self.difficulty]
        intrinsics = Intrinsics.for_size(*self.resolution)
        for _ in range(MAX_ATTEMPTS):
            scene = sample_scene(rng, level, self.frames, **SCENE_NEEDS[question_type])
            renderer = Renderer(scene, intrinsics)
            vis = renderer.visibility()
            question = make_question(question_type, scene, vis, rng, level)
            if question is not None:
                return scene, renderer, vis, question
        raise PixelisError(f"no well-posed {question_type} question after {MAX_ATTEMPTS} scenes "
                           f"(frames={self.frames}, resolution={self.resolution})")

    def task(self, index: int) -> Task:
        rng = self.rng(index)
        question_type = self.question_types[int(rng.integers(len(self.question_types)))]
        scene, renderer, vis, question = self.sample(question_type, rng)
        task_id = self.task_id(index)
        return Task(
            task_id=task_id, question=question.text, answer=question.answer, answer_type=question.answer_type,
            media=functools.partial(RenderedVideo, renderer.image, self.frames, FPS, self.resolution, task_id),
            metric="option" if question.options else "mra", suite="vsi", question_type=question_type,
            options=list(question.options), oracle=build_oracle(question, vis, self.oracle_tools),
            meta=_meta(scene, renderer, vis, question, self.difficulty))


def _meta(scene: Scene, renderer: Renderer, vis: Visibility, question: Question, difficulty: int) -> dict:
    """Ground-truth data for tools and tests (never shown to the agent)."""
    room = scene.room
    return {
        "depth": renderer.depth,
        "intrinsics": renderer.intrinsics.as_tuple(),
        "object_masks": renderer.labels,
        "objects": [o.to_dict() for o in scene.objects],
        "visible": [vis.visible_ids(t) for t in range(scene.camera.num_frames)],
        "room": {"width": room.width, "depth": room.depth, "height": room.height},
        "question_objects": list(question.objects),
        "difficulty": difficulty,
        "scene": scene,
    }


def check_generator_args(split: str, seed: int, difficulty: int, question_types: Sequence[str], frames: int,
                         resolution: Sequence[int]) -> None:
    """Raise :class:`PixelisError` for arguments the generator cannot honour."""
    if split not in SPLIT_CODES:
        raise PixelisError(f"split must be one of {list(SPLIT_CODES)}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PixelisError(f"seed must be a non-negative integer, got {seed!r}")
    if difficulty not in DIFFICULTIES:
        raise PixelisError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    if not question_types:
        raise PixelisError("question_types is empty")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or not 8 <= frames <= 1024:
        raise PixelisError(f"frames must be in 8..1024, got {frames}")
    if len(resolution) != 2 or min(resolution) < 32 or max(resolution) > 4096:
        raise PixelisError(f"resolution must be (width, height) with sides in 32..4096, got {resolution}")
