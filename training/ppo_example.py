"""PPO (Stable-Baselines3) on a Pixelis env with the paper's reward stack: a runnable example.

    python -m training.ppo_example --total-timesteps 2048
    python -m training.ppo_example --env-id Pixelis-Image-v0 --env-kwargs '{"tasks": "my_tasks.jsonl"}'
    python -m training.ppo_example --env-kwargs '{"tools": ["zoom", "select_frames", "answer"]}'

The tools, not PPO or the reward stack, set the pace: an untrained policy calls every
tool it is offered, and OCR, GrabCut segmentation and tracking cost 50-500 ms a call on
a laptop-class CPU (2048 steps of Pixelis-VSI-v0 with every tool took 12 minutes on 2
shared cores). Offer fewer tools (the third line) for quick experiments.

Reads top to bottom: the config, the env factory, a callback that sums every reward
term per episode, and ``main(cfg)``, which trains and returns the mean episode reward
and the mean of each term over the last episodes. The wrapper order matters: reward
wrappers sit directly on the base env (they read its step records and raw
observations); the SB3 adapters (:func:`agents.sb3.sb3_env`: flat ``Box`` actions,
image plus hashed-text observations) go outside.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import pixelis_env  # noqa: F401  (registers the env ids)
from agents.sb3 import sb3_env
from pixelis_env.wrappers import default_reward_stack
from training.common import MetricsLogger, parse_config


@dataclass
class PPOExampleConfig:
    """PPO on a Pixelis env with curiosity, coherence and efficiency reward terms."""

    env_id: str = "Pixelis-VSI-v0"
    """registered Pixelis env id"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra env keyword arguments as JSON, e.g. {"tasks": "my.jsonl"} for Pixelis-Image-v0"""
    view_size: int = 96
    """side of the env's view; the policy sees it resized to image_size"""
    image_size: int = 48
    """side of the image the policy sees (SB3's CNN needs at least 36)"""
    text_dims: int = 64
    """hashed bag-of-words size for the question and for the tool output"""
    total_timesteps: int = 20_000
    """env steps over all envs"""
    num_envs: int = 2
    """envs stepped in lockstep (DummyVecEnv)"""
    n_steps: int = 128
    """steps per env per PPO rollout"""
    batch_size: int = 64
    """PPO minibatch size"""
    n_epochs: int = 4
    """PPO epochs per rollout"""
    learning_rate: float = 3e-4
    """Adam learning rate"""
    seed: int = 0
    """seeds PPO, the envs and the curiosity models"""
    torch_threads: int = 1
    """torch intra-op threads while training (1 is fastest for models this small on a shared CPU)"""
    report_episodes: int = 100
    """the summary averages over this many most recent episodes"""
    run_dir: str | None = None
    """if set: metrics.jsonl (and TensorBoard scalars) per rollout, and the final model, go here"""

    def __post_init__(self) -> None:
        sizes = (self.total_timesteps, self.num_envs, self.n_steps, self.batch_size, self.n_epochs,
                 self.torch_threads, self.report_episodes)
        if min(sizes) < 1:
            raise ValueError("total_timesteps, num_envs, n_steps, batch_size, n_epochs, torch_threads and "
                             "report_episodes must be >= 1")
        if self.batch_size > self.n_steps * self.num_envs:
            raise ValueError(f"batch_size ({self.batch_size}) exceeds a rollout (n_steps * num_envs = "
                             f"{self.n_steps * self.num_envs})")
        if self.image_size < 36:
            raise ValueError(f"image_size must be >= 36 for SB3's CNN, got {self.image_size}")


@dataclass
class PPOExampleResult:
    """What a run reports: means over the last ``report_episodes`` episodes."""

    timesteps: int
    episodes: int
    mean_episode_reward: float
    mean_terms: dict[str, float]
    """each reward term summed per episode, then averaged; they add up to mean_episode_reward"""
    seconds: float


