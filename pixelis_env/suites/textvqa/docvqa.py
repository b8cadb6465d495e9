"""DocVQA (single page): the ``lmms-lab/DocVQA`` parquet files or the original JSON release.

Parquet (verified layout): ``{root}/DocVQA/{split}-*.parquet`` (or ``{root}/{split}-*.parquet``),
``split`` being ``validation`` for ``val``; columns ``questionId`` (string), ``question``,
``answers``, ``image`` (``{bytes, path}``), plus ``question_types``, ``docId``,
``ucsf_document_id``, ``ucsf_document_page_no`` when present. Images are decoded when an
episode starts.

JSON (assumed from the original release; not confirmed from a primary source): a
``{split}_v1.0.json`` (or ``..._withQT.json``) under ``root`` or ``root/{split}``, with a
``data`` list of ``questionId``, ``question``, ``image`` (a path such as
``documents/xyz.png``, relative to the JSON file's folder, else to ``root``) and
``answers``. Scored by ANLS. Test rows have no answers and are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError
from pixelis_env.media import load_media
from pixelis_env.suites.files import require, safe_join
from pixelis_env.suites.images import image_from_cell
from pixelis_env.suites.parquet import ParquetRows
from pixelis_env.suites.textvqa.textvqa_json import read_rows
from pixelis_env.task import Task, TaskList

PARQUET_SPLITS = {"train": "train", "val": "validation", "test": "test"}
JSON_NAMES = ("{split}_v1.0.json", "{split}_v1.0_withQT.json")
OPTIONAL_COLUMNS = ("question_types", "docId", "ucsf_document_id", "ucsf_document_page_no")


def find_files(root: Path, split: str) -> list[Path]:
    """The DocVQA file(s) for ``split``: parquet shards first, else the JSON file."""
    if root.is_file():
        return [root]
    stem = PARQUET_SPLITS.get(split, split)
    for folder in (root / "DocVQA", root):
        shards = sorted(folder.glob(f"{stem}-*.parquet"))
        if shards:
            return shards
    for folder in (root, root / split):
        for name in JSON_NAMES:
            if (folder / name.format(split=split)).is_file():
                return [folder / name.format(split=split)]
    return []


def load(paths: list[Path], root: Path) -> TaskList:
    """Every question in the DocVQA files as a task."""
    tasks = _from_parquet(paths) if paths[0].suffix == ".parquet" else _from_json(paths[0], root)
    if not tasks:
        raise DataError(f"{paths[0]}: no questions")
    return TaskList(tasks, name="docvqa")


def _from_parquet(paths: list[Path]) -> list[Task]:
    rows = ParquetRows(paths, ["questionId", "question", "answers"], "image", OPTIONAL_COLUMNS)
    return [_task(row, rows.where[i], lambda i=i: image_from_cell(rows.large(i), rows.where[i]))
            for i, row in enumerate(rows.rows)]


def _from_json(path: Path, root: Path) -> list[Task]:
    tasks = []
    for i, row in enumerate(read_rows(path)):
        where = f"{path}: data[{i}]"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object, got {type(row).__name__}")
        image = _image_path(require(row, "image", str, where), path.parent, root, where)
        tasks.append(_task(row, where, lambda p=image: load_media(p)))
    return tasks


def _image_path(relative: str, folder: Path, root: Path, where: str) -> Path:
    """``relative`` under the JSON file's folder, else under ``root``; never outside the folder tried."""
    for base in dict.fromkeys((folder, root)):
        path = safe_join(base, relative, where)
        if path.is_file():
            return path
    raise DataError(f"{where}: image file {relative!r} not found under {folder} or {root}")


def _task(row: dict[str, Any], where: str, media: Any) -> Task:
    question = require(row, "question", str, where)
    answers = row.get("answers")
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise DataError(f"{where}: `answers` should be a non-empty list of strings (test rows have none; "
                        "they are scored on the DocVQA server)")
    question_id = require(row, "questionId", (str, int), where)
    types = row.get("question_types") or []
    return Task(task_id=f"docvqa-{question_id}", question=question, answer=list(answers), answer_type="text",
                media=media, metric="anls", suite="docvqa", question_type=",".join(map(str, types)),
                meta={"questionId": str(question_id), "docId": row.get("docId"),
                      "ucsf_document_id": row.get("ucsf_document_id"),
                      "ucsf_document_page_no": row.get("ucsf_document_page_no")})
