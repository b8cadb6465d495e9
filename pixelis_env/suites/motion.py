"""Scenes of flat-coloured shapes moving over a textured background, drawn frame by frame.

The video suites (``track``, ``temporal``) share this scene. Shapes are drawn in exact
palette colours without anti-aliasing, over a low-saturation texture that can never
contain a palette colour, so a test can re-derive the ground truth from pixels alone;
the texture also gives trackers something to lock on to. Every quantity is a closed-form
function of the frame index (positions bounce off walls by folding, not by simulation),
so any frame renders on its own, in any order, with no state: what lets a
:class:`~pixelis_env.media.RenderedVideo` render lazily and deterministically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pixelis_env.media import RenderedVideo

RGB = tuple[int, int, int]
Rect = tuple[int, int, int, int]
"""Pixel bounds ``(x0, y0, x1, y1)``, end exclusive."""

PALETTE: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 230),
    "yellow": (240, 210, 30),
    "magenta": (210, 50, 210),
    "cyan": (30, 200, 220),
    "orange": (250, 130, 20),
}
"""Saturated colours; the background texture's channels never differ by more than ~35."""

MARKER_COLOUR: RGB = (255, 255, 255)
"""The box drawn around a marked shape (brighter than anything in the background)."""
GUIDE_COLOUR: RGB = (235, 235, 235)
"""Dashed zone borders and lines."""
MARKER_GAP = 3
"""Pixels between a shape's box and its marker box."""
ALWAYS = (0, 1 << 30)
"""A frame interval covering any video."""
NEVER = (0, -1)

_UNIT_POLYGONS: dict[str, np.ndarray] = {
    "square": np.array([[-0.85, -0.85], [0.85, -0.85], [0.85, 0.85], [-0.85, 0.85]]),
    "triangle": np.array([[0.0, -1.0], [1.0, 0.8], [-1.0, 0.8]]),
    "diamond": np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
    "cross": np.array([[-0.35, -1.0], [0.35, -1.0], [0.35, -0.35], [1.0, -0.35], [1.0, 0.35], [0.35, 0.35],
                       [0.35, 1.0], [-0.35, 1.0], [-0.35, 0.35], [-1.0, 0.35], [-1.0, -0.35], [-0.35, -0.35]]),
}
SHAPES = ("circle", *_UNIT_POLYGONS)


