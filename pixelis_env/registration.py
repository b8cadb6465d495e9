"""Env ids, registered from one table, and the factory behind them.

Every id is built by :func:`make_env`: a suite's task source (embedded generator, or
the real benchmark files under ``data_root``) wrapped in :class:`PixelisEnv`, plus the
reward wrappers asked for.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from pixelis_env.env import PixelisEnv
from pixelis_env.errors import PixelisError, did_you_mean

SUITES: dict[str, str] = {
    "Pixelis-VSI-v0": "pixelis_env.suites.vsi",
    "Pixelis-VStar-v0": "pixelis_env.suites.vstar",
    "Pixelis-TextVQA-v0": "pixelis_env.suites.textvqa",
    "Pixelis-Count-v0": "pixelis_env.suites.count",
    "Pixelis-Track-v0": "pixelis_env.suites.track",
    "Pixelis-Temporal-v0": "pixelis_env.suites.temporal",
    "Pixelis-Image-v0": "pixelis_env.suites.custom",
}
"""Env id -> module with ``make_source(**kwargs) -> TaskSource`` (and ``MAX_STEPS``)."""
MIXTURES: dict[str, str] = {"Pixelis-Mix-v0": "pixelis_env.suites.mixture"}
"""Ids registered like the suites but not counted among them (they combine suites)."""

ENV_ARGS = set(inspect.signature(PixelisEnv.__init__).parameters) - {"self", "tasks"}


def suite_module(env_id: str) -> Any:
    modules = {**SUITES, **MIXTURES}
    if env_id not in modules:
        raise PixelisError(f"unknown Pixelis env `{env_id}`." + did_you_mean(env_id, modules))
    return importlib.import_module(modules[env_id])


def make_env(env_id: str, reward_wrappers: Sequence[Any] | str | None = None, **kwargs: Any) -> gym.Env:
    """Build a Pixelis env by id; keyword arguments go to the env or to the suite's source.

    ``reward_wrappers`` is ``"default"`` (the paper's stack) or a sequence of wrapper
    classes, ``(class, kwargs)`` pairs or callables ``env -> env``, applied in order.
    """
    module = suite_module(env_id)
    env_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in ENV_ARGS}
    env_kwargs.setdefault("max_steps", getattr(module, "MAX_STEPS", 10))
    env: gym.Env = PixelisEnv(module.make_source(**kwargs), **env_kwargs)
    if reward_wrappers:
        from pixelis_env.wrappers import apply_reward_wrappers

        env = apply_reward_wrappers(env, reward_wrappers)
    return env


def register_envs() -> None:
    """Register every id with Gymnasium (idempotent)."""
    for env_id in (*SUITES, *MIXTURES):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="pixelis_env.registration:make_env",
                         kwargs={"env_id": env_id}, disable_env_checker=False, order_enforce=True)
