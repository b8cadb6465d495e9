"""Supervised fine-tuning on tool-action traces (phase 1 of Pixelis).

``python -m training.sft --env-ids Pixelis-VStar-v0 --steps 2000 --out runs/sft``

Demonstrations are (context, action text) pairs: the oracle's tool calls and answer
for the first ``train_tasks`` tasks of each env, plus any saved trajectories
(``--trajectories runs/x.jsonl``), replayed in the env to rebuild each step's context.
The loss is a masked imitation loss over the action tokens only, with operation and
argument tokens weighted ``upweight``, plus ``aux_weight`` times the auxiliary heads'
regression loss on grounded arguments (:mod:`training.aux_heads`). Held-out tasks give
operation accuracy, box IoU of greedy decoding (raw and refined by the heads) and the
closed-loop score, logged to ``<out>/metrics.jsonl``.

The loop only uses the :class:`agents.policy.Policy` protocol (``score``,
``generate``, ``hidden_size``) and ``torch.nn.Module``; ``policy`` names the factory
that builds one, so a VLM adapter trains with the same code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from agents.oracle import OracleAgent
from agents.policy import OTHER, Context, Policy, Scored, grounded_arguments, start_context
from agents.policy_agent import PolicyAgent
from pixelis_env import ENV_IDS
from pixelis_env.actions import BUILTIN_ACTIONS, Action, BoxArg, InvalidAction, PointArg
from pixelis_env.errors import ActionError, DataError
from pixelis_env.text_actions import format_action, parse_action
from pixelis_env.tools import registered_tools
from pixelis_env.trajectory import StepRecord, load_jsonl
from training.aux_heads import AuxHeads, box_iou
from training.common import (
    CheckpointError,
    MetricsLogger,
    config_to_dict,
    latest_checkpoint,
    module_spec,
    parse_config,
    restore,
    save_checkpoint,
    seed_everything,
)

logger = logging.getLogger(__name__)

SUITE_IDS = tuple(i for i in ENV_IDS if i != "Pixelis-Image-v0")
POLICY_ALIASES = {"compact": "agents.compact:from_spec"}
EVAL_SEED_OFFSET = 1_000_003
_NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')


@dataclass
class SFTConfig:
    """Supervised fine-tuning with masked imitation loss and auxiliary grounding heads."""

    env_ids: tuple[str, ...] = SUITE_IDS
    """Gymnasium ids to collect oracle demonstrations from (``module:Id`` imports a module that registers one)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for every env (suite options such as ``size``, env options such as ``view_size``)."""
    train_tasks: int = 256
    """Oracle demonstrations come from task indices 0..train_tasks-1 of each env."""
    eval_tasks: int = 32
    """Held-out tasks per env: the last ones of the training source, or the first of the eval env."""
    eval_env_kwargs: dict[str, Any] | None = None
    """If set (e.g. ``{"split": "test"}``), held-out tasks come from an env built with these kwargs on top."""
    coord_decimals: int = 2
    """Oracle coordinates are rounded to this many decimals (boxes outward); 0 keeps them as they are."""
    trajectories: tuple[str, ...] = ()
    """Saved trajectory JSONL files to imitate as well (replayed in the env named by each record)."""
    min_trajectory_score: float = 0.0
    """Saved trajectories scoring below this are not imitated."""
    direct_answer: bool = False
    """Imitate only each episode's answer, written from the reset observation: the no-tool baseline."""
    policy: str = "compact"
    """``compact`` or ``package.module:factory`` returning a Policy (``nn.Module``) from ``policy_kwargs``."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of the policy factory; for ``compact``, CompactConfig fields (e.g. ``{"d_model": 96}``)."""
    extra_words: tuple[str, ...] = ()
    """Words added to the compact policy's vocabulary (answer words of your tasks)."""
    steps: int = 1000
    """Optimiser steps."""
    batch_size: int = 32
    """Demonstrations per step (drawn with replacement, deterministically from seed and step)."""
    lr: float = 3e-3
    """Peak learning rate (AdamW)."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at lr * min_lr_ratio."""
    warmup_steps: int = 20
    """Linear warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 disables)."""
    upweight: float = 2.0
    """Loss weight of operation and argument tokens (other tokens weigh 1; 1.0 disables)."""
    aux_weight: float = 1.0
    """Weight of the auxiliary grounded-argument loss (0 disables the heads)."""
    aux_width: int = 128
    """Hidden width of each auxiliary head."""
    max_new_tokens: int = 64
    """Generation limit when evaluating."""
    eval_every: int = 100
    """Evaluate every this many steps (and at the end)."""
    eval_episodes: int = 8
    """Closed-loop greedy episodes per env at each evaluation (0 skips them)."""
    log_every: int = 10
    """Log training metrics every this many steps."""
    checkpoint_every: int = 100
    """Save a checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 3
    """Older checkpoints are deleted."""
    resume: bool = True
    """Continue from the newest valid checkpoint in ``out`` when there is one."""
    seed: int = 0
    """Seeds weights, batches and envs."""
    out: str = "runs/sft"
    """Run directory (metrics.jsonl, checkpoints/)."""
    progress: bool = True
    """Show tqdm progress bars."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default)."""

    def __post_init__(self) -> None:
        self.env_ids, self.trajectories = tuple(self.env_ids), tuple(self.trajectories)
        self.extra_words = tuple(self.extra_words)
        if not self.env_ids:
            raise ValueError("env_ids is empty: name at least one env (demonstrations and evaluation need one)")
        positive = ("steps", "batch_size", "eval_every", "log_every", "checkpoint_every", "keep_checkpoints",
                    "max_new_tokens")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_tasks", "eval_tasks", "eval_episodes", "warmup_steps", "threads", "coord_decimals"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.train_tasks == 0 and not self.trajectories:
            raise ValueError("no demonstrations: set train_tasks > 0 or give trajectories")
        if self.eval_episodes > self.eval_tasks:
            raise ValueError(f"eval_episodes ({self.eval_episodes}) cannot exceed eval_tasks ({self.eval_tasks})")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be > 0 and min_lr_ratio in [0, 1]")
        if self.upweight <= 0 or self.aux_weight < 0 or self.grad_clip < 0:
            raise ValueError("upweight must be > 0, aux_weight and grad_clip >= 0")


