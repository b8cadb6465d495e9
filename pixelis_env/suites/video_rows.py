"""Video questions from a JSONL file: the real-data format of ``Pixelis-Track-v0``.

One JSON object per line, video paths relative to the data root::

    {"video": "clips/0001.mp4", "question": "Where does the dog end up?",
     "options": ["left", "right", "top", "bottom"], "answer": "B"}
    {"video": "clips/0002.mp4", "question": "How many times does the ball cross the line?", "answer": 3}

``options`` may carry their letters already (``"A. left"``, in order) or not (letters
are added).
A choice answer is an option letter (metric ``option``); without options the answer is
a number: an integer is scored by exact match (``count``), a float by MRA (``mra``).
Optional fields: ``id``, ``question_type``, ``metric`` (any name in
:data:`pixelis_env.metrics.METRICS`). Videos open lazily, at reset.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError
from pixelis_env.media import VideoFile
from pixelis_env.metrics import METRICS
from pixelis_env.suites.files import read_jsonl, require, safe_join
from pixelis_env.task import Task, TaskList

logger = logging.getLogger(__name__)

DEFAULT_MAX_FRAMES = 2048
"""Frame-index bound of the structured action space (videos are not opened at load time)."""
DEFAULT_MAX_SECONDS = 120.0
_LETTERED = re.compile(r"[A-Z]\.\s")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lettered_options(options: Any, where: str) -> list[str]:
    """Options as ``"A. text"`` lines, adding letters where the file has none."""
    if not isinstance(options, list) or not all(isinstance(o, str) and o.strip() for o in options):
        raise DataError(f"{where}: `options` should be a list of non-empty strings")
    if len(options) > len(LETTERS):
        raise DataError(f"{where}: at most {len(LETTERS)} options, got {len(options)}")
    if all(_LETTERED.match(o) and o[0] == LETTERS[i] for i, o in enumerate(options)):
        return [o.strip() for o in options]
    return [f"{LETTERS[i]}. {o.strip()}" for i, o in enumerate(options)]


def find_video(root: str | os.PathLike, candidates: Sequence[str], where: str) -> Path | None:
    """The first of ``candidates`` (relative to ``root``, never escaping it) that is a file."""
    for relative in candidates:
        path = safe_join(root, relative, where)
        if path.is_file():
            return path
    return None


def answer_fields(row: dict[str, Any], options: list[str], where: str) -> tuple[Any, str, str]:
    """``(answer, answer_type, metric)`` of a row, checked against its options."""
    answer = require(row, "answer", (str, int, float), where)
    if options:
        letter = str(answer).strip().rstrip(".").upper()
        if letter not in set(LETTERS[:len(options)]):
            raise DataError(f"{where}: answer {answer!r} is not one of the option letters "
                            f"{list(LETTERS[:len(options)])}")
        answer, answer_type, metric = letter, "choice", "option"
    elif isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise DataError(f"{where}: without options the answer must be a number, got {answer!r:.40}")
    else:
        answer_type, metric = "number", ("count" if isinstance(answer, int) else "mra")
    metric = row.get("metric") or metric
    if metric not in METRICS:
        raise DataError(f"{where}: unknown metric {metric!r}; known: {sorted(METRICS)}")
    return answer, answer_type, metric


def row_task(row: dict[str, Any], video: Path, where: str, index: int, name: str) -> Task:
    """One task from a checked row whose video exists."""
    question = require(row, "question", str, where)
    options = lettered_options(row["options"], where) if row.get("options") else []
    answer, answer_type, metric = answer_fields(row, options, where)
    return Task(task_id=str(row.get("id", f"{name}-{index}")), question=question, answer=answer,
                answer_type=answer_type, media=lambda: VideoFile(video), metric=metric, suite=name,
                question_type=str(row.get("question_type", "")), options=options, meta={"video": str(video)})


def load_rows(data_root: str | os.PathLike, split: str = "test", annotations: str | None = None,
              num_tasks: int | None = None, skip_missing: bool = False, name: str = "video") -> TaskList:
    """Tasks from ``{data_root}/{split}.jsonl`` (or ``annotations``, relative to ``data_root``).

    Bad rows raise :class:`DataError` naming ``file:line``; so does a missing video unless
    ``skip_missing`` (then the row is dropped with a warning). ``num_tasks`` keeps the
    first rows.
    """
    root = Path(data_root)
    path = safe_join(root, annotations or f"{split}.jsonl", str(root))
    tasks, missing = [], 0
    for where, row in read_jsonl(path):
        video = find_video(root, [require(row, "video", str, where)], where)
        if video is None:
            if not skip_missing:
                raise DataError(f"{where}: video {row['video']!r} not found under {root}")
            missing += 1
            continue
        tasks.append(row_task(row, video, where, len(tasks), name))
        if num_tasks is not None and len(tasks) >= num_tasks:
            break
    if missing:
        logger.warning("%s: skipped %d rows whose video is missing", path, missing)
    if not tasks:
        raise DataError(f"{path}: no tasks")
    return TaskList(tasks, name=f"{name}-{path.stem}", media_kinds=frozenset({"video"}),
                    max_frames=DEFAULT_MAX_FRAMES, max_seconds=DEFAULT_MAX_SECONDS)
