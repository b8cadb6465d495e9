"""PixelisEnv: reset/step contract, error steps, truncation, rendering, tool registration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

import pixelis_env
from pixelis_env import (
    Action,
    ActionError,
    Answer,
    DataError,
    PixelisEnv,
    PixelisError,
    SelectFrames,
    Task,
    TaskList,
    ToolResult,
    Zoom,
    register_tool,
)
from pixelis_env.actions import BoxArg, arg
from pixelis_env.tools import unregister_tool
from tests.conftest import square_image, square_tasks

ENV_KWARGS = {"Pixelis-Image-v0": {"media": square_image(0)[0], "question": "How many squares?", "answer": 1}}


@pytest.mark.parametrize("env_id", pixelis_env.ENV_IDS)
def test_check_env_passes_for_every_registered_id(env_id):
    env = gym.make(env_id, **ENV_KWARGS.get(env_id, {}))
    check_env(env.unwrapped)
    env.close()


def test_reset_shows_question_and_first_view(image_env):
    obs, info = image_env.reset(seed=3)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert "red square" in obs["text"] and "[image: 96x96]" in obs["text"]
    assert image_env.observation_space.contains(obs)
    assert info["task_id"].startswith("sq-") and info["step"] == 0


def test_reset_is_deterministic_under_a_seed(image_env):
    ids = [image_env.reset(seed=s)[1]["task_id"] for s in (1, 2, 1)]
    assert ids[0] == ids[2]
    first = image_env.reset(seed=5)[0]
    assert np.array_equal(first["image"], image_env.reset(seed=5)[0]["image"])


def test_zoom_step_returns_the_crop(image_env):
    image_env.reset(options={"task_index": 0})
    box = image_env.task.oracle[0].box
    obs, reward, terminated, truncated, info = image_env.step(Zoom(box=box))
    assert not terminated and reward == 0.0
    assert obs["image"][..., 0].mean() > 150, "the zoomed view is filled by the red square"
    assert info["tool"] == "zoom" and info["tool_result"]["box"] == list(box)
    assert info["reward_terms"] == {"task": 0.0}


def test_all_three_surfaces_give_the_same_step(image_env):
    action = Zoom(box=(0.1, 0.1, 0.6, 0.7))
    surfaces = [action, pixelis_env.format_action(action), image_env.actions.to_space(action)]
    views = []
    for surface in surfaces:
        image_env.reset(options={"task_index": 1})
        views.append(image_env.step(surface)[0]["image"])
    assert all(np.array_equal(views[0], v) for v in views[1:])


def test_answer_scores_and_ends(image_env):
    image_env.reset(options={"task_index": 2})
    truth = image_env.task.answer
    obs, reward, terminated, truncated, info = image_env.step(f"<answer>{truth}</answer>")
    assert terminated and reward == 1.0 and info["score"] == 1.0 and info["answer"] == str(truth)
    with pytest.raises(PixelisError, match="reset"):
        image_env.step(Answer(text="1"))


@pytest.mark.parametrize("bad", [
    "zoom on the square please",
    '<tool_call>{"name": "zoom", "arguments": {"box": [0.9, 0, 0.1, 1]}}</tool_call>',
    '<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1, 1], "frame": 3}}</tool_call>',
    '<tool_call>{"name": "select_frames", "arguments": {"frames": [0]}}</tool_call>',
    (99, {}),
    12345,
])
def test_bad_actions_are_penalised_steps_not_crashes(image_env, bad):
    obs, info = image_env.reset(seed=0)
    obs, reward, terminated, truncated, info = image_env.step(bad)
    assert reward == pytest.approx(-0.1) and not terminated and not truncated
    assert obs["text"].startswith("error: ") and info["error"]
    assert info["reward_terms"]["invalid"] == pytest.approx(-0.1)
    assert image_env.observation_space.contains(obs)
    assert image_env.records[-1].error == info["error"]


def test_out_of_range_frame_on_video(video_env):
    video_env.reset(seed=0)
    _, _, _, _, info = video_env.step(SelectFrames(frames=(0, 12)))
    assert "outside the video (0..11)" in info["error"]
    _, _, _, _, info = video_env.step(SelectFrames(span=(5.0, 6.0)))
    assert "after the video ends" in info["error"]
    obs, _, _, _, info = video_env.step(SelectFrames(span=(0.0, 2.0)))
    assert info["error"] is None and info["tool_result"]["frames"][0] == 0


def test_too_many_errors_truncate(image_env):
    image_env.reset(seed=0)
    for _ in range(5):
        *_, truncated, info = image_env.step("nonsense")
    assert truncated and info["errors"] == 5


def test_max_steps_truncate(image_env):
    image_env.reset(seed=0)
    for _ in range(6):
        _, _, terminated, truncated, _ = image_env.step(Zoom(box=(0, 0, 0.5, 0.5)))
    assert truncated and not terminated


def test_step_before_reset_raises():
    env = PixelisEnv(square_tasks(2))
    with pytest.raises(PixelisError, match="reset"):
        env.step(Answer(text="1"))


def test_render_shows_the_episode(image_env):
    image_env.reset(seed=0)
    image_env.step(Zoom(box=(0, 0, 0.5, 0.5)))
    frame = image_env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert frame.shape[1] == 3 * 64


def test_unicode_tool_output_is_mapped_into_the_charset(image_env):
    obs, _ = image_env.reset(options={"task": Task(
        task_id="u", question="Qu'est-ce que c'est ? — «été» 日本", answer="x", answer_type="text",
        media=square_image(0)[0], metric="exact")})
    assert image_env.observation_space["text"].contains(obs["text"])
    assert "ete" in obs["text"]


# ----------------------------------------------------------- user-defined tools
@dataclass(frozen=True)
class Brightness(Action):
    """Mean brightness of a region (a user's own tool)."""

    name: ClassVar[str] = "brightness"
    box: tuple = arg(BoxArg(), "region to measure")


def _brightness(action, ctx):
    from pixelis_env.views import crop

    value = float(crop(ctx.media.frame(0), action.box).mean())
    return ToolResult(text=f"mean brightness {value:.1f}", data={"mean": value}, candidates=[f"{value:.0f}"])


def test_user_tool_registration_without_editing_the_package():
    register_tool(Brightness, _brightness)
    try:
        env = PixelisEnv(square_tasks(2), view_size=64)
        assert "brightness" in [s.name for s in env.tool_specs]
        env.reset(seed=0)
        text = '<tool_call>{"name": "brightness", "arguments": {"box": [0, 0, 1, 1]}}</tool_call>'
        obs, _, _, _, info = env.step(text)
        assert obs["text"].startswith("mean brightness") and info["answer_candidates"]
        sample = env.action_space.sample()
        env.step(sample)
        with pytest.raises(PixelisError, match="already registered"):
            register_tool(Brightness, _brightness)
    finally:
        unregister_tool("brightness")


def test_tool_bug_becomes_an_error_step():
    @dataclass(frozen=True)
    class Broken(Action):
        """Always fails."""

        name: ClassVar[str] = "broken"

    register_tool(Broken, lambda a, c: 1 / 0)
    try:
        env = PixelisEnv(square_tasks(2), tools=["broken", "answer"])
        env.reset(seed=0)
        obs, reward, *_ = env.step(Broken())
        assert "ZeroDivisionError" in obs["text"] and reward < 0
    finally:
        unregister_tool("broken")


def test_unknown_tool_name_suggests():
    with pytest.raises(PixelisError, match="Did you mean `zoom`"):
        PixelisEnv(square_tasks(2), tools=["zom"])


def test_env_constructor_checks():
    with pytest.raises(PixelisError, match="empty"):
        PixelisEnv([])
    with pytest.raises(PixelisError, match="render_mode"):
        PixelisEnv(square_tasks(1), render_mode="human")


def test_unloadable_media_is_skipped_at_reset(tmp_path):
    bad = Task(task_id="bad", question="?", answer="a", answer_type="text", media=tmp_path / "gone.png",
               metric="exact")
    good = square_tasks(1)[0]
    env = PixelisEnv(TaskList([bad, good]))
    for seed in range(6):
        _, info = env.reset(seed=seed)
        assert info["task_id"] == good.task_id


def test_make_env_unknown_id():
    with pytest.raises(PixelisError, match="Did you mean"):
        pixelis_env.make_env("Pixelis-VSl-v0")


# -------------------------------------------------------------- generic env
def test_generic_env_from_jsonl(tmp_path):
    image, box = square_image(1)
    (tmp_path / "imgs").mkdir()
    Image.fromarray(image).save(tmp_path / "imgs" / "a.png")
    rows = [{"id": "a", "media": "imgs/a.png", "question": "Colour of the square?", "answer": "B",
             "options": ["A. blue", "B. red"]},
            {"id": "b", "media": "imgs/a.png", "question": "Side in px?", "answer": 14}]
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = gym.make("Pixelis-Image-v0", tasks=str(path))
    obs, info = env.reset(options={"task_index": 0})
    assert "B. red" in obs["text"] and info["answer_candidates"] == ["A", "B"]
    assert env.step(Answer(text="B"))[1] == 1.0
    assert env.unwrapped.tasks[1].metric == "mra"


@pytest.mark.parametrize(("row", "message"), [
    ({"media": "a.png", "answer": 1}, "missing field `question`"),
    ({"media": "../a.png", "question": "?", "answer": 1}, "escapes the data root"),
    ({"media": "/etc/passwd", "question": "?", "answer": 1}, "absolute path"),
    ({"media": "nope.png", "question": "?", "answer": 1}, "not found"),
])
def test_generic_env_bad_rows_name_the_row(tmp_path, row, message):
    Image.fromarray(square_image(0)[0]).save(tmp_path / "a.png")
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message) as info:
        pixelis_env.make_env("Pixelis-Image-v0", tasks=str(path))
    assert "t.jsonl:1" in str(info.value)


