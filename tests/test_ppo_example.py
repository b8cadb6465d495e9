"""The SB3 PPO example: trains a few thousand steps and reports every reward term."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import pytest

from tests.conftest import square_image
from training.common import read_metrics
from training.ppo_example import PPOExampleConfig, main

TERMS = {"task", "curiosity", "coherence", "efficiency"}


FAST_TOOLS = ["zoom", "answer"]
"""A random policy calls every offered tool; OCR and GrabCut would take most of the test's time."""


def image_task_kwargs() -> dict:
    image, box = square_image(0)
    return {"media": image, "question": "How many pixels wide is the red square?",
            "answer": round((box[2] - box[0]) * image.shape[1]), "tools": FAST_TOOLS}


def test_ppo_runs_and_reports_every_reward_term(tmp_path):
    cfg = PPOExampleConfig(env_id="Pixelis-Image-v0", env_kwargs=image_task_kwargs(), view_size=64, image_size=36,
                           text_dims=32, total_timesteps=2048, n_steps=128, batch_size=64, n_epochs=2,
                           run_dir=str(tmp_path))
    result = main(cfg)
    assert result.timesteps >= 2048 and result.episodes > 50
    assert set(result.mean_terms) >= TERMS
    assert math.fsum(result.mean_terms.values()) == pytest.approx(result.mean_episode_reward, abs=1e-4)
    logged = read_metrics(tmp_path)
    assert logged and {f"reward_terms/{name}" for name in TERMS} <= set(logged[-1])
    assert (tmp_path / "ppo_model.zip").is_file()


@pytest.mark.parametrize(("kwargs", "message"), [({"batch_size": 512, "n_steps": 64}, "batch_size"),
                                                 ({"image_size": 32}, "image_size"), ({"num_envs": 0}, ">= 1")])
def test_config_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PPOExampleConfig(**kwargs)


@pytest.mark.slow
def test_command_line_run(tmp_path):
    image, _ = square_image(1)
    cv2.imwrite(str(tmp_path / "square.png"), image[:, :, ::-1])
    row = {"id": "sq", "media": "square.png", "question": "How wide is the red square in pixels?", "answer": 14}
    (tmp_path / "tasks.jsonl").write_text(json.dumps(row) + "\n")
    env_kwargs = json.dumps({"tasks": str(tmp_path / "tasks.jsonl"), "tools": FAST_TOOLS})
    command = [sys.executable, "-m", "training.ppo_example", "--env-id", "Pixelis-Image-v0", "--env-kwargs",
               env_kwargs, "--total-timesteps", "256", "--n-steps", "64", "--image-size", "36", "--view-size", "64"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True).stdout
    assert "mean episode reward" in out
    assert all(name in out for name in TERMS)
