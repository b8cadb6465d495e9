"""The rollout: deterministic records from single and vector envs, with the caller's
rewards and the agent's generations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from agents import AgentPool, Generation, OracleAgent, RandomAgent, make_vector_env, rollout, summarize
from pixelis_env import PixelisEnv, PixelisError, load_jsonl, save_jsonl
from pixelis_env.trajectory import Trajectory
from tests.conftest import square_tasks

ZOOM = '<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 0.5, 0.5]}}</tool_call>'


def make_env() -> PixelisEnv:
    return PixelisEnv(square_tasks(), view_size=64, max_steps=4)


def untimed(trajectories: Sequence[Trajectory]) -> list[dict[str, Any]]:
    """Trajectories as JSON without wall times (the only field that may differ between runs)."""
    out = []
    for trajectory in trajectories:
        data = trajectory.to_json()
        for step in data["steps"]:
            step.pop("seconds")
        out.append(data)
    return out


class ScriptedTextAgent:
    """Zooms, then answers; reports made-up log-probs so the rollout has some to record."""

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.steps = 0

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Generation:
        self.steps += 1
        text = ZOOM if self.steps == 1 else "<answer>12</answer>"
        return Generation(action=text, text=text, logprobs=[-0.5] * self.steps, prompt_ref=f"ref-{self.steps}")


class Bonus(gym.Wrapper):
    """A reward wrapper in the style of the package's: adds a term to reward and info."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["reward_terms"] = {**info["reward_terms"], "bonus": 0.25}
        return obs, reward + 0.25, terminated, truncated, info


class WithoutRecord(gym.Wrapper):
    """An env whose info lacks ``record`` (the rollout falls back to the env's log)."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info.pop("record", None)
        return obs, reward, terminated, truncated, info


def test_single_env_rollout_is_deterministic_under_a_seed() -> None:
    env = make_env()
    first = rollout(env, RandomAgent(env), episodes=6, seed=11)
    again = rollout(env, RandomAgent(env), episodes=6, seed=11)
    assert untimed(first) == untimed(again)
    assert [t.seed for t in first] == list(range(11, 17))
    assert untimed(rollout(env, RandomAgent(env), episodes=6, seed=12)) != untimed(first)


def test_records_hold_generation_rewards_terms_and_observations() -> None:
    env = Bonus(make_env())
    (trajectory,) = rollout(env, ScriptedTextAgent(), seed=0)
    zoom, answer = trajectory.steps
    assert zoom.tool == "zoom" and zoom.text_action == ZOOM and zoom.observation.startswith("zoomed to")
    assert zoom.logprobs == [-0.5] and answer.logprobs == [-0.5, -0.5]
    assert (zoom.prompt_ref, answer.prompt_ref) == ("ref-1", "ref-2")
    assert zoom.reward == 0.25 and zoom.reward_terms == {"task": 0.0, "bonus": 0.25}
    assert answer.reward_terms["bonus"] == 0.25 and answer.reward == pytest.approx(answer.reward_terms["task"] + 0.25)
    assert trajectory.terminated and trajectory.answer == "12" and trajectory.total_reward == pytest.approx(
        sum(s.reward for s in trajectory.steps))
    assert all(s.seconds > 0 for s in trajectory.steps)


def test_single_env_without_info_record_uses_the_env_log() -> None:
    with_record = rollout(make_env(), ScriptedTextAgent(), episodes=3, seed=5)
    without = rollout(WithoutRecord(make_env()), ScriptedTextAgent(), episodes=3, seed=5)
    assert untimed(without) == untimed(with_record)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("episodes", [2, 7])
def test_vector_rollout_equals_single_env_rollout(asynchronous: bool, episodes: int) -> None:
    single = rollout(make_env(), ScriptedTextAgent(), episodes=episodes, seed=3)
    finished: list[Trajectory] = []
    envs = make_vector_env([make_env] * 3, asynchronous=asynchronous)
    try:
        vector = rollout(envs, [ScriptedTextAgent() for _ in range(3)], episodes=episodes, seed=3,
                         on_episode=finished.append)
    finally:
        envs.close()
    assert untimed(vector) == untimed(single)
    assert sorted(t.seed for t in finished) == list(range(3, 3 + episodes))


def test_vector_rollout_reseeds_stochastic_agents_per_episode() -> None:
    env = make_env()
    single = rollout(env, RandomAgent(env), episodes=8, seed=0)
    envs = make_vector_env([make_env] * 3)
    vector = rollout(envs, [RandomAgent(e) for e in envs.envs], episodes=8, seed=0)
    assert untimed(vector) == untimed(single)
    oracle = rollout(envs, [OracleAgent(e) for e in envs.envs], episodes=4, seed=0)
    assert summarize(oracle)["score"] == 1.0


def test_vector_rollout_records_survive_jsonl(tmp_path: Any) -> None:
    envs = make_vector_env([make_env] * 2)
    trajectories = rollout(envs, [ScriptedTextAgent(), ScriptedTextAgent()], episodes=3, seed=0)
    path = save_jsonl(trajectories, tmp_path / "episodes.jsonl")
    assert untimed(list(load_jsonl(path))) == untimed(trajectories)


class CountingBatchAgent:
    """A batched agent: one call per vector step, answering right away."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.seeds: dict[int, int | None] = {}

    def seed_at(self, index: int, seed: int) -> None:
        self.seeds[index] = seed

    def reset_at(self, index: int, obs: dict[str, Any], info: dict[str, Any]) -> None:
        assert index in self.seeds

    def act_batch(self, indices: Sequence[int], obs: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]]) -> list[Any]:
        self.calls.append(list(indices))
        return ["<answer>12</answer>"] * len(indices)


