"""``track``: follow the object in a box from one frame to another with an OpenCV tracker.

CSRT (accurate, about 25 ms per 640 px frame) or KCF (about 5 ms), run frame by frame,
forward or backward in time. Frames are downscaled to at most :data:`TRACK_SIDE` px
for speed (boxes are normalised, so nothing else changes). A failed update marks the
frame as lost (box ``None``) and tracking goes on: the object may come back.

``tool_config["track_max_frames"]`` (default 256) caps the frames per call; past it the
result says where tracking stopped, and the agent can call again from there.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pixelis_env.actions import Track
from pixelis_env.errors import ToolError
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.tools.overlays import boxed
from pixelis_env.views import box_to_pixels, grid, pixels_to_box

DEFAULT_MAX_FRAMES = 256
TRACK_SIDE = 640
KEY_FRAMES = 4
"""Frames in the view: a 2x2 grid keeps each tile legible in a 224 px observation."""
FOUND_COLOUR = (60, 255, 60)


def make_tracker(name: str) -> Any:
    """A fresh OpenCV tracker by name (``csrt`` or ``kcf``)."""
    factories = {"csrt": cv2.TrackerCSRT.create, "kcf": cv2.TrackerKCF.create}
    return factories[name]()


def run(action: Track, ctx: ToolContext) -> ToolResult:
    indices, capped = _frame_order(action, int(ctx.config.get("track_max_frames", DEFAULT_MAX_FRAMES)))
    boxes = track_boxes(ctx, action.box, indices, action.tracker)
    lost = [b is None for b in boxes]
    data = {"frames": indices, "boxes": boxes, "lost": lost, "tracker": action.tracker, "capped": capped,
            "last_frame": indices[-1]}
    return ToolResult(text=_describe(action, indices, boxes, capped), image=_strip(ctx, indices, boxes), data=data)


def _frame_order(action: Track, cap: int) -> tuple[list[int], bool]:
    """Frame indices from start to end (either direction), cut to ``cap`` frames."""
    step = 1 if action.end_frame >= action.start_frame else -1
    indices = list(range(action.start_frame, action.end_frame + step, step))
    return indices[:max(cap, 1)], len(indices) > max(cap, 1)


def track_boxes(ctx: ToolContext, box: tuple[float, float, float, float], indices: list[int],
                tracker_name: str) -> list[list[float] | None]:
    """Normalised boxes on each of ``indices`` (the first is ``box``), ``None`` where the tracker lost it."""
    media = ctx.media
    scale = min(1.0, TRACK_SIDE / max(media.width, media.height))
    size = (max(1, round(media.width * scale)), max(1, round(media.height * scale)))

    def frame(i: int) -> np.ndarray:
        image = media.frame(i)
        image = image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

    x0, y0, x1, y1 = box_to_pixels(box, *size)
    tracker = make_tracker(tracker_name)
    try:
        tracker.init(frame(indices[0]), (x0, y0, x1 - x0, y1 - y0))
        boxes: list[list[float] | None] = [list(box)]
        for i in indices[1:]:
            ok, rect = tracker.update(frame(i))
            boxes.append(_clipped(rect, *size) if ok else None)
    except cv2.error as exc:
        raise ToolError(f"the {tracker_name} tracker failed on a {x1 - x0}x{y1 - y0} px box "
                        f"({str(exc).strip().splitlines()[-1][:200]}); try a larger box") from exc
    return boxes


def _clipped(rect: Any, width: int, height: int) -> list[float] | None:
    x, y, w, h = (float(v) for v in rect)
    x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return pixels_to_box(x0, y0, x1, y1, width, height)


def _describe(action: Track, indices: list[int], boxes: list[list[float] | None], capped: bool) -> str:
    lost = [i for i, b in zip(indices, boxes) if b is None]
    last = next((b for b in reversed(boxes) if b is not None), None)
    text = (f"tracked ({action.tracker}) frames {indices[0]}..{indices[-1]} ({len(indices)} frames); "
            f"box on frame {indices[-1]}: {boxes[-1] if boxes[-1] is not None else 'lost'}")
    if lost:
        text += f"; lost on {len(lost)} frames (first #{lost[0]}, last #{lost[-1]}); last seen box {last}"
    keys = _key_positions(len(indices))
    text += "; key frames: " + ", ".join(f"#{indices[k]} {boxes[k] if boxes[k] else 'lost'}" for k in keys)
    if capped:
        text += (f". Stopped at frame {indices[-1]} (at most {len(indices)} frames per call); call track again "
                 f"from there to go on to frame {action.end_frame}")
    return text


def _key_positions(count: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, min(KEY_FRAMES, count))})


def _strip(ctx: ToolContext, indices: list[int], boxes: list[list[float] | None]) -> np.ndarray:
    """Up to :data:`KEY_FRAMES` frames spread over the track, each with its box drawn."""
    tiles, labels = [], []
    for k in _key_positions(len(indices)):
        frame = ctx.media.frame(indices[k])
        if boxes[k] is None:
            tiles.append(boxed(frame, ctx.view_size // 2, []))
            labels.append(f"#{indices[k]} lost")
        else:
            tiles.append(boxed(frame, ctx.view_size // 2, [boxes[k]], colour=FOUND_COLOUR))
            labels.append(f"#{indices[k]}")
    return grid(tiles, ctx.view_size, labels)
