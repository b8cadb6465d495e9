"""Rollout throughput of the tiny VLM agent, and where an episode's time goes.

Run: ``python -m pytest benchmarks/bench_rollout.py --benchmark-only`` (the profile
summary is printed). The agent is the random-weight tiny Qwen2-VL of
:mod:`agents.tiny_vlm` (about 0.3M parameters, 4 vision tokens per image) on a small
image env (one red square per image, 64 px views, at most 4 steps), sampling up to
:data:`MAX_NEW_TOKENS` tokens per step on one torch thread. Untrained, it rarely writes
a valid tool call, so its steps are mostly error observations and it hardly ever ends an
episode early: this measures the agent and rollout machinery, not tool cost (see
``bench_tools``). Figures go into the benchmark JSON (``extra_info``); asserted bounds
are regression guards only.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from agents.base import Generation
from agents.rollout import rollout
from benchmarks.ratios import interleaved_ratio, record
from pixelis_env import PixelisEnv, Task, TaskList, Zoom, format_action

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

MAX_NEW_TOKENS = 48
"""A zoom call is about 25 tokens of the tiny VLM's vocabulary; 48 leaves room for any tool call."""
MAX_STEPS = 4
EPISODES = 2


def _rounds(benchmark: Any, rounds: int) -> int:
    """``rounds``, or 2 under ``--benchmark-disable`` (the short CI form: a smoke run, not a measurement)."""
    return 2 if benchmark.disabled else rounds


def _tasks(n: int = 6) -> list[Task]:
    """224 px grey images with one red square; the answer is its width in pixels."""
    tasks = []
    for i in range(n):
        rng = np.random.default_rng(i)
        image = np.full((224, 224, 3), 90, np.uint8)
        side = int(rng.integers(20, 60))
        x, y = (int(v) for v in rng.integers(0, 224 - side, 2))
        image[y:y + side, x:x + side] = (220, 30, 30)
        box = (x / 224, y / 224, (x + side) / 224, (y + side) / 224)
        tasks.append(Task(task_id=f"sq-{i}", question="How many pixels wide is the red square?", answer=side,
                          answer_type="number", media=image, metric="mra", oracle=[Zoom(box=box)]))
    return tasks


def _env() -> PixelisEnv:
    return PixelisEnv(TaskList(_tasks()), view_size=64, max_steps=MAX_STEPS)


class ScriptedAgent:
    """Zooms on the middle, then answers, through the text surface: the rollout without a model."""

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.steps = 0

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Generation:
        self.steps += 1
        text = format_action(Zoom(box=(0.25, 0.25, 0.75, 0.75))) if self.steps == 1 else "<answer>30</answer>"
        return Generation(action=text, text=text)


@pytest.fixture(scope="module")
def vlm_agent() -> Iterator[Any]:
    """The tiny VLM agent, on one torch thread (more only contend for the CPU at this size)."""
    from agents.tiny_vlm import build_tiny_vlm
    from agents.vlm import SamplingConfig, VLMAgent, VLMPolicy

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    policy = VLMPolicy(*build_tiny_vlm(seed=0), _env().actions.action_types)
    yield VLMAgent(policy, SamplingConfig(max_new_tokens=MAX_NEW_TOKENS), seed=0)
    torch.set_num_threads(threads)


def _episodes(env: PixelisEnv, agent: Any) -> Callable[[], list[Any]]:
    return lambda: rollout(env, agent, episodes=EPISODES, seed=0)


def test_tiny_vlm_rollout_episodes_per_second(benchmark, vlm_agent):
    """Episodes/s of the tiny VLM agent, against the same rollout with a scripted text agent
    (no model) alternately in one process. No target: this is the baseline that rollout and
    agent changes are compared with; ``vlm_vs_scripted_episode`` is the model's weight."""
    env = _env()
    result = interleaved_ratio(_episodes(env, vlm_agent), _episodes(_env(), ScriptedAgent()),
                               rounds=_rounds(benchmark, 4))
    ratio = record(benchmark, "vlm_vs_scripted_episode", result)
    trajectories = rollout(env, vlm_agent, episodes=EPISODES, seed=0)
    steps = [len(t.steps) for t in trajectories]
    tokens = [len(s.logprobs or []) for t in trajectories for s in t.steps]
    benchmark.extra_info.update({
        "vlm_episodes_per_s": round(EPISODES / result["a_s"], 4),
        "scripted_episodes_per_s": round(EPISODES / result["b_s"], 4),
        "vlm_steps_per_episode": float(np.mean(steps)),
        "vlm_tokens_per_step": float(np.mean(tokens)),
        "vlm_ms_per_token": round(result["a_s"] * 1e3 / max(sum(tokens), 1), 4),
        "vlm_invalid_step_share": round(sum(t.invalid_steps for t in trajectories) / max(sum(steps), 1), 4)})
    benchmark.pedantic(_episodes(env, vlm_agent), rounds=2, iterations=1)
    assert ratio > 1  # a model step must cost more than a scripted one


