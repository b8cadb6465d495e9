"""``Pixelis-Temporal-v0``: temporal grounding, "when does X happen?", scored by span IoU.

Generated tasks (no download) are 240x180 videos at 4 fps of shapes over a textured
background (:mod:`pixelis_env.suites.motion`) in which one shape has one event, cycled
by task index:

- ``appear``: it is visible only during the span;
- ``move``: it is still, moves during the span, then is still again;
- ``colour``: it shows another colour during the span.

The answer is ``[start, end]`` in seconds (metric ``span_iou``: lmms-eval's parser and
IoU). Frame ``i`` is shown during ``[i / fps, (i + 1) / fps)``, so a state held on
frames ``a..b`` spans ``[a / fps, (b + 1) / fps]``; a move from the still frame ``a``
to the still frame ``b`` spans ``[a / fps, b / fps]``. Events never touch the first or
last frame. Higher difficulty means shorter events, more shapes, distractors with
events of their own (whose spans overlap the answer by IoU <= 0.2) and, at level 2,
distractors of the same shape. The asked-about shape has colours no other shape uses
and is drawn on top, so the span can be re-derived from pixels.

The oracle localizes the shape from its box on a frame inside the event (``appear``,
``colour``) or tracks it from frame 0 (``move``), then looks at the span's frames.

Real data: with ``data_root=``, Charades-STA (:mod:`pixelis_env.suites.charades`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pixelis_env.actions import Action, Localize, SelectFrames, Track
from pixelis_env.metrics import temporal_iou
from pixelis_env.suites import charades
from pixelis_env.suites.motion import PALETTE, SHAPES, Scene, Sprite
from pixelis_env.suites.splits import DEFAULT_NUM_TASKS, check_kinds, check_source_args, task_rng
from pixelis_env.task import Task, TaskList

MAX_STEPS = 8
SUITE = "temporal"
WIDTH, HEIGHT = 240, 180
FPS = 4.0
EVENTS = ("appear", "move", "colour")
MAX_ATTEMPTS = 1000
MAX_DISTRACTOR_IOU = 0.2
MOVE_SPEED = (2.5, 4.5)
"""Pixels per frame of a ``move`` event: always visibly moving from one frame to the next."""
ANSWER_FORMAT = " Answer with the start and end time in seconds, as start-end."


@dataclass(frozen=True)
class Level:
    """What one difficulty setting changes."""

    objects: int
    frames: int
    event: tuple[float, float]
    """Event length as a share of the video."""
    distractor_events: int
    similar: bool
    """Distractors share the asked-about shape (only colours tell them apart)."""
    speed: tuple[float, float]


LEVELS = (
    Level(objects=3, frames=32, event=(0.3, 0.5), distractor_events=0, similar=False, speed=(1.0, 2.5)),
    Level(objects=4, frames=40, event=(0.2, 0.4), distractor_events=1, similar=False, speed=(1.5, 3.5)),
    Level(objects=5, frames=48, event=(0.12, 0.25), distractor_events=2, similar=True, speed=(1.5, 3.5)),
)


def event_frames(rng: np.random.Generator, level: Level) -> tuple[int, int]:
    """First and last frame of an event, never the video's first or last frame."""
    length = max(3, int(round(rng.uniform(*level.event) * level.frames)))
    first = int(rng.integers(1, level.frames - length))
    return first, first + length - 1


def event_span(kind: str, frames: tuple[int, int]) -> list[float]:
    """The event's ``[start, end]`` in seconds (see the module docstring)."""
    first, last = frames
    end = last if kind == "move" else last + 1
    return [round(first / FPS, 2), round(end / FPS, 2)]


def free_sprite(rng: np.random.Generator, level: Level, shape: str, colour: str, moving: bool) -> Sprite:
    """A shape anywhere in the frame, drifting at a random heading (or still)."""
    radius = int(rng.integers(9, 13))
    bounds = (radius + 1, radius + 1, WIDTH - radius - 2, HEIGHT - radius - 2)
    start = (float(rng.uniform(bounds[0], bounds[2])), float(rng.uniform(bounds[1], bounds[3])))
    angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(*level.speed) if moving else 0.0
    return Sprite(shape=shape, colour=colour, radius=radius, start=start,
                  velocity=(float(speed * np.cos(angle)), float(speed * np.sin(angle))), bounds=bounds)


def with_event(rng: np.random.Generator, sprite: Sprite, kind: str, frames: tuple[int, int],
               alt_colours: Sequence[str]) -> Sprite:
    """The sprite changed so that ``kind`` happens on ``frames``."""
    if kind == "appear":
        return replace(sprite, visible=frames)
    if kind == "colour":
        return replace(sprite, alt_colour=str(rng.choice(list(alt_colours))), alt_frames=frames)
    angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(*MOVE_SPEED)
    return replace(sprite, moving=frames, velocity=(float(speed * np.cos(angle)), float(speed * np.sin(angle))))


def moves_every_frame(sprite: Sprite, frames: tuple[int, int]) -> bool:
    """Whether the centre changes on every step from ``frames[0]`` to ``frames[1]``."""
    centres = sprite.centres(np.arange(frames[0], frames[1] + 1))
    return bool(np.all(np.any(centres[1:] != centres[:-1], axis=1)))


@dataclass
class Draft:
    """A candidate task's scene and event, before it becomes a :class:`Task`."""

    scene: Scene
    kind: str
    frames: tuple[int, int]
    colours: tuple[str, str | None]
    distractor_events: list[dict[str, Any]]


