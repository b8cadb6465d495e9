"""One rollout path for every consumer: eval, training loops and the viewer.

``rollout`` plays episodes of an agent in an env, or of a batch of agents in a
``gymnasium.vector`` env, and returns :class:`Trajectory` records. Episode ``i`` is reset
with ``seed + i`` whichever env plays it, so a vector rollout of a deterministic agent
gives the same trajectories as a single-env one. Rewards and reward terms are the ones
the caller sees (after any reward wrappers); the rest of each step record comes from the
env (``info["record"]``), and log-probs and the prompt reference from the agent's
:class:`Generation`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import iterate
from tqdm.auto import tqdm

from agents.base import Agent, AgentPool, BatchAgent, Generation, reseed
from pixelis_env.env import PixelisEnv
from pixelis_env.errors import PixelisError
from pixelis_env.task import Task
from pixelis_env.trajectory import StepRecord, Trajectory

EpisodeCallback = Callable[[Trajectory], None]


def rollout(env: gym.Env | VectorEnv, agent: Agent | BatchAgent | Sequence[Agent], episodes: int = 1,
            seed: int | None = 0, progress: bool = False, on_episode: EpisodeCallback | None = None
            ) -> list[Trajectory]:
    """Play ``episodes`` episodes; episode ``i`` is reset with ``seed + i`` (deterministic).

    For a vector env (built by :func:`make_vector_env`), ``agent`` is one agent per
    sub-env or a :class:`BatchAgent`. Trajectories come back in episode order;
    ``on_episode`` sees each as it finishes.
    """
    if episodes < 0:
        raise PixelisError(f"episodes must be >= 0, got {episodes}")
    bar = tqdm(total=episodes, disable=not progress, desc="episodes", unit="ep")

    def finished(trajectory: Trajectory) -> None:
        bar.update()
        if on_episode is not None:
            on_episode(trajectory)

    with bar:
        if isinstance(env, VectorEnv):
            return _VectorRollout(env, _as_batch_agent(agent, env.num_envs), episodes, seed, finished).run()
        return [_play_episode(env, agent, _episode_seed(seed, i), finished) for i in range(episodes)]


def make_vector_env(env_fns: Sequence[Callable[[], gym.Env]], asynchronous: bool = False) -> VectorEnv:
    """A vector env that :func:`rollout` can drive.

    Autoreset is disabled so that the rollout seeds every episode itself. Async envs do
    without shared memory: gymnasium reads ``Text`` observations from it only once.
    """
    if asynchronous:
        return gym.vector.AsyncVectorEnv(env_fns, shared_memory=False, autoreset_mode=AutoresetMode.DISABLED)
    return gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.DISABLED)


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


# ------------------------------------------------------------------ single env
def _episode_seed(seed: int | None, episode: int) -> int | None:
    return None if seed is None else seed + episode


def _play_episode(env: gym.Env, agent: Agent, seed: int | None, finished: EpisodeCallback) -> Trajectory:
    obs, info = env.reset(seed=seed)
    reseed(agent, seed)
    agent.reset(obs, info)
    trajectory = _new_trajectory(_task_header(env.unwrapped.task, env.spec), seed, type(agent).__name__)
    done = False
    while not done:
        generation = _as_generation(agent.act(obs, info))
        started = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(generation.action)
        seconds = time.perf_counter() - started
        trajectory.steps.append(_step_record(info, reward, generation, seconds, env))
        done = terminated or truncated
    _finish(trajectory, info, terminated, truncated)
    finished(trajectory)
    return trajectory


# ------------------------------------------------------------------ vector env
@dataclasses.dataclass
class _Slot:
    """The episode a sub-env is playing."""

    episode: int
    trajectory: Trajectory


class _VectorRollout:
    """Keeps every sub-env of a vector env busy until ``episodes`` episodes are done.

    Sub-envs left without an episode take random actions whose results are dropped
    (a vector env steps all of them).
    """

    def __init__(self, env: VectorEnv, agent: BatchAgent, episodes: int, seed: int | None,
                 finished: EpisodeCallback) -> None:
        _check_vector_env(env)
        self.env, self.agent, self.episodes, self.seed, self.finished = env, agent, episodes, seed, finished
        n = env.num_envs
        self.slots: list[_Slot | None] = [None] * n
        self.obs: list[dict[str, Any]] = [{}] * n
        self.infos: list[dict[str, Any]] = [{}] * n
        self.results: dict[int, Trajectory] = {}
        self.next_episode = 0

    def run(self) -> list[Trajectory]:
        self._reset(np.ones(self.env.num_envs, np.bool_))
        while any(slot is not None for slot in self.slots):
            done = self._step()
            if done.any():
                self._reset(done)
        return [self.results[k] for k in range(self.episodes)]

    def _reset(self, mask: np.ndarray) -> None:
        """Reset the masked sub-envs, starting the next episodes in as many as there are left."""
        env, indices = self.env, [int(i) for i in np.flatnonzero(mask)]
        starting: dict[int, int] = {}
        for i in indices[: max(self.episodes - self.next_episode, 0)]:
            starting[i] = self.next_episode
            self.next_episode += 1
        seeds = [_episode_seed(self.seed, starting[i]) if i in starting else None for i in range(env.num_envs)]
        batch_obs, batch_info = env.reset(seed=seeds, options={"reset_mask": mask})
        fresh = list(iterate(env.observation_space, batch_obs))
        headers = _vector_headers(env) if starting else []
        for i in indices:
            self.obs[i], self.infos[i] = fresh[i], _unbatch_info(batch_info, i)
            self.slots[i] = None
            if i in starting:
                trajectory = _new_trajectory(headers[i], seeds[i], _agent_name(self.agent, i))
                self.slots[i] = _Slot(starting[i], trajectory)
                if seeds[i] is not None and callable(getattr(self.agent, "seed_at", None)):
                    self.agent.seed_at(i, seeds[i])
                self.agent.reset_at(i, self.obs[i], self.infos[i])

    def _step(self) -> np.ndarray:
        """One step of every sub-env; records the active ones and returns which ended."""
        env = self.env
        active = [i for i, slot in enumerate(self.slots) if slot is not None]
        outputs = self.agent.act_batch(active, [self.obs[i] for i in active], [self.infos[i] for i in active])
        generations = dict(zip(active, (_as_generation(o) for o in outputs)))
        actions = tuple(generations[i].action if i in generations else env.single_action_space.sample()
                        for i in range(env.num_envs))
        started = time.perf_counter()
        batch_obs, rewards, terminated, truncated, batch_info = env.step(actions)
        seconds = time.perf_counter() - started
        self.obs = list(iterate(env.observation_space, batch_obs))
        self.infos = [_unbatch_info(batch_info, i) for i in range(env.num_envs)]
        done = np.logical_or(terminated, truncated)
        for i in active:
            slot = self.slots[i]
            slot.trajectory.steps.append(_step_record(self.infos[i], rewards[i], generations[i], seconds))
            if done[i]:
                _finish(slot.trajectory, self.infos[i], terminated[i], truncated[i])
                self.results[slot.episode] = slot.trajectory
                self.finished(slot.trajectory)
        return done


def _check_vector_env(env: VectorEnv) -> None:
    base = env.unwrapped
    if env.metadata.get("autoreset_mode") != AutoresetMode.DISABLED:
        raise PixelisError("rollout seeds every episode itself: build the vector env with "
                           "autoreset_mode=AutoresetMode.DISABLED (agents.rollout.make_vector_env does)")
    if getattr(base, "shared_memory", False) and _has_text(env.single_observation_space):
        raise PixelisError("AsyncVectorEnv(shared_memory=True) returns stale Text observations; pass "
                           "shared_memory=False (agents.rollout.make_vector_env does)")


def _has_text(space: spaces.Space) -> bool:
    if isinstance(space, spaces.Text):
        return True
    if isinstance(space, spaces.Dict):
        return any(_has_text(s) for s in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return any(_has_text(s) for s in space.spaces)
    return False


def _as_batch_agent(agent: Agent | BatchAgent | Sequence[Agent], num_envs: int) -> BatchAgent:
    if isinstance(agent, BatchAgent):
        return agent
    if isinstance(agent, Sequence) and len(agent) == num_envs:
        return AgentPool(agent)
    raise PixelisError(f"a vector env of {num_envs} sub-envs needs {num_envs} agents (one per sub-env) "
                       "or a BatchAgent (with reset_at and act_batch)")


def _agent_name(agent: BatchAgent, index: int) -> str:
    inner = agent.agents[index] if isinstance(agent, AgentPool) else agent
    return type(inner).__name__


def _vector_headers(env: VectorEnv) -> list[dict[str, Any]]:
    """Each sub-env's current task, as plain data.

    ``PixelisEnv.episode_header`` (asked for in issue 7) sends only plain data between
    processes; until it exists the tasks themselves are fetched, which async envs can
    do only for picklable tasks (no lambdas as media).
    """
    if hasattr(PixelisEnv, "episode_header"):
        return list(env.call("episode_header"))
    return [_task_header(task, spec) for task, spec in zip(env.get_attr("task"), env.get_attr("spec"))]


def _unbatch_info(infos: dict[str, Any], index: int) -> dict[str, Any]:
    """Sub-env ``index``'s info out of a vector env's batched info (keys masked by ``_key``)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        mask = infos.get(f"_{key}")
        if key.startswith("_") or (mask is not None and not mask[index]):
            continue
        out[key] = _unbatch_info(value, index) if isinstance(value, dict) else _plain(value[index])
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------- records
def _task_header(task: Task, spec: EnvSpec | None) -> dict[str, Any]:
    return {"task_id": task.task_id, "suite": task.suite, "question": task.question,
            "ground_truth": task.answer, "question_type": task.question_type,
            "env_id": spec.id if spec is not None else ""}


