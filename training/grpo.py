"""What RFT and TTRL share: loading the policy, sampling groups of episodes, GRPO losses.

* :func:`load_policy` rebuilds the policy from an SFT or RFT checkpoint (its
  ``config["modules"]`` specs, through :mod:`training.common`), or builds a fresh one.
* :func:`play_group` samples episodes of one task through the shared
  :func:`agents.rollout.rollout` and :class:`agents.policy_agent.PolicyAgent`, keeping each
  step's :class:`~agents.policy.Context` and the log-probs recorded while generating.
* :func:`group_advantages`, :func:`clipped_token_loss` and :func:`k3` are the GRPO
  pieces: group-normalised returns, PPO-clip on per-token ratios against the recorded
  log-probs, and the k3 KL estimator ``exp(q - p) - (q - p) - 1`` (unbiased for
  KL(p || q) on tokens sampled from p, always >= 0).

Everything goes through the :class:`agents.policy.Policy` protocol (``generate``,
``score``) and ``nn.Module``; no loop here knows which model it trains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.policy import Context, Policy
from agents.policy_agent import PolicyAgent
from agents.rollout import rollout
from pixelis_env.trajectory import Trajectory
from training.common import build_modules, import_object, load_checkpoint, module_spec, restore

POLICY_ALIASES = {"compact": "agents.compact:from_spec"}
"""Same aliases as :mod:`training.sft` (``compact`` builds :class:`agents.compact.CompactPolicy`)."""
DTYPES = ("float32", "bfloat16", "float16")


# ---------------------------------------------------------------- the policy
@dataclass
class LoadedPolicy:
    """The policy to train, how to rebuild it, and modules carried along unchanged (aux heads)."""

    policy: nn.Module
    specs: dict[str, Any]
    carried: dict[str, nn.Module] = field(default_factory=dict)


def load_policy(init: str | None, policy: str = "compact", policy_kwargs: Mapping[str, Any] | None = None,
                extra_words: Sequence[str] = ()) -> LoadedPolicy:
    """The ``policy`` module of checkpoint ``init`` (other modules carried, frozen), or a new policy.

    A new one is built like :func:`training.sft.build_policy` does: ``compact`` with
    CompactConfig fields as ``policy_kwargs``, or any ``package.module:factory``.
    """
    if init is not None:
        checkpoint = load_checkpoint(init)
        specs = dict(checkpoint.config.get("modules") or {})
        if "policy" not in specs:
            raise ValueError(f"{init}: the checkpoint's config has no `modules.policy` spec to rebuild the policy")
        modules = build_modules(specs)
        restore(checkpoint, modules, rng=False)
        carried = {name: module.requires_grad_(False) for name, module in modules.items() if name != "policy"}
        return LoadedPolicy(modules["policy"], specs, carried)
    kwargs = dict(policy_kwargs or {})
    if policy == "compact":
        from agents.compact import CompactConfig, CompactPolicy, GrammarTokenizer

        built = CompactPolicy(CompactConfig(**kwargs), GrammarTokenizer(tuple(extra_words)))
        return LoadedPolicy(built, {"policy": module_spec(POLICY_ALIASES["compact"], **built.spec())})
    factory = POLICY_ALIASES.get(policy, policy)
    return LoadedPolicy(import_object(factory)(**kwargs), {"policy": module_spec(factory, **kwargs)})


def place(module: nn.Module, device: str, dtype: str, gradient_checkpointing: bool = False) -> nn.Module:
    """Move to ``device``/``dtype``; turn on gradient checkpointing where the model offers it
    (Hugging Face models and adapters exposing ``gradient_checkpointing_enable``)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    module.to(device=torch.device(device), dtype=getattr(torch, dtype))
    if gradient_checkpointing:
        enable = getattr(module, "gradient_checkpointing_enable", None)
        if enable is None:
            raise ValueError(f"{type(module).__name__} has no gradient_checkpointing_enable(); "
                             "turn gradient_checkpointing off for this policy")
        enable()
    return module


def derive_seed(*keys: int) -> int:
    """A 31-bit seed that depends on every key (run seed, iteration, slot ...), nothing else."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] >> 1)


# ---------------------------------------------------------------- episodes
class PinnedTask(gym.Wrapper):
    """Resets to task ``task_index`` of the source every time (``rollout`` resets with a seed only)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.task_index = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        return self.env.reset(seed=seed, options={**(options or {}), "task_index": self.task_index})


