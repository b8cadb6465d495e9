"""Placing and drawing text with Pillow's built-in font, so layouts know their ink boxes.

``ImageFont.load_default(size=...)`` (Pillow >= 10.1) is a scalable font shipped inside
Pillow: no system font is needed and the same Pillow renders the same pixels. Boxes are
measured from the font before anything is drawn, so a task's question, answer and oracle
boxes exist without rendering its image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pixelis_env.suites.procedural import PixelBox

RGB = tuple[int, int, int]


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` pixels."""
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class Text:
    """A string drawn at ``origin`` (Pillow's anchor, top-left) in one size and colour."""

    text: str
    origin: tuple[int, int]
    size: int
    colour: RGB

    @property
    def box(self) -> PixelBox:
        """The ink box in image pixels."""
        left, top, right, bottom = ink_box(self.text, self.size)
        x, y = self.origin
        return (x + left, y + top, x + right, y + bottom)


@lru_cache(maxsize=4096)
def ink_box(text: str, size: int) -> PixelBox:
    """The ink box of ``text`` drawn at the origin (cached: layouts measure the same words often)."""
    left, top, right, bottom = font(size).getbbox(text)
    return (int(left), int(top), int(right), int(bottom))


@lru_cache(maxsize=4096)
def text_width(text: str, size: int) -> int:
    """Advance width in pixels (for wrapping and centring)."""
    return int(round(font(size).getlength(text)))


def draw_texts(image: np.ndarray, texts: list[Text]) -> np.ndarray:
    """Draw ``texts`` onto a copy of ``image`` (RGB uint8)."""
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    for t in texts:
        pen.text(t.origin, t.text, font=font(t.size), fill=t.colour)
    return np.asarray(canvas)


def wrap(words: list[str], size: int, width: int) -> list[str]:
    """Greedy line breaking of ``words`` to lines about ``width`` pixels wide.

    Word widths are added up (kerning across word boundaries is ignored), which keeps
    planning a page cheap; filler lines need no exact width.
    """
    lines: list[list[str]] = []
    used = 0
    for word in words:
        advance = text_width(f" {word}", size)
        if lines and used + advance <= width:
            lines[-1].append(word)
            used += advance
        else:
            lines.append([word])
            used = text_width(word, size)
    return [" ".join(line) for line in lines]