def _new_trajectory(header: dict[str, Any], seed: int | None, agent_name: str) -> Trajectory:
    return Trajectory(**header, seed=seed, agent=agent_name)


def _as_generation(output: Any) -> Generation:
    return output if isinstance(output, Generation) else Generation(action=output)


def _step_record(info: dict[str, Any], reward: float, generation: Generation, seconds: float,
                 env: gym.Env | None = None) -> StepRecord:
    """The env's record of the step, with the caller's reward, the agent's generation and
    the step's wall time as the caller saw it (a vector env's whole batched step).

    The record comes from ``info["record"]``; a single env without it falls back to the
    env's own log.
    """
    record = info.get("record")
    if record is None and env is not None:
        record = env.unwrapped.records[-1]
    if isinstance(record, dict):
        record = StepRecord(**record)
    if record is None:
        raise PixelisError("the env's step info has no `record` (is the env a PixelisEnv?)")
    text_action = generation.text if generation.text is not None else record.text_action
    return dataclasses.replace(record, reward=float(reward), reward_terms=dict(info.get("reward_terms", {})),
                               logprobs=generation.logprobs, prompt_ref=generation.prompt_ref,
                               text_action=text_action, seconds=round(seconds, 6))


def _finish(trajectory: Trajectory, info: dict[str, Any], terminated: bool, truncated: bool) -> None:
    trajectory.terminated, trajectory.truncated = bool(terminated), bool(truncated)
    trajectory.score = float(info.get("score", 0.0))
    trajectory.answer = info.get("answer")
