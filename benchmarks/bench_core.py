"""Env overhead over the bare OpenCV work it wraps, parse cost, and video memory.

Run: ``python -m pytest benchmarks/bench_core.py --benchmark-only``. Each test stores
its ratio in the benchmark JSON (``extra_info``); the asserted bounds are regression
guards, the measured figures are in the README.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from benchmarks.ratios import interleaved_ratio, record
from pixelis_env import PixelisEnv, Task, TaskList, Zoom, parse_action
from pixelis_env.text_actions import format_action

VIEW = 448


def _big_image_env() -> PixelisEnv:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1536, 2048, 3), dtype=np.uint8)
    task = Task(task_id="big", question="?", answer="x", answer_type="text", media=image, metric="exact")
    env = PixelisEnv(TaskList([task]), view_size=VIEW, max_steps=10**9, max_errors=10**9)
    env.reset(seed=0)
    return env


def test_zoom_step_vs_bare_crop_resize(benchmark):
    env = _big_image_env()
    frame = env.media.frame(0)
    action = Zoom(box=(0.1, 0.2, 0.6, 0.7))
    x0, y0, x1, y1 = 204, 307, 1229, 1076

    def bare():
        crop = frame[y0:y1, x0:x1]
        scale = VIEW / max(crop.shape[:2])
        out = np.zeros((VIEW, VIEW, 3), np.uint8)
        small = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
        out[: small.shape[0], : small.shape[1]] = small
        return out

    ratio = record(benchmark, "zoom_step_vs_bare", interleaved_ratio(lambda: env.step(action), bare, rounds=40))
    benchmark.pedantic(env.step, args=(action,), rounds=20, iterations=1)
    assert ratio < 1.5


def test_text_parse_cost_vs_zoom_tool(benchmark):
    env = _big_image_env()
    text = format_action(Zoom(box=(0.1, 0.2, 0.6, 0.7)))
    action = Zoom(box=(0.1, 0.2, 0.6, 0.7))
    result = interleaved_ratio(lambda: parse_action(text), lambda: env.step(action), rounds=40, inner=5)
    ratio = record(benchmark, "parse_vs_zoom_step", result)
    benchmark(parse_action, text)
    assert ratio < 0.2


MEMORY_PROBE = r"""
import json, resource, sys, tracemalloc
import cv2, numpy as np
from pixelis_env import PixelisEnv, Task, TaskList, SelectFrames
from pixelis_env.media import VideoFile
path, frames = sys.argv[1], int(sys.argv[2])
task = Task(task_id="v", question="?", answer="x", answer_type="text", media=lambda: VideoFile(path), metric="exact")
env = PixelisEnv(TaskList([task], media_kinds=frozenset({"video"}), max_frames=frames, max_seconds=frames / 10),
                 view_size=224, max_steps=10**9)
env.reset(seed=0)
tracemalloc.start()
for start in range(0, frames, 8):
    env.step(SelectFrames(frames=tuple(range(start, min(start + 8, frames)))))
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"traced_peak": peak, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _write_video(path, frames: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for t in range(frames):
        writer.write(np.roll(base, 3 * t, axis=1))
    writer.release()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    short, long = folder / "short.mp4", folder / "long.mp4"
    _write_video(short, 40)
    _write_video(long, 400)
    return short, long


def _probe(path, frames: int) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(frames)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_video_memory_does_not_grow_with_length(benchmark, videos):
    short, long = videos
    small, large = _probe(short, 40), _probe(long, 400)
    benchmark.extra_info.update({"short_traced_peak": small["traced_peak"], "long_traced_peak": large["traced_peak"],
                                 "short_maxrss_kb": small["maxrss_kb"], "long_maxrss_kb": large["maxrss_kb"]})
    rss_ratio = large["maxrss_kb"] / small["maxrss_kb"]
    traced_ratio = large["traced_peak"] / small["traced_peak"]
    benchmark.extra_info["maxrss_ratio_10x_video"] = round(rss_ratio, 4)
    benchmark.extra_info["traced_peak_ratio_10x_video"] = round(traced_ratio, 4)
    benchmark.pedantic(lambda: None, rounds=1)
    assert rss_ratio < 1.2 and traced_ratio < 1.2


def test_time_to_first_observation_independent_of_length(benchmark, videos):
    from pixelis_env.media import VideoFile

    def env_for(path, frames):
        task = Task(task_id="v", question="?", answer="x", answer_type="text", media=lambda: VideoFile(path),
                    metric="exact")
        return PixelisEnv(TaskList([task], media_kinds=frozenset({"video"}), max_frames=frames,
                                   max_seconds=frames / 10), view_size=224)

    short_env, long_env = env_for(videos[0], 40), env_for(videos[1], 400)
    result = interleaved_ratio(lambda: long_env.reset(seed=0), lambda: short_env.reset(seed=0), rounds=10)
    ratio = record(benchmark, "first_obs_10x_video", result)
    benchmark.pedantic(long_env.reset, kwargs={"seed": 0}, rounds=5)
    assert ratio < 2.0
