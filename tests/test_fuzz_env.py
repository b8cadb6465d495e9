"""Fuzzing ``step`` on every env id: arbitrary text, structured samples and garbage objects.

Whatever is sent, no exception escapes ``step``; an action known to be invalid gets an
error observation naming the problem, one known to be valid does not; the step and error
counters, the truncation at ``max_errors``/``max_steps``, the reward and the observation
stay consistent with a shadow count kept here. Most probes are invalid text (cheap);
structured samples that run real tools go to envs offering only cheap tools, except in
the slow run, where some run every tool. The default run steps about 3,000 times, the
slow run over 10,000 (both counted and asserted).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pixelis_env
from pixelis_env import ENV_IDS, PixelisError
from pixelis_env.actions import MAX_ANSWER_CHARS, MAX_SELECTED_FRAMES, Answer, InvalidAction, SelectFrames, Zoom
from pixelis_env.text_actions import MAX_ACTION_CHARS, MAX_JSON_DEPTH

SUITE_ARGS: dict[str, dict[str, Any]] = {env_id: {"num_tasks": 20} for env_id in ENV_IDS}
SUITE_ARGS["Pixelis-VSI-v0"] |= {"frames": 16, "resolution": (160, 120)}
SUITE_ARGS["Pixelis-Image-v0"] = {"media": np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8),
                                  "question": "What colour is the noise?", "answer": "grey"}
CHEAP_TOOLS = ("zoom", "select_frames", "properties", "answer")
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "long": {"max_steps": 40, "max_errors": 30, "invalid_penalty": 0.25},
    "cheap": {"tools": CHEAP_TOOLS, "max_steps": 40, "max_errors": 30},
}
"""Env settings fuzzed: the suite's own limits, long episodes (fewer resets), and cheap tools only."""
VIDEO_ONLY = {"select_frames", "track", "localize"}
BOX_TOOLS = ("zoom", "read_text", "segment", "properties", "localize", "track")
FRAME_KEYS = {"zoom": "frame", "read_text": "frame", "segment": "frame", "properties": "frame",
              "localize": "frame", "track": "end_frame"}
STEPS_PER_EXAMPLE = 30
HEAVY_ONE_IN = 5
"""In the slow run, one example in this many also sends a structured sample to an env with every tool."""


@dataclass(frozen=True)
class Probe:
    """A fuzzed action and what the env must answer: ``error``, ``ok`` or ``any``; ``needle`` is a
    regex the error text must match (case-insensitive)."""

    action: Any
    expect: str = "error"
    needle: str = ""


@dataclass(frozen=True)
class Ctx:
    """What the probes of the current episode may depend on."""

    frames: int
    duration: float
    video: bool
    tools: frozenset[str]
    types: int
    masks: int
    env: gym.Env


_ENVS: dict[tuple[str, str], gym.Env] = {}


def make(env_id: str, variant: str) -> gym.Env:
    """One env per id and variant for the whole module (construction is the slow part)."""
    key = (env_id, variant)
    if key not in _ENVS:
        _ENVS[key] = gym.make(env_id, **SUITE_ARGS[env_id], **VARIANTS[variant])
    return _ENVS[key]


def context(env: gym.Env) -> Ctx:
    base = env.unwrapped
    media = base.media
    return Ctx(frames=media.num_frames, duration=media.duration, video=media.is_video,
               tools=frozenset(s.name for s in base.tool_specs), types=len(base.actions.action_types),
               masks=len(base.ctx.state.get("masks", [])), env=env)


# ------------------------------------------------------------------ helpers
def call(name: Any, arguments: Any, **extra: Any) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments, **extra}) + "</tool_call>"


def static(ctx: Ctx, tool: str, needle: str) -> str:
    """The error expected for an argument the parser refuses: unknown tool first."""
    return needle if tool in ctx.tools else "unknown tool"


def dynamic(ctx: Ctx, tool: str, needle: str) -> str:
    """The error expected for an argument only the media refutes (frame past the end, ...)."""
    if tool not in ctx.tools:
        return "unknown tool"
    return "needs a video" if tool in VIDEO_ONLY and not ctx.video else needle


