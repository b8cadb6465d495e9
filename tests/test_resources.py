"""Long runs leave file handles and memory flat.

Episodes over the video suites and over real video files (opened at reset, closed at
the next reset and at ``close``): open file descriptors (``/proc/self/fd``), Python heap
(``tracemalloc``) and resident memory are measured after 100, 550 and 1,000 episodes.
Bounded caches (generated tasks, rendered frames) may still fill during the first half;
a leak shows as growth in the second half, which must stay under half a kilobyte per episode.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest

from agents import make_vector_env
from pixelis_env import PixelisEnv, SelectFrames, Task, TaskList, Zoom
from pixelis_env.media import VideoFile
from tests.test_fuzz_env import SUITE_ARGS

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts file descriptors in /proc")

VIDEO_SUITES = ("Pixelis-VSI-v0", "Pixelis-Track-v0", "Pixelis-Temporal-v0")
WARM_UP, EPISODES = 100, 1_000
MAX_FD_GROWTH = 0
MAX_HEAP_GROWTH_MB = 8.0
"""From 100 to 1,000 episodes: bounded caches filling (measured: about 4 MB over three video suites)."""
MAX_LATE_HEAP_GROWTH_MB = 0.25
"""From 550 to 1,000 episodes (measured: under 0.01 MB)."""
MAX_RSS_GROWTH_MB = 40.0
SCRIPT = (SelectFrames(frames=(0, 2)), Zoom(box=(0.25, 0.25, 0.75, 0.75), frame=1), "<answer>A</answer>")
"""A cheap episode: two tool calls and an answer (every suite accepts a letter as an answer)."""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def play(envs: Sequence[gym.Env], episodes: range) -> int:
    """Episode ``i`` on ``envs[i % len(envs)]`` with seed ``i``, following :data:`SCRIPT`; the steps taken."""
    steps = 0
    for i in episodes:
        env = envs[i % len(envs)]
        env.reset(seed=i)
        for action in SCRIPT:
            *_, terminated, truncated, info = env.step(action)
            steps += 1
            assert info["error"] is None, info["error"]
            if terminated or truncated:
                break
    return steps


def snapshot() -> tuple[int, float, float]:
    gc.collect()
    return open_fds(), tracemalloc.get_traced_memory()[0] / 2**20, rss_mb()


def measure(envs: Sequence[gym.Env], warm_up: int = WARM_UP, episodes: int = EPISODES) -> dict[str, float]:
    """fd, heap (MB) and RSS (MB) growth from ``warm_up`` episodes to ``episodes``, and over its second half."""
    middle = (warm_up + episodes) // 2
    tracemalloc.start()
    try:
        play(envs, range(warm_up))
        start = snapshot()
        started = time.perf_counter()
        steps = play(envs, range(warm_up, middle))
        half = snapshot()
        steps += play(envs, range(middle, episodes))
        seconds = time.perf_counter() - started
        end = snapshot()
    finally:
        tracemalloc.stop()
    return {"fd_growth": end[0] - start[0], "heap_growth_mb": round(end[1] - start[1], 3),
            "late_heap_growth_mb": round(end[1] - half[1], 3), "rss_growth_mb": round(end[2] - start[2], 1),
            "fds": end[0], "steps": steps, "seconds": round(seconds, 1)}


def assert_flat(figures: dict[str, float]) -> None:
    assert figures["fd_growth"] <= MAX_FD_GROWTH, figures
    assert figures["heap_growth_mb"] <= MAX_HEAP_GROWTH_MB, figures
    assert figures["late_heap_growth_mb"] <= MAX_LATE_HEAP_GROWTH_MB, figures
    assert figures["rss_growth_mb"] <= MAX_RSS_GROWTH_MB, figures


def warm_caches(envs: Sequence[gym.Env]) -> None:
    """Play every task once, so the bounded caches (generated tasks, rendered frames) are full
    before the baseline: what grows after it is a leak."""
    for env in envs:
        for index in range(len(env.unwrapped.tasks)):
            env.reset(options={"task_index": index})
            for action in SCRIPT:
                if any(env.step(action)[2:4]):
                    break


# -------------------------------------------------------------------- tests
@pytest.mark.slow
def test_a_thousand_episodes_over_the_video_suites_leave_fds_and_memory_flat():
    envs = [gym.make(env_id, **SUITE_ARGS[env_id]) for env_id in VIDEO_SUITES]
    warm_caches(envs)
    figures = measure(envs)
    print(f"video suites: {figures}")
    assert figures["steps"] >= 3 * (EPISODES - WARM_UP) * 0.9
    assert_flat(figures)
    for env in envs:
        env.close()


def write_video(path: Path, frames: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (96, 64))
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (64, 96, 3), np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("videos")
    return [write_video(folder / f"clip{i}.mp4", frames=6 + i, seed=i) for i in range(4)]


def jsonl_env(video_files: list[Path]) -> gym.Env:
    rows = [{"id": p.stem, "media": p.name, "question": "Which clip is it?", "answer": "A",
             "options": ["A. this one", "B. another"]} for p in video_files]
    path = video_files[0].parent / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return gym.make("Pixelis-Image-v0", tasks=str(path), max_frames=16, max_seconds=4.0)


def shared_media_env(video_files: list[Path]) -> PixelisEnv:
    """Tasks holding one open :class:`VideoFile` each, reused by every episode (closed at reset, reopened)."""
    tasks = [Task(task_id=p.stem, question="Which clip?", answer="A", answer_type="choice", media=VideoFile(p),
                  metric="option", options=["A. this", "B. that"]) for p in video_files]
    return PixelisEnv(TaskList(tasks, media_kinds=frozenset({"video"}), max_frames=16, max_seconds=4.0))


def test_real_video_files_are_closed_at_reset_and_at_close(video_files):
    baseline = open_fds()
    for make in (jsonl_env, shared_media_env):
        env = make(video_files)
        assert open_fds() == baseline  # a VideoFile holds no handle until a frame is read
        for seed in range(20):
            env.reset(seed=seed)
            env.step(SelectFrames(frames=(0, 3)))
            assert open_fds() <= baseline + 1  # this episode's video only (none when its frames are cached)
        env.close()
        assert open_fds() == baseline


@pytest.mark.slow
def test_a_thousand_episodes_over_real_video_files_leave_fds_and_memory_flat(video_files):
    envs = [jsonl_env(video_files), shared_media_env(video_files)]
    baseline = open_fds()
    figures = measure(envs)
    print(f"video files: {figures}")
    assert_flat(figures)
    for env in envs:
        env.close()
    assert open_fds() <= baseline


def cycle_async(video_files: list[Path]) -> None:
    envs = make_vector_env([lambda: jsonl_env(video_files)] * 2, asynchronous=True)
    envs.reset(seed=[1, 2])
    envs.step(("<answer>A</answer>", SelectFrames(frames=(0, 1))))
    envs.close()
    del envs
    gc.collect()


def test_async_vector_envs_release_processes_and_pipes(video_files):
    cycle_async(video_files)  # the first one may start multiprocessing's resource tracker (one pipe, kept)
    baseline = open_fds()
    for _ in range(3):
        cycle_async(video_files)
    assert not multiprocessing.active_children()
    assert open_fds() == baseline


def test_a_short_run_over_video_files_leaves_fds_and_heap_flat(video_files):
    """The default-suite version of the slow tests: 300 episodes over real files, opened and closed 300 times."""
    envs = [jsonl_env(video_files), shared_media_env(video_files)]
    figures = measure(envs, warm_up=50, episodes=300)
    assert_flat(figures)
    for env in envs:
        env.close()