def fold(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map unbounded coordinates into ``[low, high]`` as a ball bouncing between walls would."""
    length = high - low
    if length <= 0:
        return np.full_like(values, low, dtype=float)
    phase = np.mod(np.asarray(values, float) - low, 2 * length)
    return low + np.where(phase <= length, phase, 2 * length - phase)


def shape_offsets(shape: str, radius: int) -> np.ndarray:
    """Integer vertex offsets of a polygon shape from its centre (empty for a circle)."""
    if shape == "circle":
        return np.zeros((0, 2), np.int32)
    return np.rint(_UNIT_POLYGONS[shape] * radius).astype(np.int32)


def shape_extent(shape: str, radius: int) -> Rect:
    """Pixel bounds of the drawn shape relative to its centre pixel, end exclusive."""
    if shape == "circle":
        return (-radius, -radius, radius + 1, radius + 1)
    offsets = shape_offsets(shape, radius)
    (x0, y0), (x1, y1) = offsets.min(axis=0), offsets.max(axis=0)
    return (int(x0), int(y0), int(x1) + 1, int(y1) + 1)


def _in(interval: tuple[int, int], frames: np.ndarray) -> np.ndarray:
    return (frames >= interval[0]) & (frames <= interval[1])


@dataclass(frozen=True)
class Sprite:
    """One shape and how it behaves over time.

    The centre moves at ``velocity`` (pixels per frame) only between frames
    ``moving[0]`` and ``moving[1]`` (still before and after), bouncing inside
    ``bounds`` (the rectangle the centre may occupy). It is drawn on frames ``visible``
    (inclusive), in ``alt_colour`` on frames ``alt_frames``, and with a marker box on
    frames ``0..marked_until``.
    """

    shape: str
    colour: str
    radius: int
    start: tuple[float, float]
    velocity: tuple[float, float]
    bounds: tuple[float, float, float, float]
    moving: tuple[int, int] = ALWAYS
    visible: tuple[int, int] = ALWAYS
    alt_colour: str | None = None
    alt_frames: tuple[int, int] = NEVER
    marked_until: int = -1

    @property
    def looks(self) -> str:
        """How a question names it, e.g. ``"red circle"``."""
        return f"{self.colour} {self.shape}"

    def centres(self, frames: np.ndarray) -> np.ndarray:
        """Integer centre pixels ``(len(frames), 2)`` on the given frames."""
        frames = np.asarray(frames)
        elapsed = np.clip(frames - self.moving[0], 0, max(self.moving[1] - self.moving[0], 0))
        x = fold(self.start[0] + self.velocity[0] * elapsed, self.bounds[0], self.bounds[2])
        y = fold(self.start[1] + self.velocity[1] * elapsed, self.bounds[1], self.bounds[3])
        return np.rint(np.stack([x, y], axis=-1)).astype(np.int64)

    def rects(self, frames: np.ndarray) -> np.ndarray:
        """Pixel bounds ``(len(frames), 4)`` of the drawn shape (ignoring visibility)."""
        centres = self.centres(frames)
        return np.concatenate([centres, centres], axis=1) + np.array(shape_extent(self.shape, self.radius))

    def shown(self, frames: np.ndarray) -> np.ndarray:
        """Whether the shape is drawn on each frame."""
        return _in(self.visible, np.asarray(frames))

    def colour_on(self, frame: int) -> str:
        """The palette name it is drawn in on ``frame``."""
        return self.alt_colour if self.alt_colour and _in(self.alt_frames, np.asarray(frame)) else self.colour


@dataclass(frozen=True)
class Scene:
    """Sprites (drawn in order, the last on top) over a textured background.

    ``zone`` is a dashed rectangle and ``line_x`` a dashed vertical line, both painted on
    the background; ``occluders`` are textured pillars painted over the sprites.
    """

    width: int
    height: int
    num_frames: int
    fps: float
    sprites: tuple[Sprite, ...]
    texture_seed: int
    zone: Rect | None = None
    line_x: int | None = None
    occluders: tuple[Rect, ...] = ()

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.num_frames)

    def centres(self) -> np.ndarray:
        """Centre pixels of every sprite on every frame, ``(frames, sprites, 2)``."""
        return np.stack([s.centres(self.frames) for s in self.sprites], axis=1)

    def box(self, index: int, frame: int) -> tuple[float, float, float, float]:
        """Sprite ``index``'s box on ``frame`` in normalised coordinates, clipped to the frame."""
        x0, y0, x1, y1 = self.sprites[index].rects(np.array([frame]))[0]
        return (round(max(x0, 0) / self.width, 4), round(max(y0, 0) / self.height, 4),
                round(min(x1, self.width) / self.width, 4), round(min(y1, self.height) / self.height, 4))

    def occluded_fraction(self, index: int) -> np.ndarray:
        """Per frame, the share of the sprite's box hidden by occluders (an upper bound on the shape)."""
        rects = self.sprites[index].rects(self.frames)
        hidden = np.zeros(len(rects))
        for ox0, oy0, ox1, oy1 in self.occluders:
            w = np.clip(np.minimum(rects[:, 2], ox1) - np.maximum(rects[:, 0], ox0), 0, None)
            h = np.clip(np.minimum(rects[:, 3], oy1) - np.maximum(rects[:, 1], oy0), 0, None)
            hidden += w * h
        area = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
        return np.minimum(hidden / area, 1.0)

    def video(self, name: str) -> RenderedVideo:
        """The scene as a lazily rendered video (the background is painted once, here)."""
        background, occluder_pixels, occluder_mask = self._layers()

        def render(index: int) -> np.ndarray:
            frame = background.copy()
            for sprite in self.sprites:
                draw_sprite(frame, sprite, index)
            frame[occluder_mask] = occluder_pixels[occluder_mask]
            return frame

        return RenderedVideo(render, self.num_frames, self.fps, (self.width, self.height), name=name)

    def _layers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.texture_seed)
        background = texture(rng, self.width, self.height)
        if self.zone is not None:
            paint_zone(background, self.zone)
        if self.line_x is not None:
            paint_dashes(background, (self.line_x, 0), (self.line_x, self.height - 1))
        pillar = texture(rng, self.width, self.height, brightness=(35, 70))
        mask = np.zeros((self.height, self.width), bool)
        for x0, y0, x1, y1 in self.occluders:
            mask[max(y0, 0):y1, max(x0, 0):x1] = True
        return background, pillar, mask


