"""Pixelis-Env: Gymnasium environments for agents that answer questions by acting on pixels.

``gym.make("Pixelis-VSI-v0")`` works after ``import pixelis_env``. The package imports
without torch; torch-heavy parts live in the ``agents`` and ``training`` packages.
"""

from __future__ import annotations

from pixelis_env.actions import (
    Action,
    Answer,
    Localize,
    Properties,
    ReadText,
    Segment,
    SelectFrames,
    Track,
    Zoom,
)
from pixelis_env.env import PixelisEnv
from pixelis_env.errors import (
    ActionError,
    BackendUnavailableError,
    DataError,
    MediaError,
    PixelisError,
    ToolError,
)
from pixelis_env.media import Media, load_media
from pixelis_env.registration import SUITES, make_env, register_envs
from pixelis_env.task import Task, TaskList
from pixelis_env.text_actions import format_action, parse_action
from pixelis_env.tools import ToolContext, ToolResult, register_tool
from pixelis_env.trajectory import StepRecord, Trajectory, load_jsonl, save_jsonl

__version__ = "0.1.0"
ENV_IDS = tuple(SUITES)

__all__ = [
    "ENV_IDS", "Action", "ActionError", "Answer", "BackendUnavailableError", "DataError", "Localize", "Media",
    "MediaError", "PixelisEnv", "PixelisError", "Properties", "ReadText", "Segment", "SelectFrames", "StepRecord",
    "Task", "TaskList", "ToolContext", "ToolError", "ToolResult", "Track", "Trajectory", "Zoom", "format_action",
    "load_jsonl", "load_media", "make_env", "parse_action", "register_envs", "register_tool", "save_jsonl",
]

register_envs()
