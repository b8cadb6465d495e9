"""OCR with the tesseract binary (via pytesseract): text lines with boxes and confidences.

Before OCR a crop is turned into what tesseract reads best: dark text on an even light
background. Light-on-dark text is inverted (text is the minority side of an Otsu split),
uneven lighting is divided out by a background estimate (a morphological closing,
wider than text strokes), small crops are upsampled (tesseract misses text only a
dozen pixels high) and a border is added (it misses text touching the edge). On
``skimage.data.page()`` this lifts character accuracy from about 0.55 to 0.9.

``OMP_THREAD_LIMIT=1`` is set unless the user set it: tesseract's OpenMP threads make
it slower, not faster, on the small crops agents read, and fight vector envs for cores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pixelis_env.errors import BackendUnavailableError, ToolError

INSTALL_HINT = "install it with `apt-get install tesseract-ocr tesseract-ocr-eng` (or `brew install tesseract`)"
DEFAULTS: dict[str, Any] = {
    "ocr_min_side": 200,
    "ocr_max_upsample": 4.0,
    "ocr_lang": "eng",
    "ocr_psm": 3,
    "ocr_min_conf": 30.0,
    "ocr_timeout": 30.0,
}
"""``tool_config`` keys read here: the crop's short side is upsampled towards
``ocr_min_side`` px (by at most ``ocr_max_upsample``); words below ``ocr_min_conf``
(0-100) are dropped; ``ocr_psm`` is tesseract's page segmentation mode."""
BORDER_PX = 10
BACKGROUND_KERNEL_FRACTION = 8
"""The background estimate's closing kernel is the crop's short side over this (>= 15 px)."""


@dataclass(frozen=True)
class TextLine:
    """One line of text; ``box`` is ``(x0, y0, x1, y1)`` in pixels of the image that was read."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float


def check_tesseract() -> str:
    """The tesseract version, or :class:`BackendUnavailableError` with an install hint."""
    import pytesseract

    try:
        return str(pytesseract.get_tesseract_version())
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise BackendUnavailableError(f"the tesseract binary ({pytesseract.pytesseract.tesseract_cmd!r}) was "
                                      f"not found; {INSTALL_HINT}") from exc


def read_lines(image: np.ndarray, config: Mapping[str, Any] | None = None) -> list[TextLine]:
    """OCR an RGB image; lines in reading order, boxes in the image's pixels."""
    options = {**DEFAULTS, **(config or {})}
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    scale = float(np.clip(options["ocr_min_side"] / min(gray.shape), 1.0, options["ocr_max_upsample"]))
    prepared = prepare(gray, scale)
    words = _tesseract_words(prepared, options)
    return _group_lines(words, scale, float(options["ocr_min_conf"]))


def prepare(gray: np.ndarray, scale: float) -> np.ndarray:
    """Dark text on an even white background, upsampled by ``scale``, with a white border."""
    threshold, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if (gray > threshold).mean() < 0.5:
        gray = 255 - gray
    even = cv2.divide(gray, _background(gray), scale=255)
    if scale > 1.0:
        even = cv2.resize(even, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(even, BORDER_PX, BORDER_PX, BORDER_PX, BORDER_PX, cv2.BORDER_CONSTANT, value=255)


def _background(gray: np.ndarray) -> np.ndarray:
    """The page brightness without the (dark, thin) text: a closing, computed at reduced size."""
    h, w = gray.shape
    kernel = max(15, min(h, w) // BACKGROUND_KERNEL_FRACTION)
    shrink = max(1, kernel // 15)
    small = cv2.resize(gray, (max(1, w // shrink), max(1, h // shrink)), interpolation=cv2.INTER_AREA)
    side = (kernel // shrink) | 1
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    background = cv2.resize(closed, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(background, 1)


def _tesseract_words(image: np.ndarray, options: Mapping[str, Any]) -> dict[str, list[Any]]:
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        return pytesseract.image_to_data(image, lang=options["ocr_lang"], config=f"--psm {int(options['ocr_psm'])}",
                                         output_type=pytesseract.Output.DICT, timeout=float(options["ocr_timeout"]))
    except (pytesseract.TesseractNotFoundError, FileNotFoundError) as exc:
        raise BackendUnavailableError(f"read_text needs the tesseract binary "
                                      f"({pytesseract.pytesseract.tesseract_cmd!r} not found); {INSTALL_HINT}") from exc
    except pytesseract.TesseractError as exc:
        if "language" in str(exc).lower() or "traineddata" in str(exc).lower():
            raise BackendUnavailableError(f"tesseract has no data for language {options['ocr_lang']!r}; install "
                                          f"tesseract-ocr-{options['ocr_lang']}") from exc
        raise ToolError(f"tesseract failed: {exc}") from exc
    except RuntimeError as exc:  # pytesseract reports its timeout as a bare RuntimeError
        raise ToolError(f"tesseract stopped after {options['ocr_timeout']} s ({exc})") from exc


def _group_lines(words: Mapping[str, list[Any]], scale: float, min_conf: float) -> list[TextLine]:
    """Words grouped by tesseract's (block, paragraph, line), boxes mapped back to the input image."""
    lines: dict[tuple[int, int, int], list[int]] = {}
    for i, text in enumerate(words["text"]):
        if str(text).strip() and float(words["conf"][i]) >= min_conf:
            lines.setdefault((words["block_num"][i], words["par_num"][i], words["line_num"][i]), []).append(i)
    out = []
    for indices in lines.values():
        x0 = min(words["left"][i] for i in indices)
        y0 = min(words["top"][i] for i in indices)
        x1 = max(words["left"][i] + words["width"][i] for i in indices)
        y1 = max(words["top"][i] + words["height"][i] for i in indices)
        box = tuple(max(0.0, (v - BORDER_PX) / scale) for v in (x0, y0, x1, y1))
        confidence = float(np.mean([float(words["conf"][i]) for i in indices])) / 100.0
        out.append(TextLine(" ".join(str(words["text"][i]).strip() for i in indices), box, round(confidence, 3)))
    return out
