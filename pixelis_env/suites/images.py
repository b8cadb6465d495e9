"""Images as benchmark files hold them: encoded bytes in parquet, base64 in TSV, files on disk.

Decoding goes through the same size guard as :func:`~pixelis_env.media.load_media`, and
failures raise :class:`~pixelis_env.errors.MediaError` naming the row, so the env skips
a broken row on a random reset instead of crashing a run.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelis_env.errors import DataError, MediaError
from pixelis_env.media import MAX_PIXELS, ImageMedia


def image_size(path: Path, where: str) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: cannot read image {path} ({exc})") from None


def decode_image(data: bytes, name: str) -> ImageMedia:
    """An :class:`ImageMedia` from encoded image bytes (JPEG, PNG, ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise MediaError(f"{name}: image too large ({image.width}x{image.height} > {MAX_PIXELS} pixels)")
                return ImageMedia(np.asarray(image.convert("RGB")), name=name)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{name}: cannot decode image ({exc})") from None


def image_from_cell(value: Any, name: str) -> ImageMedia:
    """Decode a table cell: a Hugging Face ``{"bytes": ..., "path": ...}`` struct, raw bytes, or base64 text."""
    if isinstance(value, dict):
        value = value.get("bytes")
    if isinstance(value, str):
        try:
            value = base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise MediaError(f"{name}: image is not valid base64 ({exc})") from None
    if not isinstance(value, (bytes, bytearray)) or not value:
        raise MediaError(f"{name}: no image bytes in this row")
    return decode_image(bytes(value), name)