def texture(rng: np.random.Generator, width: int, height: int,
            brightness: tuple[float, float] = (70, 160)) -> np.ndarray:
    """A muted random texture: coarse shading, mid-scale blotches and grain, slightly tinted.

    Channels stay within a few percent of each other, so no pixel can equal a palette
    colour, the marker white or the guide grey.
    """
    coarse = cv2.resize(rng.uniform(*brightness, (6, 8)).astype(np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    blotches = cv2.resize(rng.uniform(-25, 25, (max(height // 10, 2), max(width // 10, 2))).astype(np.float32),
                          (width, height), interpolation=cv2.INTER_LINEAR)
    grain = rng.normal(0.0, 6.0, (height, width)).astype(np.float32)
    grey = np.clip(coarse + blotches + grain, brightness[0] - 40, brightness[1] + 50)
    tint = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    return np.clip(grey[:, :, None] * tint, 20, 215).astype(np.uint8)


def paint_dashes(image: np.ndarray, start: tuple[int, int], end: tuple[int, int], dash: int = 6) -> None:
    """Draw a dashed straight line in the guide colour, in place."""
    length = max(abs(end[0] - start[0]), abs(end[1] - start[1]))
    for offset in range(0, length + 1, 2 * dash):
        a = offset / max(length, 1)
        b = min(offset + dash, length) / max(length, 1)
        p = (round(start[0] + a * (end[0] - start[0])), round(start[1] + a * (end[1] - start[1])))
        q = (round(start[0] + b * (end[0] - start[0])), round(start[1] + b * (end[1] - start[1])))
        cv2.line(image, p, q, GUIDE_COLOUR, 1, cv2.LINE_8)


def paint_zone(image: np.ndarray, zone: Rect) -> None:
    """Brighten the zone a little and outline it with dashes, in place."""
    x0, y0, x1, y1 = zone
    inside = image[y0:y1, x0:x1].astype(np.int16) + 30
    image[y0:y1, x0:x1] = np.clip(inside, 0, 225).astype(np.uint8)
    for a, b in (((x0, y0), (x1 - 1, y0)), ((x1 - 1, y0), (x1 - 1, y1 - 1)),
                 ((x1 - 1, y1 - 1), (x0, y1 - 1)), ((x0, y1 - 1), (x0, y0))):
        paint_dashes(image, a, b)


def draw_sprite(image: np.ndarray, sprite: Sprite, frame: int) -> None:
    """Draw one sprite as it looks on ``frame`` (nothing if hidden), in place."""
    if not sprite.shown(np.asarray(frame)):
        return
    (cx, cy), = sprite.centres(np.array([frame]))
    colour = PALETTE[sprite.colour_on(frame)]
    if sprite.shape == "circle":
        cv2.circle(image, (int(cx), int(cy)), sprite.radius, colour, -1, cv2.LINE_8)
    else:
        points = shape_offsets(sprite.shape, sprite.radius) + np.array([cx, cy], np.int32)
        cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_8)
    if frame <= sprite.marked_until:
        x0, y0, x1, y1 = (int(v) for v in sprite.rects(np.array([frame]))[0])
        cv2.rectangle(image, (x0 - MARKER_GAP, y0 - MARKER_GAP), (x1 - 1 + MARKER_GAP, y1 - 1 + MARKER_GAP),
                      MARKER_COLOUR, 1, cv2.LINE_8)


def overview_frames(num_frames: int, count: int) -> list[int]:
    """The frames the env shows on reset (the same rule as ``PixelisEnv``'s overview grid)."""
    return sorted({int(round(v)) for v in np.linspace(0, num_frames - 1, count)})


def min_distance(centres: np.ndarray, target: int, others: Sequence[int]) -> np.ndarray:
    """Per frame, the smallest centre distance from sprite ``target`` to any of ``others``."""
    if not others:
        return np.full(len(centres), np.inf)
    gaps = centres[:, list(others), :] - centres[:, [target], :]
    return np.sqrt((gaps.astype(float) ** 2).sum(axis=-1)).min(axis=1)
