"""The text surface of the grammar, for language-model agents.

A model writes ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` or
``<answer>...</answer>``. :func:`parse_action` turns text into an
:class:`~pixelis_env.actions.Action` or raises :class:`ActionError` saying exactly what
is wrong; it never raises anything else, whatever the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pixelis_env.actions import Action, Answer
from pixelis_env.errors import ActionError, did_you_mean

MAX_ACTION_CHARS = 16_384
MAX_JSON_DEPTH = 8
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def format_action(action: Action) -> str:
    """The canonical text of an action; ``parse_action(format_action(a)) == a``."""
    if isinstance(action, Answer):
        return f"<answer>{action.text}</answer>"
    payload = {"name": action.name, "arguments": action.to_arguments()}
    return "<tool_call>" + json.dumps(payload, separators=(", ", ": ")) + "</tool_call>"


def _reject_constant(name: str) -> Any:
    raise ActionError(f"the JSON contains {name}; numbers must be finite")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _load_call(body: str) -> dict[str, Any]:
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except ActionError:
        raise
    except json.JSONDecodeError as exc:
        raise ActionError(f"the tool call is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ActionError(f"the tool call JSON has an unreadable value: {str(exc)[:80]}") from None
    except RecursionError:
        raise ActionError(f"the tool call JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(payload) > MAX_JSON_DEPTH:
        raise ActionError(f"the tool call JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(payload, dict):
        raise ActionError(f'the tool call must be a JSON object {{"name": ..., "arguments": {{...}}}}, '
                          f"got {type(payload).__name__}")
    extra = set(payload) - {"name", "arguments"}
    if extra:
        raise ActionError(f"unexpected keys {sorted(extra)} in the tool call; use only `name` and `arguments`")
    if "name" not in payload:
        raise ActionError("the tool call has no `name`")
    return payload


def parse_action(text: Any, action_types: Iterable[type[Action]] | None = None) -> Action:
    """Parse one action from model output.

    The first ``<tool_call>`` or ``<answer>`` block counts (text around it is allowed).
    ``action_types`` limits the tools (default: every registered tool).
    """
    if not isinstance(text, str):
        raise ActionError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_ACTION_CHARS:
        raise ActionError(f"the action is {len(text)} characters long; the limit is {MAX_ACTION_CHARS}")
    if action_types is None:
        from pixelis_env.tools import registered_tools

        action_types = [spec.action_type for spec in registered_tools().values()]
    types = {t.name: t for t in action_types}
    call, answer = _TOOL_CALL.search(text), _ANSWER.search(text)
    if call is None and answer is None:
        if "<tool_call>" in text:
            raise ActionError("`<tool_call>` is not closed by `</tool_call>`")
        if "<answer>" in text:
            raise ActionError("`<answer>` is not closed by `</answer>`")
        raise ActionError('no action found: write <tool_call>{"name": ..., "arguments": {...}}</tool_call> '
                          "or <answer>...</answer>")
    if answer is not None and (call is None or answer.start() < call.start()):
        if "answer" not in types:
            raise ActionError("answering is not allowed here")
        if "<answer>" in answer.group(1) or "<tool_call>" in answer.group(1):
            raise ActionError("the answer contains another `<answer>` or `<tool_call>` tag")
        return types["answer"].from_arguments({"text": answer.group(1)})
    payload = _load_call(call.group(1))
    name = payload["name"]
    if not isinstance(name, str):
        raise ActionError(f"the tool `name` must be a string, got {type(name).__name__}")
    if name not in types:
        raise ActionError(f"unknown tool `{name[:40]}`." + did_you_mean(name, types) + f" Tools: {sorted(types)}")
    arguments = payload.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ActionError(f"`arguments` must be a JSON object, got {type(arguments).__name__}")
    return types[name].from_arguments(arguments)


def describe_tools(action_types: Iterable[type[Action]]) -> str:
    """The tool section of a system prompt, generated from the action declarations."""
    lines = ['Call one tool per turn as <tool_call>{"name": ..., "arguments": {...}}</tool_call>, '
             "or finish with <answer>...</answer>. Coordinates are fractions of the frame in [0, 1]."]
    lines += [t.describe() for t in action_types]
    return "\n".join(lines)
