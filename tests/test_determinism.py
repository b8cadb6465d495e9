"""Same seed, same episode: byte-identical observations, rewards, infos and trajectories.

For every env id, two fresh envs played by a stochastic agent reseeded per episode give
identical episodes (wall times excluded); a single env, a sync vector env and an async
vector env give identical trajectories, observation bytes included (a wrapper stamps each
observation's SHA-256 into the step record).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from agents import make_vector_env, rollout
from pixelis_env import ENV_IDS
from pixelis_env.trajectory import Trajectory
from tests.test_fuzz_env import SUITE_ARGS

EPISODES = 6


def digest(obs: Mapping[str, Any]) -> str:
    """SHA-256 of an observation's exact bytes (image, shape, dtype and text)."""
    image = np.ascontiguousarray(obs["image"])
    sha = hashlib.sha256(f"{image.dtype}{image.shape}".encode())
    sha.update(image.tobytes())
    sha.update(obs["text"].encode())
    return sha.hexdigest()


def canonical(value: Any) -> Any:
    """Plain comparable data: arrays by dtype, shape and hash, NaN as a string."""
    if isinstance(value, np.ndarray):
        return ["array", str(value.dtype), list(value.shape),
                hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()]
    if isinstance(value, np.generic):
        return canonical(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return canonical({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


class SeededAgent:
    """A few random tool calls as text, then a random answer; the rollout reseeds it per episode.

    It knows nothing of the env (so it works behind an async vector env); calls that do
    not fit the media (a frame past the end, a video tool on an image) are error steps,
    which must be just as reproducible.
    """

    def __init__(self) -> None:
        self.seed(0)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.calls = int(self.rng.integers(1, 4))

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> str:
        rng = self.rng
        if self.calls == 0:
            candidates = info.get("answer_candidates") or [f"{rng.lognormal(1.0, 1.0):.2f}"]
            return f"<answer>{candidates[int(rng.integers(len(candidates)))]}</answer>"
        self.calls -= 1
        x0, y0 = (round(float(v), 3) for v in rng.uniform(0, 0.7, 2))
        w, h = (round(float(v), 3) for v in rng.uniform(0.1, 0.3, 2))
        box = [x0, y0, x0 + w, y0 + h]
        tool = str(rng.choice(["zoom", "zoom", "select_frames", "properties", "segment", "track"]))
        arguments: dict[str, Any] = {"box": box, "frame": int(rng.integers(0, 3))}
        if tool == "select_frames":
            arguments = {"frames": sorted({int(v) for v in rng.integers(0, 16, 3)})}
        elif tool == "segment":
            arguments = {"point": [round(x0 + w / 2, 3), round(y0 + h / 2, 3)], "frame": arguments["frame"]}
        elif tool == "track":
            arguments = {"box": box, "start_frame": 0, "end_frame": int(rng.integers(1, 4)), "tracker": "kcf"}
        return "<tool_call>" + json.dumps({"name": tool, "arguments": arguments}) + "</tool_call>"


class StampObservations(gym.Wrapper):
    """Stamps the SHA-256 of each observation (and of the reset one) into the step record."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._reset_digest: str | None = digest(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        stamps = {"obs_sha256": digest(obs)}
        if self._reset_digest is not None:
            stamps["reset_obs_sha256"], self._reset_digest = self._reset_digest, None
        record = info["record"]
        info["record"] = dataclasses.replace(record, tool_result={**record.tool_result, **stamps})
        return obs, reward, terminated, truncated, info


def make(env_id: str) -> gym.Env:
    return StampObservations(gym.make(env_id, **SUITE_ARGS[env_id]))


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two nested structures first differ, and how (for a readable failure)."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            found = first_difference(a.get(key), b.get(key), f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r:.200} != {b!r:.200}"


def untimed(trajectories: Sequence[Trajectory]) -> list[dict[str, Any]]:
    """Trajectories as JSON without their wall times."""
    out = []
    for trajectory in trajectories:
        data = trajectory.to_json()
        for step in data["steps"]:
            step.pop("seconds")
        out.append(data)
    return out


def play(env_id: str, seeds: Sequence[int]) -> list[Any]:
    """Every observation digest, reward, flag and info of one episode per seed, in a fresh env."""
    env, agent = gym.make(env_id, **SUITE_ARGS[env_id]), SeededAgent()
    log: list[Any] = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            agent.seed(seed)
            agent.reset(obs, info)
            log.append(["reset", digest(obs), canonical(info)])
            done = False
            while not done:
                obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
                log.append([digest(obs), reward, terminated, truncated, canonical(info)])
                done = terminated or truncated
    finally:
        env.close()
    return log


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_gives_byte_identical_episodes(env_id):
    first, again = play(env_id, range(EPISODES)), play(env_id, range(EPISODES))
    assert first == again, first_difference(first, again)
    assert sum(1 for entry in first if entry[0] != "reset") > EPISODES
    assert play(env_id, range(100, 100 + EPISODES)) != first


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_sync_and_async_vector_envs_give_identical_trajectories(env_id):
    single = untimed(rollout(make(env_id), SeededAgent(), episodes=EPISODES, seed=7))
    assert all("obs_sha256" in step["tool_result"] for t in single for step in t["steps"])
    for asynchronous in (False, True):
        envs = make_vector_env([lambda: make(env_id)] * 2, asynchronous=asynchronous)
        try:
            vector = rollout(envs, [SeededAgent(), SeededAgent()], episodes=EPISODES, seed=7)
        finally:
            envs.close()
        vector = untimed(vector)
        assert vector == single, f"asynchronous={asynchronous}: {first_difference(single, vector)}"
