"""Segmentation without learned weights: GrabCut seeded by a box or grown around a point.

GrabCut runs on a local crop (the prompt region plus a margin), so its background
colour model comes from the object's surroundings and not from look-alike objects
elsewhere in the frame (several coins in one photo), and on a downscaled copy of that
crop, so its cost does not grow with the frame size.

A point says where the object is but not how large it is, so several candidate masks
are made (a colour flood fill and GrabCut in squares of growing size around the point)
and the one whose outline stands out most from its surroundings wins (:func:`point_score`).
A region that stands out from nothing (a blank wall) gives an empty mask.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

BOX_WORK_SIDE = 192
"""Long side (px) of the crop GrabCut sees for a box prompt."""
POINT_FRAME_SIDE = 640
"""Long side (px) of the frame copy a point search runs on."""
POINT_WORK_SIDE = 96
"""Long side (px) of each candidate crop for a point prompt (several run per call)."""
BOX_MARGIN = 0.2
"""Context around a box, as a fraction of its size on each side. A wide margin takes in
neighbouring look-alikes (other coins) and GrabCut then explains the object as background."""
POINT_MARGIN = 0.5
"""Context around each candidate square of a point prompt (the square is a guess, not a box)."""
GRABCUT_ITERATIONS = 4
FLOOD_TOLERANCE = 12
"""Largest per-channel difference from the seed colour that flood fill accepts."""
GROWTH = 1.6
"""Ratio between successive candidate square sizes around a point."""
MIN_CONTRAST = 0.3
"""Masks that stand out less than this from their surroundings count as empty."""
CUT_OFF_PENALTY = 0.5
AREA_DAMPING = 4
"""Exponent of ``(1 - area fraction)`` in a point candidate's score (see :func:`point_score`)."""
RING_PX = 4
"""Width (px) of the band on each side of a mask's boundary that its contrast is measured on."""
RING_SPREAD_WEIGHT = 0.25
SEED_SLACK_PX = 2
"""A point this close to a mask part still selects it (resampling can shift edges)."""


def segment_box(image: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """The object inside pixel rectangle ``(x0, y0, x1, y1)`` of an RGB image, as a bool mask.

    The largest connected part of GrabCut's foreground, or an empty mask if it does not
    stand out from its surroundings. Works on the box and its margin only, so the cost
    does not depend on the frame size.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = rect
    wx0, wy0, wx1, wy1 = _with_margin(rect, BOX_MARGIN, w, h)
    local = image[wy0:wy1, wx0:wx1]
    mask = _largest_component(_grabcut(local, (x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0), None, BOX_WORK_SIDE,
                                       BOX_MARGIN))
    out = np.zeros((h, w), bool)
    if boundary_contrast(local, mask) >= MIN_CONTRAST:
        out[wy0:wy1, wx0:wx1] = mask
    return out


def segment_point(image: np.ndarray, x: int, y: int) -> np.ndarray:
    """The object under pixel ``(x, y)`` of an RGB image, as a bool mask (empty if none stands out).

    The search runs on a copy at most :data:`POINT_FRAME_SIDE` pixels long, so its cost
    does not grow with the frame; the chosen mask is scaled back up.
    """
    h, w = image.shape[:2]
    scale = min(1.0, POINT_FRAME_SIDE / max(h, w))
    if scale == 1.0:
        return _segment_point(image, x, y)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sx, sy = min(int(x * scale), small.shape[1] - 1), min(int(y * scale), small.shape[0] - 1)
    mask = _segment_point(small, sx, sy).astype(np.float32)
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5


def _segment_point(image: np.ndarray, x: int, y: int) -> np.ndarray:
    h, w = image.shape[:2]
    best, best_score = np.zeros((h, w), bool), 0.0
    for mask, rect in _point_candidates(image, x, y):
        score = point_score(image, mask, _cut_off(mask, rect, w, h))
        if score > best_score:
            best, best_score = mask, score
    return best if best_score >= MIN_CONTRAST else np.zeros((h, w), bool)


def point_score(image: np.ndarray, mask: np.ndarray, cut_off: bool) -> float:
    """How likely a candidate is the whole object under a point.

    Its :func:`boundary_contrast`, halved when GrabCut's square cut it off (the object is
    larger), and damped for masks covering much of the frame: without the damping a
    mask that spills over the object and its neighbours up to strong far edges wins.
    """
    penalty = CUT_OFF_PENALTY if cut_off else 1.0
    return boundary_contrast(image, mask) * penalty * (1.0 - float(mask.mean())) ** AREA_DAMPING


def _point_candidates(image: np.ndarray, x: int, y: int) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Masks around the point, smallest first, each with the rectangle it was confined to."""
    h, w = image.shape[:2]
    region = _flood(image, x, y)
    if region.sum() < 0.5 * h * w:
        yield region, (0, 0, w, h)
    for rect in _squares_around(x, y, w, h):
        yield _component(_grabcut(image, rect, (x, y), POINT_WORK_SIDE, POINT_MARGIN), x, y), rect


def _cut_off(mask: np.ndarray, rect: tuple[int, int, int, int], w: int, h: int) -> bool:
    """Whether the mask reaches a side of its rectangle that is not a side of the frame."""
    x0, y0, x1, y1 = rect
    return bool((x0 > 0 and mask[y0:y1, x0].any()) or (y0 > 0 and mask[y0, x0:x1].any())
                or (x1 < w and mask[y0:y1, x1 - 1].any()) or (y1 < h and mask[y1 - 1, x0:x1].any()))


