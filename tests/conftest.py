"""Shared fixtures: small in-memory tasks so core tests need no suite generator."""

from __future__ import annotations

import numpy as np
import pytest

from pixelis_env import PixelisEnv, Task, TaskList, Zoom


def square_image(seed: int = 0, size: int = 96) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A grey image with one red square; returns it and the square's normalised box."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 90, np.uint8)
    side = int(rng.integers(10, 24))
    x, y = (int(v) for v in rng.integers(0, size - side, 2))
    image[y:y + side, x:x + side] = (220, 30, 30)
    return image, (x / size, y / size, (x + side) / size, (y + side) / size)


def square_tasks(n: int = 6) -> list[Task]:
    tasks = []
    for i in range(n):
        image, box = square_image(i)
        side_px = round((box[2] - box[0]) * image.shape[1])
        tasks.append(Task(task_id=f"sq-{i}", question="How many pixels wide is the red square?", answer=side_px,
                          answer_type="number", media=image, metric="mra", suite="squares",
                          question_type="size", oracle=[Zoom(box=box)]))
    return tasks


def moving_square_video(frames: int = 12, size: int = 64) -> np.ndarray:
    video = np.full((frames, size, size, 3), 40, np.uint8)
    for t in range(frames):
        video[t, 20:32, 2 + 4 * t:14 + 4 * t] = (30, 200, 30)
    return video


@pytest.fixture
def image_env() -> PixelisEnv:
    return PixelisEnv(square_tasks(), view_size=64, max_steps=6, render_mode="rgb_array")


@pytest.fixture
def video_env() -> PixelisEnv:
    video = moving_square_video()
    task = Task(task_id="vid-0", question="Which way does the square move? (A) left (B) right", answer="B",
                answer_type="choice", media=lambda: __import__("pixelis_env").media.ArrayVideo(video, fps=4.0),
                metric="option", options=["A. left", "B. right"], suite="videos")
    source = TaskList([task], name="videos", media_kinds=frozenset({"video"}), max_frames=12, max_seconds=3.0)
    return PixelisEnv(source, view_size=64, max_steps=6, render_mode="rgb_array")
