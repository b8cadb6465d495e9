"""``localize``: the time spans in which the object in an exemplar box is visible.

Frames are sampled evenly (at most ``tool_config["localize_max_frames"]``, default 64)
and scored by :mod:`~pixelis_env.tools.appearance`; a frame scoring at least
``localize_threshold`` (default 0.5) shows the object. Where two neighbouring samples
disagree, the frames between them are bisected, so span edges are exact to a frame at
a cost of ``log2(stride)`` extra frames per edge. Consecutive hits form a span; frame
``i`` covers ``[i / fps, (i + 1) / fps)``, so a span of frames ``a..b`` is
``[a / fps, (b + 1) / fps]`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pixelis_env.actions import Localize
from pixelis_env.tools.appearance import make_exemplar, match
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.tools.overlays import boxed
from pixelis_env.views import box_to_pixels, grid

DEFAULT_MAX_FRAMES = 64
DEFAULT_THRESHOLD = 0.5
VIEW_FRAMES = 4
"""Best-matching frames shown (a 2x2 grid keeps each tile legible in a 224 px view)."""
SPANS_IN_TEXT = 10


def run(action: Localize, ctx: ToolContext) -> ToolResult:
    media = ctx.media
    frame = media.frame(action.frame)
    exemplar = make_exemplar(frame, box_to_pixels(action.box, media.width, media.height))
    threshold = float(ctx.config.get("localize_threshold", DEFAULT_THRESHOLD))
    results: dict[int, tuple[float, tuple[float, ...]]] = {}

    def hit(i: int) -> bool:
        if i not in results:
            results[i] = match(exemplar, media.frame(i))
        return results[i][0] >= threshold

    samples = sample_frames(media.num_frames, int(ctx.config.get("localize_max_frames", DEFAULT_MAX_FRAMES)))
    refine_edges(samples, hit)
    frames = sorted(results)
    spans = merge_spans([i for i in frames if results[i][0] >= threshold], frames)
    fps = media.fps or 1.0
    seconds = [[round(a / fps, 3), round((b + 1) / fps, 3)] for a, b in spans]
    data = {"spans": seconds, "span_frames": [list(s) for s in spans], "frames": frames,
            "scores": [round(results[i][0], 4) for i in frames], "threshold": threshold,
            "exemplar_frame": action.frame}
    return ToolResult(text=_describe(action, seconds, spans, len(frames)), image=_view(ctx, results, threshold),
                      data=data, candidates=[f"{a:g}-{b:g}" for a, b in seconds])


def sample_frames(num_frames: int, count: int) -> list[int]:
    """Up to ``count`` distinct frame indices spread evenly over the video, first and last included."""
    return sorted({int(round(v)) for v in np.linspace(0, num_frames - 1, max(2, min(count, num_frames)))})


def refine_edges(samples: list[int], hit: Callable[[int], bool]) -> None:
    """Evaluate the samples, then bisect between neighbours that disagree until they are adjacent frames."""
    flags = [hit(i) for i in samples]
    for (a, fa), (b, fb) in zip(zip(samples, flags), zip(samples[1:], flags[1:])):
        while fa != fb and b - a > 1:
            middle = (a + b) // 2
            if hit(middle) == fa:
                a = middle
            else:
                b = middle


def merge_spans(hits: list[int], evaluated: list[int]) -> list[tuple[int, int]]:
    """Runs of hits with no evaluated miss between them, as ``(first, last)`` frame pairs."""
    misses = sorted(set(evaluated) - set(hits))
    spans: list[tuple[int, int]] = []
    for i in hits:
        if spans and not any(spans[-1][1] < m < i for m in misses):
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    return spans


def _describe(action: Localize, seconds: list[list[float]], spans: list[tuple[int, int]], evaluated: int) -> str:
    if not seconds:
        return (f"the object in box {list(action.box)} of frame {action.frame} was not found in any of "
                f"{evaluated} frames checked")
    shown = ", ".join(f"{a:g}-{b:g} s (frames {fa}-{fb})" for (a, b), (fa, fb) in
                      zip(seconds[:SPANS_IN_TEXT], spans[:SPANS_IN_TEXT]))
    more = f" and {len(seconds) - SPANS_IN_TEXT} more" if len(seconds) > SPANS_IN_TEXT else ""
    return f"the object in box {list(action.box)} of frame {action.frame} is visible at {shown}{more}"


def _view(ctx: ToolContext, results: dict[int, tuple[float, tuple[float, ...]]], threshold: float) -> np.ndarray:
    """The best-matching frames in time order, each with its match box and score."""
    best = sorted(sorted(results, key=lambda i: -results[i][0])[:VIEW_FRAMES])
    tiles = [boxed(ctx.media.frame(i), ctx.view_size // 2, [results[i][1]] if results[i][0] >= threshold else [])
             for i in best]
    return grid(tiles, ctx.view_size, [f"#{i} {results[i][0]:.2f}" for i in best])
