"""Turning frames and crops into fixed-size observation views.

Views keep the aspect ratio (letterboxed on black) so that normalised coordinates in
a view map back to the frame without distortion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from pixelis_env.actions import BoxT


def box_to_pixels(box: BoxT, width: int, height: int) -> tuple[int, int, int, int]:
    """Normalised ``[x0, y0, x1, y1]`` to integer pixel bounds, at least one pixel wide."""
    x0 = min(int(math.floor(box[0] * width)), width - 1)
    y0 = min(int(math.floor(box[1] * height)), height - 1)
    x1 = max(int(math.ceil(box[2] * width)), x0 + 1)
    y1 = max(int(math.ceil(box[3] * height)), y0 + 1)
    return x0, y0, min(x1, width), min(y1, height)


def pixels_to_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> list[float]:
    """Pixel bounds to a normalised box, rounded like actions are."""
    return [round(min(max(v / s, 0.0), 1.0), 4) for v, s in ((x0, width), (y0, height), (x1, width), (y1, height))]


def crop(frame: np.ndarray, box: BoxT) -> np.ndarray:
    """The pixels of ``frame`` inside the normalised ``box`` (a view, not a copy)."""
    x0, y0, x1, y1 = box_to_pixels(box, frame.shape[1], frame.shape[0])
    return frame[y0:y1, x0:x1]


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to fit a ``size`` x ``size`` square, letterboxed, aspect kept."""
    return fit_rect(image, size, size)


def fit_rect(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to fit a ``width`` x ``height`` box, letterboxed on black, aspect kept."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=interpolation)
    if (nw, nh) == (width, height):
        return np.ascontiguousarray(resized)
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    out[top:top + nh, left:left + nw] = resized
    return out


def grid(images: Sequence[np.ndarray], size: int, labels: Sequence[str] = ()) -> np.ndarray:
    """Tile images into one ``size`` x ``size`` view (near-square grid), with optional labels."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    cell_w, cell_h = size // cols, size // rows
    out = np.zeros((size, size, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        tile = fit_rect(image, cell_w, cell_h)
        if i < len(labels):
            cv2.putText(tile, labels[i], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
        out[r * cell_h:(r + 1) * cell_h, c * cell_w:(c + 1) * cell_w] = tile
    return out


def draw_box(image: np.ndarray, box: Sequence[float], color: tuple[int, int, int] = (255, 0, 0),
             label: str = "") -> np.ndarray:
    """Draw a normalised box on a copy of ``image``."""
    out = image.copy()
    h, w = out.shape[:2]
    x0, y0, x1, y1 = (int(round(v * s)) for v, s in zip(box, (w, h, w, h)))
    thickness = max(2, round(min(h, w) / 200))
    cv2.rectangle(out, (x0, y0), (max(x1 - 1, x0), max(y1 - 1, y0)), color, thickness)
    if label:
        cv2.putText(out, label, (x0 + 2, max(y0 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return out
