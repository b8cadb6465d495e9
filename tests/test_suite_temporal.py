"""Pixelis-Temporal-v0: determinism, event spans re-derived from pixels, env contract,
oracle and random agents, R@IoU summaries, and the Charades-STA loader on real-format files."""

from __future__ import annotations

import itertools
import json

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pixelis_env  # noqa: F401  (registers the ids)
from agents import RandomAgent
from agents.rollout import rollout
from pixelis_env.errors import DataError, PixelisError
from pixelis_env.metrics import span_iou, temporal_iou
from pixelis_env.suites import charades, temporal
from pixelis_env.suites.grounding_metrics import recall_at_iou
from pixelis_env.suites.motion import PALETTE
from pixelis_env.task import format_ground_truth
from pixelis_env.tools import registered_tools

CHEAP_TOOLS = {"track_max_frames": 3, "localize_max_frames": 8}
"""Tools capped to a few frames per call: CSRT costs ~50 ms a frame whatever the frame size."""
ENV_ID = "Pixelis-Temporal-v0"
ORACLE_TOOLS = {"localize", "track", "select_frames"}


def frames_of(task) -> list[np.ndarray]:
    media = task.load_media()
    return [media.frame(i) for i in range(media.num_frames)]


def colour_pixels(frame: np.ndarray, name: str) -> np.ndarray:
    return np.all(frame == np.array(PALETTE[name], np.uint8), axis=-1)


def tasks_of(event: str, difficulty: int, count: int):
    source = temporal.make_source(difficulty=difficulty, num_tasks=count, events=[event])
    return [source[i] for i in range(count)]


def one_run(flags: list[bool]) -> tuple[int, int]:
    """First and last index of the single run of True values (fails if there are several)."""
    on = np.flatnonzero(flags)
    assert len(on) and on[-1] - on[0] + 1 == len(on), flags
    return int(on[0]), int(on[-1])


# ---------------------------------------------------------------- determinism
def test_same_arguments_give_identical_tasks_and_frames():
    a, b = temporal.make_source(seed=5, num_tasks=6), temporal.make_source(seed=5, num_tasks=6)
    for i in range(6):
        ta, tb = a[i], b[i]
        assert (ta.question, ta.answer, ta.oracle, ta.meta) == (tb.question, tb.answer, tb.oracle, tb.meta)
        assert b"".join(f.tobytes() for f in frames_of(ta)) == b"".join(f.tobytes() for f in frames_of(tb))


def test_splits_give_different_tasks():
    def fingerprint(task):
        return task.load_media().frame(3).tobytes()

    train = {fingerprint(temporal.make_source("train", num_tasks=15)[i]) for i in range(15)}
    test = {fingerprint(temporal.make_source("test", num_tasks=15)[i]) for i in range(15)}
    assert len(train) == 15 and not train & test


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "tset"}, "Did you mean `test`"),
    ({"difficulty": -1}, "difficulty"),
    ({"events": ["apear"]}, "Did you mean `appear`"),
])
def test_bad_source_arguments_raise(kwargs, message):
    with pytest.raises(PixelisError, match=message):
        temporal.make_source(**kwargs)


# ------------------------------------------------ ground truth from pixels
def test_appear_span_is_where_the_shape_is_drawn():
    for task in tasks_of("appear", 2, 5):
        colour = task.meta["colours"][0]
        first, last = one_run([colour_pixels(f, colour).any() for f in frames_of(task)])
        assert task.answer == [first / temporal.FPS, (last + 1) / temporal.FPS], task.task_id


def test_colour_span_is_where_the_other_colour_is_drawn():
    for task in tasks_of("colour", 2, 5):
        usual, other = task.meta["colours"]
        frames = frames_of(task)
        first, last = one_run([colour_pixels(f, other).any() for f in frames])
        assert task.answer == [first / temporal.FPS, (last + 1) / temporal.FPS], task.task_id
        assert all(colour_pixels(f, usual).any() != colour_pixels(f, other).any() for f in frames)