# ------------------------------------------------------------------ profile
GROUPS: dict[str, tuple[str, str]] = {
    "agent.act": ("agents/vlm.py", "act"),
    "chat/processor": ("agents/vlm.py", "prompt_inputs"),
    "generation": ("transformers/generation/utils.py", "generate"),
    "context store": ("agents/chat.py", "add"),
    "env.reset": ("pixelis_env/env.py", "reset"),
    "env.step": ("pixelis_env/env.py", "step"),
    "env.step: parse": ("pixelis_env/text_actions.py", "parse_action"),
    "env.step: tools": ("pixelis_env/env.py", "_run"),
}
"""Coarse groups by the cumulative time of one function each (file suffix, name); nested
groups (the ``agent.act`` and ``env.step`` parts) are included in their parents."""


MODEL_FORWARD = ("models/qwen2_vl/modeling_qwen2_vl.py", "forward")
"""The model's outermost ``forward`` (the one with the most cumulative time in that file)."""
WRAPPERS = {"<lambda>", "<module>", "<listcomp>", "_wrapped_call_impl", "_call_impl", "decorate_context",
            "wrapped_func", "wrapper"}
"""Decorator and dispatch frames left out of ``profile_top`` (each repeats its callee's time)."""


def _matching(stats: pstats.Stats, where: str, name: str) -> list[float]:
    return [entry[3] for (filename, _, func), entry in stats.stats.items()
            if func == name and filename.replace("\\", "/").endswith(where)]


def _cumulative(stats: pstats.Stats, where: str, name: str) -> float:
    return sum(_matching(stats, where, name))


def _top(stats: pstats.Stats, count: int) -> list[list[Any]]:
    """The ``count`` functions with the most cumulative time, as ``[file:line(name), seconds]``."""
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][3])
    out = []
    for (filename, line, func), entry in rows:
        if "cProfile" in filename or func in WRAPPERS or filename == "~":
            continue
        short = "/".join(filename.replace("\\", "/").split("/")[-2:])
        out.append([f"{short}:{line}({func})", round(entry[3], 4)])
        if len(out) == count:
            break
    return out


def test_tiny_vlm_rollout_profile(benchmark, vlm_agent, capsys):
    """Where a tiny-VLM episode's time goes, under cProfile (which inflates Python-heavy parts,
    i.e. the generation loop, more than the tensor work): shares of the wall time by group
    in ``profile_share`` (``generation: model`` is the model's forward passes inside
    ``generate``; the rest of ``generate`` is its Python loop, sampling and logits
    processors), the top functions by cumulative time in ``profile_top``."""
    env = _env()
    rollout(env, vlm_agent, episodes=1, seed=100)  # warm-up: lazy imports, first-call caches
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(rollout, env, vlm_agent, episodes=3, seed=0)
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    seconds = {}
    for group, where in GROUPS.items():
        seconds[group] = _cumulative(stats, *where)
        if group == "generation":
            seconds["generation: model"] = max(_matching(stats, *MODEL_FORWARD), default=0.0)
    seconds["rollout (rest)"] = total - seconds["agent.act"] - seconds["env.step"] - seconds["env.reset"]
    share = {group: round(s / total, 4) for group, s in seconds.items()}
    benchmark.extra_info.update({"profile_total_s": round(total, 4),
                                 "profile_s": {k: round(v, 4) for k, v in seconds.items()},
                                 "profile_share": share, "profile_top": _top(stats, 15)})
    with capsys.disabled():
        print(f"\ntiny VLM rollout profile, 3 episodes, {total:.2f} s under cProfile:")
        for group, s in seconds.items():
            print(f"  {group:<18} {s:7.3f} s  {100 * share[group]:5.1f}%")
    benchmark.pedantic(lambda: None, rounds=1)
    assert share["generation"] > share["env.step"]  # the model, not the env, must dominate
