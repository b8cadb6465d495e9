"""Pixelis-Track-v0: determinism, ground truth re-derived from pixels, env contract,
oracle and random agents, and the JSONL loader on files in the real format."""

from __future__ import annotations

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
from pixelis_env.media import VideoFile
from pixelis_env.suites import track
from pixelis_env.suites.motion import GUIDE_COLOUR, MARKER_COLOUR, PALETTE, overview_frames
from pixelis_env.tools import registered_tools

CHEAP_TOOLS = {"track_max_frames": 3}
"""Tools capped to a few frames per call: CSRT costs ~50 ms a frame whatever the frame size."""
ENV_ID = "Pixelis-Track-v0"


def frames_of(task) -> list[np.ndarray]:
    media = task.load_media()
    return [media.frame(i) for i in range(media.num_frames)]


def colour_mask(frame: np.ndarray, name: str) -> np.ndarray:
    return np.all(frame == np.array(PALETTE[name], np.uint8), axis=-1)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def quadrant_letter(x: float, y: float, width: int, height: int) -> str:
    return "ABCD"[2 * int(y > height / 2) + int(x > width / 2)]


def target_colour(task) -> str:
    return task.meta["objects"][task.meta["target"]].split()[0]


def tasks_of(qtype: str, difficulty: int, count: int, **kwargs):
    source = track.make_source(difficulty=difficulty, num_tasks=count, question_types=[qtype], **kwargs)
    return [source[i] for i in range(count)]


# ---------------------------------------------------------------- determinism
def test_same_arguments_give_identical_tasks_and_frames():
    a, b = track.make_source(seed=3, num_tasks=6), track.make_source(seed=3, num_tasks=6)
    for i in range(6):
        ta, tb = a[i], b[i]
        assert (ta.question, ta.answer, ta.options, ta.oracle, ta.meta) == (tb.question, tb.answer, tb.options,
                                                                            tb.oracle, tb.meta)
        assert b"".join(f.tobytes() for f in frames_of(ta)) == b"".join(f.tobytes() for f in frames_of(tb))


def test_splits_and_seeds_give_different_tasks():
    def fingerprint(task):
        return task.load_media().frame(5).tobytes()

    train = {fingerprint(track.make_source("train", num_tasks=15)[i]) for i in range(15)}
    test = {fingerprint(track.make_source("test", num_tasks=15)[i]) for i in range(15)}
    other_seed = {fingerprint(track.make_source("train", num_tasks=15, seed=1)[i]) for i in range(15)}
    assert len(train) == 15 and not train & test and not train & other_seed


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "tets"}, "Did you mean `test`"),
    ({"difficulty": 3}, "difficulty"),
    ({"num_tasks": 0}, "num_tasks"),
    ({"question_types": ["zone_crosing"]}, "Did you mean `zone_crossing`"),
    ({"question_types": []}, "empty"),
])
def test_bad_source_arguments_raise(kwargs, message):
    with pytest.raises(PixelisError, match=message):
        track.make_source(**kwargs)


def test_sources_are_lazy_and_sized():
    source = track.make_source(num_tasks=10_000, difficulty=2)
    assert len(source) == 10_000 and source.media_kinds == frozenset({"video"})
    assert source.max_frames == track.LEVELS[2].frames
    assert source[9_999].task_id.endswith("09999")


