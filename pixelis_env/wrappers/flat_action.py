"""A flat ``Box`` encoding of the grammar, for policies that output one vector (SB3).

Layout (all in ``[0, 1]``): one score per tool (argmax picks it), then slots shared by
argument kind: box (4), point (2), two single-frame slots (frame / start, end), 8 frame
slots for ``select_frames``, a span (2, as fractions of ``max_seconds``), a mask id,
a choice (tracker), one "which of" switch, ``answer_slots`` answer scores and a
log-scaled number. How ``answer`` decodes depends on the task: options and text answers
pick the best-scoring of ``info["answer_candidates"]``; numbers read the number slot;
spans read the span slot. :meth:`FlatActionWrapper.encode` inverts :meth:`decode`.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pixelis_env.actions import (
    MAX_SELECTED_FRAMES,
    Action,
    Answer,
    BoxArg,
    ChoiceArg,
    FrameArg,
    FrameListArg,
    InvalidAction,
    MaskIdArg,
    PointArg,
    SpanArg,
)
from pixelis_env.errors import ActionError, PixelisError
from pixelis_env.metrics import parse_span, to_float

NUMBER_DECADES = 5
"""The number slot covers ``0 .. 10**NUMBER_DECADES - 1`` on a log scale."""


class FlatActionWrapper(gym.ActionWrapper):
    """Expose a Pixelis env through a flat ``Box(0, 1, (D,))`` action space."""

    def __init__(self, env: gym.Env, answer_slots: int = 8) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not hasattr(base, "actions"):
            raise PixelisError("FlatActionWrapper needs a PixelisEnv underneath")
        self.action_types = base.actions.action_types
        self.limits = base.actions.limits
        self.answer_slots = int(answer_slots)
        n = len(self.action_types)
        sizes = {"op": n, "box": 4, "point": 2, "frame": 2, "frames": MAX_SELECTED_FRAMES, "span": 2,
                 "mask_id": 1, "choice": 1, "switch": 1, "answer": self.answer_slots, "number": 1}
        self.slices: dict[str, slice] = {}
        start = 0
        for key, size in sizes.items():
            self.slices[key] = slice(start, start + size)
            start += size
        self.action_space = spaces.Box(0.0, 1.0, (start,), np.float32)
        self._candidates: list[str] = []

    # ------------------------------------------------------------ gym hooks
    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._candidates = list(info.get("answer_candidates", []))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.action(action))
        self._candidates = list(info.get("answer_candidates", self._candidates))
        return obs, reward, terminated, truncated, info

    def action(self, action: Any) -> Action | InvalidAction:
        try:
            return self.decode(np.asarray(action, np.float32))
        except ActionError as exc:
            return InvalidAction(str(exc))

    # ------------------------------------------------------------- decoding
    def _frame(self, value: float) -> int:
        return int(round(float(np.clip(value, 0, 1)) * (self.limits.max_frames - 1)))

    def decode(self, vector: np.ndarray) -> Action:
        """The action a flat vector encodes (raises :class:`ActionError` if none can be built)."""
        if vector.shape != self.action_space.shape or not np.isfinite(vector).all():
            raise ActionError(f"flat action must be {self.action_space.shape} finite numbers")
        v = np.clip(vector, 0.0, 1.0)
        action_type = self.action_types[int(np.argmax(v[self.slices["op"]]))]
        if action_type is Answer:
            return Answer(text=self._decode_answer(v))
        switch = int(v[self.slices["switch"]][0] >= 0.5)
        chosen = {group[min(switch, len(group) - 1)] for group in action_type.one_of}
        grouped = {name for group in action_type.one_of for name in group}
        kwargs: dict[str, Any] = {}
        frame_slot = 0
        for key, f in action_type.arguments().items():
            kind = f.metadata["arg"]
            if isinstance(kind, FrameArg):
                value: Any = self._frame(v[self.slices["frame"]][min(frame_slot, 1)])
                frame_slot += 1
            elif key in grouped and key not in chosen:
                continue
            elif isinstance(kind, BoxArg):
                b = v[self.slices["box"]]
                value = (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))
            elif isinstance(kind, PointArg):
                value = tuple(float(x) for x in v[self.slices["point"]])
            elif isinstance(kind, FrameListArg):
                value = [self._frame(x) for x in v[self.slices["frames"]]]
            elif isinstance(kind, SpanArg):
                s = sorted(float(x) * self.limits.max_seconds for x in v[self.slices["span"]])
                value = (s[0], s[1])
            elif isinstance(kind, MaskIdArg):
                value = int(round(float(v[self.slices["mask_id"]][0]) * (self.limits.max_masks - 1)))
            elif isinstance(kind, ChoiceArg):
                value = kind.choices[min(int(v[self.slices["choice"]][0] * len(kind.choices)), len(kind.choices) - 1)]
            else:
                raise ActionError(f"`{action_type.name}.{key}` has no flat encoding")
            kwargs[key] = value
        return action_type(**kwargs)

    def _decode_answer(self, v: np.ndarray) -> str:
        answer_type = self.env.unwrapped.task.answer_type
        if answer_type == "number":
            return format(round(10 ** (float(v[self.slices["number"]][0]) * NUMBER_DECADES) - 1, 2), "g")
        if answer_type == "span":
            s = sorted(round(float(x) * self.limits.max_seconds, 2) for x in v[self.slices["span"]])
            return f"{s[0]:g}-{s[1]:g}"
        usable = self._candidates[: self.answer_slots]
        if not usable:
            raise ActionError("no answer candidates yet (read text or segment first), so the flat answer is empty")
        return usable[int(np.argmax(v[self.slices["answer"]][: len(usable)]))]

    # ------------------------------------------------------------- encoding
    def encode(self, action: Action) -> np.ndarray:
        """A flat vector that :meth:`decode` turns back into ``action`` (in the current task)."""
        v = np.zeros(self.action_space.shape, np.float32)
        index = next((i for i, t in enumerate(self.action_types) if type(action) is t), None)
        if index is None:
            raise ActionError(f"`{action.name}` is not available in this env")
        v[self.slices["op"]][index] = 1.0
        if isinstance(action, Answer):
            self._encode_answer(action.text, v)
            return v
        for group in action.one_of:
            v[self.slices["switch"]] = float(next(i for i, n in enumerate(group) if getattr(action, n) is not None))
        frame_slot = 0
        last = max(self.limits.max_frames - 1, 1)
        for key, f in action.arguments().items():
            kind, value = f.metadata["arg"], getattr(action, key)
            if isinstance(kind, FrameArg):
                v[self.slices["frame"]][min(frame_slot, 1)] = value / last
                frame_slot += 1
            elif value is None:
                continue
            elif isinstance(kind, (BoxArg, PointArg)):
                v[self.slices[kind.kind]] = value
            elif isinstance(kind, FrameListArg):
                padded = list(value) + [value[-1]] * (MAX_SELECTED_FRAMES - len(value))
                v[self.slices["frames"]] = np.asarray(padded, np.float32) / last
            elif isinstance(kind, SpanArg):
                v[self.slices["span"]] = np.asarray(value, np.float32) / self.limits.max_seconds
            elif isinstance(kind, MaskIdArg):
                v[self.slices["mask_id"]] = value / max(self.limits.max_masks - 1, 1)
            elif isinstance(kind, ChoiceArg):
                v[self.slices["choice"]] = (kind.choices.index(value) + 0.5) / len(kind.choices)
        return v

    def _encode_answer(self, text: str, v: np.ndarray) -> None:
        answer_type = self.env.unwrapped.task.answer_type
        if answer_type == "number":
            number = to_float(text)
            if number is None:
                raise ActionError(f"answer {text!r} is not a number")
            v[self.slices["number"]] = math.log10(max(number, 0.0) + 1) / NUMBER_DECADES
        elif answer_type == "span":
            span = parse_span(text)
            if span is None:
                raise ActionError(f"answer {text!r} is not a span")
            v[self.slices["span"]] = np.asarray(span, np.float32) / self.limits.max_seconds
        elif text in self._candidates[: self.answer_slots]:
            v[self.slices["answer"]][self._candidates.index(text)] = 1.0
        else:
            raise ActionError(f"answer {text!r} is not among the candidates {self._candidates[: self.answer_slots]}")
