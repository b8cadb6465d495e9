"""Oracle tool traces: the calls a careful agent makes before answering a VSI question.

The trace looks at the frames that show the objects a question is about, then
inspects the key objects. Which inspection depends on the tools registered when the
task is built, so traces upgrade themselves as perception tools land:

* ``segment`` + ``properties`` registered: size and distance questions segment each
  object at a point inside it and measure the mask (mask ids count from 0 in call
  order within an episode); otherwise they zoom on the object's box.
* ``localize`` registered: appearance-order questions localise each category's first
  instance; otherwise the frames of the first appearances are enough.

Boxes and points come from the scene's label renders (exact object masks), padded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from pixelis_env.actions import MAX_SELECTED_FRAMES, Action, Localize, Properties, Segment, SelectFrames, Zoom
from pixelis_env.suites.vsi.questions import DIRECTION_TYPES, Question
from pixelis_env.suites.vsi.render import Visibility

MAX_ZOOMS = 4


class OracleBuilder:
    """Builds the trace of one question from what the video shows."""

    def __init__(self, vis: Visibility, tools: Collection[str]) -> None:
        self.vis, self.tools = vis, frozenset(tools)
        self.masks = 0

    def select(self, frames: list[int]) -> SelectFrames:
        unique = sorted(set(frames))
        if len(unique) > MAX_SELECTED_FRAMES:
            picks = np.linspace(0, len(unique) - 1, MAX_SELECTED_FRAMES).round().astype(int)
            unique = [unique[i] for i in picks]
        return SelectFrames(frames=tuple(unique))

    def best_frames(self, objects: tuple[int, ...]) -> list[int]:
        return [self.vis.best_frame(i) for i in objects]

    def zoom(self, object_id: int) -> Zoom:
        frame = self.vis.best_frame(object_id)
        return Zoom(box=self.vis.box(object_id, frame), frame=frame)

    def measure(self, object_id: int) -> list[Action]:
        """Segment and measure the object when those tools exist, else zoom on it."""
        if not {"segment", "properties"} <= self.tools:
            return [self.zoom(object_id)]
        frame = self.vis.best_frame(object_id)
        mask_id, self.masks = self.masks, self.masks + 1
        return [Segment(point=self.vis.point(object_id, frame), frame=frame), Properties(mask_id=mask_id)]

    def localize(self, object_id: int) -> list[Action]:
        if "localize" not in self.tools:
            return []
        frame = self.vis.first_frame(object_id)
        return [Localize(box=self.vis.box(object_id, frame), frame=frame)]


def _look_at_all(b: OracleBuilder, q: Question) -> list[Action]:
    return [b.select(b.best_frames(q.objects))]


def _counting(b: OracleBuilder, q: Question) -> list[Action]:
    return [b.select(b.best_frames(q.objects)), *(b.zoom(i) for i in q.objects[:MAX_ZOOMS])]


def _measured(b: OracleBuilder, q: Question) -> list[Action]:
    return [b.select(b.best_frames(q.objects)), *(a for i in q.objects for a in b.measure(i))]


def _room(b: OracleBuilder, q: Question) -> list[Action]:
    last = b.vis.counts.shape[0] - 1
    return [b.select([int(v) for v in np.linspace(0, last, MAX_SELECTED_FRAMES).round()])]


def _rel_distance(b: OracleBuilder, q: Question) -> list[Action]:
    return [b.select(b.best_frames(q.objects)), b.zoom(q.objects[0])]


def _appearance(b: OracleBuilder, q: Question) -> list[Action]:
    firsts = [b.vis.first_frame(i) for i in q.objects]
    return [b.select(firsts), *(a for i in q.objects for a in b.localize(i))]


ORACLES: dict[str, Callable[[OracleBuilder, Question], list[Action]]] = {
    "object_counting": _counting,
    "object_abs_distance": _measured,
    "object_size_estimation": _measured,
    "room_size_estimation": _room,
    "object_rel_distance": _rel_distance,
    **dict.fromkeys(DIRECTION_TYPES, _look_at_all),
    "route_planning": _look_at_all,
    "obj_appearance_order": _appearance,
}


def build_oracle(question: Question, vis: Visibility, tools: Collection[str] | None = None) -> list[Action]:
    """The oracle's tool calls (without the final answer) for a question.

    ``tools`` defaults to the names registered right now in :mod:`pixelis_env.tools`.
    """
    if tools is None:
        from pixelis_env.tools import registered_tools

        tools = registered_tools()
    return ORACLES[question.question_type](OracleBuilder(vis, tools), question)
