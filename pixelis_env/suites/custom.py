"""``Pixelis-Image-v0``: an env over the user's own images/videos and questions.

Either a JSONL file (``tasks="my_tasks.jsonl"``), one object per line::

    {"id": "q1", "media": "images/cat.jpg", "question": "What colour is the cat?",
     "answer": "black", "options": [], "metric": "exact"}

(``media`` relative to the file's folder, ``answer_type`` and ``metric`` inferred when
absent), or one task given directly: ``media=..., question=..., answer=...``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError
from pixelis_env.media import VIDEO_SUFFIXES, load_media
from pixelis_env.metrics import METRICS, SUITE_METRICS, score
from pixelis_env.suites.files import read_jsonl, require, safe_join
from pixelis_env.task import ANSWER_TYPES, Task, TaskList

MAX_STEPS = 10
DEFAULT_METRIC = {"choice": "option", "number": "mra", "text": "exact", "span": "span_iou"}
PROBE_ANSWERS = ("A", "3", "0.5-2", "some words")
"""Answers scored against each row's ground truth at load, so a metric that cannot read it fails there."""


def infer_answer_type(answer: Any, options: list[str]) -> str:
    if options:
        return "choice"
    if isinstance(answer, bool):
        return "text"
    if isinstance(answer, (int, float)):
        return "number"
    if isinstance(answer, (list, tuple)) and len(answer) == 2 and all(isinstance(v, (int, float)) for v in answer):
        return "span"
    return "text"


def check_metric(metric: Any, answer: Any, where: str) -> str:
    """A metric :func:`pixelis_env.metrics.score` knows and that can score ``answer``, or a
    :class:`DataError` naming ``where`` (instead of an error at the episode's answer step)."""
    if not isinstance(metric, str) or (metric not in METRICS and metric not in SUITE_METRICS):
        raise DataError(f"{where}: unknown metric {metric!r:.40}; known: {sorted({*METRICS, *SUITE_METRICS})}")
    for probe in PROBE_ANSWERS:
        try:
            score(metric, probe, answer)
        except Exception as exc:  # a scorer meeting a ground truth of the wrong kind
            raise DataError(f"{where}: metric `{metric}` cannot score the answer {answer!r:.40} "
                            f"({type(exc).__name__}: {exc})") from None
    return metric


def task_from_row(row: dict[str, Any], root: Path, where: str, index: int) -> Task:
    question = require(row, "question", str, where)
    answer = require(row, "answer", (str, int, float, list), where)
    options = row.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise DataError(f"{where}: `options` should be a list of strings")
    media_path = safe_join(root, require(row, "media", str, where), where)
    if not media_path.is_file():
        raise DataError(f"{where}: media file {media_path} not found")
    answer_type = row.get("answer_type") or infer_answer_type(answer, options)
    if answer_type not in ANSWER_TYPES:
        raise DataError(f"{where}: `answer_type` should be one of {ANSWER_TYPES}, got {answer_type!r:.40}")
    metric = check_metric(row.get("metric") or DEFAULT_METRIC[answer_type], answer, where)
    fps = row.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps)
                            or fps <= 0):
        raise DataError(f"{where}: `fps` should be a positive number, got {fps!r:.40}")
    return Task(task_id=str(row.get("id", index)), question=question, answer=answer, answer_type=answer_type,
                media=lambda p=media_path, f=fps: load_media(p, fps=f), metric=metric, suite="custom",
                question_type=str(row.get("question_type", "")), options=options,
                meta={"media_kind": "video" if media_path.suffix.lower() in VIDEO_SUFFIXES else "image"})


def make_source(tasks: str | os.PathLike | None = None, media: Any = None, question: str | None = None,
                answer: Any = None, options: list[str] | None = None, metric: str | None = None,
                max_frames: int = 64, max_seconds: float = 60.0) -> TaskList:
    """A task source from a JSONL file or from one media + question + answer."""
    if tasks is not None:
        path = Path(tasks)
        loaded = [task_from_row(row, path.parent, where, i) for i, (where, row) in enumerate(read_jsonl(path))]
        if not loaded:
            raise DataError(f"{path}: no tasks")
        kinds = frozenset(t.meta["media_kind"] for t in loaded)
        return TaskList(loaded, name=path.stem, media_kinds=kinds, max_frames=max_frames, max_seconds=max_seconds)
    if media is None or question is None or answer is None:
        raise DataError("Pixelis-Image-v0 needs `tasks=path.jsonl`, or `media`, `question` and `answer`")
    loaded_media = load_media(media)
    options = list(options or [])
    answer_type = infer_answer_type(answer, options)
    task = Task(task_id="task-0", question=question, answer=answer, answer_type=answer_type, media=loaded_media,
                metric=check_metric(metric or DEFAULT_METRIC[answer_type], answer, "Pixelis-Image-v0"), options=options)
    kind = frozenset({"video" if loaded_media.is_video else "image"})
    return TaskList([task], name="custom", media_kinds=kind, max_frames=loaded_media.num_frames,
                    max_seconds=loaded_media.duration)