def runnable(ctx: Ctx, tool: str) -> bool:
    return tool in ctx.tools and (ctx.video or tool not in VIDEO_ONLY)


def base_arguments(tool: str, box: list[float]) -> dict[str, Any]:
    if tool == "track":
        return {"box": box, "start_frame": 0, "end_frame": 0}
    if tool == "select_frames":
        return {"frames": [0]}
    if tool == "answer":
        return {"text": "A"}
    return {"box": box}


coord = st.integers(0, 1000)
boxes = st.tuples(st.integers(0, 990), st.integers(0, 990)).flatmap(
    lambda xy: st.tuples(st.just(xy), st.integers(xy[0] + 2, 1000), st.integers(xy[1] + 2, 1000))
).map(lambda t: [t[0][0] / 1000, t[0][1] / 1000, t[1] / 1000, t[2] / 1000])
outside_unit = st.floats(1.001, 1e6) | st.floats(-1e6, -0.001)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)
TAGS = ("<tool_call>", "<answer>")
FRAGMENTS = ("<tool_call>", "</tool_call>", "<answer>", "</answer>", "{", "}", "[", "]", '"name"', '"arguments"',
             ":", ",", '"zoom"', '"select_frames"', '"box"', '"frame"', "0.5", "NaN", "1e999", "-1", "null", "true",
             '"', "\\", "\x00", "\u202e", "\U0001f600")
CHEAP_NAMES = ("zoom", "select_frames", "properties", "answer", "zom", "ZOOM", "", " zoom", "answer\x00")
ALL_NAMES = (*CHEAP_NAMES, "read_text", "segment", "track", "localize")


class Hostile:
    """An object every conversion of which fails (a buggy adapter's output)."""

    def _fail(self, *args: Any) -> Any:
        raise RuntimeError("hostile object")

    __int__ = __index__ = __float__ = __len__ = __iter__ = __getitem__ = _fail

    def __repr__(self) -> str:
        return "Hostile()"


GARBAGE = (None, 0, -1, 3.5, float("nan"), True, b"<answer>A</answer>", bytearray(b"x"),
           {"name": "zoom", "arguments": {}}, {0: 1}, set(), frozenset({1}), np.zeros(4),
           np.array("<answer>A</answer>"), object(), Zoom, Hostile(), [1, 2, 3], (1,), (), [], Ellipsis, 1 + 2j,
           ValueError("x"), range(3), np.float64("inf"), np.int64(3))
BAD_INDICES = (None, "zoom", -1, 10**30, float("inf"), float("-inf"), float("nan"), Hostile(), [0])
BAD_VALUES = (None, {}, [], "x", Hostile(), {"box": "all"})


# --------------------------------------------------------------- strategies
def noise(ctx: Ctx) -> st.SearchStrategy[Probe]:
    def probe(text: str) -> Probe:
        tagged = any(tag in text for tag in TAGS)
        return Probe(text, "any" if tagged else "error", "" if tagged else "no action found")
    return st.text(max_size=150).map(probe)


def soup(ctx: Ctx) -> st.SearchStrategy[Probe]:
    token = st.text(max_size=6) | st.sampled_from(FRAGMENTS)
    return st.lists(token, max_size=20).map(lambda parts: Probe("".join(parts), "any"))


def json_calls(ctx: Ctx, heavy: bool) -> st.SearchStrategy[Probe]:
    names = st.sampled_from(ALL_NAMES if heavy else CHEAP_NAMES) | json_values
    keys = st.sampled_from(["box", "point", "frame", "frames", "span", "mask_id", "text", "tracker", "start_frame",
                            "end_frame", "bx"])
    arguments = st.dictionaries(keys, json_values, max_size=4) | json_values
    return st.builds(lambda n, a: Probe(call(n, a), "any"), names, arguments)


