"""The agent protocol: ``reset(obs, info)`` and ``act(obs, info) -> action``.

An action may be a typed :class:`~pixelis_env.actions.Action`, a text action, or a
sample of the env's action space. Trainable agents return a :class:`Generation` that
also carries the generated text and its token log-probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass
class Generation:
    """What a trainable agent produced for one step."""

    action: Any
    text: str | None = None
    logprobs: list[float] | None = None
    prompt_ref: str | None = None


@runtime_checkable
class Agent(Protocol):
    """Anything with these two methods can be rolled out in a Pixelis env."""

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None: ...

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Any: ...
