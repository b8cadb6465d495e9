"""How much a frame shows an exemplar object: multi-scale template matching checked by colour.

The exemplar is the object inside a box. Its pixels are separated from the box's
background with GrabCut (:mod:`~pixelis_env.tools.classical_segment`), so neither the
template match nor the colour histogram rewards a frame for showing the *background*
the object was first seen on. A frame's score is the best masked template correlation
over a few scales, times the colour-histogram similarity of the matched window: shape
alone confuses look-alikes of another colour, colour alone any region of that colour.

A textured exemplar is matched by its texture (mean-subtracted correlation); a flat one
by plain normalised correlation, since a flat patch has no texture to subtract and
mean-subtracted scores on it are noise. Limitation: a flat object is confused with a
flat object of the same colour and a different shape (the mask hides the silhouette).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pixelis_env.tools.classical_segment import segment_box

WORK_SIDE = 320
"""Frames are compared at this long side (px)."""
SCALES = (0.7, 0.85, 1.0, 1.2, 1.4)
MIN_TEMPLATE_PX = 6
HIST_BINS = (18, 8)
"""Hue and saturation bins of the colour histogram."""
TEXTURE_STD = 16.0
"""Exemplars whose pixels vary more than this (mean channel std) are matched by their texture."""
MIN_MASK_FRACTION = 0.1
"""A GrabCut mask smaller than this part of the box is ignored (the whole box is used)."""


@dataclass
class Exemplar:
    """The object to look for, at work resolution."""

    template: np.ndarray
    mask: np.ndarray
    histogram: np.ndarray
    scale: float
    method: int


def make_exemplar(frame: np.ndarray, rect: tuple[int, int, int, int]) -> Exemplar:
    """The object in pixel rectangle ``rect`` of ``frame`` (RGB), ready for :func:`match`."""
    x0, y0, x1, y1 = rect
    object_mask = segment_box(frame, rect)[y0:y1, x0:x1]
    if object_mask.mean() < MIN_MASK_FRACTION:
        object_mask = np.ones((y1 - y0, x1 - x0), bool)
    scale = min(1.0, WORK_SIDE / max(frame.shape[:2]))
    size = (max(MIN_TEMPLATE_PX, round((x1 - x0) * scale)), max(MIN_TEMPLATE_PX, round((y1 - y0) * scale)))
    template = cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(object_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    textured = float(template[mask > 0].std(axis=0).mean()) >= TEXTURE_STD
    method = cv2.TM_CCOEFF_NORMED if textured else cv2.TM_CCORR_NORMED
    return Exemplar(template, mask, _histogram(template, mask), scale, method)


def match(exemplar: Exemplar, frame: np.ndarray) -> tuple[float, tuple[float, float, float, float]]:
    """The exemplar's score in ``frame`` (0..1) and the normalised box of the best match."""
    image = _at_scale(frame, exemplar.scale)
    h, w = image.shape[:2]
    best, best_box = 0.0, (0.0, 0.0, 1.0, 1.0)
    for s in SCALES:
        tw, th = round(exemplar.template.shape[1] * s), round(exemplar.template.shape[0] * s)
        if tw < MIN_TEMPLATE_PX or th < MIN_TEMPLATE_PX or tw > w or th > h:
            continue
        template = cv2.resize(exemplar.template, (tw, th), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(exemplar.mask, (tw, th), interpolation=cv2.INTER_NEAREST)
        scores = cv2.matchTemplate(image, template, exemplar.method, mask=np.dstack([mask] * 3))
        scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
        _, shape_score, _, (x, y) = cv2.minMaxLoc(scores)
        colour = _similarity(exemplar.histogram, _histogram(image[y:y + th, x:x + tw], mask))
        score = float(np.clip(shape_score, 0, 1)) * colour
        if score > best:
            best, best_box = score, (x / w, y / h, (x + tw) / w, (y + th) / h)
    return best, best_box


def _at_scale(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return frame
    h, w = frame.shape[:2]
    return cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], mask.astype(np.uint8), list(HIST_BINS), [0, 180, 0, 256])
    return cv2.normalize(hist, hist, alpha=1.0, norm_type=cv2.NORM_L1)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 - Bhattacharyya distance of two normalised histograms (1 = same colours)."""
    return float(1.0 - cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))
