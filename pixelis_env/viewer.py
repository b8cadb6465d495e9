"""A self-contained HTML page that shows saved episodes step by step.

Trajectories store no pixels, so the viewer replays each episode in a fresh env (same
env id, kwargs and seed) to recover the frames and tool views, and draws each call's
box or point on the frame it refers to. Episodes that cannot be replayed (another
task comes up, media missing) are shown as text only, with the reason.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pixelis_env.env import PixelisEnv
from pixelis_env.errors import PixelisError
from pixelis_env.trajectory import StepRecord, Trajectory
from pixelis_env.views import draw_box, fit

THUMB = 256
STYLE = """
body{font-family:sans-serif;margin:1em;background:#fafafa}
.ep{border:1px solid #ccc;background:#fff;margin:1em 0;padding:.5em 1em}
.step{display:flex;gap:1em;align-items:flex-start;border-top:1px solid #eee;padding:.4em 0}
.step img{border:1px solid #999} pre{white-space:pre-wrap;margin:.2em 0;max-width:48em}
.ok{color:#070}.bad{color:#b00}.err{color:#b00;font-weight:bold}
"""


def _img(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise PixelisError("could not encode a view as JPEG")
    return f'<img src="data:image/jpeg;base64,{base64.b64encode(data.tobytes()).decode()}">'


def _annotated_frame(env: PixelisEnv, record: StepRecord) -> np.ndarray | None:
    """The frame the call refers to, with its box/point drawn (None when it names none)."""
    args = record.arguments or {}
    media = env.media
    frame_index = args.get("frame", args.get("start_frame", 0))
    if not isinstance(frame_index, int) or not 0 <= frame_index < media.num_frames:
        return None
    view = fit(media.frame(frame_index), THUMB)
    scale_x, scale_y = media.width / max(media.width, media.height), media.height / max(media.width, media.height)
    off_x, off_y = (1 - scale_x) / 2, (1 - scale_y) / 2

    def to_view(x: float, y: float) -> tuple[float, float]:
        return off_x + x * scale_x, off_y + y * scale_y

    if "box" in args:
        x0, y0 = to_view(*args["box"][:2])
        x1, y1 = to_view(*args["box"][2:])
        view = draw_box(view, (x0, y0, x1, y1), (255, 40, 40), record.tool or "")
    if "point" in args:
        x, y = to_view(*args["point"])
        view = view.copy()
        cv2.circle(view, (int(x * THUMB), int(y * THUMB)), 5, (255, 40, 40), 2)
    return view


def _replay(trajectory: Trajectory, make_env: Callable[[str], PixelisEnv]) -> tuple[list[str], str | None]:
    """Per-step HTML image cells from replaying the episode, or a reason it could not be."""
    try:
        env = make_env(trajectory.env_id)
        obs, info = env.reset(seed=trajectory.seed)
    except Exception as exc:  # a viewer must show what it can
        return [], f"not replayed: {type(exc).__name__}: {exc}"
    if info["task_id"] != trajectory.task_id:
        return [], f"not replayed: seed {trajectory.seed} gives task {info['task_id']}, not {trajectory.task_id}"
    cells = [_img(fit(obs["image"], THUMB))]
    for record in trajectory.steps:
        action = record.text_action or _call_text(record)
        annotated = _annotated_frame(env, record) if record.arguments else None
        obs, *_ = env.step(action)
        cell = (_img(annotated) if annotated is not None else "") + _img(fit(obs["image"], THUMB))
        cells.append(cell)
    return cells, None


def _call_text(record: StepRecord) -> str:
    if record.tool == "answer":
        return f"<answer>{(record.arguments or {}).get('text', '')}</answer>"
    return "<tool_call>" + json.dumps({"name": record.tool, "arguments": record.arguments or {}}) + "</tool_call>"


def _episode_html(index: int, trajectory: Trajectory, make_env: Callable[[str], PixelisEnv]) -> str:
    cells, problem = _replay(trajectory, make_env)
    verdict = "ok" if trajectory.score >= 0.5 else "bad"
    parts = [f'<div class="ep"><h3>#{index} {html.escape(trajectory.env_id or trajectory.suite)} '
             f"· {html.escape(trajectory.task_id)} · {html.escape(trajectory.question_type)}</h3>",
             f"<pre>{html.escape(trajectory.question)}</pre>",
             f'<p class="{verdict}">answer: {html.escape(str(trajectory.answer))} · ground truth: '
             f"{html.escape(str(trajectory.ground_truth))} · score {trajectory.score:.3f} · "
             f"reward {trajectory.total_reward:+.3f}</p>"]
    if problem:
        parts.append(f"<p><i>{html.escape(problem)}</i></p>")
    if cells:
        parts.append(f'<div class="step"><div>{cells[0]}</div><div><b>reset</b></div></div>')
    for i, record in enumerate(trajectory.steps):
        call = record.text_action or _call_text(record)
        error = f'<p class="err">{html.escape(record.error)}</p>' if record.error else ""
        terms = ", ".join(f"{k} {v:+.3f}" for k, v in record.reward_terms.items())
        image = cells[i + 1] if i + 1 < len(cells) else ""
        parts.append(f'<div class="step"><div>{image}</div><div><b>step {record.step}</b> '
                     f"<pre>{html.escape(call)}</pre>{error}<pre>{html.escape(record.observation)}</pre>"
                     f"<p>reward {record.reward:+.3f} ({html.escape(terms)})</p></div></div>")
    parts.append("</div>")
    return "\n".join(parts)


def write_html(trajectories: Sequence[Trajectory], path: str | os.PathLike,
               env_kwargs: dict[str, Any] | None = None, title: str = "Pixelis episodes") -> Path:
    """Write the page; envs are made once per env id with ``env_kwargs``."""
    from pixelis_env.registration import make_env

    cache: dict[str, PixelisEnv] = {}

    def factory(env_id: str) -> PixelisEnv:
        if env_id not in cache:
            cache[env_id] = make_env(env_id, **(env_kwargs or {})).unwrapped
        return cache[env_id]

    body = "\n".join(_episode_html(i, t, factory) for i, t in enumerate(trajectories))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>")
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    for env in cache.values():
        env.close()
    return path
