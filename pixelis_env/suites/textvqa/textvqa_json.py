"""TextVQA as published: ``TextVQA_0.5.1_{train,val,test}.json`` and the image folders.

Only the ``data`` list is read. Images are ``{root}/train_images/{image_id}.jpg`` for
train and val rows (val images live in ``train_images/``) and ``test_images/`` for test
rows, chosen by each row's ``set_name``. The question is shown capitalised, as
lmms-eval does (``str.capitalize`` also lower-cases the rest). Scored by VQA accuracy
over the 10 annotator answers; test rows have no answers and are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError
from pixelis_env.media import load_media
from pixelis_env.suites.files import require, safe_join
from pixelis_env.task import Task, TaskList

FILE_PATTERN = "TextVQA_0.5.1_{split}.json"
IMAGE_FOLDERS = {"test": "test_images"}
DEFAULT_IMAGE_FOLDER = "train_images"


def find_file(root: Path, split: str) -> Path | None:
    """The question file for ``split`` under ``root`` (or ``root`` itself if it is a file)."""
    if root.is_file():
        return root
    path = root / FILE_PATTERN.format(split=split)
    return path if path.is_file() else None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The ``data`` list of a TextVQA/DocVQA-style JSON file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: not a readable JSON file ({exc})") from None
    rows = document.get("data") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON object with a `data` list")
    return rows


def load(path: Path, root: Path) -> TaskList:
    """Every question in ``path`` with its image under ``root``."""
    rows = read_rows(path)
    tasks = [_task(row, root, f"{path}: data[{i}]", i) for i, row in enumerate(rows)]
    if not tasks:
        raise DataError(f"{path}: no questions in `data`")
    return TaskList(tasks, name=path.stem)


def _task(row: Any, root: Path, where: str, index: int) -> Task:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    question = require(row, "question", str, where)
    image_id = require(row, "image_id", str, where)
    if "answers" not in row and row.get("set_name") == "test":
        raise DataError(f"{where}: test questions have no `answers` (scored on the EvalAI server); use split='val'")
    answers = require(row, "answers", list, where)
    if not answers or not all(isinstance(a, str) for a in answers):
        raise DataError(f"{where}: `answers` should be a non-empty list of strings")
    folder = IMAGE_FOLDERS.get(str(row.get("set_name")), DEFAULT_IMAGE_FOLDER)
    image = safe_join(root, f"{folder}/{image_id}.jpg", where)
    if not image.is_file():
        raise DataError(f"{where}: image file {image} not found")
    question_id = row.get("question_id", index)
    return Task(task_id=f"textvqa-{question_id}", question=question.capitalize(), answer=list(answers),
                answer_type="text", media=lambda p=image: load_media(p), metric="vqa", suite="textvqa",
                question_type="textvqa", meta={"question_id": question_id, "image_id": image_id,
                                               "image_classes": row.get("image_classes")})
