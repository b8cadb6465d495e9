"""The chat a language model sees for a :class:`~agents.policy.Context`: a system prompt
generated from the env's tools, the question with the first view, then per step the
model's action and the tool output (its view and text) as a new user turn.

:func:`context_ref` is a content hash of a context, so a trajectory step can name the
exact prompt it was generated from and a trainer can fetch it back from a
:class:`ContextStore`. Torch-free: model-specific encoding lives in :mod:`agents.vlm`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from agents.policy import Context
from pixelis_env.actions import Action
from pixelis_env.errors import PixelisError
from pixelis_env.text_actions import describe_tools

SYSTEM_PREAMBLE = ("You answer questions about images and videos by acting on their pixels. Each turn, "
                   "look at the latest view and either call one tool to inspect a detail or give the answer.")
IMAGE_PLACEHOLDER = "[image dropped]"
"""Stands for an old image left out to fit the context (a few tokens, far fewer than an image)."""


def system_prompt(action_types: Iterable[type[Action]]) -> str:
    """The system prompt for an env offering ``action_types`` (its tool list is generated)."""
    return SYSTEM_PREAMBLE + "\n" + describe_tools(action_types)


def chat_messages(context: Context, system: str, drop_images: int = 0
                  ) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Chat-template messages (the ``{"type": "image"}`` format HF processors share) and
    their images in order; the oldest ``drop_images`` images become a text placeholder."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": [{"type": "text", "text": system}]}]
    images: list[np.ndarray] = []
    for step, turn in enumerate(context.turns):
        content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}]
        if step < drop_images:
            content[0]["text"] = f"{IMAGE_PLACEHOLDER}\n{turn.text}"
        else:
            content.insert(0, {"type": "image"})
            images.append(np.asarray(turn.image, np.uint8))
        messages.append({"role": "user", "content": content})
        if step < len(context.actions):
            messages.append({"role": "assistant", "content": [{"type": "text", "text": context.actions[step]}]})
    return messages, images


def context_ref(context: Context) -> str:
    """A content hash naming this exact context (pixels included), stable across runs."""
    h = hashlib.sha1()
    for step, turn in enumerate(context.turns):
        image = np.ascontiguousarray(turn.image)
        h.update(_utf8(f"{image.shape}\0{turn.text}\0"))
        h.update(image.tobytes())
        if step < len(context.actions):
            h.update(_utf8(f"\0{context.actions[step]}\0"))
    return h.hexdigest()[:20]


def _utf8(text: str) -> bytes:
    """Bytes of any string a model may produce (lone surrogates included)."""
    return text.encode("utf-8", "surrogatepass")


class ContextStore:
    """The most recent contexts by :func:`context_ref`, for trainers that re-score steps."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 1:
            raise PixelisError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[str, Context] = OrderedDict()

    def add(self, context: Context) -> str:
        """Keep a snapshot of ``context``; returns its reference."""
        ref = context_ref(context)
        self._items[ref] = context.copy()
        self._items.move_to_end(ref)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return ref

    def __getitem__(self, ref: str) -> Context:
        try:
            return self._items[ref]
        except KeyError:
            raise PixelisError(f"no context `{ref}` in the store (it keeps the last {self.capacity})") from None

    def __len__(self) -> int:
        return len(self._items)
