"""Charades-STA, the real-data format of ``Pixelis-Temporal-v0``.

Annotation files, looked up in ``data_root`` (or named by ``annotations=``, relative to it):

- ``charades_sta_{split}.txt``, the original release: one query per line,
  ``VIDEOID start end##sentence`` (e.g. ``3MSZA 24.3 30.4##person turn a light on.``);
- ``charades_sta_{split}.jsonl`` or ``.json``, lmms-eval's rows (JSON lines, or one
  JSON list): ``{"video": "3MSZA.mp4", "caption": "...", "timestamp": [24.3, 30.4]}``.

Videos are ``{data_root}/Charades_v1_480/{VIDEOID}.mp4`` (lmms-eval's layout) or, if
absent, ``{data_root}/videos/{VIDEOID}.mp4``; they open lazily, at reset.

The question is lmms-eval's prompt, verbatim (its "seonds" typo included) so scores
compare with published lmms-eval numbers: its ``pre_prompt``, the sentence without its
trailing full stop, ``". "``, then its ``post_prompt``. The answer is ``[start, end]``
in seconds, scored with ``span_iou`` (lmms-eval's parser and IoU). Annotated ends are
kept as given, even where they run past the end of the video.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError
from pixelis_env.media import VideoFile
from pixelis_env.suites.files import MAX_ROW_CHARS, read_jsonl, require, safe_join
from pixelis_env.suites.video_rows import DEFAULT_MAX_FRAMES, DEFAULT_MAX_SECONDS, find_video
from pixelis_env.task import Task, TaskList

logger = logging.getLogger(__name__)

SUITE = "charades_sta"
PRE_PROMPT = ("Please find the visual event described by a sentence in the video, determining its starting and "
              "ending times. The format should be: 'The event happens in the start time - end time'. For example, "
              "The event 'person turn a light on' happens in the 24.3 - 30.4 seonds. Now I will give you the "
              "textual sentence: ")
POST_PROMPT = "Please return its start time and end time."
VIDEO_DIRS = ("Charades_v1_480", "videos")
MAX_JSON_BYTES = 200_000_000
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]+")

Query = tuple[str, str, str, float, float]
"""``(where, video_id, sentence, start, end)``."""


def prompt(sentence: str) -> str:
    """lmms-eval's Charades-STA question for one sentence."""
    return f"{PRE_PROMPT}{sentence.strip().rstrip('.')}. {POST_PROMPT}"


def checked_span(start: Any, end: Any, where: str) -> tuple[float, float]:
    """``(start, end)`` as finite seconds with ``0 <= start <= end``, or a :class:`DataError`."""
    try:
        s, e = float(start), float(end)
    except (TypeError, ValueError):
        raise DataError(f"{where}: start and end must be numbers, got {start!r:.20} and {end!r:.20}") from None
    if isinstance(start, bool) or isinstance(end, bool) or not (math.isfinite(s) and math.isfinite(e)):
        raise DataError(f"{where}: start and end must be finite numbers, got {start!r:.20} and {end!r:.20}")
    if not 0 <= s <= e:
        raise DataError(f"{where}: span [{s:g}, {e:g}] must have 0 <= start <= end")
    return s, e


def checked_id(video_id: Any, where: str) -> str:
    if not isinstance(video_id, str) or not _VIDEO_ID.fullmatch(video_id):
        raise DataError(f"{where}: video id {video_id!r:.40} should be letters, digits, '_' or '-'")
    return video_id


def parse_line(line: str, where: str) -> Query:
    """One ``VIDEOID start end##sentence`` line."""
    head, sep, sentence = line.partition("##")
    parts = head.split()
    if not sep or len(parts) != 3 or not sentence.strip():
        raise DataError(f"{where}: expected 'VIDEOID start end##sentence', got {line.strip()!r:.80}")
    start, end = checked_span(parts[1], parts[2], where)
    return where, checked_id(parts[0], where), sentence.strip(), start, end


