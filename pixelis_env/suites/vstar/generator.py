"""Procedural V*-style tasks: small named objects in large cluttered images.

Each image holds a few everyday icons (a cup, a key, a flag, ...), each a different kind,
among hundreds of clutter primitives of the same size on a textured background. At the
224 px overview an icon is under 4 px, so neither its identity nor its colour can be
read; a zoom on it (the oracle) shows it at 64 px. Questions follow V*Bench: an
attribute of one object (colour, or pattern as a stand-in for material; 4 options) or
the left/right relation of two objects (2 options). Icons sit in separate vertical
bands, so a relation is never a close call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelis_env.actions import Zoom
from pixelis_env.media import ImageMedia
from pixelis_env.suites import drawing
from pixelis_env.suites.choices import shuffled_choice
from pixelis_env.suites.procedural import PixelBox, generated_source, square_window
from pixelis_env.task import Task, TaskList
from pixelis_env.views import pixels_to_box

SUITE = "vstar"
ZOOM_FACTOR = 3.5
"""Oracle window side over the object's side: the object fills 1/3.5 of the zoomed view."""
BAND_INSET = 0.05
"""Fraction of the width kept free at each side of an icon's band (separates relations)."""
QUESTION_TYPES = ("color", "pattern", "relation")
QUESTION_WEIGHTS = (0.45, 0.2, 0.35)


@dataclass(frozen=True)
class Level:
    """How hard a difficulty level is: image size, icon size range, clutter, icon count."""

    size: tuple[int, int]
    side: tuple[int, int]
    clutter: int
    icons: int


LEVELS = {
    1: Level(size=(2048, 1536), side=(26, 34), clutter=250, icons=3),
    2: Level(size=(2560, 1920), side=(24, 34), clutter=450, icons=4),
    3: Level(size=(3072, 2304), side=(22, 34), clutter=700, icons=4),
}


@dataclass(frozen=True)
class Icon:
    """One named object in the image: kind, colour name, pattern and pixel box."""

    kind: str
    colour: str
    pattern: str
    box: PixelBox


@dataclass(frozen=True)
class Scene:
    """Everything needed to render an image again, identically."""

    width: int
    height: int
    icons: tuple[Icon, ...]
    level: Level
    texture_seed: int


def plan_scene(rng: np.random.Generator, level: Level) -> Scene:
    """Choose icons and their places (cheap: nothing is drawn here)."""
    width, height = level.size
    kinds = rng.choice(drawing.ICON_KINDS, level.icons, replace=False)
    bands = rng.permutation(level.icons)
    band_width = width / level.icons
    icons = []
    for kind, band in zip(kinds, bands):
        side = int(rng.integers(level.side[0], level.side[1] + 1))
        lo = band * band_width + BAND_INSET * width
        x = int(rng.uniform(lo, lo + band_width - 2 * BAND_INSET * width - side))
        y = int(rng.uniform(BAND_INSET * height, (1 - BAND_INSET) * height - side))
        icons.append(Icon(str(kind), str(rng.choice(list(drawing.PALETTE))), str(rng.choice(drawing.PATTERNS)),
                          (x, y, x + side, y + side)))
    return Scene(width, height, tuple(icons), level, int(rng.integers(2**63 - 1)))


def render(scene: Scene) -> np.ndarray:
    """Draw the scene: background, clutter kept off the icons, then the icons."""
    rng = np.random.default_rng(scene.texture_seed)
    image = drawing.textured_background(rng, scene.width, scene.height)
    margin = scene.level.side[0] // 3
    keep_out = [(b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin) for b in (i.box for i in scene.icons)]
    drawing.clutter(image, rng, scene.level.clutter, (scene.level.side[0] // 2, scene.level.side[1] + 10), keep_out)
    for icon in scene.icons:
        x0, y0, x1, _ = icon.box
        drawing.paste_shape(image, icon.kind, x0, y0, x1 - x0, drawing.PALETTE[icon.colour], icon.pattern)
    return image


def _zoom(scene: Scene, icon: Icon) -> Zoom:
    return Zoom(box=square_window(icon.box, scene.width, scene.height, ZOOM_FACTOR))


def _color_question(scene: Scene, rng: np.random.Generator) -> tuple[str, str, list[str], str, list[int]]:
    target = int(rng.integers(len(scene.icons)))
    icon = scene.icons[target]
    wrong = [str(c) for c in rng.choice([c for c in drawing.PALETTE if c != icon.colour], 3, replace=False)]
    options, letter = shuffled_choice(icon.colour, wrong, rng)
    return "color", f"What is the color of the {icon.kind}?", options, letter, [target]


def _pattern_question(scene: Scene, rng: np.random.Generator) -> tuple[str, str, list[str], str, list[int]]:
    target = int(rng.integers(len(scene.icons)))
    icon = scene.icons[target]
    options, letter = shuffled_choice(icon.pattern, [p for p in drawing.PATTERNS if p != icon.pattern], rng)
    return "pattern", f"What is the pattern on the {icon.kind}?", options, letter, [target]


def _relation_question(scene: Scene, rng: np.random.Generator) -> tuple[str, str, list[str], str, list[int]]:
    a, b = (int(i) for i in rng.choice(len(scene.icons), 2, replace=False))
    first, second = scene.icons[a], scene.icons[b]
    side = "left" if first.box[0] + first.box[2] < second.box[0] + second.box[2] else "right"
    options, letter = shuffled_choice(side, ["right" if side == "left" else "left"], rng)
    question = f"Is the {first.kind} on the left or right side of the {second.kind}?"
    return "relation", question, options, letter, [a, b]


_QUESTIONS = {"color": _color_question, "pattern": _pattern_question, "relation": _relation_question}


def make_task(rng: np.random.Generator, task_id: str, difficulty: int) -> Task:
    """One task: plan a scene, ask about it, zoom on each object the question names."""
    scene = plan_scene(rng, LEVELS[difficulty])
    kind = str(rng.choice(QUESTION_TYPES, p=QUESTION_WEIGHTS))
    question_type, question, options, letter, targets = _QUESTIONS[kind](scene, rng)
    objects = [{"kind": i.kind, "colour": i.colour, "pattern": i.pattern,
                "box": pixels_to_box(*i.box, scene.width, scene.height), "pixels": list(i.box)} for i in scene.icons]
    return Task(task_id=task_id, question=question, answer=letter, answer_type="choice",
                media=lambda: ImageMedia(render(scene), name=task_id), metric="letter", suite=SUITE,
                question_type=question_type, options=options,
                oracle=[_zoom(scene, scene.icons[t]) for t in targets],
                meta={"objects": objects, "targets": targets, "image_size": [scene.width, scene.height],
                      "difficulty": difficulty})


def make_generated_source(split: str, num_tasks: int, seed: int, difficulty: int) -> TaskList:
    """The embedded generator as a lazy task source."""
    return generated_source(SUITE, lambda rng, task_id: make_task(rng, task_id, difficulty), split=split,
                            num_tasks=num_tasks, seed=seed, difficulty=difficulty, levels=len(LEVELS))
