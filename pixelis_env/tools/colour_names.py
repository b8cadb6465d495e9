"""Naming colours with a small everyday palette, from hue, saturation and value.

Rules on HSV are used instead of the nearest palette RGB because they follow how people
name colours: a dark orange is *brown*, a pale red is *pink*, a dim unsaturated colour
is *gray* whatever its hue. Pixels are named one by one and the region's colour is the
most common name, so highlights and shadows on an object do not shift it.
"""

from __future__ import annotations

import cv2
import numpy as np

PALETTE = ("red", "orange", "brown", "yellow", "green", "cyan", "blue", "purple", "pink", "black", "white", "gray")

HUE_BANDS = ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (195, "cyan"), (260, "blue"),
             (320, "purple"), (345, "pink"), (360, "red"))
"""Upper hue bounds in degrees and the name of the band below each."""
BLACK_VALUE = 0.2
GRAY_SATURATION = 0.2
WHITE_VALUE = 0.8
BROWN_VALUE = 0.65
"""Orange hues darker than this are brown."""
PINK_SATURATION, PINK_VALUE = 0.5, 0.7
"""Red hues paler than this saturation and brighter than this value are pink."""


def name_pixels(rgb: np.ndarray) -> np.ndarray:
    """Palette index (into :data:`PALETTE`) of each RGB pixel of an ``(N, 3)`` uint8 array."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL)
    hsv = hsv.reshape(-1, 3).astype(np.float32)
    hue, sat, val = hsv[:, 0] * (360.0 / 256.0), hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    bounds = np.array([b for b, _ in HUE_BANDS], np.float32)
    band_names = np.array([PALETTE.index(n) for _, n in HUE_BANDS])
    names = band_names[np.minimum(np.searchsorted(bounds, hue, side="right"), len(bounds) - 1)]
    names = np.where((names == PALETTE.index("orange")) & (val < BROWN_VALUE), PALETTE.index("brown"), names)
    pale_red = (names == PALETTE.index("red")) & (sat < PINK_SATURATION) & (val > PINK_VALUE)
    names = np.where(pale_red, PALETTE.index("pink"), names)
    grey = np.where(val > WHITE_VALUE, PALETTE.index("white"), PALETTE.index("gray"))
    names = np.where(sat < GRAY_SATURATION, grey, names)
    return np.where(val < BLACK_VALUE, PALETTE.index("black"), names)


def colour_shares(rgb: np.ndarray, top: int = 3) -> dict[str, float]:
    """The ``top`` most common colour names among ``(N, 3)`` RGB pixels, with their fractions."""
    counts = np.bincount(name_pixels(rgb), minlength=len(PALETTE))
    order = np.argsort(-counts, kind="stable")[:top]
    total = max(int(counts.sum()), 1)
    return {PALETTE[i]: round(counts[i] / total, 3) for i in order if counts[i] > 0}


def colour_name(rgb: tuple[int, int, int]) -> str:
    """The palette name of one RGB colour."""
    return PALETTE[int(name_pixels(np.array([rgb], np.uint8))[0])]
