"""``answer``: ends the episode; the env scores it against the task."""

from __future__ import annotations

from pixelis_env.actions import Answer
from pixelis_env.tools.base import ToolContext, ToolResult


def run(action: Answer, ctx: ToolContext) -> ToolResult:
    return ToolResult(text=f"answered: {action.text}", data={"answer": action.text})
