"""Drawing for the procedural image suites: textured backgrounds, icons, shapes and clutter.

Icons and shapes are drawn as a mask in a square cell with OpenCV primitives and then
filled: anti-aliased with an outline and a pattern for realism (VStar), or hard-edged in
one exact colour (Count), so that a colour mask recovers every instance exactly.
Background values stay inside ``[BACKGROUND_LOW, BACKGROUND_HIGH]`` on every channel,
which no :data:`PALETTE` colour is, so palette colours never occur by accident.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

RGB = tuple[int, int, int]

PALETTE: dict[str, RGB] = {
    "red": (220, 30, 30), "orange": (245, 140, 20), "yellow": (240, 220, 40), "green": (40, 170, 60),
    "blue": (40, 90, 230), "purple": (140, 60, 200), "white": (245, 245, 245), "black": (25, 25, 25),
}
"""Colour names as :mod:`pixelis_env.tools.colour_names` would name them; each has a channel
outside the background range."""
_PALETTE_RGB = tuple(PALETTE.values())
PATTERNS = ("plain", "striped", "dotted", "grid")
BACKGROUND_LOW, BACKGROUND_HIGH = 70, 190
NOISE_TILE = 251
"""Side of the tiled fine-noise patch (prime, so the repetition does not line up with shapes)."""
NOISE_AMPLITUDE = 24
OUTLINE_DARKEN = 0.55


def textured_background(rng: np.random.Generator, width: int, height: int, blotch: int = 96) -> np.ndarray:
    """Smooth colour blotches plus tiled fine grain, inside the background value range.

    Blotches are made at low resolution and upsampled and the grain is one tile added in
    place (values cannot overflow), so a 3000 px image costs ~15 ms.
    """
    top = BACKGROUND_HIGH - NOISE_AMPLITUDE
    coarse = rng.integers(BACKGROUND_LOW, top, (height // blotch + 2, width // blotch + 2, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    tile = rng.integers(0, NOISE_AMPLITUDE, (NOISE_TILE, NOISE_TILE, 3), dtype=np.uint8)
    for y in range(0, height, NOISE_TILE):
        for x in range(0, width, NOISE_TILE):
            patch = image[y:y + NOISE_TILE, x:x + NOISE_TILE]
            patch += tile[:patch.shape[0], :patch.shape[1]]
    return image


def _poly(mask: np.ndarray, points: list[tuple[float, float]], line: int, value: int = 255) -> None:
    side = mask.shape[0] - 1
    cv2.fillPoly(mask, [np.round(np.array(points) * side).astype(np.int32)], value, line)


def _disc(mask: np.ndarray, cx: float, cy: float, r: float, line: int, value: int = 255) -> None:
    side = mask.shape[0] - 1
    cv2.circle(mask, (round(cx * side), round(cy * side)), max(1, round(r * side)), value, -1, line)


def _ellipse(mask: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], start: float, end: float,
             line: int, thickness: float = -1) -> None:
    side = mask.shape[0] - 1
    width = -1 if thickness < 0 else max(1, round(thickness * side))
    cv2.ellipse(mask, (round(centre[0] * side), round(centre[1] * side)),
                (max(1, round(axes[0] * side)), max(1, round(axes[1] * side))), 0, start, end, 255, width, line)


def _star_points(points: int = 5, outer: float = 0.5, inner: float = 0.2) -> list[tuple[float, float]]:
    angles = np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return [(0.5 + r * np.cos(a), 0.53 - r * np.sin(a)) for a, r in zip(angles, radii)]


def _house(m: np.ndarray, line: int) -> None:
    _poly(m, [(0.5, 0.0), (1.0, 0.45), (0.0, 0.45)], line)
    _poly(m, [(0.12, 0.45), (0.88, 0.45), (0.88, 1.0), (0.12, 1.0)], line)
    _poly(m, [(0.42, 0.62), (0.6, 0.62), (0.6, 1.0), (0.42, 1.0)], line, value=0)


def _cup(m: np.ndarray, line: int) -> None:
    _poly(m, [(0.08, 0.15), (0.72, 0.15), (0.64, 0.95), (0.16, 0.95)], line)
    _ellipse(m, (0.74, 0.5), (0.17, 0.2), -90, 90, line, thickness=0.09)


def _star(m: np.ndarray, line: int) -> None:
    _poly(m, _star_points(), line)


def _key(m: np.ndarray, line: int) -> None:
    _disc(m, 0.22, 0.5, 0.21, line)
    _disc(m, 0.22, 0.5, 0.08, line, value=0)
    _poly(m, [(0.4, 0.43), (1.0, 0.43), (1.0, 0.57), (0.4, 0.57)], line)
    _poly(m, [(0.72, 0.57), (0.8, 0.57), (0.8, 0.75), (0.72, 0.75)], line)
    _poly(m, [(0.88, 0.57), (0.96, 0.57), (0.96, 0.7), (0.88, 0.7)], line)


def _flag(m: np.ndarray, line: int) -> None:
    _poly(m, [(0.08, 0.02), (0.17, 0.02), (0.17, 1.0), (0.08, 1.0)], line)
    _poly(m, [(0.17, 0.05), (0.97, 0.2), (0.17, 0.6)], line)


def _heart(m: np.ndarray, line: int) -> None:
    _disc(m, 0.29, 0.33, 0.24, line)
    _disc(m, 0.71, 0.33, 0.24, line)
    _poly(m, [(0.07, 0.42), (0.93, 0.42), (0.5, 0.97)], line)


def _bell(m: np.ndarray, line: int) -> None:
    _ellipse(m, (0.5, 0.5), (0.32, 0.38), 180, 360, line)
    _poly(m, [(0.18, 0.5), (0.82, 0.5), (0.92, 0.8), (0.08, 0.8)], line)
    _disc(m, 0.5, 0.88, 0.1, line)
    _disc(m, 0.5, 0.1, 0.07, line)


def _umbrella(m: np.ndarray, line: int) -> None:
    _ellipse(m, (0.5, 0.45), (0.49, 0.4), 180, 360, line)
    _poly(m, [(0.46, 0.44), (0.54, 0.44), (0.54, 0.86), (0.46, 0.86)], line)
    _ellipse(m, (0.38, 0.84), (0.12, 0.12), 0, 180, line, thickness=0.08)


def _circle(m: np.ndarray, line: int) -> None:
    _disc(m, 0.5, 0.5, 0.5, line)


def _square(m: np.ndarray, line: int) -> None:
    _poly(m, [(0.05, 0.05), (0.95, 0.05), (0.95, 0.95), (0.05, 0.95)], line)


def _triangle(m: np.ndarray, line: int) -> None:
    _poly(m, [(0.5, 0.0), (1.0, 0.93), (0.0, 0.93)], line)


def _diamond(m: np.ndarray, line: int) -> None:
    _poly(m, [(0.5, 0.0), (0.85, 0.5), (0.5, 1.0), (0.15, 0.5)], line)


def _hexagon(m: np.ndarray, line: int) -> None:
    angles = np.arange(6) * np.pi / 3
    _poly(m, [(0.5 + 0.5 * np.cos(a), 0.5 + 0.46 * np.sin(a)) for a in angles], line)


_DRAW: dict[str, Callable[[np.ndarray, int], None]] = {
    "house": _house, "cup": _cup, "star": _star, "key": _key, "flag": _flag, "heart": _heart, "bell": _bell,
    "umbrella": _umbrella, "circle": _circle, "square": _square, "triangle": _triangle, "diamond": _diamond,
    "hexagon": _hexagon,
}
ICON_KINDS = ("house", "cup", "star", "key", "flag", "heart", "bell", "umbrella")
"""Everyday objects a question can name (VStar)."""
SHAPE_KINDS = ("circle", "square", "triangle", "star", "diamond", "hexagon")
"""Plain shapes that stay one connected blob at any size (Count)."""
CLUTTER_SHAPES = tuple(k for k in SHAPE_KINDS if k not in ICON_KINDS)


def shape_mask(kind: str, side: int, antialias: bool = True) -> np.ndarray:
    """A ``side`` x ``side`` uint8 mask (0..255) of the icon or shape ``kind``."""
    mask = np.zeros((side, side), np.uint8)
    _DRAW[kind](mask, cv2.LINE_AA if antialias else cv2.LINE_8)
    return mask


def pattern_fill(colour: RGB, pattern: str, side: int) -> np.ndarray:
    """A cell of ``colour`` with thin ink marks; the colour keeps most of the area."""
    fill = np.empty((side, side, 3), np.uint8)
    fill[:] = colour
    ink = (225, 225, 225) if sum(colour) < 150 else (30, 30, 30)
    period = max(4, side // 4)
    if pattern == "striped":
        yy, xx = np.mgrid[:side, :side]
        fill[((xx + yy) % period) < max(1, period // 3)] = ink
    elif pattern == "dotted":
        for y in range(period // 2, side, period):
            for x in range(period // 2, side, period):
                cv2.circle(fill, (x, y), max(1, period // 5), ink, -1, cv2.LINE_AA)
    elif pattern == "grid":
        fill[::period] = ink
        fill[:, ::period] = ink
    return fill


def paste_shape(image: np.ndarray, kind: str, x: int, y: int, side: int, colour: RGB, pattern: str = "plain",
                soft: bool = True) -> None:
    """Draw ``kind`` in the cell at ``(x, y)`` (top-left) in place.

    ``soft``: anti-aliased edges, a darker outline and the pattern. Otherwise hard edges
    in exactly ``colour`` (the pattern is ignored), for pixel-exact ground truth.
    """
    region = image[y:y + side, x:x + side]
    mask = shape_mask(kind, side, antialias=soft)[:region.shape[0], :region.shape[1]]
    if not soft:
        region[mask > 127] = colour
        return
    fill = pattern_fill(colour, pattern, side)[:region.shape[0], :region.shape[1]]
    solid = mask > 127
    edge = solid & (cv2.erode(solid.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
    fill[edge] = (fill[edge] * OUTLINE_DARKEN).astype(np.uint8)
    alpha = mask[:, :, None].astype(np.float32) / 255.0
    region[:] = (region * (1.0 - alpha) + fill * alpha).astype(np.uint8)


def random_colour(rng: np.random.Generator) -> RGB:
    """A palette colour half of the time, otherwise any colour (clutter)."""
    if rng.random() < 0.5:
        return _PALETTE_RGB[int(rng.integers(len(_PALETTE_RGB)))]
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def clutter(image: np.ndarray, rng: np.random.Generator, count: int, size: tuple[int, int],
            keep_out: list[tuple[int, int, int, int]]) -> None:
    """Draw ``count`` random primitives (discs, boxes, triangles, rings, lines, icons) in place.

    None of them touches a ``keep_out`` box, so the objects a question is about stay whole.
    Icons of the question kinds are not used, so a named object is unique in the image.
    """
    height, width = image.shape[:2]
    for _ in range(count):
        side = int(rng.integers(size[0], size[1] + 1))
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        if any(x < b[2] and b[0] < x + side and y < b[3] and b[1] < y + side for b in keep_out):
            continue
        _primitive(image, rng, x, y, side)


def _primitive(image: np.ndarray, rng: np.random.Generator, x: int, y: int, side: int) -> None:
    colour = random_colour(rng)
    kind = int(rng.integers(7))
    cx, cy, r = x + side // 2, y + side // 2, side // 2
    if kind == 0:
        cv2.circle(image, (cx, cy), r, colour, -1, cv2.LINE_AA)
    elif kind == 1:
        w, h = (int(v) for v in rng.integers(side // 3, side + 1, 2))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1, cv2.LINE_AA)
    elif kind == 2:
        points = rng.integers(0, side, (3, 2)) + np.array([x, y])
        cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_AA)
    elif kind == 3:
        cv2.circle(image, (cx, cy), r, colour, max(2, side // 8), cv2.LINE_AA)
    elif kind == 4:
        end = (x + int(rng.integers(0, side)), y + int(rng.integers(0, side)))
        cv2.line(image, (x, y), end, colour, max(2, side // 10), cv2.LINE_AA)
    elif kind == 5:
        cv2.ellipse(image, (cx, cy), (r, max(2, r // 2)), float(rng.uniform(0, 180)), 0, 360, colour, -1,
                    cv2.LINE_AA)
    else:
        paste_shape(image, str(rng.choice(CLUTTER_SHAPES)), x, y, side, colour,
                    str(rng.choice(PATTERNS)))
