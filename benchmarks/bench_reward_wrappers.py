"""Cost of the reward wrappers per env step, as a ratio to the unwrapped step.

Run: ``python -m pytest benchmarks/bench_reward_wrappers.py --benchmark-only``. Both
sides play the same episodes (four zooms and an answer, reset included, so the
curiosity model's end-of-episode learning is counted) alternately in one process;
the ratio of medians goes into the benchmark JSON (``extra_info``). The zoom step is
the cheapest tool (a crop and a resize), so these ratios are the worst case; against
OCR or tracking steps the stack is noise.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from benchmarks.ratios import interleaved_ratio, record
from pixelis_env import Answer, PixelisEnv, Task, TaskList, Zoom
from pixelis_env.wrappers import (
    CoherenceReward,
    CuriosityReward,
    EfficiencyReward,
    apply_reward_wrappers,
    default_reward_stack,
)

VIEW = 224
ACTIONS = [Zoom(box=(0.1 * i, 0.05 * i, 0.5 + 0.1 * i, 0.45 + 0.05 * i)) for i in range(4)] + [Answer(text="3")]


def _base_env() -> PixelisEnv:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)
    task = Task(task_id="bench", question="How many red squares are there?", answer=3, answer_type="number",
                media=image, metric="mra")
    return PixelisEnv(TaskList([task]), view_size=VIEW, max_steps=len(ACTIONS))


def _episode(env: gym.Env) -> Callable[[], None]:
    def play() -> None:
        env.reset(seed=0)
        for action in ACTIONS:
            env.step(action)

    return play


def test_default_stack_overhead_per_step(benchmark):
    wrapped = _episode(apply_reward_wrappers(_base_env(), default_reward_stack(seed=0)))
    result = interleaved_ratio(wrapped, _episode(_base_env()), rounds=40)
    ratio = record(benchmark, "default_stack_vs_unwrapped_step", result)
    benchmark.extra_info["default_stack_overhead_ms_per_step"] = round((result["a_s"] - result["b_s"]) * 1e3
                                                                       / len(ACTIONS), 4)
    benchmark.pedantic(wrapped, rounds=10, iterations=1)
    assert ratio < 30  # regression guard only: multi-threaded torch on a busy CPU once made this ~100x


@pytest.mark.parametrize("wrapper", [CuriosityReward, CoherenceReward, EfficiencyReward], ids=lambda w: w.__name__)
def test_each_term_overhead_per_step(benchmark, wrapper):
    kwargs = {"seed": 0} if wrapper is CuriosityReward else {}
    wrapped = _episode(wrapper(_base_env(), **kwargs))
    ratio = record(benchmark, f"{wrapper.term_name}_vs_unwrapped_step",
                   interleaved_ratio(wrapped, _episode(_base_env()), rounds=30))
    benchmark.pedantic(wrapped, rounds=5, iterations=1)
    assert ratio > 0
