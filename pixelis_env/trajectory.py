"""Trajectory records: every step of an episode, saved and loaded as JSONL.

One JSON object per line per episode. Records hold references and summaries (action
JSON, text, tool-result data, rewards, timings), never image arrays, so files stay
small and safe to load (plain JSON, no pickle).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError


@dataclass
class StepRecord:
    """One env step as the agent and the env saw it."""

    step: int
    tool: str | None
    arguments: dict[str, Any] | None
    text_action: str | None
    observation: str
    reward: float
    reward_terms: dict[str, float] = field(default_factory=dict)
    tool_result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    logprobs: list[float] | None = None
    token_ids: list[int] | None = None
    prompt_ref: str | None = None


@dataclass
class Trajectory:
    """One episode: the task, its steps, and how it ended."""

    task_id: str
    suite: str
    question: str
    ground_truth: Any
    question_type: str = ""
    seed: int | None = None
    steps: list[StepRecord] = field(default_factory=list)
    score: float = 0.0
    answer: str | None = None
    terminated: bool = False
    truncated: bool = False
    agent: str = ""
    env_id: str = ""

    @property
    def total_reward(self) -> float:
        return float(sum(s.reward for s in self.steps))

    @property
    def toolchain(self) -> list[str]:
        """The tools called before answering (errors excluded)."""
        return [s.tool for s in self.steps if s.tool and s.tool != "answer" and s.error is None]

    @property
    def invalid_steps(self) -> int:
        return sum(s.error is not None for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trajectory:
        data = dict(data)
        steps = [StepRecord(**s) for s in data.pop("steps", [])]
        return cls(**data, steps=steps)


def save_jsonl(trajectories: Iterable[Trajectory], path: str | os.PathLike, append: bool = False) -> Path:
    """Write trajectories one per line; a non-append write is atomic (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(t.to_json(), default=_jsonable) + "\n" for t in trajectories)
    if append:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
        return path
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(lines, encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_jsonl(path: str | os.PathLike) -> Iterator[Trajectory]:
    """Read trajectories back; a malformed line raises :class:`DataError` naming it."""
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Trajectory.from_json(json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                raise DataError(f"{path}:{number}: not a trajectory record ({exc})") from None


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
