"""Temporal grounding summaries as papers report them: R@1 at IoU thresholds and mIoU.

Charades-STA results are the share of queries whose top-1 span reaches each IoU
threshold, and the mean IoU. The values here are fractions in ``[0, 1]``; published
tables print them multiplied by 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

THRESHOLDS = (0.3, 0.5, 0.7)


def recall_at_iou(ious: Iterable[float], thresholds: Sequence[float] = THRESHOLDS) -> dict[str, float]:
    """Share of queries with IoU >= each threshold, keyed ``"R@0.3"`` etc., plus ``"mIoU"``.

    >>> recall_at_iou([0.9, 0.6, 0.5, 0.0])
    {'R@0.3': 0.75, 'R@0.5': 0.75, 'R@0.7': 0.25, 'mIoU': 0.5}
    """
    values = np.asarray(list(ious), float)
    if values.size == 0:
        raise ValueError("recall_at_iou needs at least one IoU")
    if not np.all((values >= 0) & (values <= 1)):
        raise ValueError("IoUs must lie in [0, 1]")
    summary = {f"R@{t:g}": float(np.mean(values >= t)) for t in thresholds}
    summary["mIoU"] = float(values.mean())
    return summary
