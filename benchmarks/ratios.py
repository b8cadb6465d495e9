"""Interleaved A/B timing: the ratio of medians, robust to a shared, noisy machine.

Absolute times drift with whatever else runs; alternating A and B and comparing
medians measured minutes apart, never across runs, keeps the ratio meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def interleaved_ratio(a: Callable[[], Any], b: Callable[[], Any], rounds: int = 30, inner: int = 1) -> dict[str, float]:
    """Median seconds of ``a`` and ``b`` (alternated) and ``a / b``."""
    times_a, times_b = [], []
    a(), b()  # warm-up: caches, lazy imports
    for _ in range(rounds):
        for fn, out in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - start) / inner)
    median_a, median_b = statistics.median(times_a), statistics.median(times_b)
    return {"a_s": median_a, "b_s": median_b, "ratio": median_a / median_b}


def record(benchmark: Any, name: str, result: dict[str, float]) -> float:
    """Store a ratio in the benchmark's JSON (``extra_info``) and return it."""
    benchmark.extra_info[f"{name}_ratio"] = round(result["ratio"], 4)
    benchmark.extra_info[f"{name}_a_ms"] = round(result["a_s"] * 1e3, 4)
    benchmark.extra_info[f"{name}_b_ms"] = round(result["b_s"] * 1e3, 4)
    return result["ratio"]
