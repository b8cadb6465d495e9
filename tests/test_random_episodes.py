"""Many random-action episodes: no exception escapes, and random play scores far below the oracle."""

from __future__ import annotations

import gymnasium as gym
import pytest

from agents import OracleAgent, RandomAgent
from agents.rollout import rollout, summarize


@pytest.mark.slow
def test_thousand_random_episodes_on_vsi():
    env = gym.make("Pixelis-VSI-v0", num_tasks=50, frames=16, resolution=(160, 120))
    trajectories = rollout(env, RandomAgent(env, seed=0), episodes=1000, seed=0)
    summary = summarize(trajectories)
    assert summary["episodes"] == 1000
    assert all(t.terminated or t.truncated for t in trajectories)
    tools = {s.tool for t in trajectories for s in t.steps}
    assert {"zoom", "select_frames", "segment", "track", "localize", "answer"} <= tools
    oracle = summarize(rollout(env, OracleAgent(env), episodes=40, seed=0))
    assert oracle["score"] >= 0.95 and summary["score"] < 0.5 * oracle["score"]
