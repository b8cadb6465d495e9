"""Summaries of evaluation runs: per-suite scores, breakdowns, and relative gain.

Works on :class:`~pixelis_env.trajectory.Trajectory` records only, so any run saved as
JSONL can be summarised or compared later. A suite module may define
``aggregate(pairs, missing_levels) -> {"overall": ...}`` over ``(question_type, score)``
pairs when its benchmark's overall score is not the plain mean (VSI-Bench macro-averages
over question types; summaries average only the direction levels present, since a small
sample may not draw every level).
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pixelis_env.trajectory import Trajectory

SUITE_MODULES = {
    "vsi": "pixelis_env.suites.vsi",
    "vstar": "pixelis_env.suites.vstar",
    "textvqa": "pixelis_env.suites.textvqa",
    "count": "pixelis_env.suites.count",
    "track": "pixelis_env.suites.track",
    "temporal": "pixelis_env.suites.temporal",
}


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def suite_score(suite: str, trajectories: Sequence[Trajectory]) -> float:
    """The suite's overall score in its benchmark's own aggregation."""
    module_name = SUITE_MODULES.get(suite)
    if module_name is not None:
        aggregate = getattr(importlib.import_module(module_name), "aggregate", None)
        if aggregate is not None:
            pairs = [(t.question_type, t.score) for t in trajectories]
            return float(aggregate(pairs, missing_levels="present")["overall"])
    return _mean(t.score for t in trajectories)


def summarize_suite(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    """Score, per-question-type scores, toolchain length, invalid rate, answer rate, time."""
    by_type: dict[str, list[float]] = defaultdict(list)
    for t in trajectories:
        by_type[t.question_type or "all"].append(t.score)
    steps = sum(len(t.steps) for t in trajectories)
    return {
        "suite": trajectories[0].suite,
        "episodes": len(trajectories),
        "score": suite_score(trajectories[0].suite, trajectories),
        "by_question_type": {k: _mean(v) for k, v in sorted(by_type.items())},
        "toolchain": _mean(len(t.toolchain) for t in trajectories),
        "invalid_rate": sum(t.invalid_steps for t in trajectories) / max(steps, 1),
        "answered": _mean(float(t.terminated) for t in trajectories),
        "seconds_per_episode": _mean(sum(s.seconds for s in t.steps) for t in trajectories),
    }


def summarize(trajectories: Iterable[Trajectory]) -> dict[str, dict[str, Any]]:
    """:func:`summarize_suite` for each suite present, keyed by suite name."""
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        groups[t.suite].append(t)
    return {suite: summarize_suite(ts) for suite, ts in sorted(groups.items())}


def relative_gain(ours: Mapping[str, float], base: Mapping[str, float]) -> float:
    """The paper's headline metric: mean over shared suites of ``(ours - base) / base``.

    Suites where the base scores 0 are left out (the ratio is undefined there).
    """
    shared = [s for s in ours if s in base and base[s] > 0]
    return _mean((ours[s] - base[s]) / base[s] for s in shared)


def toolchain_lengths(trajectories: Iterable[Trajectory]) -> list[int]:
    return [len(t.toolchain) for t in trajectories]
