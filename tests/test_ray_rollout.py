"""Ray rollout workers give the same trajectories as local rollout for the same seeds."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from agents import RandomAgent
from agents.rollout import rollout
from tests.conftest import square_image

ray = pytest.importorskip("ray")

ENV_KWARGS = {"media": square_image(3)[0].tolist(), "question": "How wide is the square?", "answer": 17}


def random_agent(env: gym.Env) -> RandomAgent:
    return RandomAgent(env, seed=0)


class WeightedAgent(RandomAgent):
    """A random agent whose answer probability comes from broadcast 'weights'."""

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.p_answer = float(weights["p_answer"])


def weighted_agent(env: gym.Env) -> WeightedAgent:
    return WeightedAgent(env, seed=0)


def untimed(trajectories):
    return [{**t.to_json(), "steps": [{**s, "seconds": 0.0} for s in t.to_json()["steps"]]} for t in trajectories]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])}})
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_pool_matches_local_rollout_and_broadcasts(local_ray):
    from agents.ray_rollout import RayRolloutPool

    env = gym.make("Pixelis-Image-v0", **ENV_KWARGS)
    local = rollout(env, random_agent(env), episodes=6, seed=10)
    pool = RayRolloutPool("Pixelis-Image-v0", random_agent, num_workers=2, env_kwargs=ENV_KWARGS)
    try:
        remote = pool.rollout(episodes=6, seed=10)
    finally:
        pool.close()
    assert untimed(remote) == untimed(local)

    pool = RayRolloutPool("Pixelis-Image-v0", weighted_agent, num_workers=2, env_kwargs=ENV_KWARGS)
    try:
        pool.broadcast({"p_answer": 1.0})
        answered_at_once = pool.rollout(episodes=4, seed=0)
    finally:
        pool.close()
    assert all(len(t.steps) == 1 and t.steps[0].tool == "answer" for t in answered_at_once)