@dataclass
class Demo:
    """One imitation target: the action text to write in a context."""

    context: Context
    text: str
    env_id: str


# ---------------------------------------------------------------- demonstrations
class Envs:
    """Envs by id, built once with the config's kwargs (and a separate held-out one)."""

    def __init__(self, cfg: SFTConfig) -> None:
        self.cfg = cfg
        self._train: dict[str, gym.Env] = {}
        self._eval: dict[str, gym.Env] = {}

    def train(self, env_id: str) -> gym.Env:
        if env_id not in self._train:
            self._train[env_id] = gym.make(env_id, **self.cfg.env_kwargs)
        return self._train[env_id]

    def held_out(self, env_id: str) -> tuple[gym.Env, list[int]]:
        """The env and task indices of the held-out split."""
        cfg = self.cfg
        if cfg.eval_env_kwargs is None:
            size = len(self.train(env_id).unwrapped.tasks)
            return self.train(env_id), list(range(max(size - cfg.eval_tasks, 0), size))
        if env_id not in self._eval:
            self._eval[env_id] = gym.make(env_id, **{**cfg.env_kwargs, **cfg.eval_env_kwargs})
        env = self._eval[env_id]
        return env, list(range(min(cfg.eval_tasks, len(env.unwrapped.tasks))))

    def train_indices(self, env_id: str) -> list[int]:
        size = len(self.train(env_id).unwrapped.tasks)
        limit = size - self.cfg.eval_tasks if self.cfg.eval_env_kwargs is None else size
        if self.cfg.train_tasks > 0 and limit <= 0:
            raise DataError(f"{env_id}: {size} tasks leave none for training after {self.cfg.eval_tasks} "
                            "held-out ones; lower eval_tasks or pass eval_env_kwargs (e.g. a test split)")
        return list(range(min(self.cfg.train_tasks, limit)))

    def close(self) -> None:
        for env in [*self._train.values(), *self._eval.values()]:
            env.close()


