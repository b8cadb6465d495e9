"""Street-scene tasks: coloured signs with one word or number each, among clutter.

Each sign has its own colour, so "the red sign" names one sign. The text is a few
pixels tall in the 224 px overview and cannot be read there; the oracle zooms on the
sign and reads the text inside it. Answers are scored by VQA accuracy (``vqa``), the
TextVQA metric, with the answer repeated as ten annotator answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pixelis_env.actions import ReadText, Zoom
from pixelis_env.media import ImageMedia
from pixelis_env.suites import drawing
from pixelis_env.suites.procedural import PixelBox, padded_box
from pixelis_env.suites.textvqa.typesetting import RGB, Text, draw_texts, ink_box
from pixelis_env.suites.textvqa.vocabulary import SIGN_WORDS
from pixelis_env.task import Task
from pixelis_env.views import pixels_to_box

ANNOTATORS = 10
SIGN_PAD = 0.6
"""Sign margin around its text, in font sizes."""
ZOOM_PAD, READ_PAD = 1.0, 0.4
"""Oracle padding around the text, in font sizes: the zoom shows the whole sign, OCR reads the text."""
NUMBER_SHARE = 0.3
GRID = (3, 2)
"""Columns and rows of cells; each sign gets its own cell, so signs never overlap."""

SIGN_COLOURS: dict[str, tuple[RGB, RGB]] = {
    "red": ((200, 35, 35), (255, 255, 255)), "blue": ((35, 70, 190), (255, 255, 255)),
    "green": ((30, 130, 60), (255, 255, 255)), "black": ((25, 25, 25), (255, 255, 255)),
    "yellow": ((245, 215, 50), (20, 20, 20)), "white": ((245, 245, 240), (20, 20, 20)),
    "orange": ((240, 130, 30), (20, 20, 20)), "purple": ((120, 50, 160), (255, 255, 255)),
}
"""Sign colour name -> (board colour, text colour)."""


@dataclass(frozen=True)
class Level:
    """Image size, font size range, number of signs and of clutter primitives."""

    size: tuple[int, int]
    font: tuple[int, int]
    signs: int
    clutter: int


LEVELS = {
    1: Level(size=(1600, 1200), font=(20, 26), signs=3, clutter=60),
    2: Level(size=(2048, 1536), font=(18, 24), signs=4, clutter=120),
    3: Level(size=(2560, 1920), font=(16, 20), signs=5, clutter=200),
}


@dataclass(frozen=True)
class Sign:
    """A board of one colour with one line of text."""

    colour: str
    board: PixelBox
    text: Text
    is_number: bool


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    signs: tuple[Sign, ...]
    level: Level
    texture_seed: int


def _sign(rng: np.random.Generator, colour: str, cell: PixelBox, size: int) -> Sign:
    is_number = bool(rng.random() < NUMBER_SHARE)
    word = str(int(rng.integers(10, 10000))) if is_number else str(rng.choice(SIGN_WORDS))
    left, top, right, bottom = ink_box(word, size)
    pad = int(SIGN_PAD * size)
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    x = int(rng.integers(cell[0], max(cell[0] + 1, cell[2] - w)))
    y = int(rng.integers(cell[1], max(cell[1] + 1, cell[3] - h)))
    text = Text(word, (x + pad - left, y + pad - top), size, SIGN_COLOURS[colour][1])
    return Sign(colour, (x, y, x + w, y + h), text, is_number)


def plan_scene(rng: np.random.Generator, level: Level) -> Scene:
    """Choose signs, words and places (font metrics only; nothing is drawn)."""
    width, height = level.size
    cols, rows = GRID
    cells = rng.choice(cols * rows, level.signs, replace=False)
    colours = rng.choice(list(SIGN_COLOURS), level.signs, replace=False)
    cw, ch = width // cols, height // rows
    margin = level.font[1]
    signs = []
    for cell, colour in zip(cells, colours):
        cx, cy = int(cell) % cols * cw, int(cell) // cols * ch
        size = int(rng.integers(level.font[0], level.font[1] + 1))
        signs.append(_sign(rng, str(colour), (cx + margin, cy + margin, cx + cw - margin, cy + ch - margin), size))
    return Scene(width, height, tuple(signs), level, int(rng.integers(2**63 - 1)))


def render(scene: Scene) -> np.ndarray:
    """Background, clutter kept off the signs, boards with a post and a border, then the text."""
    rng = np.random.default_rng(scene.texture_seed)
    image = drawing.textured_background(rng, scene.width, scene.height)
    drawing.clutter(image, rng, scene.level.clutter, (12, 60), [s.board for s in scene.signs])
    for x0, y0, x1, y1 in (s.board for s in scene.signs):
        cv2.line(image, ((x0 + x1) // 2, y1), ((x0 + x1) // 2, min(scene.height - 1, 2 * y1 - y0)), (90, 90, 90), 4)
    for sign in scene.signs:
        x0, y0, x1, y1 = sign.board
        board, _ = SIGN_COLOURS[sign.colour]
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), board, -1)
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), tuple(int(c * 0.6) for c in board), 2)
    return draw_texts(image, [s.text for s in scene.signs])


def make_task(rng: np.random.Generator, task_id: str, difficulty: int) -> Task:
    """Ask for the text on one sign; the oracle zooms on it and reads it."""
    scene = plan_scene(rng, LEVELS[difficulty])
    sign = scene.signs[int(rng.integers(len(scene.signs)))]
    what = "What number is on" if sign.is_number else "What is written on"
    size, box = sign.text.size, sign.text.box
    zoom = padded_box(box, scene.width, scene.height, ZOOM_PAD * size)
    read = padded_box(box, scene.width, scene.height, READ_PAD * size)
    return Task(task_id=task_id, question=f"{what} the {sign.colour} sign?", answer=[sign.text.text] * ANNOTATORS,
                answer_type="text", media=lambda: ImageMedia(render(scene), name=task_id), metric="vqa",
                suite="textvqa", question_type="scene_number" if sign.is_number else "scene_word",
                oracle=[Zoom(box=zoom), ReadText(box=read)],
                meta={"kind": "scene", "text_box": pixels_to_box(*box, scene.width, scene.height),
                      "font_px": size, "image_size": [scene.width, scene.height], "difficulty": difficulty,
                      "signs": [{"colour": s.colour, "text": s.text.text} for s in scene.signs]})