@dataclass(frozen=True)
class Sampling:
    """How episodes are sampled from the policy."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False


@dataclass
class Step:
    """One generated action: the context the policy saw, its text, the recorded log-probs."""

    context: Context
    text: str
    logprobs: list[float]


@dataclass
class Episode:
    """A sampled episode: the rollout's record and the policy's steps."""

    trajectory: Trajectory
    steps: list[Step]


def play_group(env: PinnedTask, policy: Policy, task_index: int, episodes: int, seed: int,
               sampling: Sampling) -> list[Episode]:
    """``episodes`` episodes of one task; episode ``i`` resets with ``seed + i`` and the agent
    samples with ``seed`` (then ``seed + 1`` ... per step), so a group is reproducible."""
    env.task_index = int(task_index)
    agent = PolicyAgent(policy, env, seed=seed, max_new_tokens=sampling.max_new_tokens,
                        temperature=sampling.temperature, top_p=sampling.top_p, greedy=sampling.greedy)
    contexts: list[Context] = []
    was_training = getattr(policy, "training", False)
    policy.eval()
    try:
        with torch.no_grad():
            trajectories = rollout(env, agent, episodes=episodes, seed=seed,
                                   on_episode=lambda _t: contexts.append(agent.context.copy()))
    finally:
        policy.train(was_training)
    return [Episode(t, _steps(t, c)) for t, c in zip(trajectories, contexts)]


def _steps(trajectory: Trajectory, context: Context) -> list[Step]:
    """Step ``k`` saw the first ``k + 1`` observations and the ``k`` earlier actions."""
    return [Step(Context(context.turns[:k + 1], context.actions[:k], dict(context.meta)), record.text_action or "",
                 list(record.logprobs or [])) for k, record in enumerate(trajectory.steps)]


# ------------------------------------------------------------------- scoring
def token_logprobs(policy: Policy, steps: Sequence[Step], batch_size: int) -> list[torch.Tensor]:
    """The policy's log-probs of each step's generated tokens (with grad when enabled).

    A policy's ``score`` re-tokenises the text; for the compact policy that gives back the
    generated tokens exactly, the eos included. A text cut at ``max_new_tokens`` has no
    eos, and a tokenizer may split a text differently from how it was sampled, so the
    two are aligned on their common prefix (see :func:`aligned`).
    """
    out: list[torch.Tensor] = []
    for start in range(0, len(steps), batch_size):
        chunk = steps[start:start + batch_size]
        scored = policy.score([s.context for s in chunk], [s.text for s in chunk])
        out += [lp[:len(s.logprobs)] for s, lp in zip(chunk, scored.logprobs)]
    return out


def aligned(new: torch.Tensor, recorded: Sequence[float]) -> torch.Tensor:
    """The recorded log-probs as a tensor like ``new``, cut to its length."""
    return torch.tensor(list(recorded)[:len(new)], dtype=new.dtype, device=new.device)


# -------------------------------------------------------------------- losses
def group_advantages(returns: Sequence[float], eps: float = 1e-4) -> np.ndarray:
    """``(r - mean) / (std + eps)`` within one group (population std); all-equal returns give 0."""
    values = np.asarray(returns, np.float64)
    return (values - values.mean()) / (values.std() + eps)


def k3(logprobs: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(p || q) from ``log p`` and ``log q`` of tokens sampled from p."""
    delta = other - logprobs
    return delta.exp() - delta - 1.0


def clipped_token_loss(new: torch.Tensor, old: torch.Tensor, advantage: float, clip: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO-clip per token: ``-min(r A, clip(r, 1 - c, 1 + c) A)`` with ``r = exp(new - old)``,
    and a mask of the tokens whose clipping is active (for the clip fraction)."""
    ratio = (new - old).exp()
    unclipped, clipped = ratio * advantage, ratio.clamp(1.0 - clip, 1.0 + clip) * advantage
    active = ((ratio > 1.0 + clip) & (advantage > 0)) | ((ratio < 1.0 - clip) & (advantage < 0))
    return -torch.minimum(unclipped, clipped), active