def huge(ctx: Ctx) -> st.SearchStrategy[Probe]:
    wraps = st.sampled_from([("", ""), ("<tool_call>", "</tool_call>"), ("<answer>", "</answer>"),
                             ('<tool_call>{"name": "zoom", "arguments": {"box": "', '"}}</tool_call>')])

    def over(chunk: str, wrap: tuple[str, str], extra: int) -> Probe:
        body = chunk * (MAX_ACTION_CHARS // len(chunk) + 1 + extra)
        return Probe(wrap[0] + body + wrap[1], "error", "limit is")

    def under(chunk: str, wrap: tuple[str, str]) -> Probe:
        room = MAX_ACTION_CHARS - len(wrap[0]) - len(wrap[1])
        body = (chunk * (room // len(chunk) + 1))[:room]
        needle = {"": "no action found", "<tool_call>": "JSON", "<answer>": "answer longer than|empty"}
        return Probe(wrap[0] + body + wrap[1], "error", needle.get(wrap[0], "expected a list|JSON"))

    chunks = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="<>"), min_size=1, max_size=4)
    return (st.builds(over, chunks, wraps, st.integers(0, 3 * MAX_ACTION_CHARS))
            | st.builds(under, chunks.filter(lambda c: c.strip() and not c.lstrip().startswith(("{", "[", '"'))
                                             and not any(ch.isdigit() for ch in c)), wraps))


def deep(ctx: Ctx) -> st.SearchStrategy[Probe]:
    def nest(depth: int, form: str) -> Probe:
        if form == "list":
            body = "[" * depth + "]" * depth
        elif form == "dict":
            body = '{"a": ' * depth + "1" + "}" * depth
        else:
            body = '{"name": "zoom", "arguments": {"box": ' + "[" * depth + "]" * depth + "}}"
        return Probe(f"<tool_call>{body}</tool_call>", "error", "nested deeper")
    return (st.builds(nest, st.integers(MAX_JSON_DEPTH + 1, 7_000), st.sampled_from(["list", "argument"]))
            | st.builds(nest, st.integers(MAX_JSON_DEPTH + 1, 2_000), st.just("dict")))


def nonfinite(ctx: Ctx) -> st.SearchStrategy[Probe]:
    constants = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])

    def needle(tool: str, constant: str) -> str:
        """JSON's NaN/Infinity are refused while parsing; 1e999 parses (to inf) and meets the tool first."""
        return "finite" if "Inf" in constant or "NaN" in constant else static(ctx, tool, "finite")

    def probe(tool: str, box: list[float], where: int, constant: str) -> Probe:
        arguments = base_arguments(tool, box)
        arguments["box"] = [*box[:where], "@@", *box[where + 1:]]
        return Probe(call(tool, arguments).replace('"@@"', constant), "error", needle(tool, constant))

    def frame(tool: str, constant: str) -> Probe:
        arguments = base_arguments(tool, [0, 0, 1, 1])
        arguments[FRAME_KEYS[tool]] = "@@"
        return Probe(call(tool, arguments).replace('"@@"', constant), "error", needle(tool, constant))

    def span(constant: str) -> Probe:
        return Probe(call("select_frames", {"span": [0, "@@"]}).replace('"@@"', constant), "error",
                     needle("select_frames", constant))

    return (st.builds(probe, st.sampled_from(BOX_TOOLS), boxes, st.integers(0, 3), constants)
            | st.builds(frame, st.sampled_from(BOX_TOOLS), st.sampled_from(["NaN", "Infinity", "-Infinity"]))
            | st.builds(span, constants))


WRONG = {
    "box": ["all", True, None, 0.5, [0, 0, 1], [0, 0, "1", 1], {"x0": 0}, [[0, 0, 1, 1]], [True, 0, 1, 1]],
    "frame": ["0", True, None, 1.5, [0], {}],
    "frames": ["0,1", 3, None, [0.5], [[0]], [], ["0"]],
    "text": [None, [], {}, True, "   ", "x" * (MAX_ANSWER_CHARS + 1)],
    "tracker": [1, None, "sift", ""],
}


