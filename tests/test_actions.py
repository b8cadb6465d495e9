"""The grammar's three surfaces round-trip to the same typed Action; bad input is named."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelis_env import ActionError, PixelisEnv, TaskList, format_action, parse_action
from pixelis_env.action_space import ActionSpace, SpaceLimits
from pixelis_env.actions import (
    BUILTIN_ACTIONS,
    Answer,
    Localize,
    Properties,
    ReadText,
    Segment,
    SelectFrames,
    Track,
    Zoom,
)
from pixelis_env.wrappers import FlatActionWrapper
from tests.conftest import moving_square_video, square_tasks

LIMITS = SpaceLimits(max_frames=32, max_masks=16, max_seconds=20.0)
SPACE = ActionSpace(BUILTIN_ACTIONS, LIMITS)

unit = st.integers(0, 10_000).map(lambda v: v / 10_000)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x0, x1 = sorted(draw(st.lists(unit, min_size=2, max_size=2)))
    y0, y1 = sorted(draw(st.lists(unit, min_size=2, max_size=2)))
    x1, y1 = max(x1, x0 + 0.001), max(y1, y0 + 0.001)
    if x1 > 1:
        x0, x1 = 0.999, 1.0
    if y1 > 1:
        y0, y1 = 0.999, 1.0
    return (round(x0, 4), round(y0, 4), round(x1, 4), round(y1, 4))


frames = st.integers(0, LIMITS.max_frames - 1)
actions = st.one_of(
    st.builds(Zoom, box=boxes(), frame=frames),
    st.builds(SelectFrames, frames=st.lists(frames, min_size=1, max_size=8).map(tuple)),
    st.builds(lambda a, b: SelectFrames(span=(a, a + b)), st.integers(0, 900).map(lambda v: v / 100),
              st.integers(1, 900).map(lambda v: v / 100)),
    st.builds(Segment, point=st.tuples(unit, unit), frame=frames),
    st.builds(Segment, box=boxes(), frame=frames),
    st.builds(Properties, mask_id=st.integers(0, 15)),
    st.builds(Properties, box=boxes(), frame=frames),
    st.builds(ReadText, box=boxes(), frame=frames),
    st.builds(Track, box=boxes(), start_frame=frames, end_frame=frames, tracker=st.sampled_from(["csrt", "kcf"])),
    st.builds(Localize, box=boxes(), frame=frames),
    st.builds(Answer, text=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=16)),
)


@given(actions)
@settings(max_examples=300, deadline=None)
def test_text_round_trip(action):
    assert parse_action(format_action(action), BUILTIN_ACTIONS) == action


@given(actions.filter(lambda a: not isinstance(a, Answer)))
@settings(max_examples=300, deadline=None)
def test_structured_space_round_trip(action):
    sample = SPACE.to_space(action)
    assert SPACE.space.contains(sample)
    assert SPACE.from_space(sample) == action


def test_structured_answer_round_trip():
    answer = Answer(text="B")
    assert SPACE.from_space(SPACE.to_space(answer)) == answer


def test_every_space_sample_is_a_valid_action():
    SPACE.space.seed(0)
    for _ in range(2000):
        assert SPACE.from_space(SPACE.space.sample()).name


@given(st.text(max_size=300))
@settings(max_examples=500, deadline=None)
def test_parser_raises_only_its_own_error_on_any_text(text):
    for candidate in (text, f"<tool_call>{text}</tool_call>", f"<answer>{text}</answer>"):
        with contextlib.suppress(ActionError):
            parse_action(candidate, BUILTIN_ACTIONS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@given(st.sampled_from([a.name for a in BUILTIN_ACTIONS] + ["zom", ""]),
       st.dictionaries(st.sampled_from(["box", "point", "frame", "frames", "span", "mask_id", "text", "tracker",
                                        "start_frame", "end_frame", "bx"]), json_values, max_size=4))
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parser_on_structured_garbage(name, arguments):
    text = "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
    try:
        action = parse_action(text, BUILTIN_ACTIONS)
    except ActionError:
        return
    assert action.name == name


@pytest.mark.parametrize(("text", "message"), [
    ("zoom please", "no action found"),
    ("<tool_call>{\"name\": \"zoom\"", "not closed"),
    ("<tool_call>{name: zoom}</tool_call>", "not valid JSON"),
    ('<tool_call>{"name": "zom", "arguments": {}}</tool_call>', "Did you mean `zoom`"),
    ('<tool_call>{"name": "zoom", "arguments": {"bx": [0, 0, 1, 1]}}</tool_call>', "Did you mean `box`"),
    ('<tool_call>{"name": "zoom", "arguments": {}}</tool_call>', "missing required argument `box`"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": [0.5, 0, 0.2, 1]}}</tool_call>', "x0 (0.5) must be smaller"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1.5, 1]}}</tool_call>', "outside [0, 1]"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1]}}</tool_call>', "expected 4 numbers"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, NaN, 1]}}</tool_call>', "finite"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": "all"}}</tool_call>', "expected a list"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1, 1], "frame": 1.5}}</tool_call>', "integer"),
    ('<tool_call>{"name": "select_frames", "arguments": {"frames": [0,1,2,3,4,5,6,7,8]}}</tool_call>', "at most 8"),
    ('<tool_call>{"name": "select_frames", "arguments": {}}</tool_call>', "exactly one of"),
    ('<tool_call>{"name": "segment", "arguments": {"point": [0.1, 0.1], "box": [0, 0, 1, 1]}}</tool_call>',
     "exactly one of"),
    ('<tool_call>{"name": "track", "arguments": {"box": [0, 0, 1, 1], "start_frame": 0, "end_frame": 3, '
     '"tracker": "csrtt"}}</tool_call>', "Did you mean `csrt`"),
    ("<answer>   </answer>", "empty"),
    ("<answer><answer></answer>", "another `<answer>`"),
    ('<tool_call>[1, 2]</tool_call>', "must be a JSON object"),
    ('<tool_call>' + "[" * 50 + "]" * 50 + '</tool_call>', "nested deeper"),
    ("x" * 20_000, "limit is"),
])
def test_parser_names_the_problem(text, message):
    with pytest.raises(ActionError, match=None) as info:
        parse_action(text, BUILTIN_ACTIONS)
    assert message in str(info.value)


def test_parser_takes_the_first_block_and_tolerates_surrounding_text():
    text = ('I will zoom. <tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 0.5, 0.5]}}</tool_call>'
            "<answer>A</answer>")
    assert parse_action(text, BUILTIN_ACTIONS) == Zoom(box=(0, 0, 0.5, 0.5))
    assert parse_action("<answer> B. </answer>", BUILTIN_ACTIONS) == Answer(text="B.")


def test_describe_is_generated_from_fields():
    text = Zoom.describe()
    assert "box (box)" in text and "frame (frame, optional)" in text


# ------------------------------------------------------------------ flat encoding
@pytest.fixture
def flat_video_env():
    from pixelis_env import Task
    from pixelis_env.media import ArrayVideo

    video = moving_square_video(frames=12)
    task = Task(task_id="v", question="?", answer=3.0, answer_type="number", metric="mra",
                media=ArrayVideo(video, fps=4.0))
    source = TaskList([task], media_kinds=frozenset({"video"}), max_frames=12, max_seconds=3.0)
    env = FlatActionWrapper(PixelisEnv(source, view_size=64, tools=["zoom", "select_frames", "answer"]))
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("action", [
    Zoom(box=(0.1, 0.2, 0.35, 0.9), frame=7),
    SelectFrames(frames=(0, 3, 11)),
    SelectFrames(span=(0.5, 2.25)),
    Answer(text="12.5"),
])
def test_flat_round_trip(flat_video_env, action):
    assert flat_video_env.decode(flat_video_env.encode(action)) == action


def test_flat_samples_always_step(flat_video_env):
    flat_video_env.action_space.seed(1)
    for _ in range(50):
        obs, reward, terminated, truncated, info = flat_video_env.step(flat_video_env.action_space.sample())
        if terminated or truncated:
            flat_video_env.reset()


def test_flat_number_answer_and_non_finite_vector(image_env):
    env = FlatActionWrapper(image_env)
    env.reset(seed=0)
    vector = env.encode(Answer(text="13"))
    assert env.decode(vector) == Answer(text="13")
    bad = np.full(env.action_space.shape, np.nan, np.float32)
    obs, reward, *_ , info = env.step(bad)
    assert "finite" in info["error"] and reward < 0


def test_square_tasks_fixture_is_deterministic():
    assert [t.answer for t in square_tasks()] == [t.answer for t in square_tasks()]
