"""Curiosity-Coherence RFT (phase 2 of Pixelis): GRPO on whole tool-using episodes.

``python -m training.rft --init runs/sft/checkpoints/step-00001000 --env-id Pixelis-VStar-v0 --out runs/rft``

Each iteration picks ``tasks_per_iteration`` training tasks and samples
``group_size`` episodes of each through the env wrapped with the reward terms
(:class:`~pixelis_env.wrappers.CuriosityReward`, :class:`~pixelis_env.wrappers.CoherenceReward`,
:class:`~pixelis_env.wrappers.EfficiencyReward`; a coefficient of 0 switches a term off
for ablations, its entry stays in the logs at 0). An episode's return is the sum of its
step rewards (task score, invalid-action penalties and the terms); advantages are the
returns normalised within each task's group. The loss, averaged over every generated
token of the batch, is PPO-clip on the ratio of the policy's token log-probs to the ones
recorded while sampling, plus ``kl_coef`` times the k3 estimate of the KL to the frozen
reference policy (the ``init`` checkpoint: the SFT policy), for ``epochs`` passes in
shuffled minibatches.

Logs (``<out>/metrics.jsonl``): per iteration the mean return, the mean per-episode sum of
every reward term (``terms/task``, ``terms/invalid``, ``terms/curiosity``, ...), task
score, KL to the reference, toolchain length, invalid-action rate, clip fraction; greedy
held-out score every ``eval_every`` iterations. Checkpoints hold the policy (plus the
``init`` checkpoint's other modules, e.g. auxiliary heads, unchanged), the optimiser, RNG
states and the curiosity model's state, so a resumed run ends with the same weights as
an uninterrupted one. The output checkpoints load like SFT ones (``config["modules"]``),
so TTRL starts from them with ``--init``.

On a GPU machine, with a VLM policy adapter (``policy`` names its factory when there is
no ``init``; LoRA is the adapter's business, and only parameters with ``requires_grad``
are trained, so a LoRA-wrapped model trains its adapters only)::

    python -m training.rft --init runs/sft/checkpoints/step-00002000 --env-id Pixelis-VStar-v0 \\
        --device cuda --dtype bfloat16 --gradient-checkpointing --threads 8 \\
        --iterations 500 --tasks-per-iteration 8 --group-size 8 --minibatch-size 16 \\
        --lr 1e-6 --kl-coef 0.04 --max-new-tokens 128 --out runs/rft

(``peft`` is not installed on the development machine; the reference policy is a copy of
the trainable weights only, swapped in for scoring, so it costs no second model.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import pixelis_env  # noqa: F401  (registers the env ids)
from agents.rollout import summarize
from pixelis_env.wrappers import CoherenceReward, CuriosityReward, EfficiencyReward, apply_reward_wrappers
from pixelis_env.wrappers.reward_term import RewardTerm
from training.common import (
    MetricsLogger,
    config_to_dict,
    latest_checkpoint,
    parse_config,
    restore,
    save_checkpoint,
    seed_everything,
)
from training.grpo import (
    Episode,
    PinnedTask,
    Sampling,
    Step,
    aligned,
    clipped_token_loss,
    derive_seed,
    group_advantages,
    k3,
    load_policy,
    place,
    play_group,
    token_logprobs,
)
from training.kl_corridor import WeightSnapshot, trainable

logger = logging.getLogger(__name__)

EVAL_SEED_OFFSET = 1_000_003
BASE_TERMS = ("task", "invalid")
"""Reward terms the env itself reports (``invalid`` only on error steps, logged as 0 otherwise)."""


@dataclass
class RFTConfig:
    """GRPO with curiosity, coherence and efficiency reward terms and a KL anchor to the SFT policy."""

    env_id: str = "Pixelis-VStar-v0"
    """Gymnasium id to train on (``module:Id`` imports a module that registers one)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the env (suite options such as ``size``, env options such as ``view_size``)."""
    train_tasks: int = 256
    """Training tasks are indices 0..train_tasks-1 of the source (minus the held-out ones)."""
    eval_tasks: int = 32
    """Held-out tasks: the last ones of the training source, or the first of the eval env."""
    eval_env_kwargs: dict[str, Any] | None = None
    """If set (e.g. ``{"split": "test"}``), held-out tasks come from an env built with these kwargs on top."""
    init: str | None = None
    """Checkpoint directory (SFT or RFT) whose ``policy`` module is trained and is the KL reference."""
    policy: str = "compact"
    """Without ``init``: ``compact`` or ``package.module:factory`` building a fresh Policy from ``policy_kwargs``."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """Without ``init``: arguments of the policy factory (CompactConfig fields for ``compact``)."""
    extra_words: tuple[str, ...] = ()
    """Without ``init``: words added to the compact policy's vocabulary."""
    iterations: int = 200
    """Sample-then-optimise iterations."""
    tasks_per_iteration: int = 4
    """Tasks sampled per iteration (without replacement, from seed and iteration)."""
    group_size: int = 8
    """Episodes per task; advantages are normalised within each group."""
    epochs: int = 2
    """Optimisation passes over each iteration's episodes."""
    minibatch_size: int = 16
    """Generated actions (steps) per optimiser step; also the scoring batch."""
    lr: float = 1e-4
    """AdamW learning rate (constant)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 disables)."""
    clip_eps: float = 0.2
    """PPO clip range of the per-token probability ratio."""
    kl_coef: float = 0.04
    """Weight of the k3 KL to the reference policy (0 disables the anchor)."""
    advantage_eps: float = 1e-4
    """Added to the group's return std before dividing."""
    curiosity_coef: float = 0.03
    """Curiosity term coefficient (forward-model surprise; 0 switches it off)."""
    coherence_coef: float = 0.05
    """Coherence term coefficient (successions, repeats, view novelty; 0 switches it off)."""
    efficiency_coef: float = 0.02
    """Efficiency term coefficient (cost per tool call beyond the free ones; 0 switches it off)."""
    max_new_tokens: int = 64
    """Generation limit per action."""
    temperature: float = 1.0
    """Sampling temperature (recorded log-probs are the policy's own, whatever it is)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    eval_every: int = 10
    """Greedy held-out evaluation every this many iterations (and at the start and end)."""
    eval_episodes: int = 16
    """Held-out episodes per evaluation (0 skips evaluation)."""
    checkpoint_every: int = 10
    """Save a checkpoint every this many iterations (and at the end)."""
    keep_checkpoints: int = 3
    """Older checkpoints are deleted."""
    resume: bool = True
    """Continue from the newest valid checkpoint in ``out`` when there is one."""
    seed: int = 0
    """Seeds a fresh policy, task choice, sampling, env resets and the curiosity model."""
    out: str = "runs/rft"
    """Run directory (metrics.jsonl, checkpoints/)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default)."""
    device: str = "cpu"
    """torch device of the policy (``cuda`` on a GPU machine)."""
    dtype: str = "float32"
    """Parameter dtype: float32, bfloat16 or float16."""
    gradient_checkpointing: bool = False
    """Call the policy's ``gradient_checkpointing_enable()`` (Hugging Face models)."""

    def __post_init__(self) -> None:
        self.extra_words = tuple(self.extra_words)
        positive = ("iterations", "tasks_per_iteration", "group_size", "epochs", "minibatch_size", "eval_every",
                    "checkpoint_every", "keep_checkpoints", "max_new_tokens", "train_tasks")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_tasks", "eval_episodes", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: a group of one has no advantage to normalise")
        if self.eval_episodes > self.eval_tasks:
            raise ValueError(f"eval_episodes ({self.eval_episodes}) cannot exceed eval_tasks ({self.eval_tasks})")
        for name in ("curiosity_coef", "coherence_coef", "efficiency_coef", "kl_coef", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.clip_eps < 1 or self.advantage_eps <= 0:
            raise ValueError("lr must be > 0, clip_eps in (0, 1) and advantage_eps > 0")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]")


