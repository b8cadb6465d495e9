"""Accuracy of the classical backends on scenes with exact ground truth.

Each test measures one figure (recorded with ``record_property``, visible in JUnit XML)
and asserts a floor that a broken or degraded backend would miss. Measured on the
reference machine: see the README's table of tool accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from pixelis_env.actions import Localize, ReadText, Segment, Track
from pixelis_env.media import ImageMedia
from pixelis_env.metrics import box_iou
from pixelis_env.tools import localize, read_text, segment, track
from pixelis_env.tools.base import ToolContext
from pixelis_env.tools.mask_store import MASKS_KEY
from tests.tool_scenes import (
    BACKGROUNDS,
    appearing_object_video,
    char_accuracy,
    coins_with_truth,
    interior_point,
    mask_iou,
    moving_square_video,
    panned_astronaut,
    shapes_scene,
    spans_iou,
)


def _segment_iou(image: np.ndarray, truth: np.ndarray, **prompt) -> float:
    ctx = ToolContext(media=ImageMedia(image), view_size=64)
    segment.run(Segment(**prompt), ctx)
    masks = ctx.state.get(MASKS_KEY)
    return mask_iou(masks[0]["mask"], truth) if masks else 0.0


def _prompts(mask: np.ndarray) -> tuple[tuple[float, float], tuple[float, ...]]:
    """A point inside the object and its box with a 4 px margin, normalised."""
    h, w = mask.shape
    x, y = interior_point(mask)
    ys, xs = np.nonzero(mask)
    box = (max(xs.min() - 4, 0) / w, max(ys.min() - 4, 0) / h, min(xs.max() + 5, w) / w, min(ys.max() + 5, h) / h)
    return (round((x + 0.5) / w, 4), round((y + 0.5) / h, 4)), tuple(round(v, 4) for v in box)


@pytest.mark.parametrize("kind", BACKGROUNDS)
def test_classical_segment_on_flat_shapes(kind, record_property):
    rng = np.random.default_rng(7)
    point_ious, box_ious = [], []
    for _ in range(6):
        image, masks = shapes_scene(rng, kind)
        point, box = _prompts(masks[-1])
        point_ious.append(_segment_iou(image, masks[-1], point=point))
        box_ious.append(_segment_iou(image, masks[-1], box=box))
    record_property("point_mean_iou", round(float(np.mean(point_ious)), 3))
    record_property("box_mean_iou", round(float(np.mean(box_ious)), 3))
    assert np.mean(point_ious) >= 0.85 and np.mean(box_ious) >= 0.9, (point_ious, box_ious)


def test_classical_segment_on_real_coins(record_property):
    image, coins = coins_with_truth()
    picked = coins[::3]
    point_ious, box_ious = [], []
    for mask in picked:
        point, box = _prompts(mask)
        point_ious.append(_segment_iou(image, mask, point=point))
        box_ious.append(_segment_iou(image, mask, box=box))
    record_property("point_mean_iou", round(float(np.mean(point_ious)), 3))
    record_property("box_mean_iou", round(float(np.mean(box_ious)), 3))
    assert np.mean(point_ious) >= 0.9 and np.mean(box_ious) >= 0.9, (point_ious, box_ious)


def test_ocr_char_accuracy_on_a_scanned_page(record_property):
    from tests.test_tools_read_text import PAGE_TEXT

    result = read_text.run(ReadText(), ToolContext(media=ImageMedia(data.page()), view_size=64))
    accuracy = char_accuracy("\n".join(line["text"] for line in result.data["lines"]), PAGE_TEXT)
    record_property("char_accuracy", round(accuracy, 3))
    assert accuracy >= 0.85


@pytest.mark.parametrize("tracker", ["csrt", "kcf"])
def test_tracker_mean_iou(tracker, record_property):
    rng = np.random.default_rng(11)
    videos = [moving_square_video(rng, kind, n=24) for kind in ("flat", "astronaut")] + [panned_astronaut(24)]
    ious = []
    for media, truth in videos:
        box = tuple(min(max(round(v, 4), 0.0), 1.0) for v in truth[0])
        result = track.run(Track(box=box, start_frame=0, end_frame=media.num_frames - 1, tracker=tracker),
                           ToolContext(media=media, view_size=64))
        ious += [box_iou(b, truth[i]) if b is not None else 0.0 for i, b in enumerate(result.data["boxes"])]
    record_property("mean_iou", round(float(np.mean(ious)), 3))
    assert np.mean(ious) >= {"csrt": 0.75, "kcf": 0.55}[tracker]


def test_localize_temporal_iou(record_property):
    rng = np.random.default_rng(5)
    ious = []
    for kind, textured in (("flat", True), ("astronaut", True), ("flat", False), ("astronaut", False)):
        media, exemplar, box, truth = appearing_object_video(rng, kind, textured)
        result = localize.run(Localize(box=box, frame=exemplar),
                              ToolContext(media=media, view_size=64, config={"localize_max_frames": 24}))
        ious.append(spans_iou(result.data["spans"], truth))
    record_property("mean_temporal_iou", round(float(np.mean(ious)), 3))
    assert np.mean(ious) >= 0.85, ious