# ------------------------------------------------ ground truth from pixels
def test_meta_boxes_match_rendered_pixels():
    for task in tasks_of("final_quadrant", 0, 4):
        frames = frames_of(task)
        width, height = task.meta["frame_size"]
        for t in (0, len(frames) // 2, len(frames) - 1):
            ys, xs = np.nonzero(colour_mask(frames[t], target_colour(task)))
            drawn = (xs.min() / width, ys.min() / height, (xs.max() + 1) / width, (ys.max() + 1) / height)
            assert np.allclose(drawn, task.meta["boxes"][t], atol=1.5 / width), (task.task_id, t)
        assert list(task.oracle[0].box) == task.meta["boxes"][0]


def test_final_quadrant_answer_is_where_the_pixels_are():
    for task in tasks_of("final_quadrant", 0, 8):
        last = frames_of(task)[-1]
        mask = colour_mask(last, target_colour(task))
        ys, xs = np.nonzero(mask)
        corners = {quadrant_letter(x, y, last.shape[1], last.shape[0]) for x, y in ((xs.min(), ys.min()),
                                                                                    (xs.max(), ys.max()))}
        assert corners == {task.answer}, task.task_id


def follow_marked_shape(frames: list[np.ndarray], colour: str) -> tuple[float, float]:
    """Start at the shape inside the white marker, then hop to the nearest same-colour blob each frame."""
    ys, xs = np.nonzero(np.all(frames[0] == np.array(MARKER_COLOUR, np.uint8), axis=-1))
    position = ((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2)
    for frame in frames:
        count, _, _, centroids = cv2.connectedComponentsWithStats(colour_mask(frame, colour).astype(np.uint8))
        blobs = centroids[1:count]
        position = tuple(blobs[np.argmin(((blobs - position) ** 2).sum(axis=1))])
    return position


def test_marked_twin_followed_by_pixels_ends_in_the_answer_quadrant():
    for task in tasks_of("final_quadrant", 1, 8):
        frames = frames_of(task)
        colour = target_colour(task)
        assert task.meta["objects"].count(task.meta["objects"][-1]) >= 3  # look-alikes share the last frame
        assert not np.any(np.all(frames[-1] == np.array(MARKER_COLOUR, np.uint8), axis=-1))
        x, y = follow_marked_shape(frames, colour)
        assert quadrant_letter(x, y, frames[0].shape[1], frames[0].shape[0]) == task.answer, task.task_id


def test_only_the_answer_object_enters_the_zone_and_never_on_an_overview_frame():
    for task in tasks_of("zone_crossing", 1, 6):
        frames = frames_of(task)
        x0, y0, x1, y1 = task.meta["zone"]
        dashes = [np.all(f[y0, x0:x1] == np.array(GUIDE_COLOUR, np.uint8), axis=-1).mean() for f in frames]
        assert max(dashes) >= 0.4  # the zone's top border is drawn dashed
        entered = set()
        for t, frame in enumerate(frames):
            for option in task.options:
                letter, colour = option[0], option.split()[2]
                cx, cy = centroid(colour_mask(frame, colour))
                if x0 <= cx < x1 and y0 <= cy < y1:
                    entered.add(letter)
                    assert t not in overview_frames(len(frames), 4), task.task_id
        assert entered == {task.answer}, task.task_id


def test_crossing_count_matches_pixels():
    for difficulty in (0, 1):
        for task in tasks_of("line_crossings", difficulty, 8):
            frames = frames_of(task)
            line_x = int(np.argmax(np.all(frames[0] == np.array(GUIDE_COLOUR, np.uint8), axis=-1).sum(axis=0)))
            masks = [colour_mask(f, target_colour(task)) for f in frames]
            side = np.sign(np.array([centroid(m)[0] for m in masks]) - line_x)
            assert int(np.count_nonzero(side[1:] != side[:-1])) == task.answer, task.task_id
            spans = [(xs.min(), xs.max()) for xs in (np.nonzero(m)[1] for m in masks)]
            clear = [-1 if hi < line_x else 1 for lo, hi in spans if hi < line_x or lo > line_x]
            assert int(np.count_nonzero(np.diff(clear))) == task.answer, task.task_id  # whole-body passes


def test_answers_are_balanced():
    quadrants = [t.answer for t in tasks_of("final_quadrant", 1, 40)]
    counts = [t.answer for t in tasks_of("line_crossings", 1, 40)]
    assert set(quadrants) == set("ABCD") and set(counts) == {0, 1, 2, 3}


# ------------------------------------------------------------------- env
def test_gymnasium_make_and_check_env():
    env = gym.make(ENV_ID, num_tasks=6)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert info["suite"] == "track" and "video" in obs["text"]
    env.close()


@pytest.mark.skipif("track" not in registered_tools(), reason="the `track` tool is not registered yet")
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


# ---------------------------------------------------------------- loader
def write_video(path, frames: int = 6, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 4.0, (size, size))
    for t in range(frames):
        image = np.full((size, size, 3), 40, np.uint8)
        image[8:16, 2 + 2 * t:10 + 2 * t] = (30, 200, 30)
        writer.write(image)
    writer.release()


def write_rows(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_loader_reads_choice_and_number_rows(tmp_path):
    write_video(tmp_path / "clips" / "a.mp4")
    write_rows(tmp_path / "test.jsonl", [
        {"video": "clips/a.mp4", "question": "Where does the square go?", "options": ["left", "right"],
         "answer": "b"},
        {"video": "clips/a.mp4", "question": "Where?", "options": ["A. up", "B. down"], "answer": "A",
         "id": "q2"},
        {"video": "clips/a.mp4", "question": "How many crossings?", "answer": 2},
        {"video": "clips/a.mp4", "question": "How far?", "answer": 2.5},
    ])
    source = track.make_source("test", data_root=tmp_path)
    tasks = [source[i] for i in range(len(source))]
    assert [t.answer for t in tasks] == ["B", "A", 2, 2.5]
    assert [t.metric for t in tasks] == ["option", "option", "count", "mra"]
    assert tasks[0].options == ["A. left", "B. right"] and tasks[1].options == ["A. up", "B. down"]
    assert tasks[1].task_id == "q2"
    media = tasks[0].load_media()
    assert isinstance(media, VideoFile) and media.num_frames == 6
    assert len(track.make_source("test", data_root=tmp_path, num_tasks=2)) == 2
    env = gym.make(ENV_ID, data_root=tmp_path, split="test")
    env.reset(options={"task_index": 2})
    _, reward, terminated, _, _ = env.step("<answer>2</answer>")
    assert terminated and reward == 1.0
    env.close()


@pytest.mark.parametrize("row, message", [
    ('{"video": "a.mp4", "question": "q", "answer": 1', "not valid JSON"),
    ({"question": "q", "answer": 1}, "missing field `video`"),
    ({"video": "a.mp4", "question": "q", "options": ["x", "y"], "answer": "C"}, "not one of the option letters"),
    ({"video": "a.mp4", "question": "q", "answer": "two"}, "must be a number"),
    ({"video": "a.mp4", "question": "q", "answer": 1, "metric": "bleu"}, "unknown metric"),
    ({"video": "../outside.mp4", "question": "q", "answer": 1}, "escapes the data root"),
    ({"video": "/etc/passwd", "question": "q", "answer": 1}, "absolute path"),
    ({"video": "missing.mp4", "question": "q", "answer": 1}, "not found"),
])
def test_loader_errors_name_file_and_line(tmp_path, row, message):
    write_video(tmp_path / "a.mp4")
    write_video(tmp_path.parent / "outside.mp4")
    good = {"video": "a.mp4", "question": "q", "answer": 1}
    write_rows(tmp_path / "train.jsonl", [good, row])
    with pytest.raises(DataError, match=message) as error:
        track.make_source("train", data_root=tmp_path)
    assert "train.jsonl:2" in str(error.value)


def test_loader_can_skip_rows_with_missing_videos(tmp_path):
    write_video(tmp_path / "a.mp4")
    write_rows(tmp_path / "val.jsonl", [{"video": "gone.mp4", "question": "q", "answer": 1},
                                        {"video": "a.mp4", "question": "q", "answer": 3}])
    source = track.make_source("val", data_root=tmp_path, skip_missing=True)
    assert len(source) == 1 and source[0].answer == 3
    with pytest.raises(DataError, match="task file not found"):
        track.make_source("test", data_root=tmp_path)
