"""``properties``: area, centroid, colour names and metric size of masks and boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixelis_env.actions import Properties, Segment
from pixelis_env.errors import ActionError, ToolError
from pixelis_env.media import ArrayVideo, ImageMedia
from pixelis_env.task import Task
from pixelis_env.tools import properties, segment
from pixelis_env.tools.base import ToolContext
from pixelis_env.tools.colour_names import PALETTE, colour_name, colour_shares
from tests.tool_scenes import one_task_env


def _scene() -> np.ndarray:
    """A 100x200 gray image with a red 40x20 rectangle at x 20..60, y 30..50."""
    image = np.full((100, 200, 3), 128, np.uint8)
    image[30:50, 20:60] = (220, 20, 20)
    return image


def _ctx(image: np.ndarray, meta: dict | None = None) -> ToolContext:
    task = Task("t", "q", "a", "text", image, "exact", meta=meta or {})
    return ToolContext(media=ImageMedia(image), view_size=128, task=task)


@pytest.mark.parametrize(("rgb", "name"), [
    ((255, 0, 0), "red"), ((139, 0, 0), "red"), ((0, 128, 0), "green"), ((0, 0, 128), "blue"),
    ((255, 255, 0), "yellow"), ((255, 165, 0), "orange"), ((139, 69, 19), "brown"), ((128, 0, 128), "purple"),
    ((255, 192, 203), "pink"), ((255, 20, 147), "pink"), ((0, 0, 0), "black"), ((255, 255, 255), "white"),
    ((128, 128, 128), "gray"), ((0, 255, 255), "cyan"), ((0, 128, 128), "cyan"), ((20, 20, 40), "black"),
])
def test_colour_names(rgb, name):
    assert colour_name(rgb) == name


def test_every_palette_name_is_reachable_and_shares_sum_to_one():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20000, 3), np.uint8)
    shares = colour_shares(pixels, top=len(PALETTE))
    assert set(shares) == set(PALETTE)
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)


def test_box_properties_measure_the_region():
    result = properties.run(Properties(box=(0.1, 0.3, 0.3, 0.5)), _ctx(_scene()))
    data = result.data
    assert data["area_px"] == 40 * 20 and data["area_fraction"] == pytest.approx(800 / 20000)
    assert data["centroid"] == pytest.approx([0.2, 0.4], abs=1e-3)
    assert data["box"] == [0.1, 0.3, 0.3, 0.5]
    assert data["colour"] == "red" and result.candidates == ["red"]
    assert data["metric"] is None
    json.dumps(data)


def test_mask_properties_ignore_the_background_inside_the_box():
    ctx = _ctx(_scene())
    segment.run(Segment(box=(0.05, 0.2, 0.35, 0.6)), ctx)
    data = properties.run(Properties(mask_id=0), ctx).data
    assert data["colour"] == "red" and data["colour_shares"]["red"] > 0.95
    assert abs(data["area_px"] - 800) < 40


def test_one_pixel_box():
    data = properties.run(Properties(box=(0.5, 0.5, 0.501, 0.501)), _ctx(_scene())).data
    assert data["area_px"] == 1 and data["colour"] == "gray"


def test_unknown_mask_id_names_the_available_ids():
    ctx = _ctx(_scene())
    with pytest.raises(ActionError, match="none yet"):
        properties.run(Properties(mask_id=0), ctx)
    segment.run(Segment(point=(0.2, 0.4)), ctx)
    with pytest.raises(ActionError, match=r"no mask 3 .* ids 0\.\.0"):
        properties.run(Properties(mask_id=3), ctx)


def test_metric_size_from_metres_per_pixel():
    data = properties.run(Properties(box=(0.1, 0.3, 0.3, 0.5)), _ctx(_scene(), {"metres_per_pixel": 0.01})).data
    assert data["metric"] == {"width_m": 0.4, "height_m": 0.2, "area_m2": 0.08, "source": "metres_per_pixel"}


def test_metric_size_from_depth_and_intrinsics():
    depth = np.full((100, 200), 5.0, np.float32)
    depth[30:50, 20:60] = 2.0
    meta = {"depth": lambda frame: depth, "intrinsics": (100.0, 50.0, 100.0, 50.0)}
    ctx = _ctx(_scene(), meta)
    segment.run(Segment(point=(0.2, 0.4)), ctx)
    result = properties.run(Properties(mask_id=0), ctx)
    metric = result.data["metric"]
    assert metric["depth_m"] == pytest.approx(2.0)
    assert metric["width_m"] == pytest.approx(40 * 2.0 / 100.0, rel=0.05)
    assert metric["height_m"] == pytest.approx(20 * 2.0 / 50.0, rel=0.05)
    assert "m depth" in result.text


def test_depth_map_of_another_resolution_and_missing_depth():
    image = _scene()
    half = np.full((50, 100), 3.0, np.float32)
    data = properties.run(Properties(box=(0.1, 0.3, 0.3, 0.5)),
                          _ctx(image, {"depth": lambda f: half, "intrinsics": (100, 100, 100, 50)})).data
    assert data["metric"]["depth_m"] == pytest.approx(3.0)
    invalid = np.full((100, 200), np.nan, np.float32)
    with pytest.raises(ToolError, match="no valid depth"):
        properties.run(Properties(box=(0.1, 0.3, 0.3, 0.5)),
                       _ctx(image, {"depth": lambda f: invalid, "intrinsics": (1, 1, 0, 0)}))


def test_depth_is_read_for_the_masks_frame():
    frames = np.zeros((3, 40, 40, 3), np.uint8)
    frames[:, 10:20, 10:20] = (0, 0, 255)
    asked = []
    meta = {"depth": lambda f: asked.append(f) or np.ones((40, 40), np.float32), "intrinsics": (40, 40, 20, 20)}
    task = Task("t", "q", "a", "text", None, "exact", meta=meta)
    ctx = ToolContext(media=ArrayVideo(frames, fps=1), view_size=64, task=task)
    properties.run(Properties(box=(0.25, 0.25, 0.5, 0.5), frame=2), ctx)
    assert asked == [2]


def test_env_properties_of_a_box_and_a_bad_mask_id():
    env = one_task_env(ImageMedia(_scene()), answer="red", meta={"metres_per_pixel": 0.01})
    env.reset(seed=0)
    obs, _, _, _, info = env.step(Properties(box=(0.1, 0.3, 0.3, 0.5)))
    assert info["error"] is None and "colour red" in obs["text"] and "0.40 m wide" in obs["text"]
    assert "red" in info["answer_candidates"]
    _, reward, _, _, info = env.step(Properties(mask_id=7))
    assert "no mask 7" in info["error"] and reward < 0
