"""``PixelisEnv``: a question about an image or video, answered by calling pixel tools.

``reset`` picks a task and shows the question with a first view; each ``step`` runs one
tool and returns its output as the observation. A malformed or impossible action is
data, not a crash: the step returns the error in the observation, a penalty, and the
episode goes on (truncated after ``max_errors`` errors or ``max_steps`` steps).
"""

from __future__ import annotations

import dataclasses
import logging
import string
import time
import unicodedata
from collections import deque
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pixelis_env import metrics
from pixelis_env.action_space import ActionSpace, SpaceLimits
from pixelis_env.actions import Action, Answer, FrameArg, FrameListArg, InvalidAction, SpanArg
from pixelis_env.errors import ActionError, MediaError, PixelisError
from pixelis_env.media import Media
from pixelis_env.task import Task, TaskList, TaskSource
from pixelis_env.text_actions import format_action, parse_action
from pixelis_env.tools import IMAGE, VIDEO, ToolContext, ToolResult, ToolSpec, get_tool, registered_tools
from pixelis_env.tools.base import ResultData
from pixelis_env.trajectory import StepRecord
from pixelis_env.views import fit, grid

logger = logging.getLogger(__name__)

OBS_CHARSET = string.printable
MAX_OBS_TEXT = 4096
OVERVIEW_FRAMES = 4
MAX_RESET_ATTEMPTS = 8
RENDER_VIEWS = 6
"""Views kept for render() (older ones are dropped so memory does not grow)."""