def boundary_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """How sharply a mask's boundary separates it from its surroundings.

    Along the boundary, the colour distance between the local mean just inside and just
    outside the mask, averaged, over the colour spread of the mask (plus a quarter of
    the spread of a thin ring around it, plus a noise floor). High for a mask that
    follows an object's outline; low for one that stops inside a textured object or
    spills into the background. Local means keep a neighbour touching the object from
    lowering its score; the mask's own spread penalises masks merging two objects.
    """
    if mask.sum() < 9:
        return 0.0
    side = 2 * RING_PX + 1
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = max(0, rows[0] - side), rows[-1] + side + 1, max(0, cols[0] - side), cols[-1] + side + 1
    image, mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    inside = mask.astype(np.float32)
    pixels = image.astype(np.float32)
    edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    weight_in, weight_out = cv2.blur(inside, (side, side))[edge], cv2.blur(1 - inside, (side, side))[edge]
    has_outside = weight_out > 0.05
    if has_outside.sum() < 4:
        return 0.0
    mean_in = cv2.blur(pixels * inside[..., None], (side, side))[edge] / np.maximum(weight_in, 1e-6)[:, None]
    mean_out = cv2.blur(pixels * (1 - inside)[..., None], (side, side))[edge] / np.maximum(weight_out, 1e-6)[:, None]
    step = np.linalg.norm(mean_in - mean_out, axis=1)[has_outside].mean()
    ring = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))).astype(bool)
    ring &= ~mask
    spread = np.sqrt(pixels[mask].var(0).sum() + RING_SPREAD_WEIGHT * pixels[ring].var(0).sum()) + 8.0
    return float(step / spread)


def _squares_around(x: int, y: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """Squares centred on the point, growing geometrically up to half the frame."""
    rects, radius = [], max(6.0, min(h, w) / 24)
    while True:
        rect = (max(0, int(x - radius)), max(0, int(y - radius)), min(w, int(x + radius) + 1),
                min(h, int(y + radius) + 1))
        rects.append(rect)
        if radius > max(h, w) / 2 or rect == (0, 0, w, h):
            return rects
        radius *= GROWTH


def _flood(image: np.ndarray, x: int, y: int) -> np.ndarray:
    """Pixels connected to the seed whose colour is within the tolerance of the seed's."""
    smooth = cv2.bilateralFilter(np.ascontiguousarray(image), 5, 30, 5)
    h, w = image.shape[:2]
    filled = np.zeros((h + 2, w + 2), np.uint8)
    tol = (FLOOD_TOLERANCE,) * 3
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    cv2.floodFill(smooth, filled, (int(x), int(y)), 0, tol, tol, flags)
    return filled[1:-1, 1:-1] > 0


def _grabcut(image: np.ndarray, rect: tuple[int, int, int, int], seed: tuple[int, int] | None,
             work_side: int, margin: float) -> np.ndarray:
    """GrabCut on a downscaled crop around ``rect``: probable foreground inside, background around.

    ``seed`` (a point) is marked as sure foreground. Returns a bool mask the size of ``image``.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = rect
    cx0, cy0, cx1, cy1 = _with_margin(rect, margin, w, h)
    scale = min(1.0, work_side / max(cx1 - cx0, cy1 - cy0))
    size = (max(8, round((cx1 - cx0) * scale)), max(8, round((cy1 - cy0) * scale)))
    sx, sy = size[0] / (cx1 - cx0), size[1] / (cy1 - cy0)
    sub = cv2.resize(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), size, interpolation=cv2.INTER_AREA)
    labels = np.full(sub.shape[:2], cv2.GC_BGD, np.uint8)
    labels[int((y0 - cy0) * sy):max(int((y1 - cy0) * sy), 1), int((x0 - cx0) * sx):max(int((x1 - cx0) * sx), 1)] = \
        cv2.GC_PR_FGD
    if not (labels == cv2.GC_BGD).any():
        labels[[0, -1], :] = cv2.GC_PR_BGD
        labels[:, [0, -1]] = cv2.GC_PR_BGD
    if seed is not None:
        cv2.circle(labels, (int((seed[0] - cx0) * sx), int((seed[1] - cy0) * sy)), 1, cv2.GC_FGD, -1)
    background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models by k-means on OpenCV's RNG: same input, same mask
    cv2.grabCut(sub, labels, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = cv2.resize(fg, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_LINEAR) >= 0.5
    return out


def _with_margin(rect: tuple[int, int, int, int], margin: float, w: int, h: int) -> tuple[int, int, int, int]:
    """``rect`` grown by ``margin`` of its size (at least 4 px) on each side, clipped to the frame."""
    x0, y0, x1, y1 = rect
    mx, my = max(4, int((x1 - x0) * margin)), max(4, int((y1 - y0) * margin))
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


def _component(mask: np.ndarray, x: int, y: int) -> np.ndarray:
    """The 8-connected part of ``mask`` at the point, or nearest to it within a few pixels."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    near = labels[max(0, y - SEED_SLACK_PX):y + SEED_SLACK_PX + 1, max(0, x - SEED_SLACK_PX):x + SEED_SLACK_PX + 1]
    if labels[y, x]:
        return labels == labels[y, x]
    if near.any():
        return labels == np.bincount(near[near > 0]).argmax()
    return np.zeros_like(mask)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