def test_move_span_is_where_the_shape_changes_place():
    for task in tasks_of("move", 2, 5):
        colour = task.meta["colours"][0]
        centres = [np.argwhere(colour_pixels(f, colour)).mean(axis=0) for f in frames_of(task)]
        moved = [False] + [not np.allclose(a, b) for a, b in itertools.pairwise(centres)]
        first, last = one_run(moved)
        assert task.answer == [(first - 1) / temporal.FPS, last / temporal.FPS], task.task_id


def test_events_stay_inside_the_video_and_distractor_events_elsewhere():
    source = temporal.make_source(difficulty=2, num_tasks=9)
    for task in (source[i] for i in range(9)):
        start, end = task.answer
        assert 0 < start < end < source.max_seconds
        assert span_iou(format_ground_truth(task), task.answer) == 1.0
        assert len(task.meta["distractor_events"]) == temporal.LEVELS[2].distractor_events
        for other in task.meta["distractor_events"]:
            assert temporal_iou(other["span"], task.answer) <= temporal.MAX_DISTRACTOR_IOU


# ------------------------------------------------------------------- env
def test_gymnasium_make_and_check_env():
    env = gym.make(ENV_ID, num_tasks=6)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.skipif(not set(registered_tools()) >= ORACLE_TOOLS,
                    reason=f"oracle tools {sorted(ORACLE_TOOLS - set(registered_tools()))} not registered yet")
def test_oracle_traces_score_full_marks_without_errors():
    env = gym.make(ENV_ID, num_tasks=18, difficulty=1, view_size=96, tool_config=CHEAP_TOOLS)
    scores = []
    for index in range(18):
        env.reset(options={"task_index": index})
        for action in env.unwrapped.oracle_actions():
            _, _, terminated, _, info = env.step(action)
            assert info["error"] is None, info["error"]
        assert terminated
        scores.append(info["score"])
    assert np.mean(scores) >= 0.95
    env.close()


def test_random_agent_scores_far_lower():
    env = gym.make(ENV_ID, num_tasks=30, difficulty=1, view_size=64, tool_config=CHEAP_TOOLS)
    trajectories = rollout(env, RandomAgent(env, p_answer=0.5, seed=0), episodes=20, seed=0)
    assert np.mean([t.score for t in trajectories]) < 0.45  # the oracle scores 1.0
    env.close()


# -------------------------------------------------------------- R@IoU
def test_recall_at_iou_counts_reaching_thresholds():
    summary = recall_at_iou([1.0, 0.7, 0.5, 0.3, 0.29, 0.0])
    assert summary == pytest.approx({"R@0.3": 4 / 6, "R@0.5": 3 / 6, "R@0.7": 2 / 6, "mIoU": 2.79 / 6})
    assert recall_at_iou([0.4], thresholds=(0.1,)) == {"R@0.1": 1.0, "mIoU": 0.4}
    for bad in ([], [1.2], [float("nan")]):
        with pytest.raises(ValueError):
            recall_at_iou(bad)


# ---------------------------------------------------------------- loader
def write_video(path, frames: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 4.0, (32, 32))
    for t in range(frames):
        writer.write(np.full((32, 32, 3), 20 * t, np.uint8))
    writer.release()


def test_charades_txt_lines_become_tasks(tmp_path):
    write_video(tmp_path / "Charades_v1_480" / "3MSZA.mp4")
    write_video(tmp_path / "videos" / "AO8RW.mp4")
    (tmp_path / "charades_sta_test.txt").write_text(
        "3MSZA 24.3 30.4##person turn a light on.\n\nAO8RW 0.0 6.9##a person is putting a book on a shelf.\n")
    source = temporal.make_source("test", data_root=tmp_path)
    assert len(source) == 2
    first, second = source[0], source[1]
    assert first.answer == [24.3, 30.4] and first.metric == "span_iou" and first.answer_type == "span"
    assert first.question == charades.PRE_PROMPT + "person turn a light on. " + charades.POST_PROMPT
    assert first.meta["source"].endswith("charades_sta_test.txt:1") and second.meta["video_id"] == "AO8RW"
    assert second.load_media().num_frames == 8
    env = gym.make(ENV_ID, data_root=tmp_path, split="test")
    env.reset(options={"task_index": 0})
    _, reward, terminated, _, _ = env.step("<answer>The event happens in the 24.3 - 30.4 seconds.</answer>")
    assert terminated and reward == pytest.approx(1.0)
    env.close()


