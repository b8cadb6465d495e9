"""Multiple-choice options written the way the env offers them: ``"A. red"``."""

from __future__ import annotations

import numpy as np

LETTERS = "ABCDEFGH"


def lettered(options: list[str]) -> list[str]:
    """``["A. red", "B. blue", ...]``; the env turns the letters into answer candidates."""
    return [f"{LETTERS[i]}. {text}" for i, text in enumerate(options)]


def shuffled_choice(correct: str, wrong: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
    """The options in a random order, lettered, and the letter of the correct one."""
    options = [correct, *wrong]
    shuffled = [options[i] for i in rng.permutation(len(options))]
    return lettered(shuffled), LETTERS[shuffled.index(correct)]
