"""``zoom``: crop a region and resample it to the view size."""

from __future__ import annotations

from pixelis_env.actions import Zoom
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.views import box_to_pixels, crop, fit


def run(action: Zoom, ctx: ToolContext) -> ToolResult:
    frame = ctx.media.frame(action.frame)
    x0, y0, x1, y1 = box_to_pixels(action.box, ctx.media.width, ctx.media.height)
    view = fit(crop(frame, action.box), ctx.view_size)
    scale = ctx.view_size / max(x1 - x0, y1 - y0)
    return ToolResult(
        text=f"zoomed to {list(action.box)} of frame {action.frame}: {x1 - x0}x{y1 - y0} px shown at {scale:.2f}x",
        image=view,
        data={"box": list(action.box), "frame": action.frame, "pixels": [x0, y0, x1, y1], "scale": round(scale, 4)},
    )