def read_txt(path: Path) -> Iterator[Query]:
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, 1):
            where = f"{path}:{number}"
            if len(line) > MAX_ROW_CHARS:
                raise DataError(f"{where}: line longer than {MAX_ROW_CHARS} characters")
            if line.strip():
                yield parse_line(line, where)


def row_query(row: dict[str, Any], where: str) -> Query:
    """One lmms-eval row: ``video`` ``"<id>.mp4"``, ``caption``, ``timestamp`` ``[s, e]``."""
    video = require(row, "video", str, where)
    stem, suffix = os.path.splitext(video)
    if suffix.lower() != ".mp4":
        raise DataError(f"{where}: `video` should be '<id>.mp4', got {video!r:.60}")
    timestamp = require(row, "timestamp", list, where)
    if len(timestamp) != 2:
        raise DataError(f"{where}: `timestamp` should be [start, end], got {timestamp!r:.60}")
    caption = require(row, "caption", str, where)
    if not caption.strip():
        raise DataError(f"{where}: `caption` is empty")
    return (where, checked_id(stem, where), caption.strip(), *checked_span(*timestamp, where))


def read_json_rows(path: Path) -> Iterator[Query]:
    if path.suffix == ".jsonl":
        for where, row in read_jsonl(path):
            yield row_query(row, where)
        return
    if path.stat().st_size > MAX_JSON_BYTES:
        raise DataError(f"{path}: larger than {MAX_JSON_BYTES} bytes")
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of rows, got {type(rows).__name__}")
    for index, row in enumerate(rows):
        where = f"{path}[{index}]"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield row_query(row, where)


def annotation_file(root: Path, split: str, annotations: str | None) -> Path:
    """The file named by ``annotations``, or the first ``charades_sta_{split}.*`` that exists."""
    if annotations is not None:
        path = safe_join(root, annotations, str(root))
        if not path.is_file():
            raise DataError(f"{path}: annotation file not found")
        return path
    names = [f"charades_sta_{split}{suffix}" for suffix in (".txt", ".jsonl", ".json")]
    for name in names:
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root}: no Charades-STA annotations for split `{split}` (looked for {', '.join(names)})")


def read_queries(path: Path) -> Iterator[Query]:
    return read_txt(path) if path.suffix == ".txt" else read_json_rows(path)


def query_task(query: Query, video: Path, index: int) -> Task:
    where, video_id, sentence, start, end = query
    return Task(task_id=f"{SUITE}-{index:05d}-{video_id}", question=prompt(sentence), answer=[start, end],
                answer_type="span", media=lambda: VideoFile(video), metric="span_iou", suite=SUITE,
                question_type="grounding", meta={"video_id": video_id, "sentence": sentence, "source": where})


def load_charades(data_root: str | os.PathLike, split: str = "test", annotations: str | None = None,
                  num_tasks: int | None = None, skip_missing: bool = False) -> TaskList:
    """Charades-STA queries as tasks (see the module docstring for files and prompt).

    Malformed lines raise :class:`DataError` naming ``file:line``; so does a missing video
    unless ``skip_missing`` (then the query is dropped). ``num_tasks`` keeps the first ones.
    """
    root = Path(data_root)
    path = annotation_file(root, split, annotations)
    tasks, missing = [], 0
    for query in read_queries(path):
        where, video_id = query[0], query[1]
        video = find_video(root, [f"{folder}/{video_id}.mp4" for folder in VIDEO_DIRS], where)
        if video is None:
            if not skip_missing:
                raise DataError(f"{where}: video {video_id}.mp4 not found in {root}/{{{','.join(VIDEO_DIRS)}}}")
            missing += 1
            continue
        tasks.append(query_task(query, video, len(tasks)))
        if num_tasks is not None and len(tasks) >= num_tasks:
            break
    if missing:
        logger.warning("%s: skipped %d queries whose video is missing", path, missing)
    if not tasks:
        raise DataError(f"{path}: no loadable queries ({missing} with missing videos)")
    return TaskList(tasks, name=f"{SUITE}-{split}", media_kinds=frozenset({"video"}),
                    max_frames=DEFAULT_MAX_FRAMES, max_seconds=DEFAULT_MAX_SECONDS)