# ----------------------------------------------------------------------- envs
def reward_stack(cfg: RFTConfig) -> list[tuple[type[RewardTerm], dict[str, Any]]]:
    """All three terms, always: a 0 coefficient records the term as 0.0 instead of dropping it."""
    return [(CuriosityReward, {"coef": cfg.curiosity_coef, "seed": cfg.seed}),
            (CoherenceReward, {"coef": cfg.coherence_coef}),
            (EfficiencyReward, {"coef": cfg.efficiency_coef})]


def make_envs(cfg: RFTConfig) -> tuple[PinnedTask, PinnedTask, list[int], list[int]]:
    """The reward-wrapped training env, a plain held-out env, and their task indices."""
    base = gym.make(cfg.env_id, **cfg.env_kwargs)
    train = PinnedTask(apply_reward_wrappers(base, reward_stack(cfg)))
    size = len(base.unwrapped.tasks)
    if cfg.eval_env_kwargs is None:
        held_out = PinnedTask(gym.make(cfg.env_id, **cfg.env_kwargs))
        eval_indices = list(range(max(size - cfg.eval_tasks, 0), size))
        limit = size - cfg.eval_tasks
    else:
        held_out = PinnedTask(gym.make(cfg.env_id, **{**cfg.env_kwargs, **cfg.eval_env_kwargs}))
        eval_indices = list(range(min(cfg.eval_tasks, len(held_out.unwrapped.tasks))))
        limit = size
    if limit <= 0:
        raise ValueError(f"{cfg.env_id}: {size} tasks leave none for training after {cfg.eval_tasks} held-out "
                         "ones; lower eval_tasks or pass eval_env_kwargs")
    return train, held_out, list(range(min(cfg.train_tasks, limit))), eval_indices