def test_batch_agent_acts_for_all_active_sub_envs_at_once() -> None:
    agent = CountingBatchAgent()
    trajectories = rollout(make_vector_env([make_env] * 2), agent, episodes=3, seed=0)
    assert agent.calls == [[0, 1], [0]]
    assert [len(t.steps) for t in trajectories] == [1, 1, 1]
    assert agent.seeds == {0: 2, 1: 1}


def test_vector_rollout_rejects_envs_it_cannot_seed_or_read() -> None:
    auto = gym.vector.SyncVectorEnv([make_env] * 2)
    with pytest.raises(PixelisError, match="autoreset_mode"):
        rollout(auto, [ScriptedTextAgent()] * 2)
    shared = gym.vector.AsyncVectorEnv([make_env] * 2, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    try:
        with pytest.raises(PixelisError, match="shared_memory"):
            rollout(shared, [ScriptedTextAgent()] * 2)
    finally:
        shared.close()
    with pytest.raises(PixelisError, match="one per sub-env"):
        rollout(make_vector_env([make_env] * 2), ScriptedTextAgent())


def test_agent_pool_is_a_batch_agent() -> None:
    pool = AgentPool([ScriptedTextAgent(), ScriptedTextAgent()])
    trajectories = rollout(make_vector_env([make_env] * 2), pool, episodes=2, seed=0)
    assert [t.agent for t in trajectories] == ["ScriptedTextAgent"] * 2


class Garbler:
    """Writes an unparseable action, then answers."""

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.steps = 0

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> str:
        self.steps += 1
        return "not an action" if self.steps == 1 else "<answer>12</answer>"


def test_vector_rollout_with_valid_and_invalid_actions_in_one_step() -> None:
    envs = make_vector_env([make_env] * 2)
    trajectories = rollout(envs, [Garbler(), ScriptedTextAgent()], episodes=2, seed=0)
    assert trajectories[0].steps[0].error is not None and trajectories[1].steps[0].error is None
    assert untimed(trajectories) == untimed([rollout(make_env(), agent, seed=i)[0]
                                             for i, agent in enumerate([Garbler(), ScriptedTextAgent()])])


def test_summarize() -> None:
    env = make_env()
    stats = summarize(rollout(env, OracleAgent(env), episodes=3, seed=0))
    assert stats == {"episodes": 3, "score": 1.0, "toolchain": 1.0, "invalid_rate": 0.0, "answered": 1.0}
    assert summarize([])["episodes"] == 0
    assert np.isfinite(summarize([])["score"])
