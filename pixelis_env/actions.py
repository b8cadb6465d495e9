"""The typed pixel-tool grammar: one frozen dataclass per operation.

Every argument is described by an :class:`Arg` kind that knows how to validate and
canonicalise a value, how to show itself to a language model, and (in
:mod:`pixelis_env.action_space`) how to live in a Gymnasium space. Validation here is
*static* (shapes, ranges in normalised coordinates); checks that need the media, such
as a frame index inside the video, happen in the env step.

Coordinates are normalised to ``[0, 1]`` and rounded to :data:`COORD_DECIMALS`
decimals, so an action survives float32 spaces and JSON text unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pixelis_env.errors import ActionError, did_you_mean

COORD_DECIMALS = 4
SECONDS_DECIMALS = 2
MIN_BOX_SIDE = 1e-3
MAX_SELECTED_FRAMES = 8
MAX_ANSWER_CHARS = 256
TRACKERS = ("csrt", "kcf")

BoxT = tuple[float, float, float, float]
PointT = tuple[float, float]
SpanT = tuple[float, float]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ActionError(f"{where}: expected a number, got {type(value).__name__} {value!r:.40}")
    if isinstance(value, numbers.Integral) and abs(int(value)) > 2**53:
        raise ActionError(f"{where}: {value:.3g} is out of range")
    if not math.isfinite(value):
        raise ActionError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ActionError(f"{where}: expected an integer, got {value!r:.40}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ActionError(f"{where}: expected an integer, got {type(value).__name__} {value!r:.40}")
    return int(value)


def _sequence(value: Any, where: str, length: int | None = None) -> list[Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        raise ActionError(f"{where}: expected a list, got {type(value).__name__} {value!r:.40}")
    items = list(value)
    if length is not None and len(items) != length:
        raise ActionError(f"{where}: expected {length} numbers, got {len(items)}")
    return items


def _unit(value: Any, where: str) -> float:
    number = round(_number(value, where), COORD_DECIMALS)
    if not 0.0 <= number <= 1.0:
        raise ActionError(f"{where}: {number} is outside [0, 1] (coordinates are fractions of the frame)")
    return number


class Arg:
    """How one argument kind is validated, canonicalised and described."""

    kind: ClassVar[str]
    example: ClassVar[Any]

    def canonical(self, value: Any, where: str) -> Any:
        """Return the canonical value or raise :class:`ActionError` naming ``where``."""
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        """The JSON form used by the text surface."""
        return list(value) if isinstance(value, tuple) else value


class BoxArg(Arg):
    """``[x0, y0, x1, y1]`` in normalised frame coordinates, ``x0 < x1``, ``y0 < y1``."""

    kind = "box"
    example = [0.25, 0.25, 0.75, 0.75]

    def canonical(self, value: Any, where: str) -> BoxT:
        items = _sequence(value, where, 4)
        x0, y0, x1, y1 = (_unit(v, f"{where}[{i}]") for i, v in enumerate(items))
        if round(x1 - x0, COORD_DECIMALS) < MIN_BOX_SIDE:
            raise ActionError(f"{where}: x0 ({x0}) must be smaller than x1 ({x1}) by at least {MIN_BOX_SIDE}")
        if round(y1 - y0, COORD_DECIMALS) < MIN_BOX_SIDE:
            raise ActionError(f"{where}: y0 ({y0}) must be smaller than y1 ({y1}) by at least {MIN_BOX_SIDE}")
        return (x0, y0, x1, y1)


class PointArg(Arg):
    """``[x, y]`` in normalised frame coordinates."""

    kind = "point"
    example = [0.5, 0.5]

    def canonical(self, value: Any, where: str) -> PointT:
        x, y = (_unit(v, f"{where}[{i}]") for i, v in enumerate(_sequence(value, where, 2)))
        return (x, y)


class FrameArg(Arg):
    """A frame index (0 for still images); checked against the video in the env."""

    kind = "frame"
    example = 0

    def canonical(self, value: Any, where: str) -> int:
        index = _integer(value, where)
        if index < 0:
            raise ActionError(f"{where}: frame index {index} is negative")
        return index


class FrameListArg(Arg):
    """Up to :data:`MAX_SELECTED_FRAMES` distinct frame indices, kept sorted."""

    kind = "frames"
    example = [0, 8, 16]

    def canonical(self, value: Any, where: str) -> tuple[int, ...]:
        items = _sequence(value, where)
        frames = sorted({FrameArg().canonical(v, f"{where}[{i}]") for i, v in enumerate(items)})
        if not frames:
            raise ActionError(f"{where}: select at least one frame")
        if len(frames) > MAX_SELECTED_FRAMES:
            raise ActionError(f"{where}: at most {MAX_SELECTED_FRAMES} frames per selection, got {len(frames)}")
        return tuple(frames)


class SpanArg(Arg):
    """``[start, end]`` in seconds with ``0 <= start < end``."""

    kind = "span"
    example = [1.0, 3.5]

    def canonical(self, value: Any, where: str) -> SpanT:
        items = _sequence(value, where, 2)
        start, end = (round(_number(v, f"{where}[{i}]"), SECONDS_DECIMALS) for i, v in enumerate(items))
        if start < 0:
            raise ActionError(f"{where}: start {start} s is negative")
        if end <= start:
            raise ActionError(f"{where}: end ({end} s) must be after start ({start} s)")
        return (start, end)


class MaskIdArg(Arg):
    """The id of a mask returned by an earlier ``segment`` step."""

    kind = "mask_id"
    example = 0

    def canonical(self, value: Any, where: str) -> int:
        mask_id = _integer(value, where)
        if mask_id < 0:
            raise ActionError(f"{where}: mask id {mask_id} is negative")
        return mask_id


class ChoiceArg(Arg):
    """One of a fixed set of names."""

    kind = "choice"

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices
        self.example = choices[0]

    def canonical(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise ActionError(f"{where}: expected one of {list(self.choices)}, got {value!r:.40}")
        name = value.strip().lower()
        if name not in self.choices:
            raise ActionError(f"{where}: unknown value {value!r:.40}; expected one of {list(self.choices)}."
                              + did_you_mean(name, self.choices))
        return name


class AnswerTextArg(Arg):
    """The final answer: an option letter, a number, a word or phrase, or a span."""

    kind = "text"
    example = "B"

    def canonical(self, value: Any, where: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = format(_number(value, where), "g")
        elif isinstance(value, (list, tuple)):
            start, end = SpanArg().canonical(value, where)
            value = f"{start:g}-{end:g}"
        if not isinstance(value, str):
            raise ActionError(f"{where}: expected text, got {type(value).__name__}")
        text = " ".join(value.split())
        if not text:
            raise ActionError(f"{where}: the answer is empty")
        if len(text) > MAX_ANSWER_CHARS:
            raise ActionError(f"{where}: answer longer than {MAX_ANSWER_CHARS} characters")
        return text


def arg(kind: Arg, doc: str, default: Any = dataclasses.MISSING) -> Any:
    """Declare an action field of the given kind (with a docstring for prompts)."""
    return field(default=default, metadata={"arg": kind, "doc": doc})


@dataclass(frozen=True)
class Action:
    """Base of all typed actions. Subclasses set ``name`` and declare fields with :func:`arg`.

    Construction validates and canonicalises every field, so an ``Action`` that exists
    is well-formed. ``one_of`` names groups of fields of which exactly one is given.
    """

    name: ClassVar[str] = ""
    one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, where = getattr(self, f.name), f"{self.name}.{f.name}"
            if value is not None:
                object.__setattr__(self, f.name, f.metadata["arg"].canonical(value, where))
            elif f.default is dataclasses.MISSING:
                raise ActionError(f"{where}: required, got null")
            elif f.default is not None:
                raise ActionError(f"{where}: got null; leave the argument out to use its default ({f.default!r})")
        for group in self.one_of:
            given = [n for n in group if getattr(self, n) is not None]
            if len(given) != 1:
                names = " or ".join(f"`{n}`" for n in group)
                raise ActionError(f"{self.name}: give exactly one of {names}, got {len(given)}")

    @classmethod
    def arguments(cls) -> dict[str, dataclasses.Field]:
        """The argument fields by name, in declaration order."""
        return {f.name: f for f in dataclasses.fields(cls)}

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> Action:
        """Build from a JSON-like mapping; unknown or missing names raise :class:`ActionError`."""
        known = cls.arguments()
        for key in arguments:
            if key not in known:
                raise ActionError(f"{cls.name}: unknown argument `{key}`." + did_you_mean(key, known)
                                  + f" Arguments: {list(known)}")
        for key, f in known.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and key not in arguments:
                raise ActionError(f"{cls.name}: missing required argument `{key}`")
        return cls(**dict(arguments))

    def to_arguments(self) -> dict[str, Any]:
        """The JSON arguments of this action, leaving out unset optional ones."""
        out = {}
        for key, f in self.arguments().items():
            value = getattr(self, key)
            if value is not None:
                out[key] = f.metadata["arg"].to_json(value)
        return out

    @classmethod
    def describe(cls) -> str:
        """One line per argument, generated from the field declarations (for prompts)."""
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines = [f"- {cls.name}: {doc}"]
        for key, f in cls.arguments().items():
            optional = f.default is not dataclasses.MISSING
            kind = f.metadata["arg"]
            lines.append(f"    {key} ({kind.kind}{', optional' if optional else ''}): {f.metadata['doc']}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Zoom(Action):
    """Crop a region of a frame and see it at full view resolution."""

    name: ClassVar[str] = "zoom"
    box: BoxT = arg(BoxArg(), "region to crop, [x0, y0, x1, y1] in [0, 1]")
    frame: int = arg(FrameArg(), "frame index (0 for images)", 0)


@dataclass(frozen=True)
class SelectFrames(Action):
    """Look at up to 8 frames of the video (by index or by a time span) as a grid."""

    name: ClassVar[str] = "select_frames"
    one_of: ClassVar[tuple[tuple[str, ...], ...]] = (("frames", "span"),)
    frames: tuple[int, ...] | None = arg(FrameListArg(), "frame indices, at most 8", None)
    span: SpanT | None = arg(SpanArg(), "[start, end] in seconds; 8 frames are sampled from it", None)


@dataclass(frozen=True)
class Segment(Action):
    """Segment the object under a point or inside a box; returns a mask id."""

    name: ClassVar[str] = "segment"
    one_of: ClassVar[tuple[tuple[str, ...], ...]] = (("point", "box"),)
    point: PointT | None = arg(PointArg(), "a point on the object, [x, y] in [0, 1]", None)
    box: BoxT | None = arg(BoxArg(), "a box around the object", None)
    frame: int = arg(FrameArg(), "frame index (0 for images)", 0)


@dataclass(frozen=True)
class Properties(Action):
    """Measure a mask (by id) or a box: area, centroid, colour, metric size."""

    name: ClassVar[str] = "properties"
    one_of: ClassVar[tuple[tuple[str, ...], ...]] = (("mask_id", "box"),)
    mask_id: int | None = arg(MaskIdArg(), "id returned by segment", None)
    box: BoxT | None = arg(BoxArg(), "a box to measure instead of a mask", None)
    frame: int = arg(FrameArg(), "frame index, used with box (0 for images)", 0)


@dataclass(frozen=True)
class ReadText(Action):
    """Read the text in a region (OCR); returns lines with boxes and confidences."""

    name: ClassVar[str] = "read_text"
    box: BoxT = arg(BoxArg(), "region to read, the whole frame by default", (0.0, 0.0, 1.0, 1.0))
    frame: int = arg(FrameArg(), "frame index (0 for images)", 0)


@dataclass(frozen=True)
class Track(Action):
    """Follow the object in a box from one frame to another; returns per-frame boxes."""

    name: ClassVar[str] = "track"
    box: BoxT = arg(BoxArg(), "the object's box on start_frame")
    start_frame: int = arg(FrameArg(), "frame where the box is drawn")
    end_frame: int = arg(FrameArg(), "frame to track to (may be before start_frame)")
    tracker: str = arg(ChoiceArg(TRACKERS), "csrt (accurate) or kcf (fast)", "csrt")


@dataclass(frozen=True)
class Localize(Action):
    """Find the time spans in which the object in a box is visible."""

    name: ClassVar[str] = "localize"
    box: BoxT = arg(BoxArg(), "exemplar box around the object")
    frame: int = arg(FrameArg(), "frame the exemplar box is drawn on", 0)


@dataclass(frozen=True)
class Answer(Action):
    """Give the final answer and end the episode."""

    name: ClassVar[str] = "answer"
    text: str = arg(AnswerTextArg(), "option letter, number, word or phrase, or [start, end] seconds")


@dataclass(frozen=True)
class InvalidAction:
    """What an action adapter passes to ``env.step`` when it could not build an action.

    The env answers it like any malformed action (error observation and penalty), so
    the failure flows through the same records, wrappers and counters.
    """

    message: str


BUILTIN_ACTIONS: tuple[type[Action], ...] = (Zoom, SelectFrames, Segment, Properties, ReadText, Track,
                                             Localize, Answer)