def stateful_terms(env: gym.Env) -> dict[str, Any]:
    """Reward terms with learned state (the curiosity model), by term name."""
    found = {}
    while isinstance(env, gym.Wrapper):
        if isinstance(env, RewardTerm) and callable(getattr(env, "state_dict", None)):
            found[env.term_name] = env
        env = env.env
    return found


# ------------------------------------------------------------------ one iteration
def choose_tasks(indices: Sequence[int], count: int, seed: int, iteration: int) -> list[int]:
    """The iteration's tasks: a function of (seed, iteration) only, so resumed runs see the same."""
    rng = np.random.default_rng([seed, iteration])
    return [int(i) for i in rng.choice(indices, size=count, replace=count > len(indices))]


def collect(policy: Any, env: PinnedTask, tasks: Sequence[int], iteration: int, cfg: RFTConfig
            ) -> list[list[Episode]]:
    sampling = Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p)
    return [play_group(env, policy, index, cfg.group_size, derive_seed(cfg.seed, iteration, slot), sampling)
            for slot, index in enumerate(tasks)]


@dataclass
class Item:
    """One generated action to learn from, with its episode's advantage and reference log-probs."""

    step: Step
    advantage: float
    reference: torch.Tensor | None = None


def items_of(groups: Sequence[Sequence[Episode]], eps: float) -> list[Item]:
    items = []
    for group in groups:
        advantages = group_advantages([e.trajectory.total_reward for e in group], eps)
        items += [Item(step, float(a)) for episode, a in zip(group, advantages) for step in episode.steps
                  if step.logprobs]
    return items


