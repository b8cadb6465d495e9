"""The paper's reward stack, and how ``make_env(reward_wrappers=...)`` applies one.

``reward_wrappers`` is ``"default"`` (:func:`default_reward_stack`) or a sequence whose
items are wrapper classes, ``(class, kwargs)`` pairs or any callables ``env -> env``,
applied in order (the first is innermost). The terms commute: any order gives the
same set of ``info["reward_terms"]`` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from pixelis_env.errors import PixelisError, did_you_mean
from pixelis_env.wrappers.coherence import CoherenceReward
from pixelis_env.wrappers.curiosity import CuriosityReward
from pixelis_env.wrappers.efficiency import EfficiencyReward

WrapperItem = type[gym.Wrapper] | tuple[Callable[..., gym.Env], Mapping[str, Any]] | Callable[[gym.Env], gym.Env]
NAMED_STACKS = ("default",)


def default_reward_stack(seed: int | None = None) -> list[tuple[type[gym.Wrapper], dict[str, Any]]]:
    """Curiosity, coherence and efficiency with the classes' default coefficients (a fresh list each call).

    ``seed`` seeds the curiosity model, the stack's only randomness.
    """
    return [(CuriosityReward, {"seed": seed}), (CoherenceReward, {}), (EfficiencyReward, {})]


def apply_reward_wrappers(env: gym.Env, wrappers: str | Sequence[WrapperItem] | None) -> gym.Env:
    """Wrap ``env`` in the given reward wrappers, innermost first; ``None`` or ``[]`` leaves it as is."""
    if isinstance(wrappers, str):
        if wrappers not in NAMED_STACKS:
            raise PixelisError(f"unknown reward stack `{wrappers}`." + did_you_mean(wrappers, NAMED_STACKS)
                               + f" Named stacks: {list(NAMED_STACKS)}")
        wrappers = default_reward_stack()
    for item in wrappers or ():
        env = _apply_one(env, item)
    return env


def _apply_one(env: gym.Env, item: WrapperItem) -> gym.Env:
    if isinstance(item, tuple) and len(item) == 2 and callable(item[0]) and isinstance(item[1], Mapping):
        wrapped = item[0](env, **item[1])
    elif callable(item):
        wrapped = item(env)
    else:
        raise PixelisError(f"a reward wrapper must be a class, a (class, kwargs) pair or a callable env -> env, "
                           f"got {item!r:.80}")
    if not isinstance(wrapped, gym.Env):
        raise PixelisError(f"reward wrapper {item!r:.80} returned {type(wrapped).__name__}, not a gymnasium.Env")
    return wrapped
