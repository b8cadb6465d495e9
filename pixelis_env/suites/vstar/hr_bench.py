"""HR-Bench 4K/8K as published (``DreamMr/HR-Bench``): the VLMEvalKit TSV, or its parquet copy.

Columns are read by header name: ``index``, ``question``, ``A``-``D``, ``answer``,
``category`` (``single`` = FSP, ``cross`` = FCP), ``cycle_category`` and ``image``
(base64 JPEG). VLMEvalKit's convention is kept: an ``image`` of at most 64 characters
is the ``index`` of another row holding the picture. The TSV is several GB, so it is
scanned once for byte offsets and the small fields; a row's image is read and decoded
when its episode starts. Records are split the way pandas writes them (a quoted field
may span lines). There are no boxes, so tasks have no oracle tool calls; answers are
scored with the ``letter`` metric (the reference uses an LLM judge).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError, MediaError
from pixelis_env.suites.choices import lettered
from pixelis_env.suites.images import image_from_cell
from pixelis_env.suites.parquet import ParquetRows
from pixelis_env.task import Task, TaskList

FILE_NAMES = {"4k": "hr_bench_4k", "8k": "hr_bench_8k"}
REFERENCE_CHARS = 64
REQUIRED = ("index", "question", "A", "B", "answer", "image")
OPTIONAL = ("C", "D", "category", "cycle_category")
MAX_FIELD_CHARS = 2**31 - 1


def find_file(root: Path, subset: str | None = None) -> Path | None:
    """The HR-Bench file under ``root`` (``root`` itself if it is one); TSV preferred over parquet."""
    if root.is_file():
        return root
    subsets = [subset] if subset else list(FILE_NAMES)
    if subset and subset not in FILE_NAMES:
        raise DataError(f"unknown HR-Bench subset {subset!r}; expected one of {list(FILE_NAMES)}")
    found = [root / f"{FILE_NAMES[s]}{suffix}" for s in subsets for suffix in (".tsv", ".parquet")]
    found = [p for p in found if p.is_file()]
    if len({p.stem for p in found}) > 1:
        raise DataError(f"{root}: holds both {sorted({p.name for p in found})}; pass hr_subset='4k' or '8k'")
    return found[0] if found else None


def load(path: Path) -> TaskList:
    """Every row of an HR-Bench TSV or parquet file as a task."""
    table = _ParquetTable(path) if path.suffix == ".parquet" else _TsvTable(path)
    by_index: dict[int, int] = {}
    for i, row in enumerate(table.rows):
        by_index.setdefault(_index(row, table.where[i]), i)
    table.check_references(by_index)
    name = path.stem
    tasks = [_task(row, table.where[i], name, lambda i=i: _image(table, by_index, i))
             for i, row in enumerate(table.rows)]
    if not tasks:
        raise DataError(f"{path}: no rows")
    return TaskList(tasks, name=name)


def _task(row: dict[str, Any], where: str, name: str, image: Callable[[], Any]) -> Task:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: empty `question`")
    texts = [(letter, _text(row.get(letter))) for letter in "ABCD"]
    texts = [(letter, text) for letter, text in texts if text]
    letters = "".join(letter for letter, _ in texts)
    if len(texts) < 2 or letters != "ABCD"[:len(texts)]:
        raise DataError(f"{where}: options should fill columns A, B[, C, D] in order, got {letters or 'none'}")
    answer = str(row.get("answer") or "").strip().upper()
    if len(answer) != 1 or answer not in letters:
        raise DataError(f"{where}: answer {answer!r} is not one of {list(letters)}")
    index = _index(row, where)
    category = str(row.get("category") or "")
    return Task(task_id=f"{name}-{index}", question=question.strip(), answer=answer, answer_type="choice",
                media=image, metric="letter", suite="hr_bench", question_type=category,
                options=lettered([text for _, text in texts]),
                meta={"index": index, "category": category, "cycle_category": row.get("cycle_category")})


def _text(value: Any) -> str:
    """A cell as text; empty for missing cells (pandas writes NaN as an empty field or a float NaN)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _index(row: dict[str, Any], where: str) -> int:
    try:
        return int(str(row.get("index")).strip())
    except ValueError:
        raise DataError(f"{where}: `index` should be an integer, got {row.get('index')!r:.40}") from None


