"""The native structured action space: ``OneOf`` of one ``Dict`` space per tool.

Each argument kind maps to a sub-space. Conversions canonicalise what a sampler can
produce (corners in any order, repeated frames) so that every sample is a valid
:class:`~pixelis_env.actions.Action`, and ``from_space(to_space(a)) == a``.
Optional "one of" arguments get a ``<group>_choice`` switch.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from pixelis_env.actions import (
    COORD_DECIMALS,
    MAX_SELECTED_FRAMES,
    MIN_BOX_SIDE,
    SECONDS_DECIMALS,
    Action,
    AnswerTextArg,
    Arg,
    BoxArg,
    ChoiceArg,
    FrameArg,
    FrameListArg,
    MaskIdArg,
    PointArg,
    SpanArg,
)
from pixelis_env.errors import ActionError

ANSWER_CHARSET = string.ascii_letters + string.digits + ".-"
"""Characters a sampled answer uses (the text surface accepts any)."""


@dataclass(frozen=True)
class SpaceLimits:
    """The env-specific bounds the structured space is built with."""

    max_frames: int = 1
    max_masks: int = 16
    max_seconds: float = 60.0
    answer_length: int = 16


def _sorted_pair(lo: float, hi: float, min_gap: float, top: float, decimals: int) -> tuple[float, float]:
    lo, hi = sorted((round(float(lo), decimals), round(float(hi), decimals)))
    if round(hi - lo, decimals) < min_gap:
        hi = min(lo + min_gap, top)
        lo = hi - min_gap
    return round(lo, decimals), round(hi, decimals)


def _arg_space(kind: Arg, limits: SpaceLimits) -> spaces.Space:
    if isinstance(kind, BoxArg):
        return spaces.Box(0.0, 1.0, (4,), np.float32)
    if isinstance(kind, PointArg):
        return spaces.Box(0.0, 1.0, (2,), np.float32)
    if isinstance(kind, FrameArg):
        return spaces.Discrete(limits.max_frames)
    if isinstance(kind, FrameListArg):
        return spaces.MultiDiscrete([limits.max_frames] * MAX_SELECTED_FRAMES)
    if isinstance(kind, SpanArg):
        return spaces.Box(0.0, limits.max_seconds, (2,), np.float32)
    if isinstance(kind, MaskIdArg):
        return spaces.Discrete(limits.max_masks)
    if isinstance(kind, ChoiceArg):
        return spaces.Discrete(len(kind.choices))
    if isinstance(kind, AnswerTextArg):
        return spaces.Text(limits.answer_length, charset=ANSWER_CHARSET)
    raise TypeError(f"no space for argument kind {type(kind).__name__}")


def _pick(options: Sequence[Any], value: Any, where: str) -> Any:
    """``options[value]`` for an index inside the space (a negative index is not wrapped around)."""
    index = int(value)
    if not 0 <= index < len(options):
        raise ActionError(f"{where}: index {index} is outside 0..{len(options) - 1}")
    return options[index]


def _arg_from_space(kind: Arg, value: Any, limits: SpaceLimits, where: str = "") -> Any:
    if isinstance(kind, BoxArg):
        x0, x1 = _sorted_pair(value[0], value[2], MIN_BOX_SIDE, 1.0, COORD_DECIMALS)
        y0, y1 = _sorted_pair(value[1], value[3], MIN_BOX_SIDE, 1.0, COORD_DECIMALS)
        return (x0, y0, x1, y1)
    if isinstance(kind, PointArg):
        return (round(float(value[0]), COORD_DECIMALS), round(float(value[1]), COORD_DECIMALS))
    if isinstance(kind, (FrameArg, MaskIdArg)):
        return int(value)
    if isinstance(kind, FrameListArg):
        return tuple(sorted({int(v) for v in value}))
    if isinstance(kind, SpanArg):
        return _sorted_pair(value[0], value[1], 10 ** -SECONDS_DECIMALS, limits.max_seconds, SECONDS_DECIMALS)
    if isinstance(kind, ChoiceArg):
        return _pick(kind.choices, value, where)
    if isinstance(kind, AnswerTextArg):
        return str(value) or "0"
    raise TypeError(f"no space for argument kind {type(kind).__name__}")


def _arg_to_space(kind: Arg, value: Any, space: spaces.Space) -> Any:
    if value is None:
        return _zero(space)
    if isinstance(kind, (BoxArg, PointArg, SpanArg)):
        return np.asarray(value, np.float32)
    if isinstance(kind, FrameListArg):
        padded = list(value) + [value[-1]] * (MAX_SELECTED_FRAMES - len(value))
        return np.asarray(padded, np.int64)
    if isinstance(kind, ChoiceArg):
        return np.int64(kind.choices.index(value))
    if isinstance(kind, (FrameArg, MaskIdArg)):
        if not space.contains(np.int64(value)):
            raise ActionError(f"index {value} does not fit the action space ({space})")
        return np.int64(value)
    return value


def _zero(space: spaces.Space) -> Any:
    if isinstance(space, spaces.Box):
        return np.full(space.shape, space.low.flat[0], space.dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return np.zeros(space.shape, np.int64)
    if isinstance(space, spaces.Discrete):
        return np.int64(0)
    return "0"


class ActionSpace:
    """Builds the ``OneOf`` space for a set of action types and converts both ways."""

    def __init__(self, action_types: Sequence[type[Action]], limits: SpaceLimits) -> None:
        self.action_types = tuple(action_types)
        self.limits = limits
        self.space = spaces.OneOf([self._dict_space(t) for t in self.action_types])

    def _dict_space(self, action_type: type[Action]) -> spaces.Dict:
        entries: dict[str, spaces.Space] = {}
        for group in action_type.one_of:
            entries[self._switch(group)] = spaces.Discrete(len(group))
        for key, f in action_type.arguments().items():
            entries[key] = _arg_space(f.metadata["arg"], self.limits)
        return spaces.Dict(entries)

    @staticmethod
    def _switch(group: tuple[str, ...]) -> str:
        return "_or_".join(group) + "_choice"

    def index(self, action: Action) -> int:
        for i, t in enumerate(self.action_types):
            if type(action) is t:
                return i
        raise ActionError(f"`{action.name}` is not available in this env")

    def to_space(self, action: Action) -> tuple[int, dict[str, Any]]:
        """The ``OneOf`` sample that encodes ``action``."""
        index = self.index(action)
        action_type = self.action_types[index]
        sub = self.space.spaces[index]
        values: dict[str, Any] = {}
        for group in action_type.one_of:
            given = next(i for i, n in enumerate(group) if getattr(action, n) is not None)
            values[self._switch(group)] = np.int64(given)
        for key, f in action_type.arguments().items():
            values[key] = _arg_to_space(f.metadata["arg"], getattr(action, key), sub[key])
        return index, values

    def from_space(self, sample: Any) -> Action:
        """The :class:`Action` a ``OneOf`` sample encodes; raises :class:`ActionError` if malformed."""
        try:
            action_type, values = _pick(self.action_types, sample[0], "structured action"), sample[1]
            fields = action_type.arguments()
            chosen = {_pick(group, values[self._switch(group)], f"{action_type.name}.{self._switch(group)}")
                      for group in action_type.one_of}
            grouped = {n for group in action_type.one_of for n in group}
            kwargs = {}
            for key, f in fields.items():
                if key in grouped and key not in chosen:
                    continue
                kwargs[key] = _arg_from_space(f.metadata["arg"], values[key], self.limits, f"{action_type.name}.{key}")
        except ActionError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            raise ActionError(f"malformed structured action ({type(exc).__name__}: {exc})") from None
        return action_type(**kwargs)
