"""SFT: learning on an easy task, loss switches, exact resume, checkpoint safety, config, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.oracle import OracleAgent  # noqa: E402
from agents.policy import Context, Scored  # noqa: E402
from agents.policy_agent import PolicyAgent  # noqa: E402
from agents.rollout import rollout  # noqa: E402
from pixelis_env import PixelisEnv, Task, TaskList, Zoom, format_action, save_jsonl  # noqa: E402
from training.aux_heads import AuxHeads, box_iou, span_iou  # noqa: E402
from training.common import (  # noqa: E402
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_modules,
    parse_config,
    read_metrics,
    save_checkpoint,
)
from training.sft import (  # noqa: E402
    Envs,
    SFTConfig,
    build_policy,
    cli,
    collect,
    main,
    oracle_demonstrations,
    quantised,
    sft_loss,
    trajectory_demonstrations,
)

ENV_ID = "PixelisTest-Squares-v0"
TINY = {"image_size": 48, "channels": [16, 32, 32], "d_model": 64, "ffn": 128, "encoder_layers": 1,
        "decoder_layers": 2, "history": 0, "max_observation_tokens": 32}
"""A policy small enough to train in tests (about 0.24M parameters)."""


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: these models are tiny, and on 2 shared cores a second thread only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def square_task(index: int, size: int = 96) -> Task:
    """One red square (24-43 px) on grey; the oracle zooms on it, then answers its width."""
    rng = np.random.default_rng(index)
    image = np.full((size, size, 3), 90, np.uint8)
    side = int(rng.integers(24, 44))
    x, y = (int(v) for v in rng.integers(0, size - side, 2))
    image[y:y + side, x:x + side] = (220, 30, 30)
    box = (x / size, y / size, (x + side) / size, (y + side) / size)
    return Task(task_id=f"square-{index}", question="How many pixels wide is the red square?", answer=side,
                answer_type="number", media=image, metric="mra", suite="squares", oracle=[Zoom(box=box)])


def make_squares_env(size: int = 400, view_size: int = 96) -> PixelisEnv:
    return PixelisEnv(TaskList(make=square_task, size=size, name="squares"), view_size=view_size, max_steps=3)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=make_squares_env)


def config(tmp_path: Path, **overrides) -> SFTConfig:
    base = dict(env_ids=(ENV_ID,), env_kwargs={"size": 64}, train_tasks=16, eval_tasks=4, eval_episodes=0,
                policy_kwargs=TINY, steps=6, batch_size=8, eval_every=100, checkpoint_every=100, log_every=1,
                out=str(tmp_path / "run"), progress=False, threads=1)
    return SFTConfig(**{**base, **overrides})


# ------------------------------------------------------------------- learning
def test_sft_learns_the_easy_task(tmp_path: Path) -> None:
    """120 steps of 16 (25-40 s on 2 busy cores): op accuracy 0 -> 1, box IoU 0 -> 0.29 (refined 0.55)."""
    cfg = config(tmp_path, env_kwargs={"size": 300}, train_tasks=256, eval_tasks=32, steps=120, batch_size=16,
                 eval_every=120, eval_episodes=4, lr=5e-3, checkpoint_every=120, log_every=10)
    final = main(cfg)
    evals = read_metrics(cfg.out, "eval")
    before, after = evals[0], evals[-1]
    assert (before["step"], after["step"]) == (0, 120)
    assert before["eval/op_accuracy"] <= 0.5 and after["eval/op_accuracy"] == 1.0
    assert after["eval/parse_rate"] >= 0.8
    assert after["eval/box_iou"] >= 0.1 > before["eval/box_iou"]  # observed 0.29
    assert after["eval/box_iou_refined"] >= 0.3  # observed 0.55
    assert after["eval/score"] > before["eval/score"]
    losses = [r["loss"] for r in read_metrics(cfg.out, "train")]
    assert losses[-1] < 0.3 * losses[0]
    assert final["checkpoint"].endswith("step-00000120")
    modules = load_modules(final["checkpoint"])
    assert set(modules) == {"policy", "aux"}
    env = gym.make(ENV_ID, size=300)
    agent = PolicyAgent(modules["policy"], env, greedy=True, heads=modules["aux"], refine=True)
    [trajectory] = rollout(env, agent, episodes=1, seed=299)
    assert trajectory.steps[0].tool == "zoom" and trajectory.steps[0].error is None


def test_upweight_and_aux_weight_change_the_loss(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    envs = Envs(cfg)
    demos = oracle_demonstrations(envs.train(ENV_ID), ENV_ID, range(4), 0, 2)
    torch.manual_seed(0)
    policy, _ = build_policy(cfg)
    heads = AuxHeads(policy.hidden_size)
    plain, _ = sft_loss(policy, None, demos, config(tmp_path, upweight=1.0))
    upweighted, _ = sft_loss(policy, None, demos, config(tmp_path, upweight=4.0))
    with_aux, terms = sft_loss(policy, heads, demos, config(tmp_path, upweight=1.0, aux_weight=2.0))
    plain, upweighted, with_aux = (float(v.detach()) for v in (plain, upweighted, with_aux))
    assert plain != pytest.approx(upweighted, abs=1e-4)
    assert with_aux == pytest.approx(plain + 2.0 * terms["aux"], rel=1e-5)
    assert terms["aux"] > 0 and "aux_box" in terms


def test_oracle_coordinates_are_quantised_outward() -> None:
    action = quantised(Zoom(box=(0.1234, 0.5, 0.3456, 0.9999)), 2)
    assert action.box == (0.12, 0.5, 0.35, 1.0)
    assert quantised(Zoom(box=(0.1234, 0.5, 0.3456, 0.9)), 0).box == (0.0, 0.0, 1.0, 1.0)


# --------------------------------------------------------------------- resume
def _state(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(list_checkpoints(run)[-1])
    return {f"{m}.{k}": v for m, state in checkpoint.weights.items() for k, v in state.items()}


def test_resume_after_a_crash_gives_identical_weights(tmp_path: Path) -> None:
    straight = config(tmp_path / "a", checkpoint_every=2)
    main(straight)

    crashed = config(tmp_path / "b", checkpoint_every=2)

    def crash(step: int, _metrics: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt("simulated crash after step 3 (last checkpoint: step 2)")

    with pytest.raises(KeyboardInterrupt):
        main(crashed, on_step=crash)
    assert latest_checkpoint(crashed.out).step == 2
    main(crashed)

    expected, resumed = _state(Path(straight.out)), _state(Path(crashed.out))
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    steps = [r["step"] for r in read_metrics(crashed.out, "train")]
    assert steps == [1, 2, 3, 4, 5, 6]  # the crashed run's step 3 was dropped on resume

    other_model = config(tmp_path / "b", policy_kwargs={**TINY, "d_model": 32}, steps=8)
    with pytest.raises(CheckpointError, match="different model"):
        main(other_model)


# ---------------------------------------------------------------- checkpoints
def test_a_checkpoint_killed_mid_write_is_never_read(tmp_path: Path) -> None:
    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(module.parameters())
    good = save_checkpoint(tmp_path, 1, {"policy": module}, optimizer, {"note": "ok"})
    # a writer killed mid-way leaves only a temporary directory with a truncated file
    partial = good.parent / ".tmp-step-00000002-999"
    partial.mkdir()
    (partial / "weights.safetensors").write_bytes((good / "weights.safetensors").read_bytes()[:20])
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000001"]
    assert latest_checkpoint(tmp_path).step == 1

    # a final-named checkpoint whose file was cut short is rejected, not half-loaded
    broken = save_checkpoint(tmp_path, 3, {"policy": module}, optimizer, {})
    weights = broken / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(broken)
    os.remove(broken / "manifest.json")
    with pytest.raises(CheckpointError, match="not completely written"):
        load_checkpoint(broken)
    assert latest_checkpoint(tmp_path).step == 1  # falls back to the newest intact one


def test_checkpoints_keep_the_newest(tmp_path: Path) -> None:
    module = torch.nn.Linear(2, 2)
    for step in range(1, 5):
        save_checkpoint(tmp_path, step, {"m": module}, None, {}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003", "step-00000004"]


# ------------------------------------------------------------ demonstrations
def test_saved_trajectories_replay_to_the_oracle_demonstrations(tmp_path: Path) -> None:
    env = gym.make(ENV_ID, size=8)
    trajectories = rollout(env, OracleAgent(env), episodes=3, seed=0)
    path = save_jsonl(trajectories, tmp_path / "oracle.jsonl")
    demos = trajectory_demonstrations(str(path), Envs(config(tmp_path, env_kwargs={"size": 8})), min_score=0.5)
    tasks = {t.task_id: t for t in map(square_task, range(8))}
    assert [d.text for d in demos] == [format_action(a) for t in trajectories
                                       for a in tasks[t.task_id].oracle_trace()]
    assert [d.context.actions for d in demos[:2]] == [[], [demos[0].text]]
    assert demos[1].context.turns[-1].text.startswith("zoomed to")


def test_direct_answer_imitates_only_answers_from_the_first_view(tmp_path: Path) -> None:
    """The no-tool baseline: one demo per episode, the answer, seen from the reset observation."""
    cfg = config(tmp_path, train_tasks=5, eval_tasks=2)
    tools, _ = collect(cfg, Envs(cfg))
    direct, held_out = collect(config(tmp_path, train_tasks=5, eval_tasks=2, direct_answer=True), Envs(cfg))
    answers = [d for d in tools if d.text.startswith("<answer>")]
    assert len(direct) == len(answers) == 5 and len(tools) == 10
    assert [d.text for d in direct] == [d.text for d in answers]
    assert all(d.context.actions == [] and len(d.context.turns) == 1 for d in direct)
    assert [len(d.context.turns) for d in answers] == [2] * 5
    assert all(d.text.startswith("<answer>") for demos in held_out.values() for d in demos)


# ------------------------------------------------------------------ aux heads
def test_aux_heads_refine_boxes_and_compute_ious() -> None:
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    assert float(box_iou(a, a)) == pytest.approx(1.0)
    assert float(box_iou(a, torch.tensor([[0.25, 0.0, 0.75, 0.5]]))) == pytest.approx(1 / 3)
    assert float(span_iou(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0]))) == pytest.approx(1 / 3)
    torch.manual_seed(0)
    cfg = SFTConfig(env_ids=(ENV_ID,), policy_kwargs=TINY)
    policy, _ = build_policy(cfg)
    heads = AuxHeads(policy.hidden_size)
    context = Context(meta={"duration": 0.0})
    context.observe({"image": np.zeros((48, 48, 3), np.uint8), "text": "q"})
    text = format_action(Zoom(box=(0.1234, 0.2, 0.35, 0.9)))
    refined = heads.refine(text, policy.score([context], [text]), context)
    values = json.loads(refined[refined.index("["):refined.index("]") + 1])
    assert refined.startswith('<tool_call>{"name": "zoom"') and len(values) == 4
    assert all(round(v, 2) == v for v in values) and values[0] < values[2] and values[1] < values[3]
    assert heads.refine("<answer>3</answer>", policy.score([context], ["<answer>3</answer>"]),
                        context) == "<answer>3</answer>"


def test_aux_loss_and_refinement_cover_points_and_spans() -> None:
    torch.manual_seed(0)
    heads = AuxHeads(hidden_size=8, width=16)
    scored = Scored(logprobs=[torch.zeros(3)], roles=[[0, 0, 0]], hidden=[torch.randn(3, 8, requires_grad=True)],
                    grounded=[[("point", 0, [0.2, 0.3]), ("span", 1, [2.0, 4.0])]])
    video = Context(meta={"duration": 8.0})
    loss, terms = heads.loss(scored, [video])
    loss.backward()
    assert set(terms) == {"aux_point", "aux_span"} and scored.hidden[0].grad.abs().sum() > 0
    _, terms = heads.loss(scored, [Context(meta={"duration": 0.0})])
    assert set(terms) == {"aux_point"}  # a span needs the duration to be normalised
    text = '<tool_call>{"name": "select_frames", "arguments": {"span": [2.0, 4.0]}}</tool_call>'
    span = Scored(logprobs=[torch.zeros(3)], roles=[[0, 0, 0]], hidden=[torch.randn(3, 8)],
                  grounded=[[("span", 1, [2.0, 4.0])]])
    refined = heads.refine(text, span, video)
    start, end = json.loads(refined[refined.index("["):refined.index("]") + 1])
    assert 0 <= start < end <= 8.0 and round(start, 2) == start
    assert heads.refine(text, span, Context(meta={})) == text


# --------------------------------------------------------------------- config
def test_config_from_json_file_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "sft.json"
    path.write_text(json.dumps({"env_ids": ["A-v0", "B-v0"], "steps": 50, "upweight": 3.0,
                                "policy_kwargs": {"d_model": 32}}))
    cfg = parse_config(SFTConfig, ["--config", str(path), "--steps", "7", "--no-resume", "--env-kwargs",
                                   '{"size": 9}'])
    assert cfg.env_ids == ("A-v0", "B-v0") and cfg.steps == 7 and cfg.upweight == 3.0
    assert cfg.resume is False and cfg.env_kwargs == {"size": 9} and cfg.policy_kwargs == {"d_model": 32}
    assert parse_config(SFTConfig, ["--eval-env-kwargs", "none"]).eval_env_kwargs is None
    path.write_text(json.dumps({"stepz": 5}))
    with pytest.raises(ValueError, match="Did you mean `steps`"):
        parse_config(SFTConfig, ["--config", str(path)])
    with pytest.raises(ValueError, match="eval_episodes"):
        SFTConfig(eval_tasks=2, eval_episodes=3)
    with pytest.raises(ValueError, match="env_ids"):
        SFTConfig(env_ids=())


def test_cli_smoke_run(tmp_path: Path) -> None:
    """What ``python -m training.sft ...`` runs (in-process: a subprocess would pay the imports again)."""
    out = tmp_path / "cli"
    cli(["--env-ids", f"tests.test_sft:{ENV_ID}", "--env-kwargs", '{"size": 12}', "--train-tasks", "4",
         "--eval-tasks", "2", "--eval-episodes", "1", "--steps", "2", "--batch-size", "4", "--policy-kwargs",
         json.dumps(TINY), "--out", str(out), "--no-progress", "--threads", "1"])
    assert [r["step"] for r in read_metrics(out, "eval")] == [0, 2]
    assert (out / "checkpoints" / "step-00000002" / "manifest.json").is_file()
