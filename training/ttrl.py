"""Pixel TTRL (phase 3 of Pixelis): label-free adaptation on a stream of test tasks.

``python -m training.ttrl --init runs/rft/checkpoints/step-00000200 --env-id Pixelis-VStar-v0 \\
--env-kwargs '{"split": "test"}' --tasks 200 --out runs/ttrl``

For each task of the stream (indices 0..tasks-1 of the env's source, in order):

1. **Embed and retrieve.** The reset observation (question text and first view) is
   embedded (:class:`training.retrieval.TaskEmbedder`) and the ``neighbours`` most
   similar accepted past tasks are looked up in the memory.
2. **Sample** ``samples`` complete episodes with the current policy.
3. **Vote over trajectories** (:mod:`training.voting`): answers grouped, each episode
   weighted by how well its pixel evidence agrees with its group and by shortness; the
   winner's share of the weight must reach ``accept_threshold``. ``vote="answer"`` is the
   plain majority vote of the original TTRL, for ablations.
4. **Update** (accepted tasks only), ``update_steps`` optimiser steps on: the
   upweighted log-likelihood of the exemplar's action texts (the shortest high-fidelity
   episode of the winning group), plus the retrieved neighbours' exemplars weighted
   ``neighbour_weight`` (replayed in the env to rebuild their contexts: a small replay
   buffer against drift), plus ``pg_coef`` times a GRPO term whose reward is agreement
   with the pseudo-label, plus ``beta`` times the k3 KL to the EMA teacher on the
   sampled tokens.
5. **Corridor** (:mod:`training.kl_corridor`): the KL to the teacher measured after
   the update adapts beta towards ``[kl_low, kl_high]``; above
   ``kl_high * (1 + rollback_tolerance)`` the update is undone (weights and optimiser
   state restored exactly) and logged as a rollback. Kept updates move the EMA teacher.

**No labels.** The env scores answers from its labels, so every learning decision here
reads only what the agent did: texts, log-probs, tool calls and answer texts
(:class:`training.voting.Attempt` has no score field). Env rewards and scores are never
read for learning; :func:`report` computes the pseudo-label accuracy and the samples'
env score for the logs, under ``report/`` keys, after the task's update is done.

Logs (``<out>/metrics.jsonl``, one ``task`` record per task and a ``summary``): accepted,
share, pseudo-label, KL, beta, rollback, toolchain length, neighbours; ``report/...``.
Checkpoints hold the policy, optimiser, EMA teacher, beta, counters and the memory
(plain JSON), so a stopped stream resumes where it stopped with the same weights.

On a GPU machine, with a VLM policy adapter (LoRA is the adapter's business; only
``requires_grad`` parameters are updated, snapshotted for rollback and averaged into the
teacher, so neither costs a second model)::

    python -m training.ttrl --init runs/rft/checkpoints/step-00000500 --env-id Pixelis-VSI-v0 \\
        --env-kwargs '{"split": "test"}' --tasks 500 --samples 8 --device cuda --dtype bfloat16 \\
        --gradient-checkpointing --lr 1e-6 --kl-low 0.001 --kl-high 0.02 --threads 8 --out runs/ttrl
"""

from __future__ import annotations

import json
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
from agents.policy import OTHER, start_context
from pixelis_env import metrics as env_metrics
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
from training.kl_corridor import Decision, EMATeacher, KLCorridor, trainable
from training.retrieval import EpisodeMemory, MemoryEntry, TaskEmbedder
from training.voting import Attempt, Vote, VoteRule, attempt_from_steps, vote

logger = logging.getLogger(__name__)

UpdateHook = Callable[[int, torch.nn.Module], None]
TaskHook = Callable[[int, torch.nn.Module, dict[str, Any]], None]


