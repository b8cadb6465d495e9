"""The miniature reproduction of the paper's comparison: ``pixelis reproduce``.

Every arm is a plain consumer of the same envs, trained from scratch on the training
splits of the six embedded suites (one policy for all of them, through
``Pixelis-Mix-v0``) and evaluated greedily on each suite's held-out test split:

========================  ==================================================================
``baseline``              SFT on the oracle's answers only, from the first view: no tools
``sft``                   + tool SFT: masked imitation of oracle tool traces, operation and
                          argument tokens upweighted, auxiliary box/point heads
``rft``                   + Curiosity-Coherence RFT (GRPO, KL anchor to ``sft``)
``ttrl``                  + Pixel TTRL on the unlabeled test stream (from ``rft``)
``sft-no-upweight`` ...   ablations: one switch off each (see :data:`ARMS`)
========================  ==================================================================

Each (seed, arm) is one job whose folder holds its training run (``train/``:
metrics.jsonl, checkpoints) and its held-out episodes (``eval.jsonl``, viewable with
``pixelis view``) and summary (``eval.json``). A job whose ``eval.json`` exists is not
run again, so an interrupted reproduction continues where it stopped (the trainers
resume from their checkpoints too). A failed job is recorded with its error, its
dependants are skipped, and the others go on. :mod:`training.reproduce_report` then
writes ``results.md``, ``results.json`` and ``plots/``.

Jobs run on ``workers`` processes (one torch thread each), so results do not depend on
how many there are.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import json
import logging
import multiprocessing
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_env.suites.mixture import BENCHMARK_IDS

logger = logging.getLogger(__name__)

MIX_ID = "Pixelis-Mix-v0"
EVAL_SEED = 2_000_003
"""Reset seeds of held-out episodes: ``EVAL_SEED + task index``, the same for every arm."""


@dataclass(frozen=True)
class Scale:
    """How big each phase is; :data:`FORMS` names the presets."""

    train_tasks: int
    """Training tasks per suite (SFT demonstrations, RFT's task pool)."""
    test_tasks: int
    """Held-out test tasks per suite (evaluation and the TTRL stream)."""
    sft_steps: int
    sft_batch_size: int
    rft_iterations: int
    rft_tasks_per_iteration: int
    rft_group_size: int
    ttrl_samples: int
    model: dict[str, Any] = field(default_factory=dict)
    """CompactConfig fields of the policy (ignored with ``--model``)."""
    suite_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-suite generator options (train and test alike)."""


QUICK_SUITES = {"Pixelis-Track-v0": {"difficulty": 0}, "Pixelis-Temporal-v0": {"difficulty": 0}}
"""The quick form's cheaper videos: fewer frames to track and scan (the full form uses the defaults)."""
FORMS: dict[str, Scale] = {
    "quick": Scale(train_tasks=32, test_tasks=12, sft_steps=500, sft_batch_size=16, rft_iterations=8,
                   rft_tasks_per_iteration=6, rft_group_size=4, ttrl_samples=4,
                   model={"d_model": 96, "ffn": 256, "decoder_layers": 2}, suite_kwargs=QUICK_SUITES),
    "full": Scale(train_tasks=256, test_tasks=64, sft_steps=3000, sft_batch_size=32, rft_iterations=150,
                  rft_tasks_per_iteration=12, rft_group_size=8, ttrl_samples=8),
}


@dataclass(frozen=True)
class Arm:
    """One row of the comparison: a phase run with some switches, on top of a parent arm."""

    name: str
    phase: str
    """``sft``, ``rft`` or ``ttrl``."""
    label: str
    parent: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    ablation: bool = False


ARMS: tuple[Arm, ...] = (
    Arm("baseline", "sft", "baseline: answer directly, no tools", overrides={"direct_answer": True}),
    Arm("sft", "sft", "+ tool SFT"),
    Arm("rft", "rft", "+ Curiosity-Coherence RFT", parent="sft"),
    Arm("ttrl", "ttrl", "+ Pixel TTRL", parent="rft"),
    Arm("sft-no-upweight", "sft", "SFT without token upweighting", overrides={"upweight": 1.0}, ablation=True),
    Arm("sft-no-aux", "sft", "SFT without auxiliary heads", overrides={"aux_weight": 0.0}, ablation=True),
    Arm("rft-no-curiosity", "rft", "RFT without curiosity", "sft", {"curiosity_coef": 0.0}, True),
    Arm("rft-no-coherence", "rft", "RFT without coherence", "sft", {"coherence_coef": 0.0}, True),
    Arm("rft-no-efficiency", "rft", "RFT without efficiency", "sft", {"efficiency_coef": 0.0}, True),
    Arm("ttrl-answer-vote", "ttrl", "TTRL with answer voting", "rft", {"vote": "answer"}, True),
)
ARM_BY_NAME = {arm.name: arm for arm in ARMS}


@dataclass
class ReproduceConfig:
    """Train and evaluate baseline, +SFT, +RFT, +TTRL and the ablations on the six suites over several seeds."""

    out: str = "runs/reproduce"
    """Run folder (results.md, results.json, plots/, seed-*/ARM/)."""
    form: str = "quick"
    """``quick`` (about 30 minutes on 2 CPU cores) or ``full`` (GPU-machine scale); see FORMS."""
    seeds: int = 3
    """Training seeds 0..seeds-1 (data and test tasks are the same for all)."""
    ablations: bool = True
    """Also run the ablation arms."""
    workers: int = 2
    """Processes running jobs in parallel (1 runs them in this process)."""
    suites: tuple[str, ...] = BENCHMARK_IDS
    """Env ids of the suites to train and evaluate on (default: all six)."""
    model: str | None = None
    """A local Hugging Face VLM checkpoint directory to train instead of the compact policy."""
    device: str = "cpu"
    """torch device of the policy (``cuda`` with ``--model`` on a GPU machine)."""
    dtype: str = "float32"
    """Parameter dtype (``bfloat16`` for a real VLM on a GPU)."""
    train_tasks: int | None = None
    """Override the form's training tasks per suite."""
    test_tasks: int | None = None
    """Override the form's test tasks per suite."""
    sft_steps: int | None = None
    """Override the form's SFT steps."""
    rft_iterations: int | None = None
    """Override the form's RFT iterations."""
    progress: bool = True
    """Print a line per finished job."""

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {sorted(FORMS)}, got {self.form!r}")
        if self.seeds < 1 or self.workers < 1:
            raise ValueError("seeds and workers must be >= 1")
        self.suites = tuple(self.suites)
        if not self.suites or len(set(self.suites)) != len(self.suites) or set(self.suites) - set(BENCHMARK_IDS):
            raise ValueError(f"suites must be distinct ids among {list(BENCHMARK_IDS)}, got {list(self.suites)}")
        if self.model is None and self.device != "cpu":
            raise ValueError("the compact policy trains on CPU (its tools are CPU-bound too); --device applies to "
                             "--model, or give the full form more --workers")
        if self.model is not None and not Path(self.model).is_dir():
            raise ValueError(f"--model {self.model!r} is not a directory: give a local checkpoint folder "
                             "(config.json, weights, processor files); nothing is downloaded")
        for name in ("train_tasks", "test_tasks", "sft_steps", "rft_iterations"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")

    def scale(self) -> Scale:
        overrides = {k: getattr(self, k) for k in ("train_tasks", "test_tasks", "sft_steps", "rft_iterations")
                     if getattr(self, k) is not None}
        return dataclasses.replace(FORMS[self.form], **overrides)

    def arms(self) -> list[Arm]:
        return [arm for arm in ARMS if self.ablations or not arm.ablation]


# ----------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Job:
    """One (seed, arm): everything a worker needs, as plain data."""

    seed: int
    arm: str
    folder: str
    parent_folder: str | None
    scale: Scale
    suites: tuple[str, ...]
    model: str | None
    device: str
    dtype: str

    @property
    def key(self) -> str:
        return f"seed-{self.seed}/{self.arm}"


def plan(cfg: ReproduceConfig) -> list[Job]:
    """Every job, parents before children (the order a single worker runs them in)."""
    out, scale, jobs = Path(cfg.out), cfg.scale(), []
    for seed in range(cfg.seeds):
        for arm in sorted(cfg.arms(), key=lambda a: ("sft", "rft", "ttrl").index(a.phase)):
            parent = str(out / f"seed-{seed}" / arm.parent) if arm.parent else None
            jobs.append(Job(seed, arm.name, str(out / f"seed-{seed}" / arm.name), parent, scale, cfg.suites,
                            cfg.model, cfg.device, cfg.dtype))
    return jobs


def env_kwargs(job: Job, split: str) -> dict[str, Any]:
    """The mixture's kwargs for one split."""
    scale = job.scale
    return {"env_ids": list(job.suites), "split": split,
            "num_tasks": scale.train_tasks if split == "train" else scale.test_tasks,
            "suite_kwargs": {k: v for k, v in scale.suite_kwargs.items() if k in job.suites}}


def policy_source(job: Job) -> tuple[str, dict[str, Any]]:
    """The policy factory and its kwargs: the compact policy, or the local VLM checkpoint."""
    if job.model is None:
        return "compact", dict(job.scale.model)
    kwargs: dict[str, Any] = {"path": job.model, "dtype": job.dtype}
    if job.device != "cpu":
        kwargs["device_map"] = job.device
    return "agents.vlm:pretrained_policy", kwargs


def phase_config(job: Job) -> Any:
    """The SFT, RFT or TTRL config of a job (its ``out`` is ``<folder>/train``)."""
    arm, scale = ARM_BY_NAME[job.arm], job.scale
    common = {"seed": job.seed, "out": str(Path(job.folder) / "train"), "progress": False, "threads": 1}
    policy, policy_kwargs = policy_source(job)
    if arm.phase == "sft":
        from training.sft import SFTConfig

        return SFTConfig(env_ids=(MIX_ID,), env_kwargs=env_kwargs(job, "train"),
                         train_tasks=scale.train_tasks * len(job.suites), eval_tasks=0,
                         eval_env_kwargs=env_kwargs(job, "test"), eval_episodes=0, steps=scale.sft_steps,
                         batch_size=scale.sft_batch_size, eval_every=scale.sft_steps, log_every=10,
                         checkpoint_every=max(scale.sft_steps // 4, 1), keep_checkpoints=1, policy=policy,
                         policy_kwargs=policy_kwargs, **common, **arm.overrides)
    init = str(_final_checkpoint(Path(job.parent_folder or "")))
    if arm.phase == "rft":
        from training.rft import RFTConfig

        return RFTConfig(env_id=MIX_ID, env_kwargs=env_kwargs(job, "train"),
                         train_tasks=scale.train_tasks * len(job.suites), eval_tasks=0,
                         eval_env_kwargs=env_kwargs(job, "test"), eval_episodes=0, init=init,
                         iterations=scale.rft_iterations, tasks_per_iteration=scale.rft_tasks_per_iteration,
                         group_size=scale.rft_group_size, checkpoint_every=max(scale.rft_iterations // 3, 1),
                         keep_checkpoints=1, device=job.device, dtype=_train_dtype(job), **common, **arm.overrides)
    from training.ttrl import TTRLConfig

    return TTRLConfig(env_id=MIX_ID, env_kwargs=env_kwargs(job, "test"),
                      tasks=scale.test_tasks * len(job.suites), init=init, samples=scale.ttrl_samples,
                      checkpoint_every=scale.test_tasks, keep_checkpoints=1,
                      device=job.device, dtype=_train_dtype(job), **common, **arm.overrides)


def _train_dtype(job: Job) -> str:
    """The compact policy trains in float32; a VLM in the asked dtype."""
    return job.dtype if job.model is not None else "float32"


def _final_checkpoint(folder: Path) -> Path:
    from training.common import latest_checkpoint

    checkpoint = latest_checkpoint(folder / "train")
    if checkpoint is None:
        raise FileNotFoundError(f"{folder / 'train'} has no checkpoint: its job did not finish")
    return checkpoint.path


# ----------------------------------------------------------------------- jobs
_DEMONSTRATIONS: dict[str, Any] = {}
"""Oracle demonstrations per env setting, shared by the SFT jobs a worker runs."""


def shared_demonstrations(cfg: Any, envs: Any) -> Any:
    """:func:`training.sft.collect` once per env setting (seed-independent), as every SFT arm sees it."""
    from training import sft

    key = json.dumps([cfg.env_ids, cfg.env_kwargs, cfg.train_tasks, cfg.eval_tasks, cfg.eval_env_kwargs,
                      cfg.coord_decimals, cfg.trajectories, cfg.min_trajectory_score], sort_keys=True)
    if key not in _DEMONSTRATIONS:
        _DEMONSTRATIONS[key] = sft.collect(dataclasses.replace(cfg, direct_answer=False, seed=0), envs)
    train, held_out = _DEMONSTRATIONS[key]
    if cfg.direct_answer:
        return sft.answer_only(train), {k: sft.answer_only(v) for k, v in held_out.items()}
    return train, held_out


def run_job(job: Job) -> dict[str, Any]:
    """Train the job's phase (resuming if it was interrupted), then evaluate it; its summary."""
    import torch

    torch.set_num_threads(1)
    folder = Path(job.folder)
    done = folder / "eval.json"
    if done.exists():
        return json.loads(done.read_text())
    started = time.perf_counter()
    cfg = phase_config(job)
    trained = _train(ARM_BY_NAME[job.arm].phase, cfg)
    train_seconds = time.perf_counter() - started
    summary = evaluate(job, _final_checkpoint(folder))
    summary.update(job=job.key, arm=job.arm, seed=job.seed, train_seconds=train_seconds,
                   eval_seconds=time.perf_counter() - started - train_seconds,
                   training={k: v for k, v in trained.items() if isinstance(v, (int, float, str)) or v is None})
    folder.mkdir(parents=True, exist_ok=True)
    partial = done.with_suffix(".json.tmp")
    partial.write_text(json.dumps(summary, indent=1))
    partial.replace(done)
    return summary


def _train(phase: str, cfg: Any) -> dict[str, Any]:
    if phase == "sft":
        from training import sft

        return sft.main(cfg, demonstrations=shared_demonstrations)
    if phase == "rft":
        from training import rft

        return rft.main(cfg)
    from training import ttrl

    return ttrl.main(cfg)


def evaluate(job: Job, checkpoint: Path) -> dict[str, Any]:
    """Greedy episodes of the checkpoint's policy on every suite's test tasks; per-suite summaries.

    Besides :func:`~pixelis_env.evaluation.summarize`'s figures: ``format_errors``, the
    share of answers not in the form their question asks for
    (:func:`~pixelis_env.metrics.answer_fits`), and ``oracle_first_tool``, the share of
    episodes whose first action calls the tool the oracle's trace starts with (``answer``
    for questions the oracle answers at once).

    Each suite is evaluated through its own env id (its own episode limit), on task
    indices 0..test_tasks-1, with the same reset seeds for every arm.
    """
    import gymnasium as gym

    from pixelis_env.evaluation import summarize
    from pixelis_env.metrics import answer_fits
    from pixelis_env.trajectory import save_jsonl
    from training.grpo import PinnedTask, Sampling, load_policy, place, play_group

    policy = place(load_policy(str(checkpoint)).policy, job.device, _train_dtype(job))
    sampling = Sampling(max_new_tokens=64, greedy=True)
    trajectories, misformed, first_tool = [], {}, {}
    for env_id in job.suites:
        env = PinnedTask(gym.make(env_id, split="test", num_tasks=job.scale.test_tasks,
                                  **job.scale.suite_kwargs.get(env_id, {})))
        try:
            for index in range(job.scale.test_tasks):
                (episode,) = play_group(env, policy, index, 1, EVAL_SEED + index, sampling)
                trajectory, task = episode.trajectory, env.unwrapped.tasks[index]
                trajectories.append(trajectory)
                oracle_first = task.oracle_trace()[0].name
                first_tool.setdefault(trajectory.suite, []).append(
                    bool(trajectory.steps) and trajectory.steps[0].tool == oracle_first)
                if trajectory.answer is not None:
                    misformed.setdefault(trajectory.suite, []).append(not answer_fits(task.answer_type,
                                                                                      trajectory.answer))
        finally:
            env.close()
    save_jsonl(trajectories, Path(job.folder) / "eval.jsonl")
    suites = {name: {k: v for k, v in s.items() if k != "seconds_per_episode"}
              for name, s in summarize(trajectories).items()}
    for name, summary in suites.items():
        summary["format_errors"] = float(np.mean(misformed[name])) if misformed.get(name) else 0.0
        summary["oracle_first_tool"] = float(np.mean(first_tool[name]))
    return {"suites": suites, "toolchains": _toolchains(trajectories), "episodes": len(trajectories)}


def _toolchains(trajectories: Sequence[Any]) -> dict[str, list[int]]:
    lengths: dict[str, list[int]] = {}
    for t in trajectories:
        lengths.setdefault(t.suite, []).append(len(t.toolchain))
    return lengths


# ----------------------------------------------------------------------- run
def run(cfg: ReproduceConfig, report: bool = True) -> dict[str, Any]:
    """Run every job not yet done, then write the report; the per-job outcomes."""
    jobs = plan(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {**dataclasses.asdict(cfg), "suites": list(cfg.suites), "scale": dataclasses.asdict(cfg.scale())}
    check_same_setting(out / "config.json", record)
    (out / "config.json").write_text(json.dumps(record, indent=1))
    started = time.perf_counter()
    outcomes = schedule(jobs, cfg.workers, _announcer(cfg, len(jobs), started))
    (out / "jobs.json").write_text(json.dumps(outcomes, indent=1))
    if report:
        from training.reproduce_report import write_report

        write_report(out, cfg.arms(), elapsed=time.perf_counter() - started)
    return outcomes


SETTING = ("scale", "suites", "model", "device", "dtype")
"""What a finished job's results depend on besides its seed and arm: a run folder keeps one setting."""


def check_same_setting(path: Path, record: dict[str, Any]) -> None:
    """Refuse to mix results of different settings in one folder (seeds and arms may be added)."""
    if not path.exists():
        return
    earlier = json.loads(path.read_text())
    changed = [key for key in SETTING if json.loads(json.dumps(record[key])) != earlier.get(key)]
    if changed:
        raise ValueError(f"{path.parent} holds a run with other {', '.join(changed)}; its finished jobs would be "
                         "reused as they are: choose another --out")


def _announcer(cfg: ReproduceConfig, total: int, started: float) -> Callable[[str, dict[str, Any]], None]:
    finished = []

    def announce(key: str, outcome: dict[str, Any]) -> None:
        finished.append(key)
        if cfg.progress:
            state = outcome["status"] if outcome["status"] != "failed" else f"FAILED: {outcome['error']}"
            print(f"[{time.perf_counter() - started:7.0f} s] {len(finished)}/{total} {key}: {state}", flush=True)
    return announce


def schedule(jobs: Sequence[Job], workers: int, announce: Callable[[str, dict[str, Any]], None]
             ) -> dict[str, dict[str, Any]]:
    """Run jobs once their parent is done; a failed job's dependants are skipped. Outcome per job key."""
    by_folder = {job.folder: job for job in jobs}
    outcomes: dict[str, dict[str, Any]] = {}
    pending = list(jobs)

    def ready(job: Job) -> bool:
        parent = by_folder.get(job.parent_folder or "")
        return parent is None or outcomes.get(parent.key, {}).get("status") == "done"

    def blocked(job: Job) -> bool:
        parent = by_folder.get(job.parent_folder or "")
        return parent is not None and outcomes.get(parent.key, {}).get("status") in ("failed", "skipped")

    def settle(job: Job, outcome: dict[str, Any]) -> None:
        outcomes[job.key] = outcome
        announce(job.key, outcome)

    def skip_blocked() -> None:
        while any(blocked(j) for j in pending):  # until no grandchild of a failed job is left
            for job in [j for j in pending if blocked(j)]:
                pending.remove(job)
                settle(job, {"status": "skipped", "error": f"its parent {job.parent_folder} did not finish"})

    if workers == 1:
        while pending:
            job = pending.pop(0)
            settle(job, _outcome(job))
            skip_blocked()
        return outcomes
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        running: dict[futures.Future, Job] = {}
        while pending or running:
            for job in [j for j in pending if ready(j)][:max(workers - len(running), 0)]:
                pending.remove(job)
                running[pool.submit(_outcome, job)] = job
            finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker process died (e.g. killed for memory)
                    outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                settle(job, outcome)
            skip_blocked()
    return outcomes


def _outcome(job: Job) -> dict[str, Any]:
    """Run a job; a failure is returned as data (with its traceback) so the other jobs go on."""
    try:
        summary = run_job(job)
    except Exception as exc:
        logger.exception("job %s failed", job.key)
        Path(job.folder).mkdir(parents=True, exist_ok=True)
        (Path(job.folder) / "error.txt").write_text(traceback.format_exc())
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}
    (Path(job.folder) / "error.txt").unlink(missing_ok=True)  # from an earlier, failed attempt
    return {"status": "done", "seconds": summary.get("train_seconds", 0.0) + summary.get("eval_seconds", 0.0)}


def cli(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``pixelis reproduce`` and ``python -m training.reproduce``."""
    from training.common import parse_config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse_config(ReproduceConfig, argv)
    outcomes = run(cfg)
    print((Path(cfg.out) / "results.md").read_text())
    failed = [key for key, o in outcomes.items() if o["status"] != "done"]
    if failed:
        print(f"{len(failed)} job(s) did not finish: {', '.join(failed)} (see their error.txt)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(cli())