def quantised(action: Action, decimals: int) -> Action:
    """``action`` with box and point coordinates on a ``10**-decimals`` grid.

    One token per 0.01 bin is far easier to learn than 4-decimal coordinates
    (DESIGN.md section 10). Boxes are rounded outward so they still contain the target.
    """
    scale = 10**decimals
    changes = {}
    for key, f in action.arguments().items():
        value, kind = getattr(action, key), f.metadata["arg"]
        if value is None:
            continue
        if isinstance(kind, BoxArg):
            x0, y0, x1, y1 = value
            low = [math.floor(v * scale + 1e-6) / scale for v in (x0, y0)]
            high = [min(math.ceil(v * scale - 1e-6) / scale, 1.0) for v in (x1, y1)]
            changes[key] = (low[0], low[1], high[0], high[1])
        elif isinstance(kind, PointArg):
            changes[key] = tuple(round(v, decimals) for v in value)
    return dataclasses.replace(action, **changes) if changes else action


def oracle_demonstrations(env: gym.Env, env_id: str, indices: Sequence[int], seed: int,
                          coord_decimals: int = 0) -> list[Demo]:
    """Play :class:`OracleAgent` on the given tasks; one demo per step it takes.

    With ``coord_decimals`` the oracle's coordinates are quantised (:func:`quantised`)
    before the step, so later observations follow the quantised action.
    """
    demos = []
    for index in indices:
        obs, info = env.reset(seed=seed + index, options={"task_index": index})
        agent = OracleAgent(env)
        agent.reset(obs, info)
        context = start_context(obs, info, env)
        done = False
        while not done:
            action = agent.act(obs, info)
            text = format_action(quantised(action, coord_decimals) if coord_decimals else action)
            demos.append(Demo(context.copy(), text, env_id))
            obs, _, terminated, truncated, info = env.step(text)
            if info.get("error"):
                raise DataError(f"{env_id} task {info['task_id']}: the oracle's action {text!r} failed: "
                                f"{info['error']}")
            context.act(text)
            context.observe(obs)
            done = terminated or truncated
    return demos


def answer_only(demos: Sequence[Demo]) -> list[Demo]:
    """The answers among ``demos``, each moved to its episode's first context (question and first view).

    The same targets as tool use, with none of the evidence the tools gathered: the
    policy must answer from what it sees at reset.
    """
    return [Demo(Context(demo.context.turns[:1], [], dict(demo.context.meta)), demo.text, demo.env_id)
            for demo in demos if operation(demo.text) == "answer"]


def trajectory_demonstrations(path: str, envs: Envs, min_score: float) -> list[Demo]:
    """Replay saved trajectories to rebuild contexts; imitate their valid steps."""
    demos = []
    for number, trajectory in enumerate(load_jsonl(path), 1):
        if trajectory.score < min_score:
            continue
        env_id = trajectory.env_id or envs.cfg.env_ids[0]
        env = envs.train(env_id)
        obs, info = _reset_to(env, trajectory.task_id, trajectory.seed, f"{path}:{number}")
        context = start_context(obs, info, env)
        for step in trajectory.steps:
            action = _recorded_action(env, step)
            if step.error is None and isinstance(action, str):
                demos.append(Demo(context.copy(), action, env_id))
            obs, *_ = env.step(action)
            context.act(action if isinstance(action, str) else "")
            context.observe(obs)
    return demos