def wrong_types(ctx: Ctx) -> st.SearchStrategy[Probe]:
    def argument(tool: str, key: str, value: Any) -> Probe:
        arguments = base_arguments(tool, [0.1, 0.1, 0.9, 0.9])
        if key == "frame":
            key = FRAME_KEYS.get(tool, "frame")
        arguments[key] = value
        return Probe(call(tool, arguments), "error", static(ctx, tool, re.escape(key)))

    pairs = st.sampled_from([(t, "box") for t in BOX_TOOLS] + [(t, "frame") for t in BOX_TOOLS]
                            + [("select_frames", "frames"), ("answer", "text"), ("track", "tracker")])
    by_key = pairs.flatmap(lambda p: st.tuples(st.just(p), st.sampled_from(WRONG[p[1]])))
    names = st.sampled_from([3, None, ["zoom"], {"zoom": 1}, True, 1.5]).map(
        lambda n: Probe(call(n, {}), "error", "name"))
    arguments = st.tuples(st.sampled_from(CHEAP_TOOLS), st.sampled_from([[], "box", 3, True, None])).map(
        lambda t: Probe(call(t[0], t[1]), "error", static(ctx, t[0], "arguments")))
    payloads = st.sampled_from(["[1, 2]", '"zoom"', "3", "null", "true"]).map(
        lambda p: Probe(f"<tool_call>{p}</tool_call>", "error", "JSON object"))
    return by_key.map(lambda t: argument(t[0][0], t[0][1], t[1])) | names | arguments | payloads


def out_of_range(ctx: Ctx) -> st.SearchStrategy[Probe]:
    def outside(tool: str, box: list[float], where: int, value: float) -> Probe:
        arguments = base_arguments(tool, box)
        arguments["box"] = [*box[:where], value, *box[where + 1:]]
        return Probe(call(tool, arguments), "error", static(ctx, tool, r"outside \[0, 1\]"))

    def flat(tool: str, box: list[float], axis: int) -> Probe:
        box = list(box)
        box[axis + 2] = box[axis]
        return Probe(call(tool, {**base_arguments(tool, box), "box": box}), "error", static(ctx, tool, "smaller"))

    def past_end(tool: str, box: list[float], beyond: int) -> Probe:
        arguments = base_arguments(tool, box)
        arguments[FRAME_KEYS[tool]] = ctx.frames + beyond
        return Probe(call(tool, arguments), "error", dynamic(ctx, tool, "outside the video"))

    def negative(tool: str, below: int) -> Probe:
        arguments = base_arguments(tool, [0, 0, 1, 1])
        arguments[FRAME_KEYS[tool]] = -1 - below
        return Probe(call(tool, arguments), "error", static(ctx, tool, "negative"))

    def too_many(first: int) -> Probe:
        frames = list(range(first, first + MAX_SELECTED_FRAMES + 1))
        return Probe(call("select_frames", {"frames": frames}), "error", static(ctx, "select_frames", "at most 8"))

    def frames_past_end(beyond: int) -> Probe:
        return Probe(call("select_frames", {"frames": [0, ctx.frames + beyond]}), "error",
                     dynamic(ctx, "select_frames", "outside the video"))

    def span_past_end(after: float) -> Probe:
        start = math.ceil(ctx.duration * 100) / 100 + after
        return Probe(call("select_frames", {"span": [start, start + 1]}), "error",
                     dynamic(ctx, "select_frames", "after the video ends"))

    def no_mask(extra: int) -> Probe:
        return Probe(call("properties", {"mask_id": ctx.masks + extra}), "error", static(ctx, "properties", "no mask"))

    named = st.sampled_from([
        Probe(call("zom", {"box": [0, 0, 1, 1]}), "error", "unknown tool"),
        Probe(call("readtext", {}), "error", "unknown tool"),
        Probe(call("zoom", {"box": [0, 0, 1, 1]}, why=1), "error", "unexpected keys"),
        Probe(call("zoom", {"box": [0, 0, 1, 1], "bx": 1}), "error", static(ctx, "zoom", "unknown argument")),
        Probe(call("zoom", {}), "error", static(ctx, "zoom", "missing required argument")),
        Probe(call("properties", {"mask_id": 0, "box": [0, 0, 1, 1]}), "error",
              static(ctx, "properties", "exactly one of")),
        Probe(call("select_frames", {"frames": [0], "span": [0, 1]}), "error",
              static(ctx, "select_frames", "exactly one of")),
        Probe('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1, 1]}', "error", "not closed"),
        Probe("<answer>A", "error", "not closed"),
        Probe(call("zoom", {"box": [0, 0, 1, 1], "frame": int("9" * 30)}), "error",
              dynamic(ctx, "zoom", "outside the video")),
        Probe('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1, ' + "1" * 5000 + "]}}</tool_call>",
              "error", "unreadable value"),
    ])
    tools = st.sampled_from(BOX_TOOLS)
    return (st.builds(outside, tools, boxes, st.integers(0, 3), outside_unit)
            | st.builds(flat, tools, boxes, st.integers(0, 1))
            | st.builds(past_end, tools, boxes, st.integers(0, 10**6))
            | st.builds(negative, tools, st.integers(0, 10**6))
            | st.builds(too_many, st.integers(0, 100))
            | st.builds(frames_past_end, st.integers(0, 10**4))
            | st.builds(span_past_end, st.floats(0, 1e4))
            | st.builds(no_mask, st.integers(0, 100))
            | named)


