"""Tasks and task sources: what an episode is about.

A :class:`Task` carries the media (or a recipe to load it lazily), the question, the
ground truth with the metric that scores it, and an oracle tool trace: the calls a
careful agent would make before answering (the suite's known-correct solution).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pixelis_env.actions import Action, Answer
from pixelis_env.errors import DataError
from pixelis_env.media import Media, load_media

ANSWER_TYPES = ("choice", "number", "text", "span")
GENERATED_TASK_CACHE = 64
"""Generated tasks kept per source, so a reset on a recent task does not rebuild it."""


@dataclass
class Task:
    """One question about one image or video.

    ``media`` is anything :func:`~pixelis_env.media.load_media` accepts, or a zero-argument
    callable returning a :class:`Media` (procedural suites render lazily). ``metric`` names
    a scorer in :mod:`pixelis_env.metrics`; ``meta`` holds suite data tools may use (e.g.
    ``metres_per_pixel``) and is never shown to the agent.
    """

    task_id: str
    question: str
    answer: Any
    answer_type: str
    media: Any
    metric: str
    suite: str = "custom"
    question_type: str = ""
    options: list[str] = field(default_factory=list)
    oracle: list[Action] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.answer_type not in ANSWER_TYPES:
            raise DataError(f"task {self.task_id}: answer_type must be one of {ANSWER_TYPES}, "
                             f"got {self.answer_type!r}")

    def load_media(self) -> Media:
        """Open the task's media (a fresh object for sources given as paths)."""
        if isinstance(self.media, Media):
            return self.media
        if callable(self.media):
            return self.media()
        return load_media(self.media, name=self.task_id)

    def prompt(self) -> str:
        """The question as shown to the agent, with options when there are any."""
        if not self.options:
            return self.question
        return self.question + "\nOptions:\n" + "\n".join(self.options)

    def oracle_trace(self) -> list[Action]:
        """The oracle tool calls followed by the correct answer."""
        return [*self.oracle, Answer(text=format_ground_truth(self))]


def format_ground_truth(task: Task) -> str:
    """The ground truth written the way an agent would answer."""
    answer = task.answer
    if task.answer_type == "span":
        return f"{answer[0]:g}-{answer[1]:g}"
    if task.answer_type == "text" and isinstance(answer, (list, tuple)):
        return str(answer[0])
    if isinstance(answer, float):
        return f"{answer:.10g}"
    return str(answer)


@runtime_checkable
class TaskSource(Protocol):
    """An indexable collection of tasks with the bounds the action space needs."""

    name: str
    media_kinds: frozenset[str]
    max_frames: int
    max_seconds: float

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Task: ...


class TaskList:
    """A :class:`TaskSource` over tasks held in memory (or made on demand by ``make``)."""

    def __init__(self, tasks: Sequence[Task] | None = None, *, name: str = "custom",
                 media_kinds: frozenset[str] = frozenset({"image"}), max_frames: int = 1,
                 max_seconds: float = 0.0, size: int | None = None,
                 make: Callable[[int], Task] | None = None) -> None:
        if (tasks is None) == (make is None):
            raise ValueError("give either `tasks` or `make` (with `size`)")
        self._tasks = list(tasks) if tasks is not None else None
        self._make = functools.lru_cache(maxsize=GENERATED_TASK_CACHE)(make) if make is not None else None
        self._size = len(self._tasks) if self._tasks is not None else int(size or 0)
        self.name, self.media_kinds = name, frozenset(media_kinds)
        self.max_frames, self.max_seconds = max(1, int(max_frames)), float(max_seconds)

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> Task:
        if not -self._size <= index < self._size:
            raise IndexError(f"{self.name}: task index {index} outside 0..{self._size - 1}")
        index %= self._size
        return self._tasks[index] if self._tasks is not None else self._make(index)
