"""Scenes with exact ground truth for the perception-tool tests (shared by tests/test_tools_*.py).

Flat-coloured shapes on flat, gradient and real (skimage astronaut) backgrounds; real
coins with a watershed ground truth; moving objects in videos; rendered text.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from pixelis_env import PixelisEnv, Task, TaskList
from pixelis_env.media import ArrayVideo, Media
from pixelis_env.metrics import levenshtein

BACKGROUNDS = ("flat", "gradient", "astronaut")


def background(rng: np.random.Generator, kind: str, h: int = 240, w: int = 320) -> np.ndarray:
    if kind == "flat":
        return np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
    if kind == "gradient":
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, w)[None, :, None]
        return np.repeat(a * (1 - t) + b * t, h, axis=0).astype(np.uint8)
    y, x = rng.integers(0, 512 - h), rng.integers(0, 512 - w)
    return data.astronaut()[y:y + h, x:x + w].copy()


def shapes_scene(rng: np.random.Generator, kind: str, count: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    """Flat-coloured circles, rectangles and triangles (later ones on top), with light noise.

    Returns the image and each shape's visible mask; the last shape is fully visible.
    """
    image = background(rng, kind)
    h, w = image.shape[:2]
    masks: list[np.ndarray] = []
    for _ in range(count):
        canvas = np.zeros((h, w), np.uint8)
        cx, cy, s = int(rng.integers(50, w - 50)), int(rng.integers(50, h - 50)), int(rng.integers(18, 45))
        shape = rng.integers(3)
        if shape == 0:
            cv2.circle(canvas, (cx, cy), s, 1, -1)
        elif shape == 1:
            cv2.rectangle(canvas, (cx - s, cy - s // 2), (cx + s, cy + s // 2), 1, -1)
        else:
            cv2.fillPoly(canvas, [np.array([[cx, cy - s], [cx + s, cy + s], [cx - s, cy + s]])], 1)
        mask = canvas.astype(bool)
        image[mask] = rng.integers(0, 256, 3)
        masks = [m & ~mask for m in masks] + [mask]
    noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    return noisy, masks


def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The mask pixel farthest from its edge, as (x, y)."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    return int(x), int(y)


def coins_with_truth() -> tuple[np.ndarray, list[np.ndarray]]:
    """skimage's coins photo (RGB) and a mask per coin (skimage's watershed tutorial recipe)."""
    from scipy import ndimage
    from skimage import filters, measure, segmentation

    coins = data.coins()
    markers = np.zeros_like(coins)
    markers[coins < 30], markers[coins > 150] = 1, 2
    regions = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(coins), markers) - 1)
    labels = measure.label(regions)
    masks = [labels == p.label for p in measure.regionprops(labels) if p.area > 400]
    return np.dstack([coins] * 3), masks


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def moving_square_video(rng: np.random.Generator, kind: str = "flat", n: int = 30
                        ) -> tuple[ArrayVideo, list[list[float]]]:
    """A square with a contrasting dot moving in a straight line; its true normalised box per frame."""
    h, w = 240, 320
    colour = rng.integers(40, 256, 3)
    start, velocity = rng.integers(40, 100, 2).astype(float), rng.uniform(2, 5, 2)
    astronaut = data.astronaut()
    frames, truth = [], []
    for t in range(n):
        frame = np.full((h, w, 3), 100, np.uint8) if kind == "flat" else astronaut[50:50 + h, 60 + t:60 + t + w].copy()
        cx, cy = start + velocity * t
        cv2.rectangle(frame, (int(cx - 18), int(cy - 18)), (int(cx + 18), int(cy + 18)), colour.tolist(), -1)
        cv2.circle(frame, (int(cx), int(cy)), 8, (255 - colour).tolist(), -1)
        frames.append(np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8))
        truth.append([int(cx - 18) / w, int(cy - 18) / h, (int(cx + 18) + 1) / w, (int(cy + 18) + 1) / h])
    return ArrayVideo(np.stack(frames), fps=10, name=f"moving-{kind}"), truth


def panned_astronaut(n: int = 30) -> tuple[ArrayVideo, list[list[float]]]:
    """A camera pan over the astronaut photo; the true box of her face in each frame."""
    h, w = 240, 320
    face = (175, 30, 250, 125)
    astronaut = data.astronaut()
    frames, truth = [], []
    for t in range(n):
        ox, oy = 170 - 5 * t, int(28 - 0.9 * t)
        frames.append(astronaut[oy:oy + h, ox:ox + w].copy())
        truth.append([(face[0] - ox) / w, (face[1] - oy) / h, (face[2] - ox) / w, (face[3] - oy) / h])
    return ArrayVideo(np.stack(frames), fps=10, name="astronaut-pan"), truth


def appearing_object_video(rng: np.random.Generator, kind: str = "flat", textured: bool = True, n: int = 96,
                           fps: float = 8.0) -> tuple[ArrayVideo, int, tuple[float, ...], list[tuple[float, float]]]:
    """A disc visible in one or two known intervals, with distractors of other colours.

    Returns the video, a frame where the disc is visible, its box there, and the true
    spans in seconds (frame ``i`` covers ``[i / fps, (i + 1) / fps)``).
    """
    h, w = 180, 240
    intervals = [(int(rng.integers(5, 30)), int(rng.integers(40, 60)))]
    if rng.random() < 0.5:
        intervals.append((int(rng.integers(70, 78)), int(rng.integers(85, 95))))
    colour = [int(c) for c in rng.integers(0, 256, 3)]
    other = [int(c) for c in rng.integers(0, 256, 3)]
    astronaut = data.astronaut()
    frames, boxes = [], []
    for t in range(n):
        if kind == "flat":
            frame = np.full((h, w, 3), 110, np.uint8)
        else:
            x = int(100 + 80 * np.sin(t / 20))
            frame = astronaut[100:100 + h, x:x + w].copy()
        cv2.rectangle(frame, (20 + t % 50, 140), (50 + t % 50, 165), other, -1)
        cv2.circle(frame, (200, 40 + t % 30), 14, [colour[2], colour[0], colour[1]], -1)
        cx, cy = int(40 + 150 * t / n), int(60 + 30 * np.sin(t / 7))
        if any(a <= t <= b for a, b in intervals):
            cv2.circle(frame, (cx, cy), 14, colour, -1)
            if textured:
                cv2.circle(frame, (cx - 4, cy - 4), 4, (255, 255, 255), -1)
        frames.append(np.clip(frame + rng.normal(0, 5, frame.shape), 0, 255).astype(np.uint8))
        boxes.append((cx - 18, cy - 18, cx + 18, cy + 18))
    exemplar = (intervals[0][0] + intervals[0][1]) // 2
    x0, y0, x1, y1 = boxes[exemplar]
    box = (round(x0 / w, 4), round(y0 / h, 4), round(x1 / w, 4), round(y1 / h, 4))
    spans = [(a / fps, (b + 1) / fps) for a, b in intervals]
    return ArrayVideo(np.stack(frames), fps=fps, name=f"appearing-{kind}"), exemplar, box, spans


def spans_iou(predicted: list[list[float]], truth: list[tuple[float, float]]) -> float:
    """Temporal IoU of two unions of spans (seconds), on a 10 ms grid."""
    end = max([b for _, b in truth] + [b for _, b in predicted] + [0.0])
    times = np.arange(0.0, end + 0.01, 0.01)

    def covered(spans: list) -> np.ndarray:
        out = np.zeros(times.shape, bool)
        for a, b in spans:
            out |= (times >= a) & (times < b)
        return out

    p, g = covered(predicted), covered(truth)
    return float((p & g).sum() / max((p | g).sum(), 1))


def char_accuracy(predicted: str, truth: str) -> float:
    """1 - character error rate, whitespace-normalised (can go below 0 for long garbage)."""
    p, g = " ".join(predicted.split()), " ".join(truth.split())
    return 1.0 - levenshtein(p, g) / max(len(g), 1)


def one_task_env(media: Media, answer: str = "x", **env_kwargs: object) -> PixelisEnv:
    """An env over a single task about ``media`` (metric ``exact``)."""
    task = Task(task_id="t0", question="What is shown?", answer=answer, answer_type="text", media=media,
                metric="exact", meta=dict(env_kwargs.pop("meta", {})))
    kind = "video" if media.is_video else "image"
    source = TaskList([task], media_kinds=frozenset({kind}), max_frames=media.num_frames,
                      max_seconds=media.duration)
    return PixelisEnv(source, **env_kwargs)
