"""The agent protocol: ``reset(obs, info)`` and ``act(obs, info) -> action``.

An action may be a typed :class:`~pixelis_env.actions.Action`, a text action, or a
sample of the env's action space. Trainable agents return a :class:`Generation` that
also carries the generated text and its token log-probabilities. A :class:`BatchAgent`
acts for all sub-envs of a vector env at once (one batched model call per step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass
class Generation:
    """What a trainable agent produced for one step.

    ``token_ids`` are the generated tokens themselves: re-tokenising ``text`` may split
    it differently from how the model sampled it, so exact log-prob recomputation
    (RL ratios) should use the ids.
    """

    action: Any
    text: str | None = None
    logprobs: list[float] | None = None
    prompt_ref: str | None = None
    token_ids: list[int] | None = None


@runtime_checkable
class Agent(Protocol):
    """Anything with these two methods can be rolled out in a Pixelis env."""

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None: ...

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Any: ...


@runtime_checkable
class BatchAgent(Protocol):
    """Acts for several sub-envs of a vector env in one call.

    ``indices`` name the sub-envs with an episode in progress; ``reset_at`` starts a
    new episode in sub-env ``index``. A batch agent may also offer ``seed_at(index,
    seed)``, which the rollout calls with each episode's seed before ``reset_at``.
    """

    def reset_at(self, index: int, obs: dict[str, Any], info: dict[str, Any]) -> None: ...

    def act_batch(self, indices: Sequence[int], obs: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]]) -> list[Any]: ...


class AgentPool:
    """A :class:`BatchAgent` made of one ordinary agent per sub-env."""

    def __init__(self, agents: Sequence[Agent]) -> None:
        self.agents = list(agents)

    def seed_at(self, index: int, seed: int) -> None:
        reseed(self.agents[index], seed)

    def reset_at(self, index: int, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.agents[index].reset(obs, info)

    def act_batch(self, indices: Sequence[int], obs: Sequence[dict[str, Any]],
                  infos: Sequence[dict[str, Any]]) -> list[Any]:
        return [self.agents[i].act(o, info) for i, o, info in zip(indices, obs, infos)]


def reseed(agent: Any, seed: int | None) -> None:
    """Reseed an agent that has a ``seed(int)`` method with its episode's seed, so the
    episode plays the same whichever agent instance, sub-env or worker runs it."""
    if seed is not None and callable(getattr(agent, "seed", None)):
        agent.seed(seed)
