"""VSI-Bench's overall score: a macro mean over task entries, as thinking-in-space computes it.

Scores are averaged per ``question_type``; the three ``object_rel_direction_*`` levels
merge into one ``object_rel_direction`` entry as ``(easy + medium + hard) / 3``, a
missing level counting 0 (thinking-in-space's ``pop(key, 0.0)`` divided by 3; newer
lmms-eval averages only the levels present, older lmms-eval raises). That entry is
always present; any other type appears only when it has results. ``overall`` is the
unweighted mean of the entries: with all ten types present, 8 entries.
Values are fractions in [0, 1] (the paper multiplies by 100).

>>> aggregate([("object_counting", 1.0), ("object_counting", 0.5), ("object_rel_direction_easy", 1.0)])
{'object_counting': 0.75, 'object_rel_direction': 0.3333333333333333, 'overall': 0.5416666666666666}
"""

from __future__ import annotations

from collections.abc import Iterable

from pixelis_env.errors import DataError, did_you_mean
from pixelis_env.suites.vsi.questions import DIRECTION_TYPES, QUESTION_TYPES

DIRECTION_ENTRY = "object_rel_direction"


def per_type_means(results: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Mean score of each question type, in VSI-Bench's type order."""
    sums: dict[str, list[float]] = {}
    for question_type, score in results:
        if question_type not in QUESTION_TYPES:
            raise DataError(f"unknown VSI-Bench question_type {question_type!r}."
                            + did_you_mean(question_type, QUESTION_TYPES))
        sums.setdefault(question_type, []).append(float(score))
    return {t: sum(sums[t]) / len(sums[t]) for t in QUESTION_TYPES if t in sums}


def aggregate(results: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Per-entry means plus ``overall`` from ``(question_type, score)`` pairs (see module doc)."""
    means = per_type_means(results)
    entries = {t: v for t, v in means.items() if t not in DIRECTION_TYPES}
    entries[DIRECTION_ENTRY] = sum(means.get(t, 0.0) for t in DIRECTION_TYPES) / len(DIRECTION_TYPES)
    return {**entries, "overall": sum(entries.values()) / len(entries)}