def optimise(policy: Any, optimizer: torch.optim.Optimizer, items: Sequence[Item], iteration: int,
             cfg: RFTConfig) -> dict[str, float]:
    """``epochs`` shuffled passes of PPO-clip + KL over the items; returns loss statistics."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    totals = {"loss": 0.0, "grad_norm": 0.0, "clipped": 0.0, "tokens": 0.0}
    updates = 0
    policy.train()
    for epoch in range(cfg.epochs):
        order = np.random.default_rng([cfg.seed, iteration, epoch]).permutation(len(items))
        for start in range(0, len(items), cfg.minibatch_size):
            batch = [items[i] for i in order[start:start + cfg.minibatch_size]]
            loss, clipped, tokens = minibatch_loss(policy, batch, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            optimizer.step()
            totals["loss"] += float(loss.detach())
            totals["grad_norm"] += float(norm)
            totals["clipped"] += clipped
            totals["tokens"] += tokens
            updates += 1
    return {"loss": totals["loss"] / max(updates, 1), "grad_norm": totals["grad_norm"] / max(updates, 1),
            "clip_fraction": totals["clipped"] / max(totals["tokens"], 1.0), "updates": updates}


def minibatch_loss(policy: Any, batch: Sequence[Item], cfg: RFTConfig) -> tuple[torch.Tensor, float, int]:
    """Token-mean PPO-clip loss plus ``kl_coef`` * k3 KL to the reference; clipped and total tokens."""
    new = token_logprobs(policy, [item.step for item in batch], cfg.minibatch_size)
    terms, clipped, tokens = [], 0.0, 0
    for item, logprobs in zip(batch, new):
        if not len(logprobs):
            continue
        loss, active = clipped_token_loss(logprobs, aligned(logprobs, item.step.logprobs), item.advantage,
                                          cfg.clip_eps)
        if cfg.kl_coef:
            loss = loss + cfg.kl_coef * k3(logprobs, item.reference[:len(logprobs)])
        terms.append(loss.sum())
        clipped += float(active.sum())
        tokens += len(logprobs)
    return torch.stack(terms).sum() / max(tokens, 1), clipped, tokens


@torch.no_grad()
def attach_reference(policy: Any, reference: WeightSnapshot, items: Sequence[Item], batch: int) -> float:
    """Score every item under the reference weights; return the sampling policy's mean k3 KL to it."""
    with reference.swapped_in(policy):
        scored = token_logprobs(policy, [item.step for item in items], batch)
    kls, tokens = 0.0, 0
    for item, logprobs in zip(items, scored):
        item.reference = logprobs
        recorded = aligned(logprobs, item.step.logprobs)
        kls += float(k3(recorded, logprobs[:len(recorded)]).sum())
        tokens += len(recorded)
    return kls / max(tokens, 1)


def episode_metrics(groups: Sequence[Sequence[Episode]]) -> dict[str, float]:
    """Mean return, mean per-episode sum of every reward term, score, toolchain, invalid rate."""
    trajectories = [e.trajectory for group in groups for e in group]
    names = sorted({*BASE_TERMS, *(k for t in trajectories for s in t.steps for k in s.reward_terms)})
    sums = {name: [sum(s.reward_terms.get(name, 0.0) for s in t.steps) for t in trajectories] for name in names}
    summary = summarize(trajectories)
    return {"return": float(np.mean([t.total_reward for t in trajectories])),
            **{f"terms/{name}": float(np.mean(values)) for name, values in sums.items()},
            "score": summary["score"], "toolchain": summary["toolchain"],
            "invalid_rate": summary["invalid_rate"], "answered": summary["answered"]}


def evaluate(policy: Any, env: PinnedTask, indices: Sequence[int], cfg: RFTConfig) -> dict[str, float]:
    """Greedy episodes on held-out tasks (plain env: task score only)."""
    sampling = Sampling(cfg.max_new_tokens, greedy=True)
    groups = [play_group(env, policy, index, 1, EVAL_SEED_OFFSET + index, sampling)
              for index in indices[:cfg.eval_episodes]]
    summary = summarize([e.trajectory for group in groups for e in group])
    return {f"eval/{key}": float(summary[key]) for key in ("score", "toolchain", "invalid_rate", "answered")}