@dataclass
class TTRLConfig:
    """Label-free test-time RL: retrieval, trajectory voting, EMA-teacher KL corridor with rollback."""

    env_id: str = "Pixelis-VStar-v0"
    """Gymnasium id of the test stream (``module:Id`` imports a module that registers one)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env keyword arguments selecting the held-out split, e.g. ``{"split": "test"}``."""
    tasks: int = 64
    """Stream length: task indices 0..tasks-1 of the source, in order."""
    init: str | None = None
    """Checkpoint directory (SFT or RFT) whose ``policy`` module is adapted."""
    policy: str = "compact"
    """Without ``init``: ``compact`` or ``package.module:factory`` building a fresh Policy."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """Without ``init``: arguments of the policy factory."""
    extra_words: tuple[str, ...] = ()
    """Without ``init``: words added to the compact policy's vocabulary."""
    samples: int = 8
    """Complete episodes sampled per task for the vote."""
    max_new_tokens: int = 64
    """Generation limit per action."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    vote: str = "trajectory"
    """``trajectory`` (answer + pixel evidence + shortness) or ``answer`` (plain majority, original TTRL)."""
    accept_threshold: float = 0.5
    """The winning group's share of the vote weight needed to accept a pseudo-label."""
    length_penalty: float = 0.25
    """Shortness factor of a vote: 1 / (1 + length_penalty * tool calls)."""
    evidence_floor: float = 0.1
    """Vote factor of an episode whose evidence agrees with none of its group."""
    lone_fidelity: float = 0.5
    """Evidence fidelity of an answer group's only member."""
    fidelity_slack: float = 0.25
    """Exemplar candidates: winning-group members within this much of the best fidelity."""
    neighbours: int = 2
    """Nearest accepted past tasks whose exemplars join an update (0 disables retrieval)."""
    neighbour_weight: float = 0.5
    """Loss weight of a neighbour's exemplar relative to the current task's."""
    memory_size: int = 256
    """Accepted tasks kept in the retrieval memory (oldest dropped)."""
    text_embedding: str = "auto"
    """Question embedding: ``minilm`` (all-MiniLM-L6-v2), ``hash`` (bag of words) or ``auto`` (MiniLM if installed)."""
    image_weight: float = 0.5
    """Share of the first-view feature in the task embedding's cosine."""
    lr: float = 1e-4
    """AdamW learning rate of the test-time updates."""
    update_steps: int = 2
    """Optimiser steps per accepted task."""
    upweight: float = 2.0
    """Loss weight of operation and argument tokens of the exemplar (other tokens weigh 1)."""
    pg_coef: float = 0.0
    """Weight of the GRPO term rewarding agreement with the pseudo-label (0 disables it)."""
    clip_eps: float = 0.2
    """PPO clip range of the GRPO term."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 disables)."""
    ema_decay: float = 0.9
    """EMA teacher: teacher <- decay * teacher + (1 - decay) * policy after each kept update."""
    beta: float = 0.1
    """Initial weight of the KL-to-teacher term (adapted by the corridor)."""
    kl_low: float = 0.001
    """Lower edge of the KL corridor (below it beta is divided by beta_factor)."""
    kl_high: float = 0.05
    """Upper edge of the KL corridor (above it beta is multiplied by beta_factor)."""
    beta_factor: float = 1.5
    """Multiplicative beta adaptation step."""
    beta_min: float = 1e-4
    """Beta never goes below this."""
    beta_max: float = 10.0
    """Beta never goes above this."""
    rollback_tolerance: float = 0.5
    """Roll an update back when its KL exceeds kl_high * (1 + rollback_tolerance)."""
    checkpoint_every: int = 16
    """Save a checkpoint every this many tasks (and at the end)."""
    keep_checkpoints: int = 3
    """Older checkpoints are deleted."""
    resume: bool = True
    """Continue the stream from the newest valid checkpoint in ``out`` when there is one."""
    seed: int = 0
    """Seeds a fresh policy, sampling and env resets."""
    out: str = "runs/ttrl"
    """Run directory (metrics.jsonl, checkpoints/)."""
    progress: bool = True
    """Show a tqdm progress bar."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default)."""
    device: str = "cpu"
    """torch device of the policy."""
    dtype: str = "float32"
    """Parameter dtype: float32, bfloat16 or float16."""
    gradient_checkpointing: bool = False
    """Call the policy's ``gradient_checkpointing_enable()`` (Hugging Face models)."""

    def __post_init__(self) -> None:
        self.extra_words = tuple(self.extra_words)
        for name in ("tasks", "samples", "max_new_tokens", "update_steps", "memory_size", "checkpoint_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("neighbours", "neighbour_weight", "pg_coef", "grad_clip", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.upweight <= 0 or not 0 < self.clip_eps < 1:
            raise ValueError("lr and upweight must be > 0 and clip_eps in (0, 1)")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        self.vote_rule()
        self.corridor()

    def vote_rule(self) -> VoteRule:
        return VoteRule(mode=self.vote, threshold=self.accept_threshold, length_penalty=self.length_penalty,
                        evidence_floor=self.evidence_floor, lone_fidelity=self.lone_fidelity,
                        fidelity_slack=self.fidelity_slack)

    def corridor(self) -> KLCorridor:
        return KLCorridor(self.kl_low, self.kl_high, self.beta, self.beta_factor, self.rollback_tolerance,
                          self.beta_min, self.beta_max)


# ------------------------------------------------------------- label-free samples
@dataclass
class Sample:
    """One sampled episode with everything learning may read, and nothing else: the steps
    (contexts, texts, recorded log-probs), the texts of its valid actions, and the voting
    view (tool calls, answer text)."""

    steps: list[Step]
    valid_texts: list[str]
    attempt: Attempt


def label_free(episode: Episode) -> Sample:
    """Drop the rollout record (score, rewards, ground truth) and keep what the agent did."""
    records = episode.trajectory.steps
    valid = [step.text for step, record in zip(episode.steps, records) if record.error is None]
    return Sample(episode.steps, valid, attempt_from_steps(records))


def replay(env: PinnedTask, entry: MemoryEntry) -> list[Step]:
    """An exemplar's steps, contexts rebuilt by replaying its valid texts (tools are deterministic),
    so the targets never show the sampled episode's failed actions in their history."""
    env.task_index = entry.task_index
    obs, info = env.reset(seed=entry.seed)
    context = start_context(obs, info, env)
    steps = []
    for text in entry.texts:
        steps.append(Step(context.copy(), text, []))
        obs, _, terminated, truncated, info = env.step(text)
        context.act(text)
        context.observe(obs)
        if terminated or truncated:
            break
    return steps


# -------------------------------------------------------------------- losses
def weighted_imitation(policy: Any, targets: Sequence[tuple[Step, float]], upweight: float) -> torch.Tensor:
    """Token-weighted NLL of target texts: operation/argument tokens ``upweight``, each text
    scaled by its weight (1 for the task's exemplar, ``neighbour_weight`` for neighbours)."""
    scored = policy.score([s.context for s, _ in targets], [s.text for s, _ in targets])
    total, mass = None, None
    for logprobs, roles, (_, weight) in zip(scored.logprobs, scored.roles, targets):
        roles = torch.as_tensor(roles, device=logprobs.device)
        weights = torch.where(roles == OTHER, 1.0, float(upweight)).to(logprobs.dtype) * weight
        term, w = -(weights * logprobs).sum(), weights.sum()
        total, mass = (term, w) if total is None else (total + term, mass + w)
    return total / mass


def sample_terms(policy: Any, steps: Sequence[Step], teacher: Sequence[torch.Tensor],
                 advantages: Sequence[float] | None = None, clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Token means of the k3 KL to the teacher and (with advantages) the PPO-clip term."""
    new = token_logprobs(policy, steps, len(steps))
    kl_sum, pg_sum, tokens = 0.0, 0.0, 0
    for index, (step, logprobs) in enumerate(zip(steps, new)):
        kl_sum = kl_sum + k3(logprobs, teacher[index][:len(logprobs)]).sum()
        if advantages is not None:
            loss, _ = clipped_token_loss(logprobs, aligned(logprobs, step.logprobs), advantages[index], clip)
            pg_sum = pg_sum + loss.sum()
        tokens += len(logprobs)
    tokens = max(tokens, 1)
    return torch.as_tensor(kl_sum / tokens), torch.as_tensor(pg_sum / tokens)


@torch.no_grad()
def measure_kl(policy: Any, steps: Sequence[Step], teacher: Sequence[torch.Tensor]) -> float:
    """Mean per-token k3 KL(policy || teacher) on the sampled tokens."""
    return float(sample_terms(policy, steps, teacher)[0])


# ---------------------------------------------------------------------- one task
@dataclass
class Adapter:
    """The state TTRL carries along the stream."""

    cfg: TTRLConfig
    policy: Any
    optimizer: torch.optim.Optimizer
    teacher: EMATeacher
    corridor: KLCorridor
    env: PinnedTask
    embedder: TaskEmbedder
    memory: EpisodeMemory
    counts: dict[str, float] = field(default_factory=lambda: {"accepted": 0, "correct": 0, "seen": 0})

    def sample(self, index: int, seed: int) -> tuple[list[Episode], np.ndarray]:
        """The task's embedding (from its reset observation) and ``samples`` episodes."""
        self.env.task_index = index
        obs, _ = self.env.reset(seed=seed)
        embedding = self.embedder(obs)
        sampling = Sampling(self.cfg.max_new_tokens, self.cfg.temperature, self.cfg.top_p)
        return play_group(self.env, self.policy, index, self.cfg.samples, seed, sampling), embedding

    def teacher_logprobs(self, steps: Sequence[Step]) -> list[torch.Tensor]:
        with torch.no_grad(), self.teacher.swapped_in(self.policy):
            return token_logprobs(self.policy, steps, len(steps))

    def update(self, samples: Sequence[Sample], result: Vote, exemplar: MemoryEntry,
               neighbours: Sequence[MemoryEntry], teacher: Sequence[torch.Tensor]) -> float:
        """``update_steps`` optimiser steps toward the exemplar (and neighbours); the last loss."""
        cfg = self.cfg
        targets = [(step, 1.0) for step in replay(self.env, exemplar)]
        for entry in neighbours:
            targets += [(step, cfg.neighbour_weight) for step in replay(self.env, entry)]
        steps = [step for sample in samples for step in sample.steps]
        advantages = None
        if cfg.pg_coef:
            rewards = group_advantages([float(s.attempt.answer == result.label) for s in samples])
            advantages = [float(a) for sample, a in zip(samples, rewards) for _ in sample.steps]
        params = list(trainable(self.policy).values())
        self.policy.train()
        loss = torch.zeros(())
        for _ in range(cfg.update_steps):
            kl, pg = sample_terms(self.policy, steps, teacher, advantages, cfg.clip_eps)
            loss = weighted_imitation(self.policy, targets, cfg.upweight) + self.corridor.beta * kl
            if advantages is not None:
                loss = loss + cfg.pg_coef * pg
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            self.optimizer.step()
        return float(loss.detach())

    def adapt(self, index: int, on_update: UpdateHook | None) -> dict[str, Any]:
        """Sample, vote, maybe update, judge the KL; the task's log record (learning part)."""
        cfg, started = self.cfg, time.perf_counter()
        seed = derive_seed(cfg.seed, index)
        episodes, embedding = self.sample(index, seed)
        samples = [label_free(e) for e in episodes]
        found = self.memory.nearest(embedding, cfg.neighbours)
        result = vote([s.attempt for s in samples], cfg.vote_rule())
        steps = [step for sample in samples for step in sample.steps]
        teacher = self.teacher_logprobs(steps)
        record: dict[str, Any] = {
            "task": index, "accepted": int(result.accepted), "share": result.share, "label": result.label,
            "groups": len(result.groups), "toolchain": float(np.mean([s.attempt.length for s in samples])),
            "neighbours": len(found), "neighbour_similarity": float(np.mean([s for s, _ in found])) if found else 0.0,
            "rollback": 0, "loss": None}
        if result.accepted:
            exemplar = MemoryEntry(index, seed, [float(v) for v in embedding], result.label,
                                   samples[result.exemplar].valid_texts)
            self.corridor.remember(self.policy, self.optimizer)
            record["loss"] = self.update(samples, result, exemplar, [entry for _, entry in found], teacher)
            if on_update is not None:
                on_update(index, self.policy)
            decision = self.corridor.judge(measure_kl(self.policy, steps, teacher), self.policy, self.optimizer)
            if not decision.rollback:
                self.teacher.update(self.policy)
            self.memory.add(exemplar)
            record.update(_decision(decision), exemplar_length=samples[result.exemplar].attempt.length)
        else:
            record.update(kl=measure_kl(self.policy, steps, teacher), beta=self.corridor.beta)
        record["seconds"] = time.perf_counter() - started
        return {**record, **report(result, episodes, self.env.unwrapped.tasks[index], self.counts)}


def _decision(decision: Decision) -> dict[str, Any]:
    return {"kl": decision.kl, "beta": decision.beta, "rollback": int(decision.rollback), "corridor": decision.side}


def report(result: Vote, episodes: Sequence[Episode], task: Any, counts: dict[str, float]) -> dict[str, Any]:
    """REPORTING ONLY, after the task's learning is done: the pseudo-label scored against the
    env's label and the samples' env scores. Nothing here flows back into learning."""
    correct = None
    counts["seen"] += 1
    if result.accepted:
        correct = env_metrics.score(task.metric, result.label, task.answer)
        counts["accepted"] += 1
        counts["correct"] += correct
    return {"report/pseudo_label_correct": correct,
            "report/sample_score": float(np.mean([e.trajectory.score for e in episodes]))}


# ----------------------------------------------------------------------- main
def main(cfg: TTRLConfig, on_update: UpdateHook | None = None, on_task: TaskHook | None = None) -> dict[str, Any]:
    """Adapt along the stream; return the summary (accepted rate, rollbacks, pseudo-labels, report).

    ``on_update(index, policy)`` runs right after a task's optimiser steps, before the KL
    is judged (tests inject bad updates there); ``on_task(index, policy, record)`` after
    each task.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    loaded = load_policy(cfg.init, cfg.policy, cfg.policy_kwargs, cfg.extra_words)
    policy = place(loaded.policy, cfg.device, cfg.dtype, cfg.gradient_checkpointing)
    optimizer = torch.optim.AdamW(list(trainable(policy).values()), lr=cfg.lr, weight_decay=0.0)
    env = PinnedTask(gym.make(cfg.env_id, **cfg.env_kwargs))
    if cfg.tasks > len(env.unwrapped.tasks):
        raise ValueError(f"{cfg.env_id} has {len(env.unwrapped.tasks)} tasks; the stream asks for {cfg.tasks}")
    adapter = Adapter(cfg, policy, optimizer, EMATeacher(policy, cfg.ema_decay), cfg.corridor(), env,
                      TaskEmbedder(cfg.text_embedding, cfg.image_weight), EpisodeMemory(cfg.memory_size))
    modules = {"policy": policy, **loaded.carried}
    start = _resume(cfg, adapter, modules)
    log = MetricsLogger(cfg.out, resume_step=start if start else None)
    run_config = {"ttrl": config_to_dict(cfg), "modules": loaded.specs}
    labels: list[str | None] = []
    path = None
    try:
        if not start:
            log.log(0, {"tasks": cfg.tasks, "embedding": adapter.embedder.backend, "vote": cfg.vote}, "setup")
        for index in tqdm(range(start, cfg.tasks), desc="ttrl", initial=start, total=cfg.tasks,
                          disable=not cfg.progress):
            record = adapter.adapt(index, on_update)
            labels.append(record["label"] if record["accepted"] else None)
            log.log(index + 1, record, "task")
            if on_task is not None:
                on_task(index, policy, record)
            done = index + 1
            if done % cfg.checkpoint_every == 0 or done == cfg.tasks:
                path = save_checkpoint(cfg.out, done, modules, optimizer, run_config, _extra(adapter),
                                       cfg.keep_checkpoints)
        summary = _summary(adapter)
        log.log(cfg.tasks, summary, "summary")
    finally:
        log.close()
        env.close()
    return {**summary, "pseudo_labels": labels, "checkpoint": str(path) if path is not None else None}


def _extra(adapter: Adapter) -> dict[str, Any]:
    return {"teacher": adapter.teacher.state_dict(), "beta": adapter.corridor.beta,
            "rollbacks": adapter.corridor.rollbacks, "counts": dict(adapter.counts),
            "memory": json.dumps(adapter.memory.to_json())}


def _resume(cfg: TTRLConfig, adapter: Adapter, modules: dict[str, torch.nn.Module]) -> int:
    """Restore the stream's state from the newest checkpoint; the next task index (0 when fresh)."""
    checkpoint = latest_checkpoint(cfg.out) if cfg.resume else None
    if checkpoint is None:
        return 0
    restore(checkpoint, modules, adapter.optimizer)
    extra = checkpoint.trainer["extra"]
    adapter.teacher.load_state_dict(extra["teacher"])
    adapter.corridor.beta, adapter.corridor.rollbacks = float(extra["beta"]), int(extra["rollbacks"])
    adapter.counts = {k: float(v) for k, v in extra["counts"].items()}
    adapter.memory = EpisodeMemory.from_json(json.loads(extra["memory"]), cfg.memory_size)
    logger.info("resuming the stream from %s (task %d)", checkpoint.path, checkpoint.step)
    return checkpoint.step


def _summary(adapter: Adapter) -> dict[str, Any]:
    counts = adapter.counts
    accepted = counts["accepted"]
    return {"accepted_rate": accepted / max(counts["seen"], 1), "rollbacks": adapter.corridor.rollbacks,
            "beta": adapter.corridor.beta,
            "report/pseudo_label_accuracy": counts["correct"] / accepted if accepted else None}


def cli(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point for ``python -m training.ttrl``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return main(parse_config(TTRLConfig, argv))


if __name__ == "__main__":
    cli()
