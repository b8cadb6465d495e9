"""VSI-Bench as published (``nyu-visionx/VSI-Bench``), loaded from ``data_root``.

Layout (``BENCHMARKS.md`` section 1)::

    data_root/test.jsonl                      # preferred; or test-00000-of-00001.parquet
    data_root/{dataset}/{scene_name}.mp4      # arkitscenes/, scannet/, scannetpp/

Each row has ``id``, ``dataset``, ``scene_name``, ``question_type``, ``question``,
``options`` (``"A. xxx"`` strings, null for numeric types), ``ground_truth`` (a letter,
or a number written as text) and, in ``test.jsonl``, ``pruned``. The prompt is the
question (``Task.prompt`` appends the options); multiple choice is scored with
VSI-Bench's first-token match (metric ``option``), numbers with MRA (``mra``),
against the ground truth exactly as given. lmms-eval's full prompt (pre- and
post-prompt) is kept in ``meta["lmms_eval_prompt"]``.

Videos are opened lazily. How many frames a video has is unknown until it is opened,
so the source advertises ``max_frames`` (default 64) to size the structured action
space; a frame index past a video's end is rejected at step time like any other
out-of-range action.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError, did_you_mean
from pixelis_env.media import VideoFile
from pixelis_env.metrics import to_float
from pixelis_env.suites.files import read_jsonl, require, safe_join
from pixelis_env.suites.vsi.questions import CHOICE_TYPES, QUESTION_TYPES
from pixelis_env.task import Task, TaskList

JSONL_NAME = "test.jsonl"
PARQUET_NAME = "test-00000-of-00001.parquet"
PRE_PROMPT = "These are frames of a video."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
MC_POST_PROMPT = "Answer with the option's letter from the given choices directly."
SHOWN_MISSING = 5


def lmms_eval_prompt(question: str, options: Sequence[str]) -> str:
    """lmms-eval's ``vsibench_doc_to_text`` with its default pre- and post-prompts."""
    if not options:
        return f"{PRE_PROMPT}\n{question}\n{NA_POST_PROMPT}"
    return "\n".join([PRE_PROMPT, question, "Options:\n" + "\n".join(options), MC_POST_PROMPT])


def _path_part(row: dict[str, Any], key: str, where: str) -> str:
    """A folder or file name from the row, refusing anything that could leave ``data_root``."""
    value = require(row, key, str, where)
    if not value or "/" in value or "\\" in value or value in (".", "..") or ".." in value or "\0" in value:
        raise DataError(f"{where}: field `{key}` must be a plain name without path separators or '..', "
                        f"got {value!r:.60}")
    return value


def _options(row: dict[str, Any], question_type: str, where: str) -> list[str]:
    options = row.get("options")
    if question_type not in CHOICE_TYPES:
        if options not in (None, []):
            raise DataError(f"{where}: field `options` should be null for numeric type {question_type}")
        return []
    if not isinstance(options, (list, tuple)) or len(options) < 2 or not all(isinstance(o, str) for o in options):
        raise DataError(f"{where}: field `options` should be a list of at least two strings for {question_type}")
    return list(options)


def _ground_truth(row: dict[str, Any], options: list[str], where: str) -> str:
    value = require(row, "ground_truth", (str, int, float), where)
    if isinstance(value, bool):
        raise DataError(f"{where}: field `ground_truth` should be a letter or a number, got a bool")
    truth = str(value).strip()
    if options:
        letters = [o.split(".")[0].strip() for o in options]
        if truth.upper() not in (letter.upper() for letter in letters):
            raise DataError(f"{where}: field `ground_truth` {truth!r:.20} is not one of the option letters {letters}")
    elif to_float(truth) is None:
        raise DataError(f"{where}: field `ground_truth` {truth!r:.20} is not a number")
    return truth


def _question_type(row: dict[str, Any], where: str) -> str:
    question_type = require(row, "question_type", str, where)
    if question_type not in QUESTION_TYPES:
        raise DataError(f"{where}: field `question_type` {question_type!r:.40} is not a VSI-Bench type."
                        + did_you_mean(question_type, QUESTION_TYPES))
    return question_type


