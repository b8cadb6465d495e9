"""``EfficiencyReward``: a mild, bounded prior against long toolchains.

Each valid tool call beyond ``free_calls`` costs ``coef``; the episode's total cost is
capped at ``max_total`` (< 1, the best task score), so a correct answer after a long
search still beats a wrong one and answering at once never dominates just to dodge
the cost. The answer itself and error steps cost nothing here (errors already carry
the env's invalid-action penalty).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from pixelis_env.errors import PixelisError
from pixelis_env.wrappers.reward_term import RewardTerm, StepView

MAX_TASK_REWARD = 1.0
"""Every metric scores in ``[0, 1]``; the cap is kept strictly below this."""


class EfficiencyReward(RewardTerm, gym.utils.RecordConstructorArgs):
    """Charge ``coef`` per tool call after ``free_calls`` calls, at most ``max_total`` per episode.

    Args:
        env: a Pixelis env (possibly wrapped by other reward terms).
        coef: cost of one call beyond the free budget (0 disables the term).
        free_calls: calls per episode that cost nothing.
        max_total: bound on the episode's total cost, in ``[0, 1)``.
    """

    term_name = "efficiency"

    def __init__(self, env: gym.Env, coef: float = 0.02, free_calls: int = 2, max_total: float = 0.25) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, coef=coef, free_calls=free_calls, max_total=max_total)
        RewardTerm.__init__(self, env, coef)
        if free_calls < 0:
            raise PixelisError(f"free_calls must be >= 0, got {free_calls}")
        if not 0.0 <= max_total < MAX_TASK_REWARD:
            raise PixelisError(f"max_total must be in [0, {MAX_TASK_REWARD}) so the cost never outweighs a correct "
                               f"answer, got {max_total}")
        self.free_calls, self.max_total = int(free_calls), float(max_total)
        self.calls = 0
        self.spent = 0.0

    def begin_episode(self, obs: Any, info: dict[str, Any]) -> None:
        self.calls, self.spent = 0, 0.0

    def compute(self, step: StepView) -> float:
        if not step.is_tool_call:
            return 0.0
        self.calls += 1
        if self.calls <= self.free_calls:
            return 0.0
        cost = min(self.coef, max(self.max_total - self.spent, 0.0))
        self.spent += cost
        return -cost / self.coef  # in units of coef: the base class scales by it
