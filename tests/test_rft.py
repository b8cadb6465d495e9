"""RFT: learning on an easy task, every reward term logged, ablation switches, exact resume, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.compact import CompactConfig, CompactPolicy, GrammarTokenizer  # noqa: E402
from agents.policy import start_context  # noqa: E402
from pixelis_env import PixelisEnv, Task, TaskList, Zoom  # noqa: E402
from training.common import (  # noqa: E402
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    module_spec,
    parse_config,
    read_metrics,
    save_checkpoint,
)
from training.grpo import clipped_token_loss, group_advantages, k3  # noqa: E402
from training.rft import RFTConfig, main  # noqa: E402

ENV_ID = "PixelisTest-RedSquares-v0"
TINY = {"image_size": 48, "channels": [16, 32, 32], "d_model": 64, "ffn": 128, "encoder_layers": 1,
        "decoder_layers": 2, "history": 0, "max_observation_tokens": 32}
"""A policy small enough to train in tests (about 0.21M parameters)."""
COLOURS = ("red", "green", "blue")


def red_square_task(index: int, size: int = 64, answer: str = "red") -> Task:
    """One red square (20-43 px) on grey: "What colour is the square?" -> ``answer``."""
    rng = np.random.default_rng(index)
    image = np.full((size, size, 3), 90, np.uint8)
    side = int(rng.integers(20, 44))
    x, y = (int(v) for v in rng.integers(0, size - side, 2))
    image[y:y + side, x:x + side] = (220, 30, 30)
    box = (x / size, y / size, (x + side) / size, (y + side) / size)
    return Task(task_id=f"red-{index}", question="What colour is the square?", answer=answer, answer_type="text",
                media=image, metric="exact", suite="red-squares", oracle=[Zoom(box=box)])


def make_red_squares_env(size: int = 200, view_size: int = 64) -> PixelisEnv:
    return PixelisEnv(TaskList(make=red_square_task, size=size, name="red-squares"), view_size=view_size,
                      max_steps=3)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=make_red_squares_env)


def format_warm_start(path: Path, steps: int = 40) -> Path:
    """An SFT-format checkpoint of a policy that answers ``<answer>colour</answer>`` with a colour
    drawn at random, whatever the image: it knows the format, not the task."""
    torch.manual_seed(0)
    policy = CompactPolicy(CompactConfig(**TINY), GrammarTokenizer())
    optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    env, rng = make_red_squares_env(), np.random.default_rng(0)
    for _ in range(steps):
        contexts, texts = [], []
        for _ in range(16):
            contexts.append(start_context(*env.reset(options={"task_index": int(rng.integers(200))}), env))
            texts.append(f"<answer>{COLOURS[int(rng.integers(3))]}</answer>")
        loss = -torch.cat(policy.score(contexts, texts).logprobs).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    spec = module_spec("agents.compact:from_spec", **policy.spec())
    return save_checkpoint(path, steps, {"policy": policy}, None, {"modules": {"policy": spec}})


@pytest.fixture(scope="session")
def warm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return format_warm_start(tmp_path_factory.mktemp("warm"))


def config(tmp_path: Path, init: Path | None, **overrides) -> RFTConfig:
    base = dict(env_id=ENV_ID, train_tasks=160, eval_tasks=40, init=str(init) if init else None,
                policy_kwargs=TINY, iterations=3, tasks_per_iteration=2, group_size=4, lr=1e-3,
                eval_every=100, eval_episodes=0, checkpoint_every=100, out=str(tmp_path / "run"), progress=False,
                threads=1)
    return RFTConfig(**{**base, **overrides})


# ------------------------------------------------------------------- learning
def test_rft_raises_the_task_reward_and_logs_every_term(tmp_path: Path, warm_checkpoint: Path) -> None:
    """8 iterations of 4 tasks x 6 episodes (about 10 s): sampled score ~0.2 -> ~0.8, greedy 0 -> 1."""
    cfg = config(tmp_path, warm_checkpoint, iterations=8, tasks_per_iteration=4, group_size=6, eval_every=4,
                 eval_episodes=12)
    final = main(cfg)
    train = read_metrics(cfg.out, "train")
    evals = read_metrics(cfg.out, "eval")
    early = np.mean([r["terms/task"] for r in train[:2]])
    late = np.mean([r["terms/task"] for r in train[-2:]])
    assert late >= early + 0.3, (early, late)  # observed 0.21 -> 0.81
    assert [r["step"] for r in evals] == [0, 4, 8]
    assert evals[-1]["eval/score"] >= evals[0]["eval/score"] + 0.5  # observed 0.0 -> 1.0
    for record in train:
        assert {"terms/task", "terms/invalid", "terms/curiosity", "terms/coherence", "terms/efficiency", "return",
                "score", "kl", "toolchain", "invalid_rate", "clip_fraction"} <= record.keys()
        terms = sum(v for k, v in record.items() if k.startswith("terms/"))
        assert record["return"] == pytest.approx(terms, abs=1e-9)  # the return is the sum of every term
        assert record["kl"] >= -1e-6 and 0.0 <= record["clip_fraction"] <= 1.0
    assert train[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # policy == reference before any update
    assert max(r["kl"] for r in train) > 0.01
    assert final["checkpoint"].endswith("step-00000008")


def test_zero_coefficients_switch_the_terms_off(tmp_path: Path, warm_checkpoint: Path) -> None:
    cfg = config(tmp_path, warm_checkpoint, iterations=1, curiosity_coef=0.0, coherence_coef=0.0,
                 efficiency_coef=0.0, kl_coef=0.0)
    main(cfg)
    [record] = read_metrics(cfg.out, "train")
    assert record["terms/curiosity"] == record["terms/coherence"] == record["terms/efficiency"] == 0.0
    assert record["return"] == pytest.approx(record["terms/task"] + record["terms/invalid"])


def test_grpo_pieces_by_hand() -> None:
    assert group_advantages([1.0, 0.0, 0.0, 1.0], eps=0.0).tolist() == [1.0, -1.0, -1.0, 1.0]
    assert group_advantages([0.5, 0.5]).tolist() == [0.0, 0.0]
    p = torch.log(torch.tensor([0.5, 0.25]))
    assert k3(p, p).tolist() == [0.0, 0.0]
    q = torch.log(torch.tensor([0.25, 0.5]))  # exp(q - p) - (q - p) - 1
    assert k3(p, q).tolist() == pytest.approx([0.5 + np.log(2) - 1, 2 - np.log(2) - 1])
    old = torch.zeros(3)
    new = torch.log(torch.tensor([1.5, 1.0, 0.5]))  # ratios 1.5, 1, 0.5
    loss, active = clipped_token_loss(new, old, 1.0, 0.2)
    assert loss.tolist() == pytest.approx([-1.2, -1.0, -0.5]) and active.tolist() == [True, False, False]
    loss, active = clipped_token_loss(new, old, -1.0, 0.2)
    assert loss.tolist() == pytest.approx([1.5, 1.0, 0.8]) and active.tolist() == [False, False, True]


# --------------------------------------------------------------------- resume
def _weights(run: str) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(list_checkpoints(run)[-1])
    return {f"{m}.{k}": v for m, state in checkpoint.weights.items() for k, v in state.items()}


def test_resume_after_a_crash_gives_identical_weights(tmp_path: Path, warm_checkpoint: Path) -> None:
    """Curiosity is on, so its learned state must come back too for the rewards to match."""
    straight = config(tmp_path / "a", warm_checkpoint, iterations=4, checkpoint_every=2, curiosity_coef=0.5,
                      group_size=3)
    main(straight)
    crashed = config(tmp_path / "b", warm_checkpoint, iterations=4, checkpoint_every=2, curiosity_coef=0.5,
                     group_size=3)

    def crash(step: int, _metrics: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt("simulated crash after iteration 3 (last checkpoint: 2)")

    with pytest.raises(KeyboardInterrupt):
        main(crashed, on_iteration=crash)
    assert latest_checkpoint(crashed.out).step == 2
    main(crashed)
    expected, resumed = _weights(straight.out), _weights(crashed.out)
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    assert [r["step"] for r in read_metrics(crashed.out, "train")] == [1, 2, 3, 4]  # the crashed 3 was dropped
    returns = [r["return"] for r in read_metrics(straight.out, "train")]
    assert [r["return"] for r in read_metrics(crashed.out, "train")] == returns


# --------------------------------------------------------------------- config
def test_config_checks_and_json_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "rft.json"
    path.write_text(json.dumps({"env_id": ENV_ID, "iterations": 9, "curiosity_coef": 0.0}))
    cfg = parse_config(RFTConfig, ["--config", str(path), "--iterations", "3", "--kl-coef", "0.1"])
    assert (cfg.iterations, cfg.curiosity_coef, cfg.kl_coef) == (3, 0.0, 0.1)
    with pytest.raises(ValueError, match="group_size"):
        RFTConfig(group_size=1)
    with pytest.raises(ValueError, match="coherence_coef"):
        RFTConfig(coherence_coef=-1.0)
    with pytest.raises(ValueError, match="eval_episodes"):
        RFTConfig(eval_tasks=2, eval_episodes=3)


def test_cli_continues_an_sft_checkpoint(tmp_path: Path) -> None:
    """SFT -> RFT: the RFT CLI trains the policy of a real SFT run and carries its aux heads."""
    from training.sft import SFTConfig
    from training.sft import main as sft_main

    sft = sft_main(SFTConfig(env_ids=(ENV_ID,), env_kwargs={"size": 12}, train_tasks=4, eval_tasks=2,
                             eval_episodes=0, steps=2, batch_size=4, policy_kwargs=TINY, out=str(tmp_path / "sft"),
                             progress=False, threads=1))
    out = tmp_path / "rft"
    command = [sys.executable, "-m", "training.rft", "--env-id", f"tests.test_rft:{ENV_ID}", "--env-kwargs",
               '{"size": 12}', "--init", sft["checkpoint"], "--train-tasks", "8", "--eval-tasks", "2",
               "--eval-episodes", "1", "--iterations", "2", "--tasks-per-iteration", "1", "--group-size", "2",
               "--out", str(out), "--no-progress", "--threads", "1"]
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert [r["step"] for r in read_metrics(out, "train")] == [1, 2]
    checkpoint = load_checkpoint(out / "checkpoints" / "step-00000002")
    assert set(checkpoint.weights) == {"policy", "aux"}
    assert set(checkpoint.config["modules"]) == {"policy", "aux"}
