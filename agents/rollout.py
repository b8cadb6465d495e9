"""One rollout path for every consumer: eval, training loops and the viewer.

``rollout`` plays episodes of an agent in an env and returns :class:`Trajectory`
records. Rewards and reward terms are the ones the caller sees (after any reward
wrappers); the rest of each step record comes from the env's own log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from tqdm.auto import tqdm

from agents.base import Agent, Generation
from pixelis_env.trajectory import Trajectory


def rollout(env: gym.Env, agent: Agent, episodes: int = 1, seed: int | None = 0, progress: bool = False,
            on_episode: Callable[[Trajectory], None] | None = None) -> list[Trajectory]:
    """Play ``episodes`` episodes; episode ``i`` is reset with ``seed + i`` (deterministic)."""
    base = env.unwrapped
    trajectories = []
    for episode in tqdm(range(episodes), disable=not progress, desc="episodes", unit="ep"):
        obs, info = env.reset(seed=None if seed is None else seed + episode)
        agent.reset(obs, info)
        task = base.task
        trajectory = Trajectory(task_id=task.task_id, suite=task.suite, question=task.question,
                                ground_truth=task.answer, question_type=task.question_type,
                                seed=None if seed is None else seed + episode, agent=type(agent).__name__,
                                env_id=env.spec.id if env.spec is not None else "")
        done = False
        while not done:
            output = agent.act(obs, info)
            generation = output if isinstance(output, Generation) else Generation(action=output)
            obs, reward, terminated, truncated, info = env.step(generation.action)
            record = dataclasses.replace(base.records[-1], reward=float(reward),
                                         reward_terms=dict(info.get("reward_terms", {})),
                                         logprobs=generation.logprobs, prompt_ref=generation.prompt_ref)
            if generation.text is not None:
                record.text_action = generation.text
            trajectory.steps.append(record)
            done = terminated or truncated
        trajectory.terminated, trajectory.truncated = bool(terminated), bool(truncated)
        trajectory.score = float(info.get("score", 0.0))
        trajectory.answer = info.get("answer")
        trajectories.append(trajectory)
        if on_episode is not None:
            on_episode(trajectory)
    return trajectories


def summarize(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Mean score, toolchain length and invalid-action rate of some episodes."""
    n = max(len(trajectories), 1)
    steps = max(sum(len(t.steps) for t in trajectories), 1)
    return {
        "episodes": len(trajectories),
        "score": sum(t.score for t in trajectories) / n,
        "toolchain": sum(len(t.toolchain) for t in trajectories) / n,
        "invalid_rate": sum(t.invalid_steps for t in trajectories) / steps,
        "answered": sum(t.terminated for t in trajectories) / n,
    }
