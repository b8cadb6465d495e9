"""Answer scorers, matching the benchmarks' reference code (quirks included).

Every scorer has the signature ``(prediction: str, ground_truth) -> float in [0, 1]``
and is registered in :data:`METRICS` under the name a :class:`~pixelis_env.task.Task`
refers to. See ``BENCHMARKS.md`` for the reference behaviour each one reproduces.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pixelis_env.errors import PixelisError, did_you_mean

MRA_THRESHOLDS = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
"""VSI-Bench's thresholds: ``int()`` truncates 10.999... to 10, giving 0.50..0.95."""

_NUMBER_NAMES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(_NUMBER_NAMES.split())}


def vsi_first_token(prediction: str) -> str:
    """VSI-Bench's ``fuzzy_matching``: only the first whitespace token counts."""
    return prediction.split(" ")[0].rstrip(".").strip()


def to_float(text: Any) -> float | None:
    """A number from text, or ``None`` when it is not one."""
    try:
        value = float(str(text).strip().replace(",", ""))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def option_accuracy(prediction: str, ground_truth: Any) -> float:
    """VSI-Bench multiple choice: first token, trailing dot stripped, case-insensitive."""
    return float(vsi_first_token(prediction).lower() == str(ground_truth).strip().lower())


def mean_relative_accuracy(prediction: str, ground_truth: Any) -> float:
    """VSI-Bench MRA: mean over thresholds of ``|pred - gt| / gt <= 1 - theta``."""
    pred = to_float(vsi_first_token(prediction))
    gt = to_float(ground_truth)
    if pred is None or gt is None or gt == 0:
        return 0.0
    error = abs(pred - gt) / gt
    return float(np.mean([error <= 1 - theta for theta in MRA_THRESHOLDS]))


def exact_match(prediction: str, ground_truth: Any) -> float:
    """Case- and whitespace-insensitive equality with any of the ground-truth strings."""
    answers = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    pred = " ".join(prediction.lower().split())
    return float(any(pred == " ".join(str(a).lower().split()) for a in answers))


def count_accuracy(prediction: str, ground_truth: Any) -> float:
    """lmms-eval CountBench: normalised text equality, number words zero..twenty mapped."""
    def norm(x: Any) -> str:
        text = str(x).strip().lower()
        return NUMBER_WORDS.get(text, text)
    return float(norm(prediction) == norm(ground_truth))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str, ground_truth: Any, threshold: float = 0.5) -> float:
    """DocVQA ANLS as in lmms-eval: normalised strings, raw lengths in the denominator."""
    answers = ground_truth if isinstance(ground_truth, (list, tuple)) else [ground_truth]
    best = 1.0
    for answer in answers:
        a, p = str(answer), str(prediction)
        distance = levenshtein(" ".join(a.strip().lower().split()), " ".join(p.strip().lower().split()))
        best = min(best, distance / max(len(a), len(p), 1))
    score = 1.0 - best
    return score if score >= threshold else 0.0


_SPAN = re.compile(r"(\d+\.*\d*)\s*-\s*(\d+\.*\d*)")


def parse_span(prediction: str) -> tuple[float, float] | None:
    """lmms-eval ``eval_tvg``: 'to' becomes '-', first ``a - b`` pair, swapped if reversed."""
    match = _SPAN.search(prediction.replace("to", "-"))
    if match is None:
        return None
    try:
        start, end = float(match.group(1)), float(match.group(2))
    except ValueError:
        return None
    return (end, start) if start > end else (start, end)


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[start, end]`` spans in seconds."""
    inter = max(min(a[1], b[1]) - max(a[0], b[0]), 0.0)
    union = max(a[1], b[1]) - min(a[0], b[0])
    return float(inter / union) if union > 0 else 0.0


def span_iou(prediction: str, ground_truth: Any) -> float:
    """Temporal grounding score: IoU of the parsed span with the truth (0 if unparseable)."""
    span = parse_span(prediction)
    return temporal_iou(span, ground_truth) if span is not None else 0.0


_CHOICE = re.compile(r"\(?[A-Za-z]\)?\.?")


def answer_fits(answer_type: str, prediction: str) -> bool:
    """Whether ``prediction`` has the form its question asks for: one option letter, a number,
    a ``start-end`` span, or any non-empty text.

    A diagnostic, not a score: it tells a wrong answer from an answer to another kind of
    question (a span given to a multiple-choice question, say).
    """
    text = prediction.strip()
    if answer_type == "choice":
        return _CHOICE.fullmatch(text) is not None
    if answer_type == "number":
        return to_float(text) is not None
    if answer_type == "span":
        return _SPAN.fullmatch(text) is not None
    return bool(text)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x0, y0, x1, y1]`` boxes."""
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


Scorer = Callable[[str, Any], float]

METRICS: dict[str, Scorer] = {
    "option": option_accuracy,
    "mra": mean_relative_accuracy,
    "exact": exact_match,
    "count": count_accuracy,
    "anls": anls,
    "span_iou": span_iou,
}


def register_metric(name: str, scorer: Scorer) -> None:
    """Add a scorer a task can name (suites with their own rules register theirs)."""
    METRICS[name] = scorer


SUITE_METRICS = {"letter": "pixelis_env.suites.vstar", "vqa": "pixelis_env.suites.textvqa"}
"""Metrics registered by suite modules, imported on first use (e.g. scoring a saved run)."""


def score(metric: str, prediction: str, ground_truth: Any) -> float:
    """Score ``prediction`` with the named metric."""
    if metric not in METRICS and metric in SUITE_METRICS:
        importlib.import_module(SUITE_METRICS[metric])
    if metric not in METRICS:
        raise PixelisError(f"unknown metric `{metric}`." + did_you_mean(metric, METRICS))
    return float(METRICS[metric](prediction, ground_truth))
