"""Trajectory voting: pick a pseudo-label from several sampled episodes, without labels.

Plain TTRL votes on answers: the most frequent answer wins. Pixelis votes on
*trajectories*: the answer plus the toolchain that produced it and its pixel evidence.
Episodes are grouped by normalised answer (:func:`normalise_answer`); inside a group each
episode is weighted by how well its evidence (the boxes, points, frames and spans its
tool calls looked at) agrees with the other members' (:func:`agreement`) and by how
short it is. Five episodes answering "red" after zooming on five different places are
weaker evidence than three that all zoomed on the same square.

With ``W_i = (floor + (1 - floor) * fidelity_i) / (1 + length_penalty * calls_i)``,
where ``fidelity_i`` is the mean agreement of episode ``i`` with the rest of its group,
the winning group is the one with the largest total weight, and its share of *all*
weight (unanswered episodes included) must reach ``threshold`` for the label to be
accepted. The exemplar to learn from is the shortest episode among the group's
highest-fidelity members. ``mode="answer"`` is the original majority vote (every
episode weighs 1), kept for ablations.

Everything here reads only what the agent did (tool names, arguments, the answer text);
an :class:`Attempt` has no field for a score or ground truth.

>>> red = Attempt("red", [("zoom", {"box": [0.0, 0.0, 0.5, 0.5], "frame": 0})])
>>> blue = Attempt("blue", [("zoom", {"box": [0.5, 0.5, 1.0, 1.0], "frame": 0})])
>>> vote([red, red, blue], VoteRule(threshold=0.6)).label
'red'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pixelis_env.trajectory import StepRecord

MODES = ("trajectory", "answer")
POINT_SIDE = 0.1
"""A point argument counts as a box of this side centred on it (so points can agree by IoU)."""
_LETTER = re.compile(r"\(?([a-z])\)?(?:[.):]\s*.*)?")
_TAG = re.compile(r"</?(?:answer|tool_call)>")


@dataclass(frozen=True)
class Attempt:
    """One sampled episode as voting sees it: its answer text and its valid tool calls."""

    answer: str | None
    calls: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Tool calls before answering (the toolchain length)."""
        return len(self.calls)


@dataclass(frozen=True)
class Evidence:
    """What an episode looked at: boxes keyed by frame, selected frames, time spans."""

    boxes: tuple[tuple[int, tuple[float, ...]], ...] = ()
    frames: frozenset[int] = frozenset()
    spans: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class VoteRule:
    """How votes are weighted and when a pseudo-label is accepted."""

    mode: str = "trajectory"
    """``trajectory`` (evidence- and length-weighted) or ``answer`` (plain majority, original TTRL)."""
    threshold: float = 0.5
    """The winning group's share of total weight needed to accept its answer as a pseudo-label."""
    length_penalty: float = 0.25
    """Shortness factor ``1 / (1 + length_penalty * calls)``."""
    evidence_floor: float = 0.1
    """Weight factor of an episode whose evidence agrees with nothing in its group (fidelity 0)."""
    lone_fidelity: float = 0.5
    """Fidelity of the only member of a group (nothing to agree or disagree with)."""
    fidelity_slack: float = 0.25
    """Exemplar candidates: group members within this much of the group's best fidelity."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"vote mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.length_penalty < 0 or self.fidelity_slack < 0:
            raise ValueError("length_penalty and fidelity_slack must be >= 0")
        if not (0.0 <= self.evidence_floor <= 1.0 and 0.0 <= self.lone_fidelity <= 1.0):
            raise ValueError("evidence_floor and lone_fidelity must be in [0, 1]")


@dataclass
class Vote:
    """The outcome: the pseudo-label (``None`` when nothing answered), whether it is accepted,
    per-episode weights and fidelities, the answer groups, and the exemplar's index."""

    label: str | None
    share: float
    accepted: bool
    weights: list[float]
    fidelity: list[float]
    groups: dict[str, list[int]]
    exemplar: int | None


# ------------------------------------------------------------------ answers
def normalise_answer(text: str | None) -> str | None:
    """A canonical answer for grouping: case, spacing and a final dot ignored; option letters
    (``"(B)"``, ``"b. right"``) become the letter, numbers their shortest float spelling.

    Grammar tags left inside an answer (``<answer><answer></answer>`` parses to the text
    ``"<answer>"``) are dropped: an answer made only of markup is no answer, and a sampler
    that babbles it must not win the vote by repeating it.
    """
    if text is None:
        return None
    clean = " ".join(_TAG.sub(" ", str(text)).lower().split()).strip(" .")
    if not clean:
        return None
    letter = _LETTER.fullmatch(clean)
    if letter:
        return letter.group(1)
    try:
        number = float(clean.replace(",", ""))
    except ValueError:
        return clean
    return f"{number:g}" if math.isfinite(number) else clean


def attempt_from_steps(steps: Sequence[StepRecord]) -> Attempt:
    """An :class:`Attempt` from an episode's step records (tools, arguments, errors only)."""
    calls, answer = [], None
    for step in steps:
        if step.error is not None or step.tool is None:
            continue
        if step.tool == "answer":
            answer = normalise_answer((step.arguments or {}).get("text"))
        else:
            calls.append((step.tool, dict(step.arguments or {})))
    return Attempt(answer, calls)