def _reset_to(env: gym.Env, task_id: str, seed: int | None, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reset to the recorded task: by its seed when that reproduces it, else by searching the source."""
    if seed is not None:
        obs, info = env.reset(seed=seed)
        if info["task_id"] == task_id:
            return obs, info
    tasks = env.unwrapped.tasks
    for index in range(len(tasks)):
        if tasks[index].task_id == task_id:
            return env.reset(seed=seed, options={"task_index": index})
    raise DataError(f"{where}: task {task_id!r} is not in this env's task source; pass the env kwargs "
                    "the trajectory was recorded with (env_kwargs)")


def _recorded_action(env: gym.Env, step: StepRecord) -> str | InvalidAction:
    if step.text_action is not None:
        return step.text_action
    types = {t.name: t for t in env.unwrapped.actions.action_types}
    if step.tool in types and step.arguments is not None and step.error is None:
        return format_action(types[step.tool].from_arguments(step.arguments))
    return InvalidAction(step.error or "unrecorded action")


# ----------------------------------------------------------------------- losses
def imitation_loss(scored: Scored, upweight: float) -> torch.Tensor:
    """Token-weighted mean negative log-likelihood of the target texts.

    Only the scored action tokens are targets (prompt and tool outputs never are);
    tokens whose role is OPERATION or ARGUMENT weigh ``upweight``, others 1.
    """
    total, weight = None, None
    for logprobs, roles in zip(scored.logprobs, scored.roles):
        roles = torch.as_tensor(roles, device=logprobs.device)
        weights = torch.where(roles == OTHER, 1.0, float(upweight)).to(logprobs.dtype)
        term, mass = -(weights * logprobs).sum(), weights.sum()
        total, weight = (term, mass) if total is None else (total + term, weight + mass)
    return total / weight


def sft_loss(policy: Policy, heads: AuxHeads | None, demos: Sequence[Demo], cfg: SFTConfig
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Imitation loss plus ``aux_weight`` times the auxiliary loss, with their values."""
    contexts = [d.context for d in demos]
    scored = policy.score(contexts, [d.text for d in demos])
    imitation = imitation_loss(scored, cfg.upweight)
    terms = {"imitation": float(imitation.detach())}
    if heads is None:
        return imitation, terms
    aux, aux_terms = heads.loss(scored, contexts)
    terms.update(aux=float(aux.detach()), **aux_terms)
    return imitation + cfg.aux_weight * aux, terms


def learning_rate(step: int, cfg: SFTConfig) -> float:
    """Linear warm-up then cosine decay to ``lr * min_lr_ratio`` (a function of the step only)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def batch_indices(size: int, step: int, cfg: SFTConfig) -> np.ndarray:
    """The demos of a step: a function of (seed, step) only, so a resumed run sees the same batches."""
    return np.random.default_rng([cfg.seed, step]).integers(0, size, cfg.batch_size)


# ------------------------------------------------------------------- evaluation
def operation(text: str) -> str | None:
    """The tool name of an action text (``answer`` for answers), valid or not."""
    answer, call = text.find("<answer>"), text.find("<tool_call>")
    if answer >= 0 and (call < 0 or answer < call):
        return "answer"
    match = _NAME.search(text[call:]) if call >= 0 else None
    return match.group(1) if match else None


def first_box(text: str) -> list[float] | None:
    return next((values for kind, _, values in grounded_arguments(text) if kind == "box"), None)


def _parses(text: str) -> bool:
    try:
        parse_action(text)
    except ActionError:
        return False
    return True


@torch.no_grad()
def step_metrics(policy: Policy, heads: AuxHeads | None, demos: Sequence[Demo], cfg: SFTConfig) -> dict[str, float]:
    """Teacher-forced held-out metrics: greedy action vs the oracle's at each oracle step."""
    predictions: list[str] = []
    refined: list[str] = []
    losses = []
    for start in range(0, len(demos), cfg.batch_size):
        chunk = demos[start:start + cfg.batch_size]
        contexts = [d.context for d in chunk]
        texts = [s.text for s in policy.generate(contexts, max_new_tokens=cfg.max_new_tokens, greedy=True)]
        predictions += texts
        losses.append(float(sft_loss(policy, heads, chunk, cfg)[0]) * len(chunk))
        if heads is not None:
            scored = policy.score(contexts, texts)
            refined += [heads.refine(t, _row(scored, i), c) for i, (t, c) in enumerate(zip(texts, contexts))]
    metrics = {
        "op_accuracy": float(np.mean([operation(p) == operation(d.text) for p, d in zip(predictions, demos)])),
        "parse_rate": float(np.mean([_parses(p) for p in predictions])),
        "exact_match": float(np.mean([p == d.text for p, d in zip(predictions, demos)])),
        "loss": sum(losses) / len(demos),
    }
    boxed = [i for i, d in enumerate(demos) if first_box(d.text) is not None]
    if boxed:
        metrics["box_iou"] = _mean_box_iou([predictions[i] for i in boxed], [demos[i].text for i in boxed])
        if heads is not None:
            metrics["box_iou_refined"] = _mean_box_iou([refined[i] for i in boxed], [demos[i].text for i in boxed])
    return metrics


def _row(scored: Scored, index: int) -> Scored:
    return Scored(logprobs=[scored.logprobs[index]], roles=[scored.roles[index]], hidden=[scored.hidden[index]],
                  grounded=[scored.grounded[index]])


def _mean_box_iou(predicted: Sequence[str], targets: Sequence[str]) -> float:
    """Mean IoU of the first box of each prediction with the target's (0 when none was written)."""
    ious = []
    for text, target in zip(predicted, targets):
        box = first_box(text)
        ious.append(0.0 if box is None else float(box_iou(torch.tensor(box), torch.tensor(first_box(target)))))
    return float(np.mean(ious))


@torch.no_grad()
def episode_scores(policy: Policy, heads: AuxHeads | None, env: gym.Env, indices: Sequence[int],
                   cfg: SFTConfig) -> list[float]:
    """Closed-loop greedy episodes on held-out tasks (refined by the heads when there are heads)."""
    scores = []
    for index in indices:
        agent = PolicyAgent(policy, env, max_new_tokens=cfg.max_new_tokens, greedy=True, heads=heads,
                            refine=heads is not None)
        obs, info = env.reset(seed=EVAL_SEED_OFFSET + index, options={"task_index": index})
        agent.reset(obs, info)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info).action)
            done = terminated or truncated
        scores.append(float(info.get("score", 0.0)))
    return scores


