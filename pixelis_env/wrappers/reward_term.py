"""The shared shape of the reward wrappers: one named term added to the reward and to ``info``.

Each wrapper sees one :class:`StepView` per env step (the observations around it and
the call the env actually executed, read from the env's own step record, so typed,
text and flat actions look the same) and returns an unscaled value; the base class
multiplies it by ``coef``, adds it to the reward and records it under
``info["reward_terms"][term_name]``. ``coef == 0`` skips the computation and records 0.0,
so the set of terms does not depend on which ones are switched on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym

from pixelis_env.errors import PixelisError

ANSWER = "answer"


@dataclass(frozen=True)
class StepView:
    """One env step as a reward term sees it.

    ``tool`` and ``arguments`` are what the env executed (``None`` tool when the action
    could not even be parsed); ``valid`` is False for error steps, which the env already
    penalises under ``info["reward_terms"]["invalid"]``.
    """

    obs: Any
    next_obs: Any
    tool: str | None
    arguments: dict[str, Any] | None
    valid: bool
    terminated: bool
    truncated: bool

    @property
    def is_tool_call(self) -> bool:
        """A valid call of a pixel tool (not the answer, not an error)."""
        return self.valid and self.tool is not None and self.tool != ANSWER

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class RewardTerm(gym.Wrapper):
    """Base of the reward wrappers; subclasses set ``term_name`` and override the two hooks."""

    term_name: ClassVar[str] = ""

    def __init__(self, env: gym.Env, coef: float) -> None:
        super().__init__(env)
        if not hasattr(env.unwrapped, "records"):
            raise PixelisError(f"{type(self).__name__} needs a PixelisEnv underneath (it reads the step records)")
        if not (math.isfinite(coef) and coef >= 0):
            raise PixelisError(f"{type(self).__name__}: coef must be a finite number >= 0, got {coef!r}")
        for inner in _wrapper_chain(env):
            if isinstance(inner, RewardTerm) and inner.term_name == self.term_name:
                raise PixelisError(f"the stack already has a `{self.term_name}` term; stacking two would "
                                   "overwrite its entry in info['reward_terms']")
        self.coef = float(coef)
        self._obs: Any = None

    # ------------------------------------------------------------- hooks
    def begin_episode(self, obs: Any, info: dict[str, Any]) -> None:
        """Clear per-episode state (called on every reset while the term is on)."""

    def compute(self, step: StepView) -> float:
        """The unscaled term for one step."""
        raise NotImplementedError

    # --------------------------------------------------------- gym hooks
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        if self.coef:
            self.begin_episode(obs, info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        value = self.coef * self.compute(self._step_view(obs, terminated, truncated)) if self.coef else 0.0
        self._obs = obs
        terms = {**info.get("reward_terms", {}), self.term_name: float(value)}
        return obs, float(reward) + float(value), terminated, truncated, {**info, "reward_terms": terms}

    def _step_view(self, obs: Any, terminated: bool, truncated: bool) -> StepView:
        record = self.env.unwrapped.records[-1]
        return StepView(obs=self._obs, next_obs=obs, tool=record.tool, arguments=record.arguments,
                        valid=record.error is None, terminated=bool(terminated), truncated=bool(truncated))


def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain
