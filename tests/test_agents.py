"""Every agent plays full episodes on every registered env id (new ids are covered as
suites land), and a user's own two-method agent runs."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pixelis_env
from agents import OracleAgent, RandomAgent, rollout, summarize
from agents.chat import context_ref
from agents.policy import Context
from pixelis_env.registration import SUITES, suite_module
from tests.conftest import square_image

ENV_KWARGS: dict[str, Callable[[], dict[str, Any]]] = {
    "Pixelis-Image-v0": lambda: {"media": square_image(0)[0], "question": "How wide is the red square, in pixels?",
                                 "answer": 12},
}
"""Ids that cannot be built without arguments get them here."""


def small_env(env_id: str) -> gym.Env:
    """The registered env with small sizes (few tasks where the suite takes ``num_tasks``)."""
    if importlib.util.find_spec(SUITES[env_id]) is None or not hasattr(suite_module(env_id), "make_source"):
        pytest.skip(f"{env_id}: suite {SUITES[env_id]} has not landed yet")
    kwargs = {"view_size": 64, "max_steps": 4, **ENV_KWARGS.get(env_id, dict)()}
    if "num_tasks" in inspect.signature(suite_module(env_id).make_source).parameters:
        kwargs["num_tasks"] = 3
    return gym.make(env_id, **kwargs)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny torch models run on one thread: more only contend for the CPU at this size."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_vlm(one_torch_thread: None) -> tuple[Any, Any]:
    pytest.importorskip("transformers")
    from agents.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(seed=0)


def random_agent(env: gym.Env, tiny_vlm: Any) -> tuple[gym.Env, Any]:
    return env, RandomAgent(env, seed=0)


def oracle_agent(env: gym.Env, tiny_vlm: Any) -> tuple[gym.Env, Any]:
    return env, OracleAgent(env)


def sb3_agent(env: gym.Env, tiny_vlm: Any) -> tuple[gym.Env, Any]:
    ppo = pytest.importorskip("stable_baselines3").PPO
    from agents.sb3 import SB3Agent, sb3_env

    wrapped = sb3_env(env, image_size=36)
    model = ppo("MultiInputPolicy", wrapped, n_steps=8, batch_size=8, seed=0)
    return wrapped, SB3Agent(model, wrapped, deterministic=False)


def vlm_agent(env: gym.Env, tiny_vlm: Any) -> tuple[gym.Env, Any]:
    from agents.vlm import SamplingConfig, VLMAgent, VLMPolicy

    policy = VLMPolicy(*tiny_vlm, env.unwrapped.actions.action_types)
    return env, VLMAgent(policy, SamplingConfig(max_new_tokens=12))


AGENTS = {"random": random_agent, "oracle": oracle_agent, "sb3": sb3_agent, "vlm": vlm_agent}


@pytest.mark.parametrize("agent_name", sorted(AGENTS))
@pytest.mark.parametrize("env_id", pixelis_env.ENV_IDS)
def test_agent_plays_full_episodes(env_id: str, agent_name: str, request: pytest.FixtureRequest) -> None:
    vlm = request.getfixturevalue("tiny_vlm") if agent_name in ("vlm", "sb3") else None
    env, agent = AGENTS[agent_name](small_env(env_id), vlm)
    trajectories = rollout(env, agent, episodes=2, seed=0)
    assert len(trajectories) == 2
    for trajectory in trajectories:
        assert trajectory.terminated or trajectory.truncated
        assert [s.step for s in trajectory.steps] == list(range(1, len(trajectory.steps) + 1))
        assert all("task" in s.reward_terms for s in trajectory.steps)
    if agent_name == "oracle":
        assert all(t.terminated for t in trajectories)
        assert summarize(trajectories)["score"] >= 0.9


class CountToThree:
    """A user's own agent: zoom twice, then answer."""

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.steps = 0

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> str:
        self.steps += 1
        if self.steps < 3:
            return '<tool_call>{"name": "zoom", "arguments": {"box": [0, 0, 0.5, 0.5]}}</tool_call>'
        return "<answer>12</answer>"


def test_users_own_agent_runs(image_env: pixelis_env.PixelisEnv) -> None:
    (trajectory,) = rollout(image_env, CountToThree(), seed=1)
    assert [s.tool for s in trajectory.steps] == ["zoom", "zoom", "answer"]
    assert trajectory.terminated and trajectory.answer == "12"
    assert trajectory.agent == "CountToThree"


def test_import_agents_stays_torch_free() -> None:
    code = "import sys, agents; agents.OracleAgent; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))


def test_context_refs_follow_content_and_accept_any_model_text() -> None:
    obs = {"image": np.zeros((8, 8, 3), np.uint8), "text": "What is red?"}
    context = Context()
    context.observe(obs)
    context.act("<answer>\udc95</answer>")  # a model's decoder may emit lone surrogates
    same = context.copy()
    assert context_ref(same) == context_ref(context)
    same.observe({**obs, "image": np.ones((8, 8, 3), np.uint8)})
    assert context_ref(same) != context_ref(context)
