"""An RGB picture of an episode so far: question band, then the latest views with captions."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import cv2
import numpy as np

from pixelis_env.task import Task
from pixelis_env.trajectory import StepRecord

MAX_PANELS = 6
COLUMNS = 3
CAPTION_HEIGHT = 28
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _caption(panel: np.ndarray, text: str) -> np.ndarray:
    band = np.full((CAPTION_HEIGHT, panel.shape[1], 3), 32, np.uint8)
    for row, line in enumerate(textwrap.wrap(text, width=max(8, panel.shape[1] // 6))[:2]):
        cv2.putText(band, line, (3, 11 + 12 * row), FONT, 0.33, (230, 230, 230), 1, cv2.LINE_AA)
    return np.vstack([panel, band])


def render_episode(task: Task, views: Sequence[tuple[str, np.ndarray]], records: Sequence[StepRecord]) -> np.ndarray:
    """Compose the last :data:`MAX_PANELS` views and a header with the question and last result."""
    shown = list(views)[-MAX_PANELS:]
    size = shown[0][1].shape[0]
    panels = [_caption(view, label) for label, view in shown]
    while len(panels) % COLUMNS:
        panels.append(np.zeros_like(panels[0]))
    rows = [np.hstack(panels[i:i + COLUMNS]) for i in range(0, len(panels), COLUMNS)]
    body = np.vstack(rows)
    header_lines = textwrap.wrap(task.question, width=COLUMNS * size // 7)[:3]
    if records:
        last = records[-1]
        header_lines.append(f"step {last.step}: reward {last.reward:+.2f}  " + last.observation[:80])
    header = np.full((14 * len(header_lines) + 8, body.shape[1], 3), 16, np.uint8)
    for i, line in enumerate(header_lines):
        cv2.putText(header, line, (4, 14 + 14 * i), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.vstack([header, body]))
