"""``CoherenceReward``: adjacent steps should build on each other.

Three parts, summed and scaled by ``coef``:

- **repeat**: an exact repeat (same tool, same arguments) of a call made earlier in the
  episode costs ``repeat_penalty``. Tools are deterministic, so a repeat anywhere, not
  only back to back, adds nothing; this catches A, B, A, B loops too.
- **succession**: ``table[(previous tool, tool)]``, e.g. ``segment -> properties`` or
  ``zoom -> read_text`` earn, jumps that drop the previous result cost; pairs not in
  the table are neutral. The previous tool is the last *valid* call of the episode
  (none on the first call); the answer is scored as a successor too (``read_text ->
  answer`` ends a chain coherently).
- **view**: for tools that choose what to look at (``view_tools``), the cosine between
  the embeddings of the previous and the new view: inside ``[lo, hi]`` ("related but
  new") earns ``view_bonus``; above ``hi`` (a near-duplicate look) costs
  ``duplicate_penalty``; below ``lo`` (an unrelated view) is neutral. Tools that draw
  on or keep the current view (segment, read_text, ...) are left out: their view is a
  near-duplicate by design.

Error steps score 0 and are not a predecessor (the env penalises them already).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import gymnasium as gym
import numpy as np

from pixelis_env.errors import PixelisError
from pixelis_env.wrappers.reward_term import ANSWER, RewardTerm, StepView

DEFAULT_TABLE: dict[tuple[str, str], float] = {
    # logical successions: the next call uses what the previous one found
    ("segment", "properties"): 1.0,
    ("segment", "track"): 1.0,
    ("zoom", "read_text"): 1.0,
    ("zoom", "segment"): 1.0,
    ("zoom", "properties"): 0.5,
    ("select_frames", "zoom"): 1.0,
    ("select_frames", "segment"): 1.0,
    ("select_frames", "read_text"): 0.5,
    ("localize", "select_frames"): 1.0,
    ("localize", "zoom"): 0.5,
    ("track", "select_frames"): 0.5,
    ("track", "properties"): 0.5,
    # answering right after the call that produced the evidence
    ("read_text", ANSWER): 0.5,
    ("properties", ANSWER): 0.5,
    ("track", ANSWER): 0.5,
    ("localize", ANSWER): 0.5,
    # incoherent jumps: the next call ignores, or redoes, what the previous one gave
    ("read_text", "track"): -0.5,
    ("read_text", "localize"): -0.5,
    ("properties", "localize"): -0.5,
    ("track", "localize"): -0.5,
}
"""``(previous tool, next tool) -> value``; pairs not listed score 0."""

VIEW_TOOLS = ("zoom", "select_frames")


def view_embedding(image: np.ndarray, side: int = 8, bins: int = 4, histogram_side: int = 32) -> np.ndarray:
    """A cheap unit-norm embedding of a view: colour content plus coarse layout, equally weighted.

    The joint colour histogram (of a ``histogram_side`` px copy, for speed) says *what*
    is in view (a zoom onto a red square still shares its red with the overview); the
    mean-centred thumbnail says *where* (a slightly shifted crop is a near-duplicate). A
    flat view has no layout half.
    """
    small = cv2.resize(image, (histogram_side, histogram_side), interpolation=cv2.INTER_AREA)
    thumb = cv2.resize(small, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0
    quantised = (small.reshape(-1, 3) // (256 // bins)).astype(np.int64)
    codes = (quantised[:, 0] * bins + quantised[:, 1]) * bins + quantised[:, 2]
    histogram = np.sqrt(np.bincount(codes, minlength=bins**3).astype(np.float32))
    return np.concatenate([_unit(histogram), _unit(thumb - thumb.mean())]) / np.sqrt(2.0)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-6 else np.zeros_like(v)


def call_key(tool: str | None, arguments: Mapping[str, Any] | None) -> str:
    """A canonical string for a call, equal exactly when tool and arguments are."""
    return json.dumps([tool, arguments], sort_keys=True)


class CoherenceReward(RewardTerm, gym.utils.RecordConstructorArgs):
    """Reward steps that follow from the previous one; penalise repeats and near-duplicate views.

    Args:
        env: a Pixelis env (possibly wrapped by other reward terms).
        coef: scale of the term (0 disables it).
        table: ``(previous tool, next tool) -> value``; default :data:`DEFAULT_TABLE`.
        repeat_penalty: cost of an exact repeat of an earlier call.
        band: ``(lo, hi)`` cosine band of "related but new" consecutive views.
        view_bonus: earned for a view inside the band.
        duplicate_penalty: cost of a view more similar than ``hi``.
        view_tools: tools whose new view is compared with the previous one.
        embed: view -> 1-D embedding for the cosine (default :func:`view_embedding`).
    """

    term_name = "coherence"

    def __init__(self, env: gym.Env, coef: float = 0.05, table: Mapping[tuple[str, str], float] | None = None,
                 repeat_penalty: float = 1.0, band: tuple[float, float] = (0.2, 0.95), view_bonus: float = 0.5,
                 duplicate_penalty: float = 0.5, view_tools: Sequence[str] = VIEW_TOOLS,
                 embed: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, coef=coef, table=table, repeat_penalty=repeat_penalty, band=band, view_bonus=view_bonus,
            duplicate_penalty=duplicate_penalty, view_tools=view_tools, embed=embed)
        RewardTerm.__init__(self, env, coef)
        lo, hi = (float(b) for b in band)
        if not -1.0 <= lo <= hi <= 1.0:
            raise PixelisError(f"band must satisfy -1 <= lo <= hi <= 1, got {band}")
        self.table = dict(DEFAULT_TABLE if table is None else table)
        self.repeat_penalty, self.band = float(repeat_penalty), (lo, hi)
        self.view_bonus, self.duplicate_penalty = float(view_bonus), float(duplicate_penalty)
        self.view_tools = frozenset(view_tools)
        self.embed = embed or view_embedding
        self._seen: set[str] = set()
        self._previous: str | None = None

    def begin_episode(self, obs: Any, info: dict[str, Any]) -> None:
        self._seen, self._previous = set(), None

    def succession(self, previous: str | None, tool: str) -> float:
        """The table's value for calling ``tool`` right after ``previous`` (0 if unlisted or first)."""
        return self.table.get((previous, tool), 0.0) if previous is not None else 0.0

    def view_score(self, before: np.ndarray, after: np.ndarray) -> float:
        """Bonus for a related-but-new view, penalty for a near-duplicate, 0 for an unrelated one."""
        cosine = float(np.dot(self.embed(before), self.embed(after)))
        lo, hi = self.band
        if cosine > hi:
            return -self.duplicate_penalty
        return self.view_bonus if cosine >= lo else 0.0

    def compute(self, step: StepView) -> float:
        if not step.valid or step.tool is None:
            return 0.0
        key = call_key(step.tool, step.arguments)
        value = -self.repeat_penalty if key in self._seen else self._fresh_call(step)
        self._seen.add(key)
        self._previous = step.tool
        return value

    def _fresh_call(self, step: StepView) -> float:
        value = self.succession(self._previous, step.tool)
        if step.tool in self.view_tools:
            value += self.view_score(step.obs["image"], step.next_obs["image"])
        return value