def _image(table: Any, by_index: dict[int, int], row: int) -> Any:
    value = table.image(row)
    if isinstance(value, str) and len(value) <= REFERENCE_CHARS:
        target = by_index.get(int(value)) if value.strip().isdigit() else None
        if target is None:
            raise MediaError(f"{table.where[row]}: image refers to missing row index {value!r}")
        value = table.image(target)
    return image_from_cell(value, table.where[row])


class _ParquetTable:
    """The parquet copy: every row holds its base64 image (references resolved anyway)."""

    def __init__(self, path: Path) -> None:
        self._rows = ParquetRows([path], [c for c in REQUIRED if c != "image"], "image", OPTIONAL)
        self.rows, self.where = self._rows.rows, self._rows.where

    def check_references(self, by_index: dict[int, int]) -> None:
        """Images are only read on demand here; a dangling reference surfaces as a MediaError then."""

    def image(self, row: int) -> Any:
        return self._rows.large(row)


class _TsvTable:
    """The TSV: small fields kept per row, images re-read from their byte range on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.where: list[str] = []
        self._spans: list[tuple[int, int]] = []
        self._references: list[str | None] = []
        header: list[str] | None = None
        for line, start, record in _records(path):
            where = f"{path}:{line}"
            fields = _fields(record, where)
            if header is None:
                header = [f.strip() for f in fields]
                self._check_header(header)
                continue
            if len(fields) != len(header):
                raise DataError(f"{where}: {len(fields)} fields, the header has {len(header)}")
            row = dict(zip(header, fields))
            image = row.pop("image")
            self._references.append(image.strip() if len(image) <= REFERENCE_CHARS else None)
            self.rows.append(row)
            self.where.append(where)
            self._spans.append((start, len(record)))
        self._header = header or []

    def _check_header(self, header: list[str]) -> None:
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DataError(f"{self.path}: header lacks columns {missing}; it has {header[:12]}")

    def check_references(self, by_index: dict[int, int]) -> None:
        """Every short ``image`` names a row whose own image is inline."""
        for row, ref in enumerate(self._references):
            if ref is None:
                continue
            target = by_index.get(int(ref)) if ref.isdigit() else None
            if target is None or self._references[target] is not None:
                raise DataError(f"{self.where[row]}: image {ref!r} is not the index of a row holding an image")

    def image(self, row: int) -> str:
        start, length = self._spans[row]
        with self.path.open("rb") as fh:
            fh.seek(start)
            record = fh.read(length)
        fields = _fields(record, self.where[row])
        return fields[self._header.index("image")]


def _records(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``(first line number, byte offset, bytes)`` of each non-empty record (quotes balanced)."""
    if not path.is_file():
        raise DataError(f"{path}: HR-Bench file not found")
    offset, start, first, pending, quotes = 0, 0, 1, b"", 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not pending:
                start, first = offset, number
            pending += line
            quotes += line.count(b'"')
            offset += len(line)
            if quotes % 2 == 0:
                if pending.strip():
                    yield first, start, pending
                pending, quotes = b"", 0
    if pending.strip():
        raise DataError(f"{path}:{first}: unterminated quoted field")


def _fields(record: bytes, where: str) -> list[str]:
    try:
        text = record.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 text ({exc})") from None
    with _large_fields():
        try:
            return next(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
        except (csv.Error, StopIteration) as exc:
            raise DataError(f"{where}: not a TSV record ({exc})") from None


@contextmanager
def _large_fields() -> Iterator[None]:
    """Lift the csv module's 128 kB field limit for base64 images, then restore it."""
    previous = csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        yield
    finally:
        csv.field_size_limit(previous)