def make_env(cfg: PPOExampleConfig, rank: int) -> gym.Env:
    """One SB3-ready env: base env, the default reward stack, SB3 adapters, episode monitor."""
    env = gym.make(cfg.env_id, reward_wrappers=default_reward_stack(seed=cfg.seed + rank),
                   **{"view_size": cfg.view_size, **cfg.env_kwargs})
    return Monitor(sb3_env(env, text_dims=cfg.text_dims, image_size=cfg.image_size))


class RewardTermStats(BaseCallback):
    """Sums ``info["reward_terms"]`` per episode and logs the means after each rollout.

    Terms a step lacks (``invalid`` on valid steps) count as 0, so per episode the
    terms add up to the episode reward.
    """

    def __init__(self, window: int, metrics: MetricsLogger | None = None) -> None:
        super().__init__()
        self.metrics = metrics
        self.returns: deque[float] = deque(maxlen=window)
        self.terms: deque[dict[str, float]] = deque(maxlen=window)
        self.episodes = 0
        self._running: list[defaultdict[str, float]] = []

    def _on_training_start(self) -> None:
        self._running = [defaultdict(float) for _ in range(self.training_env.num_envs)]

    def _on_step(self) -> bool:
        for running, info, done in zip(self._running, self.locals["infos"], self.locals["dones"]):
            for name, value in info.get("reward_terms", {}).items():
                running[name] += float(value)
            if done:
                self.returns.append(float(info["episode"]["r"]))
                self.terms.append(dict(running))
                self.episodes += 1
                running.clear()
        return True

    def _on_rollout_end(self) -> None:
        summary = self.mean_terms()
        for name, value in summary.items():
            self.logger.record(f"reward_terms/{name}", value)
        if self.metrics is not None and self.returns:
            self.metrics.log(self.num_timesteps, {"mean_episode_reward": self.mean_return(), "episodes": self.episodes,
                                                  **{f"reward_terms/{k}": v for k, v in summary.items()}})

    def mean_return(self) -> float:
        return statistics.fmean(self.returns) if self.returns else float("nan")

    def mean_terms(self) -> dict[str, float]:
        names = sorted({name for terms in self.terms for name in terms})
        return {name: statistics.fmean(terms.get(name, 0.0) for terms in self.terms) for name in names}


def main(cfg: PPOExampleConfig) -> PPOExampleResult:
    """Train PPO as configured and return the reward summary (also printed by the CLI)."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(previous_threads)


def _train(cfg: PPOExampleConfig) -> PPOExampleResult:
    envs = DummyVecEnv([functools.partial(make_env, cfg, rank) for rank in range(cfg.num_envs)])
    metrics = MetricsLogger(cfg.run_dir) if cfg.run_dir else None
    stats = RewardTermStats(cfg.report_episodes, metrics)
    model = PPO("MultiInputPolicy", envs, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                learning_rate=cfg.learning_rate, seed=cfg.seed, verbose=0)
    started = time.perf_counter()
    try:
        model.learn(total_timesteps=cfg.total_timesteps, callback=stats)
    finally:
        envs.close()
        if metrics is not None:
            metrics.close()
    if cfg.run_dir:
        model.save(Path(cfg.run_dir) / "ppo_model.zip")
    return PPOExampleResult(timesteps=int(model.num_timesteps), episodes=stats.episodes,
                            mean_episode_reward=stats.mean_return(), mean_terms=stats.mean_terms(),
                            seconds=round(time.perf_counter() - started, 2))


def _report(result: PPOExampleResult) -> str:
    terms = "  ".join(f"{name} {value:+.4f}" for name, value in result.mean_terms.items())
    return (f"{result.timesteps} steps, {result.episodes} episodes in {result.seconds:.1f} s\n"
            f"mean episode reward {result.mean_episode_reward:+.4f}\nmean terms per episode: {terms}")


if __name__ == "__main__":
    print(_report(main(parse_config(PPOExampleConfig))))