def to_obs_text(text: str, limit: int = MAX_OBS_TEXT) -> str:
    """Map any unicode to the observation charset (accents dropped, others as '?') and cut."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    mapped = "".join(c if c in OBS_CHARSET else "?" for c in ascii_text)
    return mapped if len(mapped) <= limit else mapped[: limit - 3] + "..."


class PixelisEnv(gym.Env):
    """A Gymnasium env over a task source, with the registered tools as actions.

    Args:
        tasks: a :class:`TaskSource` (suites) or a list of :class:`Task`.
        tools: tool names to offer (default: every registered tool fitting the media).
        view_size: side of the square observation image.
        max_steps: steps before truncation.
        max_errors: invalid actions before truncation.
        invalid_penalty: subtracted from the reward of an invalid action.
        tool_config: backend options passed to tools (e.g. ``sam_checkpoint``); ``require_ocr``
            checks for the tesseract binary at construction instead of at the first OCR step.
        render_mode: ``"rgb_array"`` or ``None``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, tasks: TaskSource | Sequence[Task], tools: Sequence[str] | None = None,
                 view_size: int = 224, max_steps: int = 10, max_errors: int = 5, invalid_penalty: float = 0.1,
                 tool_config: dict[str, Any] | None = None, render_mode: str | None = None) -> None:
        if not isinstance(tasks, TaskSource):
            tasks = TaskList(list(tasks))
        if len(tasks) == 0:
            raise PixelisError("the task source is empty")
        if render_mode not in (None, "rgb_array"):
            raise PixelisError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        if view_size < 32 or max_steps < 1 or max_errors < 1:
            raise PixelisError("view_size must be >= 32, and max_steps and max_errors >= 1")
        self.tasks = tasks
        self.view_size, self.max_steps, self.max_errors = int(view_size), int(max_steps), int(max_errors)
        self.invalid_penalty = float(invalid_penalty)
        self.tool_config = dict(tool_config or {})
        self.render_mode = render_mode
        self.tool_specs = self._select_tools(tools)
        if self.tool_config.get("require_ocr"):
            from pixelis_env.tools.tesseract_backend import check_tesseract

            check_tesseract()
        limits = SpaceLimits(max_frames=tasks.max_frames, max_seconds=max(tasks.max_seconds, 1.0))
        self.actions = ActionSpace([s.action_type for s in self.tool_specs], limits)
        self.action_space = self.actions.space
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (self.view_size, self.view_size, 3), np.uint8),
            "text": spaces.Text(MAX_OBS_TEXT, min_length=0, charset=OBS_CHARSET),
        })
        self.task: Task | None = None
        self.media: Media | None = None
        self.ctx: ToolContext | None = None
        self.records: list[StepRecord] = []
        self.views: deque[tuple[str, np.ndarray]] = deque(maxlen=RENDER_VIEWS)
        self._steps = self._errors = 0
        self._done = True
        self._candidates: list[str] = []

    def _select_tools(self, names: Sequence[str] | None) -> list[ToolSpec]:
        if names is not None:
            specs = [get_tool(n) for n in names]
        else:
            specs = [s for s in registered_tools().values() if s.media_kinds & self.tasks.media_kinds]
        if "answer" not in {s.name for s in specs}:
            specs.append(get_tool("answer"))
        return specs

    # ----------------------------------------------------------------- reset
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        self._close_media()
        skipped: list[str] = []
        if "task" in options or "task_index" in options:
            task = options["task"] if "task" in options else self.tasks[int(options["task_index"])]
            media, view = self._open(task)
        else:
            for _ in range(MAX_RESET_ATTEMPTS):
                task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
                try:
                    media, view = self._open(task)
                    break
                except MediaError as exc:
                    logger.warning("skipping task %s: %s", task.task_id, exc)
                    skipped.append(f"{task.task_id}: {exc}")
            else:
                raise MediaError("no loadable media after "
                                 f"{MAX_RESET_ATTEMPTS} tries; last errors: {skipped[-3:]}")
        self.task, self.media = task, media
        self.ctx = ToolContext(media=media, view_size=self.view_size, task=task, config=self.tool_config)
        self.records = []
        self.views.clear()
        self._steps = self._errors = 0
        self._done = False
        self._candidates = [o.split(".")[0].strip() for o in task.options]
        self.views.append(("question", view))
        obs = {"image": view.copy(), "text": to_obs_text(self._intro())}
        about = {"width": media.width, "height": media.height, "num_frames": media.num_frames,
                 "fps": float(media.fps), "duration": float(media.duration)}
        info = self._info(media=about, skipped=skipped) if skipped else self._info(media=about)
        return obs, info

    def _open(self, task: Task) -> tuple[Media, np.ndarray]:
        """The task's media and its first view; media whose view cannot be decoded is closed."""
        media = task.load_media()
        try:
            return media, self._overview(media)
        except MediaError:
            media.close()
            raise

    def _overview(self, media: Media) -> np.ndarray:
        """The first view: the image, or frames spread over the video.

        A frame that cannot be decoded (a truncated file, a frame count the container
        overstates) shows as a black tile marked unreadable; media with no decodable
        overview frame raises :class:`MediaError` (a random reset then skips the task).
        """
        if not media.is_video:
            return fit(media.frame(0), self.view_size)
        indices = sorted({int(round(v)) for v in np.linspace(0, media.num_frames - 1, OVERVIEW_FRAMES)})
        scale = min(1.0, self.view_size / max(media.width, media.height))
        blank = np.zeros((max(1, round(media.height * scale)), max(1, round(media.width * scale)), 3), np.uint8)
        frames, labels, failed = [], [], []
        for i in indices:
            try:
                frames.append(media.frame(i))
                labels.append(f"#{i}")
            except MediaError as exc:
                failed.append(str(exc))
                frames.append(blank)
                labels.append(f"#{i} unreadable")
        if len(failed) == len(indices):
            raise MediaError(f"{media.name}: no overview frame could be decoded ({failed[0]})")
        if failed:
            logger.warning("%s: overview frames unreadable: %s", media.name, "; ".join(failed))
        return grid(frames, self.view_size, labels)

    def _intro(self) -> str:
        media = self.media
        if media.is_video:
            about = (f"[video: {media.num_frames} frames at {media.fps:g} fps ({media.duration:.1f} s), "
                     f"{media.width}x{media.height}; the view shows {OVERVIEW_FRAMES} frames]")
        else:
            about = f"[image: {media.width}x{media.height}]"
        return f"{self.task.prompt()}\n{about}"

    # ------------------------------------------------------------------ step
    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.task is None or self._done:
            raise PixelisError("call reset() before step() (the episode is over or never started)")
        self._steps += 1
        text_action = action if isinstance(action, str) else None
        started = time.perf_counter()
        typed: Action | None = None
        try:
            typed = self.to_action(action)
            spec = self._check_context(typed)
            result = self._run(spec, typed)
            task_score = (metrics.score(self.task.metric, typed.text, self.task.answer)
                          if isinstance(typed, Answer) else 0.0)
        except ActionError as exc:
            return self._invalid(str(exc), typed, text_action, started)
        except PixelisError as exc:
            return self._invalid(f"{type(exc).__name__}: {exc}", typed, text_action, started)
        except Exception as exc:  # a backend bug must not end a training run
            where = f"`{typed.name}`" if typed is not None else "reading the action"
            logger.exception("internal error in %s", where)
            return self._invalid(f"internal error in {where}: {type(exc).__name__}: {exc}", typed, text_action,
                                 started)

        terms = {"task": task_score}
        terminated = isinstance(typed, Answer)
        for candidate in result.candidates:
            if candidate not in self._candidates:
                self._candidates.append(candidate)
        view = self.views[-1][1] if result.image is None else fit(result.image, self.view_size)
        self.views.append((format_action(typed)[:80], view))
        reward = float(sum(terms.values()))
        truncated = not terminated and self._steps >= self.max_steps
        self._record(typed, text_action, result.text, reward, terms, result.data, None, started)
        self._done = terminated or truncated
        obs = {"image": view if result.image is not None else view.copy(), "text": to_obs_text(result.text)}
        info = self._info(tool=typed.name, tool_result=ResultData(result.data), reward_terms=terms,
                          record=self._record_info())
        if terminated:
            info.update(score=terms["task"], answer=typed.text)
        return obs, reward, terminated, truncated, info

    def to_action(self, action: Any) -> Action:
        """Turn any of the three surfaces (typed, text, structured sample) into an Action."""
        if isinstance(action, Action):
            return action
        if isinstance(action, InvalidAction):
            raise ActionError(action.message)
        if isinstance(action, str):
            return parse_action(action, self.actions.action_types)
        if isinstance(action, (tuple, list)) and len(action) == 2:
            return self.actions.from_space(action)
        raise ActionError(f"cannot read an action of type {type(action).__name__}; give an Action, "
                          "a <tool_call> text, or a sample of action_space")

    def _check_context(self, action: Action) -> ToolSpec:
        spec = next((s for s in self.tool_specs if s.action_type is type(action)), None)
        if spec is None:
            raise ActionError(f"`{action.name}` is not available in this env; tools: "
                              f"{[s.name for s in self.tool_specs]}")
        kind = VIDEO if self.media.is_video else IMAGE
        if kind not in spec.media_kinds:
            raise ActionError(f"`{action.name}` needs a {' or '.join(sorted(spec.media_kinds))}; this task has "
                              f"an {kind}")
        last = self.media.num_frames - 1
        for key, f in action.arguments().items():
            value, arg_kind = getattr(action, key), f.metadata["arg"]
            if value is None:
                continue
            if isinstance(arg_kind, FrameArg) and value > last:
                raise ActionError(f"{action.name}.{key}: frame {value} is outside the video (0..{last})")
            if isinstance(arg_kind, FrameListArg) and max(value) > last:
                raise ActionError(f"{action.name}.{key}: frame {max(value)} is outside the video (0..{last})")
            if isinstance(arg_kind, SpanArg) and value[0] >= self.media.duration:
                raise ActionError(f"{action.name}.{key}: starts at {value[0]} s, after the video ends "
                                  f"({self.media.duration:.2f} s)")
        return spec

    def _run(self, spec: ToolSpec, action: Action) -> ToolResult:
        result = spec.run(action, self.ctx)
        if not isinstance(result, ToolResult):
            raise PixelisError(f"tool `{spec.name}` returned {type(result).__name__}, not a ToolResult")
        return result

    def _invalid(self, message: str, action: Action | None, text_action: str | None, started: float
                 ) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self._errors += 1
        terms = {"task": 0.0, "invalid": -self.invalid_penalty}
        reward = -self.invalid_penalty
        truncated = self._errors >= self.max_errors or self._steps >= self.max_steps
        text = f"error: {message}"
        self._record(action, text_action, text, reward, terms, {}, message, started)
        self._done = truncated
        self.views.append(("error", self.views[-1][1]))
        obs = {"image": self.views[-1][1].copy(), "text": to_obs_text(text)}
        info = self._info(tool=getattr(action, "name", None), tool_result=ResultData({}), reward_terms=terms,
                          error=message,
                          record=self._record_info())
        return obs, reward, False, truncated, info

    def _record(self, action: Action | None, text_action: str | None, text: str, reward: float,
                terms: dict[str, float], data: dict[str, Any], error: str | None, started: float) -> None:
        self.records.append(StepRecord(
            step=self._steps, tool=getattr(action, "name", None),
            arguments=action.to_arguments() if action is not None else None,
            text_action=text_action, observation=to_obs_text(text, 1000), reward=reward,
            reward_terms=dict(terms), tool_result=data, error=error,
            seconds=round(time.perf_counter() - started, 6)))

    def _record_info(self) -> StepRecord:
        """The last step record for ``info``.

        A dataclass, not a dict: vector envs pass it whole instead of merging its keys
        across sub-envs. Timing is zeroed because info must be deterministic.
        """
        return dataclasses.replace(self.records[-1], seconds=0.0)

    def _info(self, **extra: Any) -> dict[str, Any]:
        task = self.task
        return {"task_id": task.task_id, "suite": task.suite, "question_type": task.question_type,
                "step": self._steps, "errors": self._errors, "answer_candidates": list(self._candidates),
                "error": None, **extra}

    # --------------------------------------------------------------- helpers
    def episode_header(self) -> dict[str, Any]:
        """The current task as plain data (what a Trajectory records), for rollouts through vector envs."""
        if self.task is None:
            raise PixelisError("call reset() first")
        task = self.task
        return {"task_id": task.task_id, "suite": task.suite, "question": task.question,
                "ground_truth": task.answer, "question_type": task.question_type,
                "env_id": self.spec.id if self.spec is not None else ""}

    def oracle_actions(self) -> list[Action]:
        """The current task's oracle trace (tool calls, then the right answer)."""
        if self.task is None:
            raise PixelisError("call reset() first")
        return self.task.oracle_trace()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.task is None:
            return None
        from pixelis_env.render import render_episode

        return render_episode(self.task, self.views, self.records)

    def _close_media(self) -> None:
        if self.media is not None:
            self.media.close()

    def close(self) -> None:
        self._close_media()
        super().close()
