"""``track``: OpenCV CSRT/KCF on synthetic motion with a known path and on a real photo
panned by a moving camera window, both directions, the frame cap, and env steps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixelis_env.actions import Track
from pixelis_env.errors import ActionError
from pixelis_env.media import ArrayVideo
from pixelis_env.metrics import box_iou
from pixelis_env.tools import track
from pixelis_env.tools.base import ToolContext
from tests.tool_scenes import moving_square_video, one_task_env, panned_astronaut


def _mean_iou(result, truth) -> float:
    return float(np.mean([box_iou(b, truth[i]) if b is not None else 0.0
                          for b, i in zip(result.data["boxes"], result.data["frames"])]))


def _box(values) -> tuple[float, ...]:
    return tuple(min(max(round(v, 4), 0.0), 1.0) for v in values)


def test_csrt_follows_a_moving_square_forward():
    media, truth = moving_square_video(np.random.default_rng(0), "astronaut", n=20)
    result = track.run(Track(box=_box(truth[0]), start_frame=0, end_frame=19),
                       ToolContext(media=media, view_size=224))
    assert result.data["frames"] == list(range(20)) and not any(result.data["lost"])
    assert _mean_iou(result, truth) >= 0.75
    assert result.image.shape == (224, 224, 3)
    json.dumps(result.data)


def test_kcf_tracks_backward_in_time():
    media, truth = moving_square_video(np.random.default_rng(1), "flat", n=16)
    result = track.run(Track(box=_box(truth[15]), start_frame=15, end_frame=3, tracker="kcf"),
                       ToolContext(media=media, view_size=128))
    assert result.data["frames"] == list(range(15, 2, -1))
    assert _mean_iou(result, truth) >= 0.5


def test_real_photo_under_a_camera_pan():
    media, truth = panned_astronaut(n=16)
    result = track.run(Track(box=_box(truth[0]), start_frame=0, end_frame=15), ToolContext(media=media, view_size=128))
    assert _mean_iou(result, truth) >= 0.7


def test_frame_cap_stops_early_and_says_where():
    media, truth = moving_square_video(np.random.default_rng(2), "flat", n=12)
    ctx = ToolContext(media=media, view_size=128, config={"track_max_frames": 5})
    result = track.run(Track(box=_box(truth[0]), start_frame=0, end_frame=11, tracker="kcf"), ctx)
    assert result.data["capped"] and result.data["frames"] == [0, 1, 2, 3, 4] and result.data["last_frame"] == 4
    assert "Stopped at frame 4" in result.text and "call track again" in result.text


def test_object_that_leaves_is_reported_lost():
    frames = np.full((8, 120, 160, 3), 90, np.uint8)
    for t in range(4):
        frames[t, 40:70, 20 + 10 * t:50 + 10 * t] = (230, 30, 30)
    frames[4:] = np.random.default_rng(0).integers(0, 255, (4, 120, 160, 3), np.uint8)
    result = track.run(Track(box=(0.125, 0.3333, 0.3125, 0.5833), start_frame=0, end_frame=7, tracker="kcf"),
                       ToolContext(media=ArrayVideo(frames, fps=4), view_size=128))
    assert any(result.data["lost"][4:]) and not any(result.data["lost"][:4])
    assert all((b is None) == lost for b, lost in zip(result.data["boxes"], result.data["lost"]))
    assert "lost on" in result.text


def test_single_frame_track_is_its_own_box():
    media, truth = moving_square_video(np.random.default_rng(3), "flat", n=4)
    box = _box(truth[2])
    result = track.run(Track(box=box, start_frame=2, end_frame=2), ToolContext(media=media, view_size=64))
    assert result.data["boxes"] == [list(box)] and result.data["frames"] == [2]


def test_one_pixel_box_is_a_clear_error_in_the_env():
    media, _ = moving_square_video(np.random.default_rng(5), "flat", n=4)
    env = one_task_env(media)
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(Track(box=(0.5, 0.5, 0.501, 0.501), start_frame=0, end_frame=3))
    assert "ToolError" in info["error"] and "try a larger box" in obs["text"] and reward < 0 and not terminated


def test_unknown_tracker_is_rejected_by_the_grammar():
    with pytest.raises(ActionError, match="csrt"):
        Track(box=(0.1, 0.1, 0.2, 0.2), start_frame=0, end_frame=1, tracker="mosse")


def test_env_track_and_out_of_range_end_frame():
    media, truth = moving_square_video(np.random.default_rng(4), "flat", n=10)
    env = one_task_env(media)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(Track(box=_box(truth[0]), start_frame=0, end_frame=10))
    assert "outside the video" in info["error"] and reward < 0
    obs, reward, _, _, info = env.step(Track(box=_box(truth[0]), start_frame=0, end_frame=9, tracker="kcf"))
    assert info["error"] is None and reward == 0.0 and len(info["tool_result"]["boxes"]) == 10
    assert "tracked (kcf) frames 0..9" in obs["text"]


def test_env_offers_track_only_for_videos():
    from pixelis_env.media import ImageMedia

    env = one_task_env(ImageMedia(np.zeros((32, 32, 3), np.uint8)))
    assert "track" not in {s.name for s in env.tool_specs} and "segment" in {s.name for s in env.tool_specs}
