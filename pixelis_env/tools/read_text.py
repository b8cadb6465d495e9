"""``read_text``: OCR a region of a frame; the lines become answer candidates.

Backed by tesseract (:mod:`~pixelis_env.tools.tesseract_backend`). A missing binary is a
:class:`~pixelis_env.errors.BackendUnavailableError` with an install hint, shown as an
error observation; ``tesseract_backend.check_tesseract()`` lets an env fail at
construction instead (``tool_config["require_ocr"]``).
"""

from __future__ import annotations

from pixelis_env.actions import ReadText
from pixelis_env.tools.base import ToolContext, ToolResult
from pixelis_env.tools.overlays import boxed
from pixelis_env.tools.tesseract_backend import read_lines
from pixelis_env.views import box_to_pixels, crop, pixels_to_box

MAX_LINES_IN_TEXT = 20


def run(action: ReadText, ctx: ToolContext) -> ToolResult:
    frame = ctx.media.frame(action.frame)
    h, w = frame.shape[:2]
    x0, y0, _, _ = box_to_pixels(action.box, w, h)
    region = crop(frame, action.box)
    lines = read_lines(region, ctx.config)
    found = [{"text": line.text, "confidence": line.confidence,
              "box": pixels_to_box(line.box[0] + x0, line.box[1] + y0, line.box[2] + x0, line.box[3] + y0, w, h)}
             for line in lines]
    where = f"box {list(action.box)} of frame {action.frame}"
    if not found:
        text = f"no text found in {where}"
    else:
        shown = "\n".join(f"{i}. {line['text']!r} (conf {line['confidence']:.2f}, box {line['box']})"
                          for i, line in enumerate(found[:MAX_LINES_IN_TEXT]))
        more = f"\n... {len(found) - MAX_LINES_IN_TEXT} more lines" if len(found) > MAX_LINES_IN_TEXT else ""
        text = f"text in {where}:\n{shown}{more}"
    view = boxed(region, ctx.view_size, [_inside(line["box"], action.box) for line in found])
    return ToolResult(text=text, image=view, data={"lines": found, "frame": action.frame, "box": list(action.box)},
                      candidates=[line["text"] for line in found])


def _inside(box: list[float], region: tuple[float, float, float, float]) -> list[float]:
    """A frame-normalised box re-expressed in the region's own normalised coordinates."""
    rw, rh = region[2] - region[0], region[3] - region[1]
    return [(box[0] - region[0]) / rw, (box[1] - region[1]) / rh, (box[2] - region[0]) / rw, (box[3] - region[1]) / rh]