def garbage(ctx: Ctx) -> st.SearchStrategy[Probe]:
    singles = st.sampled_from(GARBAGE).map(
        lambda g: Probe(g, "error", f"cannot read an action of type {re.escape(type(g).__name__)}"))
    adapter = st.text(min_size=1, max_size=30).filter(str.strip).map(
        lambda m: Probe(InvalidAction(m), "error", re.escape(m[:20])))
    bad_index = st.tuples(st.sampled_from(BAD_INDICES), st.sampled_from(BAD_VALUES))
    bad_values = st.tuples(st.integers(0, ctx.types - 1), st.sampled_from(BAD_VALUES))
    pairs = (bad_index | bad_values).flatmap(lambda p: st.sampled_from([p, list(p)])).map(
        lambda p: Probe(p, "error", "structured action|reading the action"))
    return singles | adapter | pairs


def mutated(ctx: Ctx) -> st.SearchStrategy[Probe]:
    """A sample of the env's structured space with one field broken; always invalid."""
    space = ctx.env.unwrapped.actions

    def probe(seed: int, how: str, amount: int) -> Probe:
        space.space.seed(seed)
        index, values = space.space.sample()
        values = dict(values)
        action_type = space.action_types[index]
        name = action_type.name
        if how == "values" or name == "answer":
            return Probe((index, {}), "error", "structured action")
        if how == "index":
            return Probe((BAD_INDICES[amount % len(BAD_INDICES)], values), "error",
                         "structured action|reading the action")
        if name == "select_frames":
            values["frames_or_span_choice"] = 0
            values["frames"] = np.full_like(values["frames"], ctx.frames + amount)
            return Probe((index, values), "error", dynamic(ctx, name, "outside the video"))
        for key in action_type.one_of[0] if action_type.one_of else ():
            if key == "box":
                values["_or_".join(action_type.one_of[0]) + "_choice"] = action_type.one_of[0].index("box")
        if how == "frame":
            key = "end_frame" if name == "track" else "frame"
            values[key] = [ctx.frames + amount, -1 - amount, float("inf"), float("nan")][amount % 4]
            needle = dynamic(ctx, name, "outside the video") if amount % 4 == 0 else "negative|structured action"
            return Probe((index, values), "error", needle)
        box = np.array(values["box"], np.float64)
        box[amount % 4] = [float("nan"), 2.0, -1.0, float("inf")][amount % 4]
        values["box"] = box
        return Probe((index, values), "error", "finite|outside")

    return st.builds(probe, st.integers(0, 2**32 - 1), st.sampled_from(["values", "index", "frame", "box"]),
                     st.integers(0, 10**4))


