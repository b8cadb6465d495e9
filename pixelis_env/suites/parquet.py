"""Rows of parquet benchmark files, with the large column (images) read one row group at a time.

Benchmark parquet files (Hugging Face exports) hold every image inline, often several
GB in all. The small columns are read at once, to validate every row up front; a
row's image is read when its episode starts, and only the last row group read is kept.
pyarrow is optional: without it, opening a parquet file raises a :class:`DataError`
that says what to install.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixelis_env.errors import DataError


def _parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading parquet benchmark files needs pyarrow: pip install pyarrow") from None
    return pq


def _open(path: Path) -> Any:
    try:
        return _parquet().ParquetFile(path)
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
        raise DataError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None


class ParquetRows:
    """The rows of one or more parquet files: ``rows[i]`` (small columns) and ``large(i)``.

    Args:
        paths: the files, read in order.
        columns: small columns every file must have.
        large: the column read on demand (``None`` values are kept).
        optional: small columns read when present.
    """

    def __init__(self, paths: Sequence[Path], columns: Sequence[str], large: str,
                 optional: Sequence[str] = ()) -> None:
        self.paths, self.large_column = [Path(p) for p in paths], large
        self.rows: list[dict[str, Any]] = []
        self.where: list[str] = []
        self._position: list[tuple[int, int, int]] = []
        self._cached: tuple[tuple[int, int], list[Any]] | None = None
        for file_index, path in enumerate(self.paths):
            self._read_small(file_index, path, list(columns), list(optional))

    def _read_small(self, file_index: int, path: Path, columns: list[str], optional: list[str]) -> None:
        handle = _open(path)
        names = set(handle.schema_arrow.names)
        missing = [c for c in [*columns, self.large_column] if c not in names]
        if missing:
            raise DataError(f"{path}: missing columns {missing}; it has {sorted(names)}")
        wanted = columns + [c for c in optional if c in names]
        row_in_file = 0
        for group in range(handle.num_row_groups):
            for offset, row in enumerate(handle.read_row_group(group, columns=wanted).to_pylist()):
                self.where.append(f"{path}: row {row_in_file}")
                row_in_file += 1
                self.rows.append(row)
                self._position.append((file_index, group, offset))

    def __len__(self) -> int:
        return len(self.rows)

    def large(self, index: int) -> Any:
        """The large column's value in row ``index`` (reads its row group, keeps it for the next call)."""
        file_index, group, offset = self._position[index]
        key = (file_index, group)
        if self._cached is None or self._cached[0] != key:
            table = _open(self.paths[file_index]).read_row_group(group, columns=[self.large_column])
            self._cached = (key, table.column(0).to_pylist())
        return self._cached[1][offset]