def evaluate(policy: Policy, heads: AuxHeads | None, held_out: dict[str, list[Demo]], envs: Envs,
             cfg: SFTConfig) -> dict[str, float]:
    """Held-out metrics per env (``eval/<env_id>/...``) and pooled over envs (``eval/...``)."""
    was_training = policy.training
    policy.eval()
    metrics: dict[str, float] = {}
    pooled: dict[str, list[float]] = {}
    for env_id, demos in held_out.items():
        if not demos:
            continue
        values = step_metrics(policy, heads, demos, cfg)
        if cfg.eval_episodes:
            env, indices = envs.held_out(env_id)
            values["score"] = float(np.mean(episode_scores(policy, heads, env, indices[:cfg.eval_episodes], cfg)))
        for key, value in values.items():
            metrics[f"eval/{env_id}/{key}"] = value
            pooled.setdefault(key, []).append(value)
    metrics.update({f"eval/{key}": float(np.mean(v)) for key, v in pooled.items()})
    policy.train(was_training)
    return metrics


# ------------------------------------------------------------------------ setup
def build_policy(cfg: SFTConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The policy named by ``cfg.policy`` and the spec that rebuilds it from a checkpoint."""
    from training.common import import_object

    if cfg.policy == "compact":
        from agents.compact import CompactConfig, CompactPolicy, GrammarTokenizer

        registered = [spec.action_type for spec in registered_tools().values()]
        tools = list(dict.fromkeys([*BUILTIN_ACTIONS, *registered]))
        policy = CompactPolicy(CompactConfig(**cfg.policy_kwargs), GrammarTokenizer(cfg.extra_words, tools))
        return policy, module_spec(POLICY_ALIASES["compact"], **policy.spec())
    factory = POLICY_ALIASES.get(cfg.policy, cfg.policy)
    return import_object(factory)(**cfg.policy_kwargs), module_spec(factory, **cfg.policy_kwargs)


def collect(cfg: SFTConfig, envs: Envs) -> tuple[list[Demo], dict[str, list[Demo]]]:
    """Training demonstrations and held-out oracle demonstrations per env."""
    train: list[Demo] = []
    held_out: dict[str, list[Demo]] = {}
    for env_id in tqdm(cfg.env_ids, desc="demonstrations", disable=not cfg.progress):
        train += oracle_demonstrations(envs.train(env_id), env_id, envs.train_indices(env_id), cfg.seed,
                                       cfg.coord_decimals)
        env, indices = envs.held_out(env_id)
        held_out[env_id] = oracle_demonstrations(env, env_id, indices, EVAL_SEED_OFFSET, cfg.coord_decimals)
    for path in cfg.trajectories:
        train += trajectory_demonstrations(path, envs, cfg.min_trajectory_score)
    if not train:
        raise DataError("no training demonstrations were collected")
    if cfg.direct_answer:
        return answer_only(train), {env_id: answer_only(demos) for env_id, demos in held_out.items()}
    return train, held_out


def main(cfg: SFTConfig, on_step: Callable[[int, dict[str, float]], None] | None = None,
         demonstrations: Callable[[SFTConfig, Envs], tuple[list[Demo], dict[str, list[Demo]]]] = collect
         ) -> dict[str, Any]:
    """Train; return the last evaluation's metrics with ``step`` and ``checkpoint``.

    ``on_step(step, metrics)`` is called after every optimiser step (``step`` counts
    finished steps), e.g. for custom logging or early stopping by raising.
    ``demonstrations`` replaces :func:`collect`, e.g. to share one collection between
    the runs of a sweep.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    policy, policy_spec = build_policy(cfg)
    heads = AuxHeads(policy.hidden_size, cfg.aux_width) if cfg.aux_weight > 0 else None
    modules = {"policy": policy} if heads is None else {"policy": policy, "aux": heads}
    specs = {"policy": policy_spec}
    if heads is not None:
        specs["aux"] = module_spec("training.aux_heads:AuxHeads", hidden_size=heads.hidden_size, width=heads.width)
    parameters = [p for m in modules.values() for p in m.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    checkpoint = latest_checkpoint(cfg.out) if cfg.resume else None
    start = 0
    if checkpoint is not None:
        if checkpoint.config.get("modules") != json.loads(json.dumps(specs)):
            raise CheckpointError(f"{checkpoint.path} holds a different model (policy, vocabulary or heads) than "
                                  "this config builds; use another --out, or --no-resume to start over")
        restore(checkpoint, modules, optimizer)
        start = checkpoint.step
        logger.info("resuming from %s (step %d)", checkpoint.path, start)
    envs = Envs(cfg)
    try:
        train, held_out = demonstrations(cfg, envs)
        log = MetricsLogger(cfg.out, resume_step=start if checkpoint is not None else None)
        if checkpoint is None:
            log.log(0, {"demonstrations": len(train), "parameters": sum(p.numel() for p in parameters)}, "setup")
        run_config = {"sft": config_to_dict(cfg), "modules": specs}
        metrics = _train(cfg, policy, heads, modules, optimizer, train, held_out, envs, log, run_config, start,
                         on_step)
        if checkpoint is not None and metrics["checkpoint"] is None:
            metrics["checkpoint"] = str(checkpoint.path)
        log.close()
    finally:
        envs.close()
    return metrics


def _train(cfg: SFTConfig, policy: Any, heads: AuxHeads | None, modules: dict[str, torch.nn.Module],
           optimizer: torch.optim.Optimizer, train: list[Demo], held_out: dict[str, list[Demo]], envs: Envs,
           log: MetricsLogger, run_config: dict[str, Any], start: int,
           on_step: Callable[[int, dict[str, float]], None] | None) -> dict[str, Any]:
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    metrics: dict[str, Any] = {}
    path = None
    if start == 0:
        log.log(0, evaluate(policy, heads, held_out, envs, cfg), "eval")
    policy.train()
    for step in tqdm(range(start, cfg.steps), desc="sft", initial=start, total=cfg.steps, disable=not cfg.progress):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        loss, terms = sft_loss(policy, heads, [train[i] for i in batch_indices(len(train), step, cfg)], cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(parameters, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        done = step + 1
        terms.update(loss=float(loss.detach()), grad_norm=float(norm), lr=optimizer.param_groups[0]["lr"],
                     seconds=time.perf_counter() - started)
        if done % cfg.log_every == 0 or done == cfg.steps:
            log.log(done, terms)
        if done % cfg.eval_every == 0 or done == cfg.steps:
            metrics = evaluate(policy, heads, held_out, envs, cfg)
            log.log(done, metrics, "eval")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            path = save_checkpoint(cfg.out, done, modules, optimizer, run_config, keep=cfg.keep_checkpoints)
        if on_step is not None:
            on_step(done, terms)
    return {**metrics, "step": cfg.steps, "checkpoint": str(path) if path else None}


def cli(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Entry point for ``python -m training.sft`` and ``pixelis train sft``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return main(parse_config(SFTConfig, argv))


if __name__ == "__main__":
    cli()

