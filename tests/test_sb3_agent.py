"""SB3 on Pixelis envs: PPO learns an easy task through the flat-action and
vector-observation wrappers, and plays through the shared rollout."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")

from agents import RandomAgent, rollout, summarize  # noqa: E402
from agents.sb3 import SB3Agent, sb3_env, train  # noqa: E402
from pixelis_env import PixelisEnv, PixelisError, Task  # noqa: E402
from tests.test_agents import one_torch_thread  # noqa: E402, F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


def colour_tasks(n: int = 32) -> list[Task]:
    """'What colour is the square?' with the answer visible at once: answering right away is optimal."""
    rng = np.random.default_rng(0)
    tasks = []
    for i in range(n):
        name = ("red", "blue")[i % 2]
        image = np.full((64, 64, 3), 90, np.uint8)
        side = int(rng.integers(16, 40))
        x, y = (int(v) for v in rng.integers(0, 64 - side, 2))
        image[y:y + side, x:x + side] = COLOURS[name]
        tasks.append(Task(task_id=f"colour-{i}", question="What colour is the square?",
                          answer="A" if name == "red" else "B", answer_type="choice", media=image, metric="option",
                          options=["A. red", "B. blue"]))
    return tasks


def colour_env() -> PixelisEnv:
    """Zoom and answer only: exploring expensive tools (OCR, segmentation) would only slow the test."""
    return PixelisEnv(colour_tasks(), tools=["zoom", "answer"], view_size=64, max_steps=3)


def test_ppo_learns_to_answer_the_colour_it_sees() -> None:
    model = train(sb3.PPO, sb3_env(colour_env(), image_size=36), total_timesteps=2048, seed=0, n_steps=128,
                  batch_size=64, n_epochs=4, learning_rate=1e-3)
    env = sb3_env(colour_env(), image_size=36)
    trained = summarize(rollout(env, SB3Agent(model, env), episodes=60, seed=1000))
    base = colour_env()
    chance = summarize(rollout(base, RandomAgent(base), episodes=60, seed=1000))
    assert trained["score"] >= chance["score"] + 0.4, (trained, chance)
    assert trained["answered"] == 1.0 and trained["toolchain"] < 0.5


def test_any_algorithm_class_trains_and_plays() -> None:
    env = sb3_env(colour_env(), image_size=36)
    model = train(sb3.A2C, env, total_timesteps=20, seed=0, n_steps=5)
    (trajectory,) = rollout(env, SB3Agent(model, env, deterministic=False), seed=0)
    assert trajectory.terminated or trajectory.truncated
    assert all(step.tool in ("zoom", "answer") for step in trajectory.steps)


def test_agent_refuses_the_unwrapped_env() -> None:
    env = sb3_env(colour_env(), image_size=36)
    model = sb3.PPO("MultiInputPolicy", env, n_steps=8, batch_size=8, seed=0)
    with pytest.raises(PixelisError, match="sb3_env"):
        SB3Agent(model, colour_env())
