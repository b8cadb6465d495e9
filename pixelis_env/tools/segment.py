"""``segment``: the mask of the object under a point or inside a box, kept for later steps.

Backends (``tool_config["segment_backend"]``):

- ``"auto"`` (default): Segment Anything when a checkpoint is configured
  (``sam_checkpoint`` or ``$PIXELIS_SAM_CHECKPOINT``), else the classical GrabCut
  segmenter. No checkpoint configured is a normal setup, so it is not an error; the
  result names the backend that answered (``data["backend"]``).
- ``"sam"``: Segment Anything or an error.
- ``"classical"``: GrabCut only.

A configured checkpoint that is missing, corrupt or of the wrong type is always an
error (never a silent fallback): the user asked for SAM and would otherwise compare
numbers from a different backend without knowing.

Every call gets the next mask id, even when nothing stands out (a blank wall): the
result is then an empty mask (area 0) and says so, which is an answer the agent can
use, not an error. Ids therefore count segment calls, so a static oracle trace can
name them in advance; ``properties`` on an empty mask is a tool error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelis_env.actions import Segment
from pixelis_env.errors import BackendUnavailableError
from pixelis_env.tools import classical_segment, sam_backend
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.tools.mask_store import add_mask, mask_bounds
from pixelis_env.tools.overlays import boxed, draw_point, overlay_mask, scaled
from pixelis_env.views import box_to_pixels, pixels_to_box

BACKENDS = ("auto", "sam", "classical")


def run(action: Segment, ctx: ToolContext) -> ToolResult:
    frame = ctx.media.frame(action.frame)
    mask, backend, extra = _segment(action, ctx, frame)
    mask_id = add_mask(ctx.state, mask, action.frame, backend)
    h, w = mask.shape
    prompt = f"point {list(action.point)}" if action.point is not None else f"box {list(action.box)}"
    bounds = mask_bounds(mask)
    data = {"mask_id": mask_id, "box": None, "area_px": 0, "area_fraction": 0.0, "frame": action.frame,
            "backend": backend, **extra}
    if bounds is None:
        return ToolResult(
            text=f"mask {mask_id} ({backend}) is empty: nothing stands out at the {prompt} of frame "
                 f"{action.frame}; try a tighter box or another point",
            image=_prompt_view(frame, action, ctx.view_size), data=data)
    box = pixels_to_box(*bounds, w, h)
    area = int(mask.sum())
    data.update(box=box, area_px=area, area_fraction=round(area / (h * w), 6))
    return ToolResult(
        text=f"mask {mask_id} ({backend}) for the {prompt} of frame {action.frame}: box {box}, "
             f"{area} px ({100 * area / (h * w):.2f}% of the frame)",
        image=boxed(overlay_mask(scaled(frame, ctx.view_size), mask), ctx.view_size, [box], [f"mask {mask_id}"]),
        data=data)


def _segment(action: Segment, ctx: ToolContext, frame: np.ndarray) -> tuple[np.ndarray, str, dict[str, Any]]:
    """The mask, the backend's name and backend-specific result fields."""
    choice = str(ctx.config.get("segment_backend", "auto")).lower()
    if choice not in BACKENDS:
        raise BackendUnavailableError(f"tool_config['segment_backend'] must be one of {list(BACKENDS)}, "
                                      f"got {choice!r}")
    checkpoint = sam_backend.checkpoint_from(ctx.config)
    if choice == "sam" and checkpoint is None:
        raise BackendUnavailableError("segment_backend 'sam' needs a checkpoint: set tool_config['sam_checkpoint'] "
                                      f"or ${sam_backend.CHECKPOINT_ENV} to a segment_anything .pth file")
    if choice == "classical" or checkpoint is None:
        return _classical(action, frame), "classical", {}
    return _sam(action, ctx, checkpoint)


def _classical(action: Segment, frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if action.box is not None:
        return classical_segment.segment_box(frame, box_to_pixels(action.box, w, h))
    x, y = min(int(action.point[0] * w), w - 1), min(int(action.point[1] * h), h - 1)
    return classical_segment.segment_point(frame, x, y)


def _sam(action: Segment, ctx: ToolContext, checkpoint: str) -> tuple[np.ndarray, str, dict[str, Any]]:
    model = sam_backend.load_sam(checkpoint, ctx.config.get("sam_model_type"), ctx.config.get("sam_device"))
    cache_size = int(ctx.config.get("sam_cache_size", sam_backend.DEFAULT_EMBEDDING_CACHE))
    embedding = sam_backend.embed(model, ctx.media, action.frame, cache_size)
    h, w = embedding.original_size
    point = box = None
    if action.point is not None:
        point = (action.point[0] * w, action.point[1] * h)
    else:
        box = (action.box[0] * w, action.box[1] * h, action.box[2] * w, action.box[3] * h)
    result = sam_backend.predict(model, embedding, point=point, box=box)
    return result.mask, "sam", {"predicted_iou": round(result.predicted_iou, 4), "mask_ious": list(result.all_ious)}


def _prompt_view(frame: np.ndarray, action: Segment, view_size: int) -> np.ndarray:
    if action.box is not None:
        return boxed(frame, view_size, [action.box])
    return draw_point(scaled(frame, view_size), action.point)
