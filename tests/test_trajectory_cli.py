"""Trajectory records round-trip through JSONL; the CLI runs agents and prints a table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agents import OracleAgent, RandomAgent
from agents.rollout import rollout, summarize
from pixelis_env import DataError, load_jsonl, save_jsonl
from pixelis_env.cli import main


def test_rollout_records_every_step(image_env):
    trajectories = rollout(image_env, OracleAgent(image_env), episodes=3, seed=0)
    assert [t.score for t in trajectories] == [1.0, 1.0, 1.0]
    steps = trajectories[0].steps
    assert [s.tool for s in steps] == ["zoom", "answer"]
    assert steps[0].arguments["box"] and steps[0].tool_result["pixels"] and steps[0].seconds >= 0
    assert trajectories[0].toolchain == ["zoom"]


def test_rollout_is_deterministic(image_env):
    def run():
        return [t.to_json() for t in rollout(image_env, RandomAgent(image_env, seed=4), episodes=5, seed=9)]

    strip = lambda ts: [{**t, "steps": [{**s, "seconds": 0} for s in t["steps"]]} for t in ts]  # noqa: E731
    assert strip(run()) == strip(run())


def test_jsonl_round_trip(tmp_path, image_env):
    trajectories = rollout(image_env, RandomAgent(image_env, seed=0), episodes=4, seed=0)
    path = save_jsonl(trajectories, tmp_path / "runs" / "t.jsonl")
    loaded = list(load_jsonl(path))
    assert [t.to_json() for t in loaded] == [json.loads(json.dumps(t.to_json())) for t in trajectories]
    save_jsonl(trajectories[:1], path, append=True)
    assert len(list(load_jsonl(path))) == 5


def test_jsonl_bad_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": "x"}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl:"):
        list(load_jsonl(path))


def test_random_agent_scores_far_below_oracle(image_env):
    oracle = summarize(rollout(image_env, OracleAgent(image_env), episodes=20, seed=0))
    random = summarize(rollout(image_env, RandomAgent(image_env, seed=0), episodes=60, seed=0))
    assert oracle["score"] == 1.0 and random["score"] < 0.3


def test_cli_eval_writes_table_and_jsonl(tmp_path, capsys):
    code = main(["eval", "--env", "Pixelis-Image-v0", "--agent", "oracle", "random", "--episodes", "3",
                 "--out", str(tmp_path), "--quiet", "--env-arg", "media=[[[0,0,0],[255,255,255]]]",
                 "--env-arg", "question=how bright?", "--env-arg", "answer=2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| env | agent |" in out and "oracle" in out
    rows = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert rows[0]["score"] == 1.0 and len(list(load_jsonl(tmp_path / "Pixelis-Image-v0_oracle.jsonl"))) == 3


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "pixelis_env.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "eval" in result.stdout


@pytest.mark.parametrize("phase", ["sft", "rft", "ttrl"])
def test_cli_train_help_lists_the_phase_config(phase, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", phase, "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_cli_train_sft_runs_and_checkpoints(tmp_path, capsys):
    code = main(["train", "sft", "--env-ids", "Pixelis-Count-v0", "--steps", "2", "--train-tasks", "4",
                 "--eval-tasks", "2", "--eval-episodes", "2", "--batch-size", "4", "--threads", "1",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 0 and '"checkpoint"' in capsys.readouterr().out
    assert (tmp_path / "checkpoints" / "step-00000002").is_dir()
