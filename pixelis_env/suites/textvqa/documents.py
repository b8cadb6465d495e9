"""Document-page tasks (DocVQA-like): a title, key-value fields, prose, a table and a figure.

A page is laid out top to bottom from font metrics, so every answer's ink box is known
before drawing. Questions ask for the title, a field value (number, date, total), a
table cell, or a figure caption; answers are scored by ANLS (``anls``). The oracle
zooms on the line that holds the answer (label and value) and reads the value alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pixelis_env.actions import ReadText, Zoom
from pixelis_env.media import ImageMedia
from pixelis_env.suites.procedural import PixelBox, padded_box, union
from pixelis_env.suites.textvqa.typesetting import Text, draw_texts, text_width, wrap
from pixelis_env.suites.textvqa.vocabulary import CAPTIONS, COMPANIES, DOCUMENT_TYPES, FILLER, ITEMS, NUMBER_LABELS
from pixelis_env.task import Task
from pixelis_env.views import pixels_to_box

INK, PAPER, RULE, BARS = (20, 20, 20), (250, 250, 246), (120, 120, 120), (70, 110, 170)
ZOOM_PAD, READ_PAD = 1.0, 0.4
"""Oracle padding around the text, in font sizes."""
LINE_SPACING = 1.5
TABLE_ROWS = (3, 4)
TABLE_COLUMNS = (0, 9, 13)
"""Column offsets in font sizes: a row stays narrow enough for one zoom to show it legibly."""


@dataclass(frozen=True)
class Level:
    """Page size and the sizes of body text, fields (answers) and the title."""

    size: tuple[int, int]
    body: int
    field: int
    title: int


LEVELS = {
    1: Level(size=(1275, 1650), body=16, field=20, title=30),
    2: Level(size=(1700, 2200), body=18, field=22, title=32),
    3: Level(size=(2125, 2750), body=20, field=22, title=34),
}


@dataclass(frozen=True)
class Answerable:
    """A question, its answer text, and the context line and value it is read from."""

    question_type: str
    question: str
    value: Text
    context: PixelBox


@dataclass(frozen=True)
class Page:
    width: int
    height: int
    texts: tuple[Text, ...]
    rules: tuple[PixelBox, ...]
    figure: PixelBox
    bars: tuple[PixelBox, ...]
    answerables: tuple[Answerable, ...]


class _Layout:
    """A cursor down the page that collects texts, rules and answerable values."""

    def __init__(self, level: Level) -> None:
        self.level = level
        self.width, self.height = level.size
        self.margin = int(0.08 * self.width)
        self.y = self.margin
        self.texts: list[Text] = []
        self.rules: list[PixelBox] = []
        self.figure: PixelBox = (0, 0, 0, 0)
        self.bars: list[PixelBox] = []
        self.answerables: list[Answerable] = []

    def text(self, text: str, x: int, size: int) -> Text:
        placed = Text(text, (x, self.y), size, INK)
        self.texts.append(placed)
        return placed

    def newline(self, size: int, factor: float = LINE_SPACING) -> None:
        self.y += int(size * factor)

    def ask(self, question_type: str, question: str, value: Text, *context: Text) -> None:
        self.answerables.append(Answerable(question_type, question, value, union([t.box for t in (value, *context)])))


def _title(layout: _Layout, rng: np.random.Generator) -> None:
    title = f"{rng.choice(COMPANIES)} {rng.choice(DOCUMENT_TYPES)}"
    layout.ask("doc_title", "What is the title of the document?", layout.text(title, layout.margin, layout.level.title))
    layout.newline(layout.level.title, 2.0)


def _fields(layout: _Layout, rng: np.random.Generator) -> None:
    size = layout.level.field
    number_label, number_name = NUMBER_LABELS[int(rng.integers(len(NUMBER_LABELS)))]
    date = f"{int(rng.integers(1, 13)):02d}/{int(rng.integers(1, 29)):02d}/{int(rng.integers(1995, 2025))}"
    total = f"${int(rng.integers(100, 99999)):,}.{int(rng.integers(100)):02d}"
    rows = ((f"{number_label}:", str(int(rng.integers(10000, 999999))), "doc_number", f"What is the {number_name}?"),
            ("Date:", date, "doc_date", "What is the date on the document?"),
            ("Total:", total, "doc_total", "What is the total amount?"))
    value_x = layout.margin + max(text_width(label, size) for label, *_ in rows) + size
    for label, value, question_type, question in rows:
        label_text = layout.text(label, layout.margin, size)
        layout.ask(question_type, question, layout.text(value, value_x, size), label_text)
        layout.newline(size)
    layout.newline(size)


def _paragraphs(layout: _Layout, rng: np.random.Generator, count: int = 2) -> None:
    size = layout.level.body
    for _ in range(count):
        words = [str(w) for w in rng.choice(FILLER, int(rng.integers(40, 70)))]
        words[0] = words[0].capitalize()
        for line in wrap(words, size, layout.width - 2 * layout.margin):
            layout.text(line, layout.margin, size)
            layout.newline(size)
        layout.newline(size)


def _table(layout: _Layout, rng: np.random.Generator) -> None:
    size = layout.level.field
    columns = [layout.margin + int(c * size) for c in TABLE_COLUMNS]
    for x, head in zip(columns, ("Item", "Qty", "Price")):
        layout.text(head, x, size)
    layout.newline(size, 1.3)
    layout.rules.append((layout.margin, layout.y, columns[-1] + 6 * size, layout.y + 2))
    layout.newline(size, 0.4)
    for item in rng.choice(ITEMS, int(rng.integers(TABLE_ROWS[0], TABLE_ROWS[1] + 1)), replace=False):
        name = layout.text(str(item), columns[0], size)
        quantity = layout.text(str(int(rng.integers(2, 500))), columns[1], size)
        price = layout.text(f"${int(rng.integers(1, 999))}.{int(rng.integers(100)):02d}", columns[2], size)
        layout.ask("doc_table", f"What is the quantity of {str(item).lower()} in the table?", quantity, name)
        layout.ask("doc_table", f"What is the price of {str(item).lower()} in the table?", price, name)
        layout.newline(size)
    layout.newline(size)


def _figure(layout: _Layout, rng: np.random.Generator) -> None:
    top, bottom = layout.y, layout.y + int(0.15 * layout.height)
    left, right = layout.margin, layout.width - layout.margin
    layout.figure = (left, top, right, bottom)
    bars = int(rng.integers(4, 9))
    step = (right - left) // (bars + 1)
    for i in range(bars):
        height = int(rng.uniform(0.2, 0.9) * (bottom - top))
        x = left + (i + 1) * step - step // 4
        layout.bars.append((x, bottom - height, x + step // 2, bottom))
    layout.y = bottom + layout.level.field // 2
    size = layout.level.field
    number = int(rng.integers(1, 10))
    label = layout.text(f"Figure {number}:", left, size)
    caption = layout.text(str(rng.choice(CAPTIONS)), left + text_width(label.text, size) + size, size)
    layout.ask("doc_caption", f"What is the caption of Figure {number}?", caption, label)
    layout.newline(size)


def plan_page(rng: np.random.Generator, level: Level) -> Page:
    """Lay out one page from font metrics (nothing is drawn)."""
    layout = _Layout(level)
    for section in (_title, _fields, _paragraphs, _table, _figure):
        section(layout, rng)
    return Page(layout.width, layout.height, tuple(layout.texts), tuple(layout.rules), layout.figure,
                tuple(layout.bars), tuple(layout.answerables))


def render(page: Page) -> np.ndarray:
    """Paper, rules and figure, then the text."""
    image = np.empty((page.height, page.width, 3), np.uint8)
    image[:] = PAPER
    for x0, y0, x1, y1 in page.rules:
        cv2.rectangle(image, (x0, y0), (x1, y1), RULE, -1)
    cv2.rectangle(image, page.figure[:2], page.figure[2:], RULE, 2)
    for x0, y0, x1, y1 in page.bars:
        cv2.rectangle(image, (x0, y0), (x1, y1), BARS, -1)
    return draw_texts(image, list(page.texts))


def make_task(rng: np.random.Generator, task_id: str, difficulty: int) -> Task:
    """Ask about one value on the page (question kinds equally likely); the oracle zooms on its
    line and reads the value."""
    page = plan_page(rng, LEVELS[difficulty])
    kinds = sorted({a.question_type for a in page.answerables})
    kind = kinds[int(rng.integers(len(kinds)))]
    candidates = [a for a in page.answerables if a.question_type == kind]
    target = candidates[int(rng.integers(len(candidates)))]
    size, box = target.value.size, target.value.box
    zoom = padded_box(target.context, page.width, page.height, ZOOM_PAD * size)
    read = padded_box(box, page.width, page.height, READ_PAD * size)
    return Task(task_id=task_id, question=target.question, answer=target.value.text, answer_type="text",
                media=lambda: ImageMedia(render(page), name=task_id), metric="anls", suite="textvqa",
                question_type=target.question_type, oracle=[Zoom(box=zoom), ReadText(box=read)],
                meta={"kind": "document", "text_box": pixels_to_box(*box, page.width, page.height),
                      "font_px": size, "image_size": [page.width, page.height], "difficulty": difficulty})
