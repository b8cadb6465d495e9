"""Throughput of ``gymnasium.vector.AsyncVectorEnv`` over tool-heavy steps: 2 workers vs 1.

Run: ``python -m pytest benchmarks/bench_vector.py --benchmark-only``. Three vector envs
play the same step on the same task side by side, alternately in one process: a
``SyncVectorEnv`` of one env, an ``AsyncVectorEnv`` of one worker and one of two. The
ratios of env steps per second (from medians) go into the benchmark JSON
(``extra_info``); the asserted bounds are regression guards only.

On a shared machine two workers cannot beat what the other jobs leave free, so the same
rounds also time pure CPU work in two processes against one: ``machine_ceiling`` is the
best speed-up the machine allowed during the run, ``speedup_over_ceiling`` how much of it
the vector env got.

The envs are built as :func:`agents.rollout.make_vector_env` builds them (autoreset
disabled, no shared memory: gymnasium 1.4 reads ``Text`` observations from shared
memory only once), with ``context="spawn"``: forking a process that holds torch's
thread pools (another benchmark in the same session may have imported torch) can hang.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.vector import AutoresetMode

from agents.rollout import make_vector_env
from pixelis_env.actions import Action, ReadText, Track
from pixelis_env.registration import make_env

NEVER = 10**9
"""``max_steps``/``max_errors``: the benchmark steps one episode without end."""
SPIN = 2_000_000
"""Iterations of :func:`_spin` (about as long as a track step)."""


def _rounds(benchmark: Any, rounds: int) -> int:
    """``rounds``, or 2 under ``--benchmark-disable`` (the short CI form: a smoke run, not a measurement)."""
    return 2 if benchmark.disabled else rounds


def _async(env_fn: Callable[[], gym.Env], workers: int) -> gym.vector.AsyncVectorEnv:
    return gym.vector.AsyncVectorEnv([env_fn] * workers, shared_memory=False, context="spawn",
                                     autoreset_mode=AutoresetMode.DISABLED)


def _stepper(venv: gym.vector.VectorEnv, task_index: int, pick: Callable[[list[Action]], Action]
             ) -> tuple[Callable[[], Any], set[str]]:
    """Reset every sub-env on the same task; a thunk stepping each with the same tool call, and
    the observation texts of a first step (one text if the sub-envs agree)."""
    venv.reset(seed=0, options={"task_index": task_index})
    actions = tuple(pick(plan) for plan in venv.call("oracle_actions"))
    obs, _, _, _, infos = venv.step(actions)
    errors = [e for e in infos["error"] if e is not None]
    assert not errors, errors
    return (lambda: venv.step(actions)), set(obs["text"])


@pytest.fixture()
def spin_pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture()
def vector_envs() -> Iterator[Callable[[Callable[[], gym.Env]], dict[str, gym.vector.VectorEnv]]]:
    """A factory of the three vector envs over one env function; all are closed afterwards."""
    made: list[gym.vector.VectorEnv] = []

    def build(env_fn: Callable[[], gym.Env]) -> dict[str, gym.vector.VectorEnv]:
        envs = {"sync1": make_vector_env([env_fn]), "async1": _async(env_fn, 1), "async2": _async(env_fn, 2)}
        made.extend(envs.values())
        return envs

    yield build
    for venv in made:
        venv.close()


def _spin(n: int) -> int:
    """Pure CPU work (no memory traffic, no I/O): the machine's parallel ceiling right now."""
    return sum(i * i % 7 for i in range(n))


def _medians(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of each thunk, all alternated round by round, the order reversed every
    other round (after one warm-up call each)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for key, fn in list(fns.items())[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _throughput(benchmark, name: str, envs: dict[str, gym.vector.VectorEnv], pool: ProcessPoolExecutor,
                task_index: int, pick: Callable[[list[Action]], Action], rounds: int) -> float:
    """Store env-steps/s ratios of async2 over sync1 and async1, and the machine's ceiling
    (2 processes of pure CPU work vs 1, timed in the same rounds); return async2 over sync1."""
    made = {k: _stepper(v, task_index, pick) for k, v in envs.items()}
    texts = [text for _, text in made.values()]
    assert texts[0] == texts[1] == texts[2] and len(texts[0]) == 1, "the vector envs disagree: figures void"
    fns = {k: step for k, (step, _) in made.items()}
    fns["cpu1"] = lambda: pool.submit(_spin, SPIN).result()
    fns["cpu2"] = lambda: [f.result() for f in [pool.submit(_spin, SPIN), pool.submit(_spin, SPIN)]]
    t = _medians(fns, _rounds(benchmark, rounds))
    speedup = 2 * t["sync1"] / t["async2"]  # async2 does two env steps per vector step
    ceiling = 2 * t["cpu1"] / t["cpu2"]
    benchmark.extra_info.update({
        f"{name}_async2_vs_sync1_steps_per_s": round(speedup, 4),
        f"{name}_async2_vs_async1_steps_per_s": round(2 * t["async1"] / t["async2"], 4),
        f"{name}_machine_ceiling_2_vs_1_procs": round(ceiling, 4),
        f"{name}_speedup_over_ceiling": round(speedup / ceiling, 4),
        f"{name}_sync1_ms_per_step": round(t["sync1"] * 1e3, 3),
        f"{name}_async1_ms_per_step": round(t["async1"] * 1e3, 3),
        f"{name}_async2_ms_per_vector_step": round(t["async2"] * 1e3, 3),
        f"{name}_async2_steps_per_s": round(2 / t["async2"], 3)})
    benchmark.pedantic(fns["async2"], rounds=3, iterations=1)
    return speedup


def _kcf_track(plan: list[Action]) -> Action:
    """The oracle's track call (CSRT, 1-8 s a call on this suite) with the KCF tracker instead."""
    return dataclasses.replace(next(a for a in plan if isinstance(a, Track)), tracker="kcf")


def _first_of(kind: type[Action], plan: list[Action]) -> Action:
    return next(a for a in plan if isinstance(a, kind))


def test_async_two_workers_track_steps(benchmark, vector_envs, spin_pool):
    """``Pixelis-Track-v0``: tracking an object over all 40 frames (KCF) every step.

    Target: 2 async workers >= 1.6x the env steps/s of one env (``SyncVectorEnv``) on 2
    cores. ``..._vs_async1`` compares against a one-worker ``AsyncVectorEnv`` (same
    inter-process cost on both sides).
    """
    envs = vector_envs(partial(make_env, "Pixelis-Track-v0", num_tasks=4, max_steps=NEVER, max_errors=NEVER))
    speedup = _throughput(benchmark, "track", envs, spin_pool, task_index=1, pick=_kcf_track, rounds=16)
    assert speedup > 0.5 * benchmark.extra_info["track_machine_ceiling_2_vs_1_procs"]


@pytest.mark.slow
def test_async_two_workers_read_text_steps(benchmark, vector_envs, spin_pool):
    """``Pixelis-TextVQA-v0``: the oracle's ``read_text`` (tesseract) every step. Target: >= 1.6x."""
    envs = vector_envs(partial(make_env, "Pixelis-TextVQA-v0", num_tasks=4, max_steps=NEVER, max_errors=NEVER))
    pick = partial(_first_of, ReadText)
    speedup = _throughput(benchmark, "read_text", envs, spin_pool, task_index=0, pick=pick, rounds=8)
    assert speedup > 0.5 * benchmark.extra_info["read_text_machine_ceiling_2_vs_1_procs"]
