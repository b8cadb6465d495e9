"""Safe file access for loaders of benchmark and user task files."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError

MAX_ROW_CHARS = 1_000_000


def safe_join(root: str | os.PathLike, relative: str, where: str = "") -> Path:
    """``root / relative``, refusing absolute paths and paths that escape ``root``."""
    if not isinstance(relative, str) or not relative:
        raise DataError(f"{where}: expected a relative file path, got {relative!r:.60}")
    if os.path.isabs(relative) or relative.startswith("~"):
        raise DataError(f"{where}: absolute path {relative!r} is not allowed; paths are relative to {root}")
    if "\0" in relative:
        raise DataError(f"{where}: path {relative!r:.60} contains a NUL character")
    try:
        base = Path(root).resolve()
        path = (base / relative).resolve()
        path.exists()  # before Python 3.13 this raises for a name the OS refuses (too long), as is_file() would
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise DataError(f"{where}: unusable path {relative!r:.60} ({exc})") from None
    if base != path and base not in path.parents:
        raise DataError(f"{where}: path {relative!r} escapes the data root {base}")
    return path


def read_jsonl(path: str | os.PathLike) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, row)`` for each non-empty line; bad lines raise :class:`DataError` naming them."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: task file not found")
    with path.open(encoding="utf-8") as fh:
        for number in itertools.count(1):
            where = f"{path}:{number}"
            try:
                line = fh.readline(MAX_ROW_CHARS + 1)  # a row without end is not read whole into memory
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: not UTF-8 text ({exc.reason}, at or after line {number})") from None
            if not line:
                return
            if len(line) > MAX_ROW_CHARS:
                raise DataError(f"{where}: row longer than {MAX_ROW_CHARS} characters")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError, ValueError) as exc:
                raise DataError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
            yield where, row


def require(row: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    """``row[key]`` checked for presence and type, or a :class:`DataError` naming the row."""
    if key not in row or row[key] is None:
        raise DataError(f"{where}: missing field `{key}`")
    if not isinstance(row[key], types):
        expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise DataError(f"{where}: field `{key}` should be {expected}, got {type(row[key]).__name__}")
    return row[key]