def task_from_row(row: dict[str, Any], root: Path, where: str) -> Task:
    """One VSI-Bench row as a :class:`Task` (the video is checked by the caller)."""
    row_id = require(row, "id", (int, str), where)
    if isinstance(row_id, bool):
        raise DataError(f"{where}: field `id` should be an integer or a string")
    dataset, scene = _path_part(row, "dataset", where), _path_part(row, "scene_name", where)
    question_type = _question_type(row, where)
    question = require(row, "question", str, where)
    options = _options(row, question_type, where)
    truth = _ground_truth(row, options, where)
    pruned = row.get("pruned")
    if pruned is not None and not isinstance(pruned, bool):
        raise DataError(f"{where}: field `pruned` should be true, false or null")
    video = safe_join(root, f"{dataset}/{scene}.mp4", where)
    return Task(task_id=f"vsibench-{row_id}", question=question, answer=truth,
                answer_type="choice" if options else "number", media=lambda p=video: VideoFile(p),
                metric="option" if options else "mra", suite="vsi", question_type=question_type, options=options,
                meta={"dataset": dataset, "scene_name": scene, "video": str(video), "pruned": bool(pruned),
                      "row": where, "lmms_eval_prompt": lmms_eval_prompt(question, options)})


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading parquet needs pyarrow (`pip install pyarrow`); or put the release's "
                        f"{JSONL_NAME} next to it") from None
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read parquet ({exc})") from None
    for index, row in enumerate(rows):
        yield f"{path} row {index}", row


def read_rows(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` from ``test.jsonl`` if present, else from the parquet file."""
    if (root / JSONL_NAME).is_file():
        return read_jsonl(root / JSONL_NAME)
    if (root / PARQUET_NAME).is_file():
        return _parquet_rows(root / PARQUET_NAME)
    raise DataError(f"{root}: neither {JSONL_NAME} nor {PARQUET_NAME} found (expected VSI-Bench's release layout)")


def _drop_missing(tasks: list[Task], skip_missing: bool) -> list[Task]:
    """Check every video once; missing ones raise, or drop their rows with a warning."""
    exists: dict[str, bool] = {}
    for task in tasks:
        video = task.meta["video"]
        if video not in exists:
            exists[video] = os.path.isfile(video)
    missing = sorted(v for v, ok in exists.items() if not ok)
    if not missing:
        return tasks
    shown = ", ".join(missing[:SHOWN_MISSING]) + (f" and {len(missing) - SHOWN_MISSING} more"
                                                  if len(missing) > SHOWN_MISSING else "")
    if not skip_missing:
        raise DataError(f"{len(missing)} video file(s) not found: {shown} (pass skip_missing=True to drop their "
                        "questions)")
    kept = [t for t in tasks if exists[t.meta["video"]]]
    warnings.warn(f"VSI-Bench: dropped {len(tasks) - len(kept)} question(s) whose video is missing: {shown}",
                  stacklevel=3)
    return kept


def load_vsibench(data_root: str | os.PathLike, question_types: Sequence[str] | None = None,
                  num_tasks: int | None = None, max_frames: int = 64, max_seconds: float = 600.0,
                  skip_missing: bool = False, exclude_pruned: bool = False) -> TaskList:
    """Load VSI-Bench's test split from ``data_root`` as a task source.

    ``question_types`` keeps only those types; ``exclude_pruned`` drops rows marked
    ``pruned`` (keeping VSI-Bench-Debiased's questions); ``num_tasks`` keeps the first
    rows after filtering. Malformed rows raise :class:`DataError` naming file and row.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"{root}: data_root is not a folder")
    wanted = set(question_types or QUESTION_TYPES)
    tasks = [task_from_row(row, root, where) for where, row in read_rows(root)]
    tasks = [t for t in tasks if t.question_type in wanted and not (exclude_pruned and t.meta["pruned"])]
    tasks = _drop_missing(tasks, skip_missing)
    if num_tasks is not None:
        tasks = tasks[:num_tasks]
    if not tasks:
        raise DataError(f"{root}: no VSI-Bench questions left after filtering")
    return TaskList(tasks, name="vsibench", media_kinds=frozenset({"video"}), max_frames=max_frames,
                    max_seconds=max_seconds)
