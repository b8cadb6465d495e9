"""The one policy interface SFT, RFT and TTRL train, whatever the model behind it.

A policy maps a :class:`Context` (the question and every observation of the episode so
far) to generated text actions, and can re-score given texts token by token. Both the
compact policy and the Hugging Face VLM implement :class:`Policy`, so each training loop
is written once.

Token roles (:func:`char_roles`) and grounded arguments (:func:`grounded_arguments`) are
computed on characters of the action text; a policy maps them to its own tokens with
character offsets. That keeps the SFT loss weights and auxiliary-head targets
independent of the tokenizer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

OTHER, OPERATION, ARGUMENT = 0, 1, 2
"""Roles of generated characters/tokens: the masked imitation loss upweights 1 and 2."""

GROUNDED_KINDS = {"box": 4, "point": 2, "span": 2}
"""Argument names whose values are pixel- or time-grounded, with their sizes."""


@dataclass
class Turn:
    """One observation: the view and the text shown to the agent."""

    image: np.ndarray
    text: str


@dataclass
class Context:
    """Everything a policy conditions on at one decision of an episode.

    ``actions`` are the agent's earlier generated texts, one per step; ``turns`` has one
    more entry (the reset observation, then each step's observation).
    """

    turns: list[Turn] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        return self.turns[0].text if self.turns else ""

    def observe(self, obs: dict[str, Any]) -> None:
        self.turns.append(Turn(image=np.asarray(obs["image"]), text=str(obs["text"])))

    def act(self, text: str) -> None:
        self.actions.append(text)

    def copy(self) -> Context:
        return Context(list(self.turns), list(self.actions), dict(self.meta))


@dataclass
class Sample:
    """One generated action text with the log-probability of each generated token."""

    text: str
    token_ids: list[int]
    logprobs: list[float]


@dataclass
class Scored:
    """A policy's view of given texts: per-token log-probs, roles, and hidden states.

    ``grounded`` lists, per text, ``(kind, token_index, values)`` for each box, point or
    span argument: the hidden state at ``token_index`` (the token opening the value)
    is what the auxiliary heads regress ``values`` from.
    """

    logprobs: list[Any]
    roles: list[Any]
    hidden: list[Any]
    grounded: list[list[tuple[str, int, list[float]]]]


@runtime_checkable
class Policy(Protocol):
    """What a trainable policy offers the training loops (a ``torch.nn.Module`` too)."""

    hidden_size: int

    def generate(self, contexts: Sequence[Context], max_new_tokens: int = 64, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, seed: int | None = None) -> list[Sample]: ...

    def score(self, contexts: Sequence[Context], texts: Sequence[str]) -> Scored: ...


def char_roles(text: str) -> list[int]:
    """Per character of an action text: operation name, argument value, or other.

    ``<tool_call>{"name": "zoom", "arguments": {"box": [0.1, ...]}}</tool_call>``: the
    characters of ``zoom`` are OPERATION, those of each argument value ARGUMENT; for
    ``<answer>B</answer>`` the tag is OPERATION and the answer ARGUMENT.
    """
    roles = [OTHER] * len(text)
    answer = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    call = re.search(r"<tool_call>(.*?)</tool_call>", text, re.DOTALL)
    if answer and (not call or answer.start() < call.start()):
        _mark(roles, answer.start(), answer.start(1), OPERATION)
        _mark(roles, answer.start(1), answer.end(1), ARGUMENT)
        return roles
    if not call:
        return roles
    body_start = call.start(1)
    name = re.search(r'"name"\s*:\s*"([^"]*)"', call.group(1))
    if name:
        _mark(roles, body_start + name.start(1), body_start + name.end(1), OPERATION)
    for _key, start, end in _argument_values(call.group(1)):
        _mark(roles, body_start + start, body_start + end, ARGUMENT)
    return roles


def grounded_arguments(text: str) -> list[tuple[str, int, list[float]]]:
    """``(kind, char_index, values)`` of each box/point/span argument in an action text.

    ``char_index`` is the position of the ``[`` that opens the value.
    """
    call = re.search(r"<tool_call>(.*?)</tool_call>", text, re.DOTALL)
    if not call:
        return []
    out = []
    for key, start, end in _argument_values(call.group(1)):
        if key not in GROUNDED_KINDS:
            continue
        try:
            values = [float(v) for v in json.loads(call.group(1)[start:end])]
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
        if len(values) == GROUNDED_KINDS[key]:
            out.append((key, call.start(1) + start, values))
    return out


def _mark(roles: list[int], start: int, end: int, role: int) -> None:
    for i in range(max(start, 0), min(end, len(roles))):
        roles[i] = role


_ARG = re.compile(r'"([a-z_]+)"\s*:\s*(\[[^\]]*\]|"[^"]*"|-?[\d.]+)')


def _argument_values(body: str) -> list[tuple[str, int, int]]:
    """``(name, start, end)`` of each argument value inside the ``arguments`` object."""
    arguments = body.find('"arguments"')
    if arguments < 0:
        return []
    return [(m.group(1), m.start(2), m.end(2)) for m in _ARG.finditer(body, arguments)]


def token_roles(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """:func:`char_roles` mapped to tokens given each token's ``(start, end)`` characters.

    A token takes the highest role among its characters (ARGUMENT > OPERATION > OTHER),
    so a token like ``"zoom"`` with its quotes counts as the operation.
    """
    roles = char_roles(text)
    return [max(roles[start:end], default=OTHER) for start, end in offsets]


def token_grounded(text: str, offsets: Sequence[tuple[int, int]]) -> list[tuple[str, int, list[float]]]:
    """:func:`grounded_arguments` with the index of the token covering each opening ``[``."""
    out = []
    for kind, char_index, values in grounded_arguments(text):
        token = next((i for i, (start, end) in enumerate(offsets) if start <= char_index < end), None)
        if token is not None:
            out.append((kind, token, values))
    return out


_VIDEO_INTRO = re.compile(r"\[video: (\d+) frames at ([\d.]+) fps \(([\d.]+) s\)")


def episode_meta(env: Any = None, obs_text: str = "") -> dict[str, Any]:
    """``Context.meta`` for a new episode: media ``duration`` (s), ``num_frames``, ``fps``.

    Span arguments are regressed as fractions of the duration, so training loops and
    agents must fill it the same way. Read from the env's media when an env is given,
    else from the reset observation's video line (one decimal), else an image's 0 s.
    """
    media = getattr(getattr(env, "unwrapped", None), "media", None)
    if media is not None:
        return {"duration": float(media.duration), "num_frames": int(media.num_frames), "fps": float(media.fps)}
    match = _VIDEO_INTRO.search(obs_text)
    if match:
        return {"duration": float(match.group(3)), "num_frames": int(match.group(1)), "fps": float(match.group(2))}
    return {"duration": 0.0, "num_frames": 1, "fps": 0.0}


def start_context(obs: dict[str, Any], info: dict[str, Any], env: Any = None) -> Context:
    """The context of a new episode: its first observation and :func:`episode_meta` (+ ``task_id``).

    Every agent and training loop starts contexts here, so ``meta`` means the same
    thing wherever a policy is trained or run.
    """
    context = Context(meta={**episode_meta(env, str(obs["text"])), "task_id": info.get("task_id")})
    context.observe(obs)
    return context