# ----------------------------------------------------------------- evidence
def evidence(attempt: Attempt) -> Evidence:
    """Boxes (points as :data:`POINT_SIDE` boxes) keyed by their frame, the frames chosen by
    ``select_frames`` and ``track``, and spans. A call's ``frame`` only keys its box: on an
    image every call is on frame 0, which says nothing about agreement."""
    boxes, frames, spans = [], set(), []
    for tool, arguments in attempt.calls:
        frame = int(arguments.get("frame", arguments.get("start_frame", 0)))
        if "box" in arguments:
            boxes.append((frame, tuple(float(v) for v in arguments["box"])))
        if "point" in arguments:
            x, y = (float(v) for v in arguments["point"])
            half = POINT_SIDE / 2
            boxes.append((frame, (x - half, y - half, x + half, y + half)))
        if "frames" in arguments:
            frames.update(int(f) for f in arguments["frames"])
        if tool == "track":
            frames.update(int(arguments[k]) for k in ("start_frame", "end_frame") if k in arguments)
        if "span" in arguments:
            start, end = (float(v) for v in arguments["span"])
            spans.append((start, end))
    return Evidence(tuple(boxes), frozenset(frames), tuple(spans))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``x0, y0, x1, y1`` boxes."""
    width = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    height = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def span_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """1-D IoU of two ``start, end`` spans."""
    inter = max(min(a[1], b[1]) - max(a[0], b[0]), 0.0)
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def _matched(a: Sequence[Any], b: Sequence[Any], similarity: Any) -> float:
    """Symmetric best-match similarity: each item's best partner on the other side, averaged
    both ways (0 when one side is empty)."""
    if not a or not b:
        return 0.0
    forward = sum(max(similarity(x, y) for y in b) for x in a) / len(a)
    backward = sum(max(similarity(x, y) for x in a) for y in b) / len(b)
    return (forward + backward) / 2


def _box_similarity(a: tuple[int, tuple[float, ...]], b: tuple[int, tuple[float, ...]]) -> float:
    return box_iou(a[1], b[1]) if a[0] == b[0] else 0.0


def agreement(a: Evidence, b: Evidence) -> float:
    """How much two episodes looked at the same pixels, in ``[0, 1]``.

    The mean over the evidence kinds either episode has (boxes: matched IoU on the same
    frame; frames: Jaccard; spans: matched 1-D IoU); a kind only one of them has scores 0.
    Two episodes without any evidence agree fully (1.0): nothing contradicts.
    """
    scores = []
    if a.boxes or b.boxes:
        scores.append(_matched(a.boxes, b.boxes, _box_similarity))
    if a.frames or b.frames:
        scores.append(len(a.frames & b.frames) / len(a.frames | b.frames))
    if a.spans or b.spans:
        scores.append(_matched(a.spans, b.spans, span_iou))
    return sum(scores) / len(scores) if scores else 1.0


# ------------------------------------------------------------------- voting
def group_by_answer(attempts: Sequence[Attempt]) -> dict[str, list[int]]:
    """Indices of the answering attempts per normalised answer, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, attempt in enumerate(attempts):
        if attempt.answer is not None:
            groups.setdefault(attempt.answer, []).append(index)
    return groups


def fidelities(attempts: Sequence[Attempt], groups: Mapping[str, list[int]], lone_fidelity: float) -> list[float]:
    """Each attempt's mean evidence agreement with the other members of its group (0 unanswered)."""
    found = [evidence(a) for a in attempts]
    out = [0.0] * len(attempts)
    for members in groups.values():
        for i in members:
            others = [agreement(found[i], found[j]) for j in members if j != i]
            out[i] = sum(others) / len(others) if others else lone_fidelity
    return out


def vote(attempts: Sequence[Attempt], rule: VoteRule | None = None) -> Vote:
    """Vote over sampled episodes; see the module docstring for the weights."""
    rule = rule or VoteRule()
    if not attempts:
        raise ValueError("vote needs at least one attempt")
    groups = group_by_answer(attempts)
    if rule.mode == "answer":
        fidelity = [1.0] * len(attempts)
        weights = [1.0] * len(attempts)
    else:
        fidelity = fidelities(attempts, groups, rule.lone_fidelity)
        weights = [(rule.evidence_floor + (1 - rule.evidence_floor) * f) / (1 + rule.length_penalty * a.length)
                   for f, a in zip(fidelity, attempts)]
    if not groups:
        return Vote(None, 0.0, False, weights, fidelity, groups, None)
    totals = {label: sum(weights[i] for i in members) for label, members in groups.items()}
    label = max(groups, key=lambda g: (totals[g], len(groups[g])))  # first seen wins exact ties
    share = totals[label] / sum(weights)
    return Vote(label, share, share >= rule.threshold, weights, fidelity, groups,
                exemplar(attempts, groups[label], fidelity, rule))


def exemplar(attempts: Sequence[Attempt], members: Sequence[int], fidelity: Sequence[float], rule: VoteRule) -> int:
    """The shortest of the group's members whose fidelity is within ``fidelity_slack`` of the
    best (ties: higher fidelity, then the earlier sample)."""
    best = max(fidelity[i] for i in members)
    eligible = [i for i in members if fidelity[i] >= best - rule.fidelity_slack]
    return min(eligible, key=lambda i: (attempts[i].length, -fidelity[i], i))
