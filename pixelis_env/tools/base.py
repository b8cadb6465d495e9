"""What a tool receives and returns, and how tools are registered.

A tool is a plain function ``run(action, ctx) -> ToolResult``. Registering it with its
:class:`~pixelis_env.actions.Action` type is all it takes to make it part of the
grammar, the text parser, the action spaces and the env.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixelis_env.actions import Action
from pixelis_env.errors import PixelisError, did_you_mean
from pixelis_env.media import Media

IMAGE, VIDEO = "image", "video"


@dataclass
class ToolContext:
    """Everything a tool may read or keep during one episode.

    ``state`` is per-episode scratch space shared by tools (e.g. masks from ``segment``
    kept for ``properties``); ``config`` holds env-level backend options (e.g. a SAM
    checkpoint path); ``task`` exposes suite metadata such as a metric scale.
    """

    media: Media
    view_size: int
    task: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolResult:
    """A tool's output: text for the observation, an optional view, structured data.

    ``data`` must be JSON-serialisable (it is recorded in trajectories); arrays that
    later steps need go into ``ctx.state`` instead. ``candidates`` are strings the
    agent may answer with (e.g. OCR lines), offered to flat-action policies.
    """

    text: str
    image: np.ndarray | None = None
    data: dict[str, Any] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)


class ResultData(Mapping[str, Any]):
    """A read-only view of ``ToolResult.data`` for ``info["tool_result"]``.

    Not a ``dict`` on purpose: Gymnasium vector envs merge dict infos key by key across
    sub-envs, which breaks when sub-envs ran different tools; any other object is
    batched whole. ``dict(view)`` gives a plain copy.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ResultData({self._data!r})"


ToolFn = Callable[[Action, ToolContext], ToolResult]


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool: its action type, its function and the media it works on."""

    action_type: type[Action]
    run: ToolFn
    media_kinds: frozenset[str] = frozenset({IMAGE, VIDEO})

    @property
    def name(self) -> str:
        return self.action_type.name


_REGISTRY: dict[str, ToolSpec] = {}


def register_tool(action_type: type[Action], run: ToolFn, media_kinds: tuple[str, ...] = (IMAGE, VIDEO),
                  *, override: bool = False) -> ToolSpec:
    """Add a tool to the registry (the extension point for user tools)."""
    if not action_type.name:
        raise PixelisError(f"{action_type.__name__} has no `name`")
    if action_type.name in _REGISTRY and not override:
        raise PixelisError(f"a tool named `{action_type.name}` is already registered; pass override=True")
    spec = ToolSpec(action_type, run, frozenset(media_kinds))
    _REGISTRY[action_type.name] = spec
    return spec


def unregister_tool(name: str) -> None:
    """Remove a tool (mainly for tests of user tools)."""
    _REGISTRY.pop(name, None)


def get_tool(name: str) -> ToolSpec:
    """Look up a registered tool; unknown names suggest the closest one."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise PixelisError(f"unknown tool `{name}`." + did_you_mean(name, _REGISTRY)) from None


def registered_tools() -> dict[str, ToolSpec]:
    """A snapshot of the registry, in registration order."""
    return dict(_REGISTRY)
