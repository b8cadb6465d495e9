"""PNG plots of evaluation runs (matplotlib, imported lazily, headless backend)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def suite_bars(scores: Mapping[str, Mapping[str, float]], path: str | os.PathLike,
               title: str = "score per suite") -> Path:
    """Grouped bars: ``scores[run][suite]``, one colour per run."""
    plt = pyplot()
    runs = list(scores)
    suites = sorted({s for run in scores.values() for s in run})
    width = 0.8 / max(len(runs), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(suites)), 3.5))
    for i, run in enumerate(runs):
        xs = [j + i * width for j in range(len(suites))]
        ax.bar(xs, [scores[run].get(s, 0.0) for s in suites], width, label=run)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(suites))], suites)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def length_histogram(lengths: Mapping[str, Sequence[int]], path: str | os.PathLike) -> Path:
    """Histogram of toolchain lengths per run."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max((max(v) for v in lengths.values() if v), default=1)
    bins = [b - 0.5 for b in range(top + 2)]
    for run, values in lengths.items():
        ax.hist(values, bins=bins, alpha=0.6, label=run)
    ax.set_xlabel("tool calls before answering")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