def typed(ctx: Ctx, text: bool) -> st.SearchStrategy[Probe]:
    """Known-good cheap actions (typed or as text), and typed ones with a frame past the end."""
    def expect(tool: str) -> tuple[str, str]:
        if runnable(ctx, tool):
            return "ok", ""
        if tool not in ctx.tools:
            return "error", "unknown tool" if text else "not available"
        return "error", "needs a video"

    def as_text(action: Any) -> Any:
        if not text:
            return action
        return f"Let me look. {pixelis_env.format_action(action)} ...and then answer."

    def zoom(box: list[float], frame: int) -> Probe:
        return Probe(as_text(Zoom(box=tuple(box), frame=frame)), *expect("zoom"))

    def zoom_past(box: list[float], beyond: int) -> Probe:
        outcome = dynamic(ctx, "zoom", "outside the video")
        if not text and "zoom" not in ctx.tools:
            outcome = "not available"
        return Probe(as_text(Zoom(box=tuple(box), frame=ctx.frames + beyond)), "error", outcome)

    def select(frames: list[int]) -> Probe:
        return Probe(as_text(SelectFrames(frames=tuple(frames))), *expect("select_frames"))

    def answer(reply: str) -> Probe:
        return Probe(as_text(Answer(text=reply)), *expect("answer"))

    frames = st.integers(0, ctx.frames - 1)
    replies = st.sampled_from(["A", "B", "3", "red", "2.5-4"])
    return (st.builds(zoom, boxes, frames) | st.builds(zoom_past, boxes, st.integers(0, 100))
            | st.builds(select, st.lists(frames, min_size=1, max_size=MAX_SELECTED_FRAMES, unique=True))
            | st.builds(answer, replies))


def samples(ctx: Ctx) -> st.SearchStrategy[Probe]:
    """A structured sample of the env's own space (valid unless a frame is past this video's end)."""
    space = ctx.env.unwrapped.actions.space

    def probe(seed: int) -> Probe:
        space.seed(seed)
        return Probe(space.sample(), "any")
    return st.integers(0, 2**32 - 1).map(probe)


KINDS: dict[str, Callable[[Ctx, bool], st.SearchStrategy[Probe]]] = {
    "noise": lambda c, h: noise(c),
    "soup": lambda c, h: soup(c),
    "json": json_calls,
    "huge": lambda c, h: huge(c),
    "deep": lambda c, h: deep(c),
    "nonfinite": lambda c, h: nonfinite(c),
    "wrong_type": lambda c, h: wrong_types(c),
    "out_of_range": lambda c, h: out_of_range(c),
    "garbage": lambda c, h: garbage(c),
    "mutated": lambda c, h: mutated(c),
    "typed": lambda c, h: typed(c, text=False),
    "text": lambda c, h: typed(c, text=True),
    "sample": lambda c, h: samples(c),
}
WEIGHTS = {"noise": 3, "soup": 2, "json": 2, "huge": 1, "deep": 1, "nonfinite": 2, "wrong_type": 3,
           "out_of_range": 4, "garbage": 2, "mutated": 2, "typed": 1, "text": 1, "sample": 2}
WEIGHTED = [kind for kind, weight in WEIGHTS.items() for _ in range(weight)]


# ------------------------------------------------------------------ checker
class Shadow:
    """Steps an env and checks it against counts kept here."""

    def __init__(self, env: gym.Env, seed: int, counts: Counter) -> None:
        self.env, self.base, self.seed, self.counts = env, env.unwrapped, seed, counts
        self.reset()

    def reset(self) -> None:
        obs, info = self.env.reset(seed=self.seed)
        self.seed += 1
        self.steps = self.errors = 0
        assert self.env.observation_space.contains(obs)
        assert info["step"] == 0 and info["errors"] == 0 and info["error"] is None
        self.counts["episodes"] += 1

    def step(self, probe: Probe) -> None:
        obs, reward, terminated, truncated, info = self.env.step(probe.action)
        self.steps += 1
        self.counts["steps"] += 1
        error = info["error"]
        if error is not None:
            self.errors += 1
            self.counts["errors"] += 1
            assert isinstance(error, str) and error.strip()
            assert obs["text"].startswith("error:"), obs["text"][:200]
            assert reward == -self.base.invalid_penalty and not terminated
            assert info["reward_terms"] == {"task": 0.0, "invalid": -self.base.invalid_penalty}
        else:
            assert not obs["text"].startswith("error:"), obs["text"][:200]
            assert math.isfinite(reward) and 0.0 <= reward <= 1.0
        if probe.expect == "error":
            assert error is not None, f"accepted an invalid action: {probe!r:.300}"
            assert re.search(probe.needle, error, re.IGNORECASE), f"{error!r:.300} does not name {probe.needle!r}"
        elif probe.expect == "ok":
            assert error is None, f"refused a valid action {probe!r:.300}: {error}"
        assert info["record"].error == error and info["record"].step == self.steps
        assert info["step"] == self.steps and info["errors"] == self.errors
        assert len(self.base.records) == self.steps
        expected = not terminated and (self.errors >= self.base.max_errors or self.steps >= self.base.max_steps)
        assert truncated == expected, (self.steps, self.errors, terminated, truncated)
        assert self.env.observation_space.contains(obs)
        if terminated:
            assert isinstance(probe.action, (Answer, str, tuple, list)) and "score" in info
        if terminated or truncated:
            with pytest.raises(PixelisError, match="reset"):
                self.env.step("<answer>A</answer>")
            self.reset()