def test_generic_env_from_arguments():
    env = pixelis_env.make_env("Pixelis-Image-v0", media=square_image(0)[0], question="q?", answer=3)
    env.reset(seed=0)
    assert env.step("<answer>3</answer>")[1] == 1.0


def test_action_error_is_a_value_error():
    assert issubclass(ActionError, ValueError)


def test_require_ocr_checks_tesseract_at_construction(monkeypatch):
    import pytesseract

    PixelisEnv(square_tasks(1), tool_config={"require_ocr": True})
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(pixelis_env.BackendUnavailableError, match="apt-get install"):
        PixelisEnv(square_tasks(1), tool_config={"require_ocr": True})


def test_grid_view_fills_six_frames():
    from pixelis_env.views import grid

    view = grid([np.full((48, 32, 3), 200, np.uint8)] * 6, 96)
    assert view.mean() > 190, "3x2 cells of 32x48 px are filled edge to edge, no black band"


def test_vector_env_with_different_tools_per_sub_env():
    from gymnasium.vector import SyncVectorEnv

    from pixelis_env import Segment

    envs = SyncVectorEnv([lambda: PixelisEnv(square_tasks(3), view_size=64)] * 2, autoreset_mode="Disabled")
    envs.reset(seed=0)
    _, _, _, _, infos = envs.step((Zoom(box=(0, 0, 0.5, 0.5)), Segment(point=(0.5, 0.5))))
    assert infos["tool"].tolist() == ["zoom", "segment"]
    assert "mask_id" in infos["tool_result"][1] and "pixels" in infos["tool_result"][0]
    _, _, _, _, infos = envs.step(("garbage", Zoom(box=(0, 0, 0.5, 0.5))))
    assert infos["error"][0] and infos["error"][1] is None
    envs.close()


def test_a_scorer_that_raises_is_an_error_step_not_a_crash():
    from pixelis_env.metrics import METRICS, register_metric

    register_metric("broken-test-metric", lambda prediction, truth: 1 / 0)
    try:
        task = Task(task_id="b", question="?", answer="x", answer_type="text", media=square_image(0)[0],
                    metric="broken-test-metric")
        env = PixelisEnv([task])
        env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(Answer(text="x"))
        assert "ZeroDivisionError" in info["error"] and not terminated and reward < 0
    finally:
        METRICS.pop("broken-test-metric")
