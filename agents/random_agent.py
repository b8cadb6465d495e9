"""``RandomAgent``: valid random tool calls, then a random answer: the chance baseline."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from pixelis_env.actions import Answer


class RandomAgent:
    """Samples tool actions from the structured space and answers with probability ``p_answer``.

    Answers pick a random answer candidate (the options of a multiple-choice task, or
    text a tool found); without candidates, a random number or span.
    """

    def __init__(self, env: gym.Env, p_answer: float = 0.3, seed: int | None = None) -> None:
        self.env = env
        self.p_answer = float(p_answer)
        self.space = env.unwrapped.action_space
        self.seed(seed)
        self.answer_index = env.unwrapped.actions.action_types.index(Answer)

    def seed(self, seed: int | None) -> None:
        """Restart the random stream (the rollout calls this with each episode's seed)."""
        self.rng = np.random.default_rng(seed)
        self.space.seed(int(self.rng.integers(2**31)))

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        """Nothing to forget between episodes."""

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Any:
        if self.rng.random() < self.p_answer:
            return Answer(text=self._random_answer(info))
        while True:
            sample = self.space.sample()
            if sample[0] != self.answer_index:
                return sample

    def _random_answer(self, info: dict[str, Any]) -> str:
        candidates = info.get("answer_candidates") or []
        if candidates:
            return str(candidates[int(self.rng.integers(len(candidates)))])
        task = self.env.unwrapped.task
        if task.answer_type == "span":
            duration = max(self.env.unwrapped.media.duration, 1.0)
            a, b = sorted(self.rng.uniform(0, duration, 2))
            return f"{a:.1f}-{b + 0.1:.1f}"
        return f"{float(self.rng.lognormal(1.0, 1.0)):.2f}"
