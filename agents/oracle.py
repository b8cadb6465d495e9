"""``OracleAgent``: replays the task's oracle tool trace (the source of SFT demonstrations)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from pixelis_env.actions import Action


class OracleAgent:
    """Plays the current task's known-correct tool calls, then its right answer."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self._plan: list[Action] = []

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self._plan = list(self.env.unwrapped.oracle_actions())

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Action:
        return self._plan.pop(0) if len(self._plan) > 1 else self._plan[-1]
