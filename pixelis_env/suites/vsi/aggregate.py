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


def aggregate(results: Iterable[tuple[str, float]], missing_levels: str = "zero") -> dict[str, float]:
    """Per-entry means plus ``overall`` from ``(question_type, score)`` pairs (see module doc).

    ``missing_levels="present"`` averages only the direction levels that have results
    (newer lmms-eval's ``vsibench_overall``; the entry is left out when none has), which
    suits small samples where a level may simply not have been drawn.
    """
    if missing_levels not in ("zero", "present"):
        raise DataError(f"missing_levels must be 'zero' or 'present', got {missing_levels!r}")
    means = per_type_means(results)
    entries = {t: v for t, v in means.items() if t not in DIRECTION_TYPES}
    present = [means[t] for t in DIRECTION_TYPES if t in means]
    if missing_levels == "zero":
        entries[DIRECTION_ENTRY] = sum(present) / len(DIRECTION_TYPES)
    elif present:
        entries[DIRECTION_ENTRY] = sum(present) / len(present)
    return {**entries, "overall": sum(entries.values()) / len(entries) if entries else 0.0}
