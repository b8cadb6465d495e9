"""Metric size of an image region, from a depth map and camera intrinsics or a known scale.

Suites that know the scene's geometry put it in ``task.meta``:

- ``meta["depth"]``: a callable ``frame_index -> (H, W) float32`` depth in metres, plus
  ``meta["intrinsics"] = (fx, fy, cx, cy)`` in pixels of the media frame. A region's
  pixel extent is scaled by ``depth / focal`` at the region's median depth (the pinhole
  model), which is exact for a surface facing the camera.
- ``meta["metres_per_pixel"]``: a flat scale (top-down views, documents, charts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from pixelis_env.errors import ToolError


def metric_size(meta: Mapping[str, Any], mask: np.ndarray, frame: int,
                bounds: tuple[int, int, int, int]) -> dict[str, float | str] | None:
    """Width, height (m) and area (m²) of the mask, and its median depth; ``None`` without geometry."""
    x0, y0, x1, y1 = bounds
    area = int(mask.sum())
    if meta.get("depth") is not None and meta.get("intrinsics") is not None:
        fx, fy = float(meta["intrinsics"][0]), float(meta["intrinsics"][1])
        depth = _median_depth(meta["depth"], frame, mask)
        sx, sy = depth / fx, depth / fy
        return {"width_m": round((x1 - x0) * sx, 4), "height_m": round((y1 - y0) * sy, 4),
                "area_m2": round(area * sx * sy, 5), "depth_m": round(depth, 4), "source": "depth"}
    if meta.get("metres_per_pixel") is not None:
        scale = float(meta["metres_per_pixel"])
        return {"width_m": round((x1 - x0) * scale, 4), "height_m": round((y1 - y0) * scale, 4),
                "area_m2": round(area * scale * scale, 5), "source": "metres_per_pixel"}
    return None


def _median_depth(depth_of: Any, frame: int, mask: np.ndarray) -> float:
    """Median of the valid (finite, positive) depths under the mask."""
    depth = np.asarray(depth_of(frame), dtype=np.float32)
    if depth.ndim != 2:
        raise ToolError(f"task depth for frame {frame} has shape {depth.shape}; expected (H, W) metres")
    if depth.shape != mask.shape:
        depth = cv2.resize(depth, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_NEAREST)
    values = depth[mask]
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        raise ToolError(f"no valid depth under the region on frame {frame}")
    return float(np.median(values))