def fuzz(env_id: str, examples: int, heavy: bool = False) -> Counter:
    """Per variant, ``examples`` hypothesis examples of ``STEPS_PER_EXAMPLE`` probes on ``env_id``; the counts."""
    counts: Counter = Counter()
    for variant in VARIANTS:
        fuzz_variant(env_id, variant, examples, heavy, counts)
    return counts


def fuzz_variant(env_id: str, variant: str, examples: int, heavy: bool, counts: Counter) -> None:
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        shadow = Shadow(make(env_id, variant), data.draw(st.integers(0, 10**6), label="seed"), counts)
        counts[f"variant:{variant}"] += 1
        heavy_now = heavy and data.draw(st.integers(0, HEAVY_ONE_IN - 1), label="heavy") == 0
        for i in range(STEPS_PER_EXAMPLE):
            ctx = context(shadow.env)
            if heavy_now and i == 0:
                kind = "sample"  # may run any tool (OCR, tracking): one per heavy example
            else:
                kind = data.draw(st.sampled_from(WEIGHTED), label="kind")
                if kind == "sample" and variant != "cheap":
                    kind = "mutated"
            probe = data.draw(KINDS[kind](ctx, heavy), label=kind)
            counts[f"kind:{kind}"] += 1
            shadow.step(probe)

    run()


# -------------------------------------------------------------------- tests
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_fuzzed_steps_never_raise_and_keep_the_episode_consistent(env_id):
    counts = fuzz(env_id, examples=5)
    assert counts["steps"] >= 5 * len(VARIANTS) * STEPS_PER_EXAMPLE
    assert counts["errors"] >= counts["steps"] // 2
    assert all(counts[f"variant:{v}"] >= 5 for v in VARIANTS)


@pytest.mark.slow
def test_ten_thousand_fuzzed_steps_over_every_env_id():
    started = time.perf_counter()
    totals: Counter = Counter()
    for env_id in ENV_IDS:
        counts = fuzz(env_id, examples=17, heavy=True)
        assert counts["steps"] >= 17 * len(VARIANTS) * STEPS_PER_EXAMPLE
        totals.update(counts)
    assert totals["steps"] >= 10_000
    assert all(totals[f"kind:{kind}"] for kind in KINDS)
    print(f"fuzzed {totals['steps']} steps ({totals['errors']} errors, {totals['episodes']} episodes) over "
          f"{len(ENV_IDS)} env ids in {time.perf_counter() - started:.0f} s")


@pytest.mark.parametrize(("action", "message"), [
    ('<tool_call>{"name": "zoom", "arguments": {"box": null}}</tool_call>', "zoom.box: required, got null"),
    ('<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 1, 1], "frame": null}}</tool_call>',
     "zoom.frame: got null"),
    ('<tool_call>{"name": "read_text", "arguments": {"box": null}}</tool_call>', "read_text.box: got null"),
    ((-1, {"text": "A"}), "structured action: index -1 is outside"),
    ((float("inf"), {}), "malformed structured action (OverflowError"),
    ((0, {"box": np.zeros(4), "frame": float("inf")}), "malformed structured action (OverflowError"),
    ((Hostile(), {}), "internal error in reading the action: RuntimeError"),
])
def test_inputs_that_once_escaped_step_or_reached_a_tool(action, message):
    """Found by the fuzzer: null arguments reached the tools, index -1 wrapped around to the last
    tool, and an OverflowError or a hostile object made ``step`` itself raise."""
    env = make("Pixelis-Image-v0", "default")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert message in info["error"] and obs["text"].startswith("error:") and not terminated
