"""Rollout workers on Ray: each actor owns an env and an agent and returns trajectories.

``pip install .[ray]``. Episode ``i`` of a call is reset with ``seed + i`` and the agent
is reseeded with the same number (agents with a ``seed`` method), so the trajectories
equal those of :func:`agents.rollout.rollout` for the same seeds, whatever worker ran
them. Weights are broadcast once per update through the object store
(:meth:`RayRolloutPool.broadcast`). To use a cluster, start it (``ray start --head`` on
one node, ``ray start --address=HEAD:6379`` on the others) and pass
``address="auto"`` (or the head's address) instead of the default local instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixelis_env.errors import PixelisError
from pixelis_env.trajectory import Trajectory

AgentFactory = Callable[[Any], Any]
"""``env -> agent``; it must be picklable (a module-level function or class)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise PixelisError("Ray rollout workers need the `ray` extra: pip install 'pixelis-env[ray]'") from None
    return ray


class _Worker:
    """The actor body: one env, one agent, episodes on request."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], agent_factory: AgentFactory) -> None:
        import gymnasium as gym

        import pixelis_env  # noqa: F401  (registers the ids in the worker process)

        self.env = gym.make(env_id, **env_kwargs)
        self.agent = agent_factory(self.env)

    def run(self, seeds: list[int]) -> list[dict[str, Any]]:
        from agents.rollout import rollout

        return [rollout(self.env, self.agent, episodes=1, seed=s)[0].to_json() for s in seeds]

    def set_weights(self, weights: Any) -> bool:
        load = getattr(self.agent, "load_weights", None)
        if load is None:
            raise PixelisError(f"{type(self.agent).__name__} has no load_weights(weights) method")
        load(weights)
        return True

    def close(self) -> None:
        self.env.close()


class RayRolloutPool:
    """A pool of Ray actors collecting :class:`Trajectory` records for the training loops."""

    def __init__(self, env_id: str, agent_factory: AgentFactory, num_workers: int = 2,
                 env_kwargs: dict[str, Any] | None = None, address: str | None = None,
                 num_cpus_per_worker: float = 1.0) -> None:
        ray = _ray()
        if num_workers < 1:
            raise PixelisError("num_workers must be >= 1")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, configure_logging=False)
        actor = ray.remote(num_cpus=num_cpus_per_worker)(_Worker)
        self._ray = ray
        self.workers = [actor.remote(env_id, dict(env_kwargs or {}), agent_factory) for _ in range(num_workers)]

    def rollout(self, episodes: int, seed: int = 0) -> list[Trajectory]:
        """Episodes ``seed .. seed + episodes - 1``, spread round-robin, returned in order."""
        shares = [list(range(seed + w, seed + episodes, len(self.workers))) for w in range(len(self.workers))]
        futures = [worker.run.remote(share) for worker, share in zip(self.workers, shares) if share]
        by_seed: dict[int, Trajectory] = {}
        for share, records in zip([s for s in shares if s], self._ray.get(futures)):
            by_seed.update({s: Trajectory.from_json(r) for s, r in zip(share, records)})
        return [by_seed[s] for s in range(seed, seed + episodes)]

    def broadcast(self, weights: Any) -> None:
        """Send a policy-weights snapshot to every worker (one object-store copy)."""
        ref = self._ray.put(weights)
        self._ray.get([w.set_weights.remote(ref) for w in self.workers])

    def close(self) -> None:
        self._ray.get([w.close.remote() for w in self.workers])
        for worker in self.workers:
            self._ray.kill(worker)
        self.workers = []
