"""Stable-Baselines3 on Pixelis envs.

SB3 policies need fixed-size arrays, so they act on an *SB3-ready* env,
:func:`sb3_env`: ``VectorObservation(FlatActionWrapper(env))`` (the flat ``Box`` action
decodes into a typed action; image plus hashed question and tool-output text become
arrays). :class:`SB3Agent` is used on that same wrapped env: ``rollout(sb3_env(env),
SB3Agent(model, wrapped))`` records what the base env saw (the decoded tool calls), with
the wrappers' rewards. SB3 itself is imported only by the algorithm class you pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from pixelis_env.errors import PixelisError
from pixelis_env.wrappers import FlatActionWrapper, VectorObservation

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


def sb3_env(env: gym.Env, text_dims: int = 64, image_size: int = 64, answer_slots: int = 8) -> gym.Env:
    """The SB3-ready view of a Pixelis env (``image_size`` >= 36 for SB3's default CNN)."""
    return VectorObservation(FlatActionWrapper(env, answer_slots), text_dims=text_dims, image_size=image_size)


def train(algorithm: type[BaseAlgorithm], env: gym.Env, total_timesteps: int, seed: int = 0,
          policy: str = "MultiInputPolicy", **kwargs: Any) -> BaseAlgorithm:
    """Train any SB3 algorithm class (``PPO``, ``A2C``, ``SAC``...) on an SB3-ready env.

    ``kwargs`` go to the algorithm's constructor (``verbose`` defaults to 0).
    """
    from stable_baselines3.common.logger import Logger

    kwargs.setdefault("verbose", 0)
    model = algorithm(policy, env, seed=seed, **kwargs)
    if kwargs["verbose"] == 0 and kwargs.get("tensorboard_log") is None:
        model.set_logger(Logger(folder=None, output_formats=[]))  # SB3 would otherwise make a temp folder per run
    return model.learn(total_timesteps=total_timesteps)


class SB3Agent:
    """An SB3 model's ``predict`` as an agent, acting on the SB3-ready env it was trained on.

    Recurrent policies (sb3-contrib) keep their state across the steps of an episode.
    """

    def __init__(self, model: BaseAlgorithm, env: gym.Env, deterministic: bool = True) -> None:
        if env.action_space != model.action_space:
            raise PixelisError(f"the env's action space {env.action_space} is not the model's "
                               f"{model.action_space}: roll the agent out on sb3_env(env)")
        self.model, self.deterministic = model, bool(deterministic)
        self._state: tuple[np.ndarray, ...] | None = None
        self._episode_start = True

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self._state, self._episode_start = None, True

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        action, self._state = self.model.predict(obs, state=self._state, episode_start=np.array([self._episode_start]),
                                                 deterministic=self.deterministic)
        self._episode_start = False
        return action
