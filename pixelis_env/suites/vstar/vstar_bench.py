"""V*Bench as published (``craigwu/vstar_bench``): ``test_questions.jsonl`` or the category folders.

With ``test_questions.jsonl`` the options and the ``label`` letter come from the file
(the standard lmms-eval order). Without it, each ``<category>/sa_<id>.jpg`` with its
``sa_<id>.json`` (``options[0]`` correct) becomes a task whose options are shuffled by a
generator seeded from ``seed`` and the file name, so the letter is reproducible. Either
way the oracle zooms on each annotated ``bbox`` ([x, y, w, h] pixels) when the per-sample
JSON is there. Unlike the official script, the annotation path replaces only the file
suffix, so data roots with dots in their path work.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_env.actions import Zoom
from pixelis_env.errors import DataError
from pixelis_env.media import IMAGE_SUFFIXES, load_media
from pixelis_env.suites.choices import LETTERS, lettered, shuffled_choice
from pixelis_env.suites.files import read_jsonl, require, safe_join
from pixelis_env.suites.images import image_size
from pixelis_env.suites.procedural import square_window
from pixelis_env.task import Task, TaskList

QUESTIONS_FILE = "test_questions.jsonl"
CATEGORIES = ("direct_attributes", "relative_position")
ZOOM_FACTOR = 2.5
MIN_ZOOM_SIDE = 224
"""Oracle windows are at least this many pixels, so a tiny box is not blown up to mush."""
_OPTION_LINE = re.compile(r"^\(([A-H])\)\s*(.*)$")


def is_vstar_root(root: Path) -> bool:
    """Whether ``root`` looks like a V*Bench folder."""
    return (root / QUESTIONS_FILE).is_file() or any((root / c).is_dir() for c in CATEGORIES)


def load(root: Path, seed: int = 0) -> TaskList:
    """Every V*Bench question under ``root`` as a task list."""
    if (root / QUESTIONS_FILE).is_file():
        rows = enumerate(read_jsonl(root / QUESTIONS_FILE))
        tasks = [_from_question_row(row, root, where, i) for i, (where, row) in rows]
    else:
        tasks = [_from_annotation(path, root, seed) for category in CATEGORIES for path in _images(root / category)]
    if not tasks:
        raise DataError(f"{root}: no V*Bench questions (expected {QUESTIONS_FILE} or {'/'.join(CATEGORIES)} folders)")
    return TaskList(tasks, name="vstar_bench")


def parse_question_text(text: str, where: str) -> tuple[str, list[str], str]:
    """Split a jsonl ``text`` into the question, the option texts and their letters.

    Lines after the options (the "Answer with the option's letter ..." prompt) are dropped.
    """
    lines = text.strip().splitlines()
    found = [(i, _OPTION_LINE.match(line.strip())) for i, line in enumerate(lines)]
    found = [(i, m) for i, m in found if m]
    letters = "".join(m.group(1) for _, m in found)
    if len(found) < 2 or letters != LETTERS[:len(found)]:
        raise DataError(f"{where}: `text` should list options (A), (B), ... one per line, found {letters or 'none'}")
    question = " ".join(line.strip() for line in lines[:found[0][0]]).strip()
    if not question:
        raise DataError(f"{where}: `text` has no question before the options")
    return question, [m.group(2).strip() for _, m in found], letters


def _from_question_row(row: dict[str, Any], root: Path, where: str, index: int) -> Task:
    image = require(row, "image", str, where)
    path = _existing(root, image, where)
    question, options, letters = parse_question_text(require(row, "text", str, where), where)
    label = require(row, "label", str, where).strip().upper()
    if len(label) != 1 or label not in letters:
        raise DataError(f"{where}: label {label!r} is not one of the options {list(letters)}")
    question_id = row.get("question_id", index)
    category = str(row.get("category") or path.parent.name)
    json_path = safe_join(root, Path(image).with_suffix(".json").as_posix(), where)
    annotation = _annotation(json_path, where) if json_path.is_file() else {}
    return _task(f"vstar_bench-{question_id}", path, question, lettered(options), label, category, annotation,
                 {"question_id": question_id, "image": image}, where)


def _from_annotation(path: Path, root: Path, seed: int) -> Task:
    where = str(path.with_suffix(".json"))
    relative = path.relative_to(root).as_posix()
    safe_join(root, relative, where)  # an image linked from outside the data root is refused
    json_path = safe_join(root, Path(relative).with_suffix(".json").as_posix(), where)
    if not json_path.is_file():
        raise DataError(f"{where}: annotation file for {path.name} not found")
    annotation = _annotation(json_path, where)
    question = require(annotation, "question", str, where)
    choices = require(annotation, "options", list, where)
    if len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise DataError(f"{where}: `options` should be at least two strings (options[0] is the answer)")
    rng = np.random.default_rng([seed, zlib.crc32(relative.encode())])
    options, label = shuffled_choice(choices[0], choices[1:], rng)
    return _task(f"vstar_bench-{path.parent.name}-{path.stem}", path, question, options, label, path.parent.name,
                 annotation, {"image": relative}, where)


def _task(task_id: str, path: Path, question: str, options: list[str], label: str, category: str,
          annotation: dict[str, Any], meta: dict[str, Any], where: str) -> Task:
    boxes = _boxes(annotation, where)
    oracle = []
    if boxes:
        width, height = image_size(path, where)
        oracle = [Zoom(box=_window(box, width, height)) for box in boxes]
    return Task(task_id=task_id, question=question, answer=label, answer_type="choice",
                media=lambda p=path, n=task_id: load_media(p, name=n), metric="letter", suite="vstar_bench",
                question_type=category, options=options, oracle=oracle,
                meta={**meta, "category": category, "target_object": annotation.get("target_object"),
                      "bbox_xywh": boxes})


def _window(box: list[float], width: int, height: int) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return square_window((x, y, x + w, y + h), width, height, ZOOM_FACTOR, MIN_ZOOM_SIDE)


def _annotation(path: Path, where: str) -> dict[str, Any]:
    try:
        annotation = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{path}: not a readable JSON annotation ({exc}); for {where}") from None
    if not isinstance(annotation, dict):
        raise DataError(f"{path}: expected a JSON object")
    return annotation


def _boxes(annotation: dict[str, Any], where: str) -> list[list[float]]:
    boxes = annotation.get("bbox") or []
    if boxes and all(isinstance(v, (int, float)) for v in boxes):
        boxes = [boxes]
    valid = isinstance(boxes, list) and all(
        isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
        and b[2] > 0 and b[3] > 0 for b in boxes)
    if not valid:
        raise DataError(f"{where}: `bbox` should be a list of [x, y, w, h] boxes with positive sizes")
    return [[float(v) for v in b] for b in boxes]


def _existing(root: Path, relative: str, where: str) -> Path:
    path = safe_join(root, relative, where)
    if not path.is_file():
        raise DataError(f"{where}: image file {path} not found")
    return path


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