def test_charades_lmms_eval_rows(tmp_path):
    write_video(tmp_path / "Charades_v1_480" / "3MSZA.mp4")
    rows = [{"video": "3MSZA.mp4", "caption": "person turn a light on", "timestamp": [24.3, 30.4]}]
    (tmp_path / "charades_sta_test.json").write_text(json.dumps(rows))
    (tmp_path / "mine.jsonl").write_text(json.dumps(rows[0]) + "\n")
    for kwargs in ({}, {"annotations": "mine.jsonl"}):
        task = temporal.make_source("test", data_root=tmp_path, **kwargs)[0]
        assert task.answer == [24.3, 30.4] and "person turn a light on. Please" in task.question


@pytest.mark.parametrize("line, message", [
    ("3MSZA 24.3 30.4 person turn a light on.", "expected 'VIDEOID start end##sentence'"),
    ("3MSZA 24.3##person turn a light on.", "expected 'VIDEOID start end##sentence'"),
    ("3MSZA 24.3 30.4##   ", "expected 'VIDEOID start end##sentence'"),
    ("3MSZA a 30.4##person turn a light on.", "must be numbers"),
    ("3MSZA 30.4 24.3##person turn a light on.", "0 <= start <= end"),
    ("3MSZA nan 24.3##person turn a light on.", "finite"),
    ("../x 1 2##escape", "video id"),
    ("NOVID 1.0 2.0##a person sits.", "not found"),
])
def test_charades_bad_lines_name_file_and_line(tmp_path, line, message):
    write_video(tmp_path / "Charades_v1_480" / "3MSZA.mp4")
    (tmp_path / "charades_sta_test.txt").write_text(f"3MSZA 1.0 2.0##a person sits.\n{line}\n")
    with pytest.raises(DataError, match=message) as error:
        temporal.make_source("test", data_root=tmp_path)
    assert "charades_sta_test.txt:2" in str(error.value)


@pytest.mark.parametrize("row, message", [
    ({"video": "3MSZA", "caption": "c", "timestamp": [1, 2]}, "<id>.mp4"),
    ({"video": "../../etc.mp4", "caption": "c", "timestamp": [1, 2]}, "video id"),
    ({"video": "3MSZA.mp4", "caption": "c", "timestamp": [1]}, r"\[start, end\]"),
    ({"video": "3MSZA.mp4", "timestamp": [1, 2]}, "missing field `caption`"),
])
def test_charades_bad_json_rows_name_the_row(tmp_path, row, message):
    write_video(tmp_path / "Charades_v1_480" / "3MSZA.mp4")
    (tmp_path / "charades_sta_test.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message) as error:
        temporal.make_source("test", data_root=tmp_path)
    assert "charades_sta_test.jsonl:1" in str(error.value)


def test_charades_missing_files(tmp_path):
    with pytest.raises(DataError, match="no Charades-STA annotations for split `train`"):
        temporal.make_source("train", data_root=tmp_path)
    with pytest.raises(DataError, match="escapes the data root"):
        temporal.make_source("test", data_root=tmp_path, annotations="../elsewhere.txt")
    write_video(tmp_path / "videos" / "AO8RW.mp4")
    (tmp_path / "charades_sta_train.txt").write_text("GONE1 1.0 2.0##a person sits.\nAO8RW 0.0 6.9##x.\n")
    source = temporal.make_source("train", data_root=tmp_path, skip_missing=True)
    assert len(source) == 1 and source[0].meta["video_id"] == "AO8RW"
