"""CountBench-style files: the Hugging Face parquet exports, or the user's own JSONL.

Parquet: ``vikhyatk/CountBenchQA`` (``image``, ``text``, ``question``, ``number``) and
``nielsr/countbench`` (``image_url``, ``text``, ``number``, ``image``; no question). The
original CountBench captions spell out the count ("Five fresh red apples ..."), so for
rows without a ``question`` the count is cut out of the caption and the question asks
how many of what it describes. A row whose image is missing (dead URLs in CountBench)
fails when its episode starts, and the env skips it on random resets.

JSONL, one object per line: ``{"image": "imgs/a.jpg", "question": "How many ...?",
"count": 4}`` (``id`` optional), image paths relative to the file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError
from pixelis_env.media import load_media
from pixelis_env.metrics import NUMBER_WORDS
from pixelis_env.suites.files import read_jsonl, require, safe_join
from pixelis_env.suites.images import image_from_cell
from pixelis_env.suites.parquet import ParquetRows
from pixelis_env.task import Task, TaskList

OPTIONAL_COLUMNS = ("question", "text", "image_url")


def find_files(root: Path) -> list[Path]:
    """``root`` if it is a file, else every parquet file below it (sorted)."""
    if root.is_file():
        return [root]
    return sorted(root.rglob("*.parquet"))


def load(paths: list[Path], metric: str) -> TaskList:
    """Tasks from one JSONL file or from parquet files."""
    if paths[0].suffix == ".jsonl":
        tasks = [_from_jsonl(row, paths[0].parent, where, i, metric) for i, (where, row) in
                 enumerate(read_jsonl(paths[0]))]
    else:
        rows = ParquetRows(paths, ["number"], "image", OPTIONAL_COLUMNS)
        tasks = [_task(row, rows.where[i], i, metric, lambda i=i: image_from_cell(rows.large(i), rows.where[i]))
                 for i, row in enumerate(rows.rows)]
    if not tasks:
        raise DataError(f"{paths[0]}: no rows")
    return TaskList(tasks, name="countbench")


def masked_caption(caption: str, number: int) -> str:
    """The caption without its count: the numeral and the number word are removed."""
    words = {str(number)} | {w for w, n in NUMBER_WORDS.items() if n == str(number)}
    pattern = r"\b(" + "|".join(sorted(words, key=len, reverse=True)) + r")\b"
    return " ".join(re.sub(pattern, " ", caption, flags=re.IGNORECASE).split())


def _count(row: dict[str, Any], key: str, where: str) -> int:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"{where}: `{key}` should be a non-negative integer, got {value!r:.40}")
    return value


def _task(row: dict[str, Any], where: str, index: int, metric: str, media: Any, key: str = "number") -> Task:
    number = _count(row, key, where)
    question = row.get("question")
    caption = row.get("text")
    if not (isinstance(question, str) and question.strip()):
        if not (isinstance(caption, str) and caption.strip()):
            raise DataError(f"{where}: neither a `question` nor a `text` caption to ask about")
        question = f'How many are there of what this caption describes: "{masked_caption(caption, number)}"?'
    return Task(task_id=f"countbench-{row.get('id', index)}", question=question.strip(), answer=number,
                answer_type="number", media=media, metric=metric, suite="countbench", question_type="count",
                meta={"text": caption, "image_url": row.get("image_url")})


def _from_jsonl(row: dict[str, Any], root: Path, where: str, index: int, metric: str) -> Task:
    image = safe_join(root, require(row, "image", str, where), where)
    if not image.is_file():
        raise DataError(f"{where}: image file {image} not found")
    require(row, "question", str, where)
    return _task(row, where, index, metric, lambda p=image: load_media(p), key="count")