def sample_draft(rng: np.random.Generator, level: Level, kind: str) -> Draft | None:
    """A scene where the last sprite has a ``kind`` event; ``None`` if a constraint fails."""
    colours = [str(c) for c in rng.permutation(list(PALETTE))]
    shapes = [str(s) for s in rng.permutation(list(SHAPES))]
    frames = event_frames(rng, level)
    target = free_sprite(rng, level, shapes[0], colours[0], moving=kind != "move" and rng.random() < 0.5)
    target = with_event(rng, target, kind, frames, [colours[1]])
    if kind == "move" and not moves_every_frame(target, frames):
        return None
    span = event_span(kind, frames)
    others, distractor_events = [], []
    for i in range(1, level.objects):
        colour = colours[1 + i]
        sprite = free_sprite(rng, level, shapes[0 if level.similar else i % len(shapes)], colour,
                             moving=rng.random() < 0.7)
        if i <= level.distractor_events:
            other_kind, other_frames = str(rng.choice(EVENTS)), event_frames(rng, level)
            if temporal_iou(event_span(other_kind, other_frames), span) > MAX_DISTRACTOR_IOU:
                return None
            sprite = with_event(rng, sprite, other_kind, other_frames, [c for c in colours[2:] if c != colour])
            distractor_events.append({"object": sprite.looks, "event": other_kind,
                                      "span": event_span(other_kind, other_frames)})
        others.append(sprite)
    scene = Scene(width=WIDTH, height=HEIGHT, num_frames=level.frames, fps=FPS, sprites=(*others, target),
                  texture_seed=int(rng.integers(2**31)))
    return Draft(scene=scene, kind=kind, frames=frames, colours=(colours[0], colours[1] if kind == "colour" else None),
                 distractor_events=distractor_events)


def question_text(draft: Draft) -> str:
    target = draft.scene.sprites[-1]
    if draft.kind == "appear":
        return f"During which seconds of the video is the {target.looks} visible?" + ANSWER_FORMAT
    if draft.kind == "move":
        return f"When does the {target.looks} move?" + ANSWER_FORMAT
    return f"The {target.looks} turns {target.alt_colour} for a while. When is it {target.alt_colour}?" + ANSWER_FORMAT


def oracle_calls(draft: Draft, span: list[float]) -> list[Action]:
    """Find the shape in time (localize, or track for motion), then look at the span."""
    scene, target = draft.scene, len(draft.scene.sprites) - 1
    if draft.kind == "move":
        first: Action = Track(box=scene.box(target, 0), start_frame=0, end_frame=scene.num_frames - 1)
    else:
        middle = (draft.frames[0] + draft.frames[1]) // 2
        first = Localize(box=scene.box(target, middle), frame=middle)
    return [first, SelectFrames(span=tuple(span))]


def make_task(index: int, split: str = "train", seed: int = 0, difficulty: int = 1,
              events: Sequence[str] = EVENTS) -> Task:
    """Generated task ``index`` (event kind cycles through ``events``)."""
    kind = events[index % len(events)]
    level = LEVELS[difficulty]
    rng = task_rng(seed, split, difficulty, index)
    for _ in range(MAX_ATTEMPTS):
        draft = sample_draft(rng, level, kind)
        if draft is not None:
            break
    else:
        raise RuntimeError(f"{SUITE}: no valid {kind} scene after {MAX_ATTEMPTS} attempts (task {index})")
    task_id = f"{SUITE}-{split}-s{seed}-d{difficulty}-{index:05d}"
    scene, target = draft.scene, len(draft.scene.sprites) - 1
    span = event_span(kind, draft.frames)
    frames = np.arange(level.frames)
    meta = {
        "difficulty": difficulty, "event": kind, "event_frames": list(draft.frames), "target": target,
        "colours": list(draft.colours), "objects": [s.looks for s in scene.sprites], "frame_size": [WIDTH, HEIGHT],
        "boxes": [list(scene.box(target, int(t))) for t in frames],
        "visible": [bool(v) for v in scene.sprites[target].shown(frames)],
        "distractor_events": draft.distractor_events,
    }
    return Task(task_id=task_id, question=question_text(draft), answer=span, answer_type="span",
                media=lambda: scene.video(task_id), metric="span_iou", suite=SUITE, question_type=kind,
                oracle=oracle_calls(draft, span), meta=meta)


def make_source(split: str = "train", num_tasks: int | None = None, seed: int = 0, difficulty: int = 1,
                data_root: str | os.PathLike | None = None, events: Sequence[str] = EVENTS,
                annotations: str | None = None, skip_missing: bool = False) -> TaskList:
    """Generated grounding tasks, or Charades-STA from ``data_root`` when given.

    ``num_tasks`` defaults to 200 generated tasks, or every query of a loaded file.
    ``events`` restricts (and orders) the generated event kinds. For loading, see
    :func:`pixelis_env.suites.charades.load_charades`.
    """
    if data_root is not None:
        return charades.load_charades(data_root, split, annotations=annotations, num_tasks=num_tasks,
                                      skip_missing=skip_missing)
    num_tasks = DEFAULT_NUM_TASKS if num_tasks is None else num_tasks
    check_source_args(split, num_tasks, seed, difficulty, len(LEVELS))
    events = check_kinds(events, EVENTS, "events")
    level = LEVELS[difficulty]
    return TaskList(make=lambda i: make_task(i, split, seed, difficulty, events), size=num_tasks,
                    name=f"{SUITE}-{split}", media_kinds=frozenset({"video"}), max_frames=level.frames,
                    max_seconds=level.frames / FPS)