# ----------------------------------------------------------------------- main
def main(cfg: RFTConfig, on_iteration: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train; return the last iteration's metrics (and last evaluation) with ``step`` and ``checkpoint``.

    ``on_iteration(step, metrics)`` runs after every iteration (``step`` counts finished
    ones), e.g. to stop early by raising.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    loaded = load_policy(cfg.init, cfg.policy, cfg.policy_kwargs, cfg.extra_words)
    policy = place(loaded.policy, cfg.device, cfg.dtype, cfg.gradient_checkpointing)
    reference = WeightSnapshot(policy)
    optimizer = torch.optim.AdamW(list(trainable(policy).values()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    modules = {"policy": policy, **loaded.carried}
    env, held_out, train_indices, eval_indices = make_envs(cfg)
    terms = stateful_terms(env)
    checkpoint = latest_checkpoint(cfg.out) if cfg.resume else None
    start = 0
    if checkpoint is not None:
        restore(checkpoint, modules, optimizer)
        for name, state in checkpoint.trainer["extra"].get("terms", {}).items():
            terms[name].load_state_dict(state)
        start = checkpoint.step
        logger.info("resuming from %s (iteration %d)", checkpoint.path, start)
    log = MetricsLogger(cfg.out, resume_step=start if checkpoint is not None else None)
    run_config = {"rft": config_to_dict(cfg), "modules": loaded.specs}
    metrics: dict[str, Any] = {}
    path = checkpoint.path if checkpoint is not None else None
    try:
        if checkpoint is None:
            log.log(0, {"train_tasks": len(train_indices), "trainable_parameters":
                        sum(p.numel() for p in trainable(policy).values())}, "setup")
            if cfg.eval_episodes:
                log.log(0, evaluate(policy, held_out, eval_indices, cfg), "eval")
        for iteration in tqdm(range(start, cfg.iterations), desc="rft", initial=start, total=cfg.iterations,
                              disable=not cfg.progress):
            metrics = run_iteration(policy, reference, optimizer, env, train_indices, iteration, cfg)
            done = iteration + 1
            log.log(done, metrics)
            if cfg.eval_episodes and (done % cfg.eval_every == 0 or done == cfg.iterations):
                evaluation = evaluate(policy, held_out, eval_indices, cfg)
                log.log(done, evaluation, "eval")
                metrics = {**metrics, **evaluation}
            if done % cfg.checkpoint_every == 0 or done == cfg.iterations:
                extra = {"terms": {name: term.state_dict() for name, term in terms.items()}}
                path = save_checkpoint(cfg.out, done, modules, optimizer, run_config, extra, cfg.keep_checkpoints)
            if on_iteration is not None:
                on_iteration(done, metrics)
    finally:
        log.close()
        env.close()
        held_out.close()
    return {**metrics, "step": cfg.iterations, "checkpoint": str(path) if path is not None else None}


def run_iteration(policy: Any, reference: WeightSnapshot, optimizer: torch.optim.Optimizer, env: PinnedTask,
                  train_indices: Sequence[int], iteration: int, cfg: RFTConfig) -> dict[str, float]:
    """Sample groups, compute advantages and reference log-probs, optimise; the iteration's metrics."""
    started = time.perf_counter()
    groups = collect(policy, env, choose_tasks(train_indices, cfg.tasks_per_iteration, cfg.seed, iteration),
                     iteration, cfg)
    sampled = time.perf_counter()
    items = items_of(groups, cfg.advantage_eps)
    kl = attach_reference(policy, reference, items, cfg.minibatch_size) if items else 0.0
    losses = optimise(policy, optimizer, items, iteration, cfg) if items else {}
    return {**episode_metrics(groups), "kl": kl, **losses, "actions": len(items),
            "sample_seconds": sampled - started, "seconds": time.perf_counter() - started}


def cli(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point for ``python -m training.rft``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return main(parse_config(RFTConfig, argv))


if __name__ == "__main__":
    cli()
