"""``properties``: measure a mask from ``segment`` (by id) or a box.

Area (pixels and fraction of the frame), centroid and box (normalised), the dominant
colour name with the shares of the top colours, and, where the task knows the scene's
geometry (see :mod:`~pixelis_env.tools.metric_size`), the size in metres.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelis_env.actions import Properties
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.tools.colour_names import colour_shares
from pixelis_env.tools.mask_store import get_nonempty_mask, mask_bounds
from pixelis_env.tools.metric_size import metric_size
from pixelis_env.tools.overlays import boxed, overlay_mask, scaled
from pixelis_env.views import box_to_pixels, pixels_to_box


def run(action: Properties, ctx: ToolContext) -> ToolResult:
    mask, frame_index, subject = _region(action, ctx)
    frame = ctx.media.frame(frame_index)
    h, w = mask.shape
    bounds = mask_bounds(mask)
    area = int(mask.sum())
    ys, xs = np.nonzero(mask)
    centroid = [round(float(xs.mean() + 0.5) / w, 4), round(float(ys.mean() + 0.5) / h, 4)]
    box = pixels_to_box(*bounds, w, h)
    shares = colour_shares(frame[mask])
    colour = next(iter(shares))
    median = [int(v) for v in np.median(frame[mask], axis=0)]
    size = metric_size(getattr(ctx.task, "meta", None) or {}, mask, frame_index, bounds)
    data: dict[str, Any] = {
        "mask_id": action.mask_id, "frame": frame_index, "area_px": area, "area_fraction": round(area / (h * w), 6),
        "centroid": centroid, "box": box, "colour": colour, "colour_shares": shares, "median_rgb": median,
        "metric": size}
    return ToolResult(text=_describe(subject, data), image=_view(frame, mask, box, ctx.view_size), data=data,
                      candidates=[colour])


def _region(action: Properties, ctx: ToolContext) -> tuple[np.ndarray, int, str]:
    """The region's bool mask, its frame and how to name it in the text."""
    if action.mask_id is not None:
        entry = get_nonempty_mask(ctx.state, action.mask_id)
        return entry["mask"], entry["frame"], f"mask {action.mask_id} on frame {entry['frame']}"
    frame = ctx.media.frame(action.frame)
    mask = np.zeros(frame.shape[:2], bool)
    x0, y0, x1, y1 = box_to_pixels(action.box, frame.shape[1], frame.shape[0])
    mask[y0:y1, x0:x1] = True
    return mask, action.frame, f"box {list(action.box)} on frame {action.frame}"


def _describe(subject: str, data: dict[str, Any]) -> str:
    shares = ", ".join(f"{name} {100 * share:.0f}%" for name, share in data["colour_shares"].items())
    text = (f"{subject}: {data['area_px']} px ({100 * data['area_fraction']:.2f}% of the frame), "
            f"centroid {data['centroid']}, box {data['box']}, colour {data['colour']} ({shares})")
    size = data["metric"]
    if size is not None:
        text += f"; about {size['width_m']:.2f} m wide x {size['height_m']:.2f} m tall"
        if "depth_m" in size:
            text += f" at {size['depth_m']:.2f} m depth"
    return text


def _view(frame: np.ndarray, mask: np.ndarray, box: list[float], view_size: int) -> np.ndarray:
    return boxed(overlay_mask(scaled(frame, view_size), mask), view_size, [box])
