"""``localize``: span bookkeeping, temporal IoU against videos where an object appears and
disappears at known times, and env steps."""

from __future__ import annotations

import json

import numpy as np

from pixelis_env.actions import Localize
from pixelis_env.media import ArrayVideo
from pixelis_env.tools import localize
from pixelis_env.tools.base import ToolContext
from tests.tool_scenes import appearing_object_video, one_task_env, spans_iou


def test_sample_frames_covers_both_ends():
    assert localize.sample_frames(100, 5) == [0, 25, 50, 74, 99]
    assert localize.sample_frames(3, 64) == [0, 1, 2]
    assert localize.sample_frames(1, 64) == [0]


def test_refine_edges_finds_exact_edges_with_few_evaluations():
    visible = set(range(23, 58))
    asked = []
    localize.refine_edges([0, 16, 32, 48, 64, 80, 99], lambda i: asked.append(i) or i in visible)
    hits = sorted(i for i in asked if i in visible)
    assert min(hits) == 23 and max(hits) == 57
    assert len(asked) < 7 + 2 * 5


def test_merge_spans_splits_at_evaluated_misses_only():
    assert localize.merge_spans([2, 3, 8, 9], [1, 2, 3, 5, 8, 9, 10]) == [(2, 3), (8, 9)]
    assert localize.merge_spans([2, 8], [2, 8]) == [(2, 8)]
    assert localize.merge_spans([], [0, 5]) == []


def test_object_that_appears_and_disappears():
    media, exemplar, box, truth = appearing_object_video(np.random.default_rng(0), "astronaut")
    ctx = ToolContext(media=media, view_size=224, config={"localize_max_frames": 24})
    result = localize.run(Localize(box=box, frame=exemplar), ctx)
    assert spans_iou(result.data["spans"], truth) >= 0.9
    assert result.candidates == [f"{a:g}-{b:g}" for a, b in result.data["spans"]]
    assert len(result.data["frames"]) < media.num_frames / 2
    assert result.image.shape == (224, 224, 3)
    json.dumps(result.data)


def test_flat_object_on_flat_background():
    media, exemplar, box, truth = appearing_object_video(np.random.default_rng(3), "flat", textured=False)
    result = localize.run(Localize(box=box, frame=exemplar), ToolContext(media=media, view_size=128))
    assert spans_iou(result.data["spans"], truth) >= 0.9


def test_always_visible_and_single_frame_videos():
    frames = np.full((10, 60, 80, 3), 200, np.uint8)
    frames[:, 20:40, 30:50] = (0, 0, 200)
    result = localize.run(Localize(box=(0.3, 0.25, 0.7, 0.75), frame=3),
                          ToolContext(media=ArrayVideo(frames, fps=5), view_size=64))
    assert result.data["spans"] == [[0.0, 2.0]] and result.data["span_frames"] == [[0, 9]]
    one = localize.run(Localize(box=(0.3, 0.25, 0.7, 0.75)), ToolContext(media=ArrayVideo(frames[:1], fps=5),
                                                                         view_size=64))
    assert one.data["span_frames"] == [[0, 0]]


def test_one_pixel_exemplar_finds_nothing_without_crashing():
    frames = np.random.default_rng(4).integers(0, 255, (12, 60, 80, 3), np.uint8)
    result = localize.run(Localize(box=(0.5, 0.5, 0.501, 0.501)),
                          ToolContext(media=ArrayVideo(frames, fps=4), view_size=64))
    assert result.data["spans"] == [] and "not found" in result.text


def test_threshold_above_every_score_finds_nothing():
    media, exemplar, box, _ = appearing_object_video(np.random.default_rng(1), "flat")
    ctx = ToolContext(media=media, view_size=96, config={"localize_threshold": 1.01, "localize_max_frames": 8})
    result = localize.run(Localize(box=box, frame=exemplar), ctx)
    assert result.data["spans"] == [] and "not found" in result.text and result.candidates == []


def test_env_localize_then_answer_with_the_span():
    media, exemplar, box, truth = appearing_object_video(np.random.default_rng(2), "flat", n=48)
    env = one_task_env(media, tool_config={"localize_max_frames": 16})
    env.reset(seed=0)
    obs, _, _, _, info = env.step(Localize(box=box, frame=exemplar))
    assert info["error"] is None and info["tool_result"]["spans"] and "visible at" in obs["text"]
    assert info["tool_result"]["spans"] and set(info["answer_candidates"]) >= set(
        f"{a:g}-{b:g}" for a, b in info["tool_result"]["spans"])
    _, reward, _, _, info = env.step(Localize(box=box, frame=48))
    assert "outside the video" in info["error"] and reward < 0
