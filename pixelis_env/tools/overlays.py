"""Drawing tool results (masks, boxes) on frames shown at view resolution.

Frames are scaled to the view size *before* drawing, so outlines keep their width
whatever the source resolution; the scaled frame keeps its aspect ratio, so normalised
coordinates still map onto it (the env letterboxes it afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pixelis_env.views import draw_box

MASK_COLOUR = (0, 255, 0)
MASK_ALPHA = 0.45


def scaled(frame: np.ndarray, long_side: int) -> np.ndarray:
    """The frame resized so its longer side is ``long_side`` pixels (aspect kept)."""
    h, w = frame.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(frame, size, interpolation=interpolation)


def overlay_mask(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = MASK_COLOUR) -> np.ndarray:
    """Tint the mask's pixels (the mask is resized to the image if needed)."""
    if mask.shape != image.shape[:2]:
        mask = cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    out = image.copy()
    out[mask] = (out[mask] * (1 - MASK_ALPHA) + np.array(colour) * MASK_ALPHA).astype(np.uint8)
    return out


def boxed(frame: np.ndarray, long_side: int, boxes: Sequence[Sequence[float]], labels: Sequence[str] = (),
          colour: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """The frame scaled to ``long_side`` with normalised boxes (and optional labels) drawn."""
    out = scaled(frame, long_side)
    for i, box in enumerate(boxes):
        out = draw_box(out, box, colour, labels[i] if i < len(labels) else "")
    return out


def draw_point(image: np.ndarray, point: Sequence[float], colour: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """Mark a normalised point with a small ring."""
    out = image.copy()
    h, w = out.shape[:2]
    cv2.circle(out, (int(point[0] * w), int(point[1] * h)), max(3, min(h, w) // 50), colour, 2)
    return out
