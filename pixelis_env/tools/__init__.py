"""The tool registry and the built-in tools (one module each).

A user tool is an :class:`~pixelis_env.actions.Action` subclass plus a ``run``
function, registered with :func:`register_tool`; nothing in the package needs editing.
"""

from __future__ import annotations

from pixelis_env.actions import Answer, Localize, Properties, ReadText, Segment, SelectFrames, Track, Zoom
from pixelis_env.tools import answer, localize, properties, read_text, segment, select_frames, track, zoom
from pixelis_env.tools.base import (
    IMAGE,
    VIDEO,
    ToolContext,
    ToolResult,
    ToolSpec,
    get_tool,
    register_tool,
    registered_tools,
    unregister_tool,
)

__all__ = ["IMAGE", "VIDEO", "ToolContext", "ToolResult", "ToolSpec", "get_tool", "register_tool",
           "registered_tools", "unregister_tool"]

for _action_type, _module, _kinds in (
    (Zoom, zoom, (IMAGE, VIDEO)),
    (SelectFrames, select_frames, (VIDEO,)),
    (Segment, segment, (IMAGE, VIDEO)),
    (Properties, properties, (IMAGE, VIDEO)),
    (ReadText, read_text, (IMAGE, VIDEO)),
    (Track, track, (VIDEO,)),
    (Localize, localize, (VIDEO,)),
    (Answer, answer, (IMAGE, VIDEO)),
):
    register_tool(_action_type, _module.run, _kinds)
