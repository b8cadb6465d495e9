"""``select_frames``: look at up to 8 frames of a video, by index or by a time span."""

from __future__ import annotations

import numpy as np

from pixelis_env.actions import MAX_SELECTED_FRAMES, SelectFrames
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.views import grid


def frames_in_span(start: float, end: float, fps: float, num_frames: int,
                   count: int = MAX_SELECTED_FRAMES) -> list[int]:
    """Up to ``count`` distinct frame indices evenly spread over ``[start, end]`` seconds."""
    first = min(max(int(round(start * fps)), 0), num_frames - 1)
    last = min(max(int(round(end * fps)), first), num_frames - 1)
    return sorted({int(round(v)) for v in np.linspace(first, last, count)})


def run(action: SelectFrames, ctx: ToolContext) -> ToolResult:
    media = ctx.media
    if action.frames is not None:
        indices = list(action.frames)
    else:
        indices = frames_in_span(*action.span, media.fps, media.num_frames)
    fps = media.fps or 1.0
    times = [round(i / fps, 2) for i in indices]
    view = grid([media.frame(i) for i in indices], ctx.view_size, [f"#{i} {t:g}s" for i, t in zip(indices, times)])
    return ToolResult(
        text="frames " + ", ".join(f"#{i} ({t:g}s)" for i, t in zip(indices, times)) + " shown left-to-right, top-down",
        image=view,
        data={"frames": indices, "times": times},
    )
