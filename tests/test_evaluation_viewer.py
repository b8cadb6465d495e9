"""The evaluation summaries, relative gain, plots, and the HTML trajectory viewer."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from agents import OracleAgent, RandomAgent
from agents.rollout import rollout
from pixelis_env import evaluation, make_env, save_jsonl
from pixelis_env.cli import main
from pixelis_env.trajectory import StepRecord, Trajectory
from pixelis_env.viewer import write_html
from tests.conftest import square_image

IMAGE_KWARGS = {"media": square_image(0)[0].tolist(), "question": "How wide is the square?", "answer": 14}


def _trajectory(suite, qtype, score, tools):
    steps = [StepRecord(step=i + 1, tool=t, arguments={}, text_action=None, observation="", reward=0.0)
             for i, t in enumerate(tools)]
    return Trajectory(task_id="t", suite=suite, question="?", ground_truth=1, question_type=qtype, steps=steps,
                      score=score, terminated=True)


def test_summaries_by_suite_and_question_type():
    runs = [_trajectory("a", "x", 1.0, ["zoom", "answer"]), _trajectory("a", "y", 0.0, ["answer"]),
            _trajectory("b", "x", 0.5, ["zoom", "zoom", "answer"])]
    summary = evaluation.summarize(runs)
    assert summary["a"]["score"] == 0.5 and summary["a"]["by_question_type"] == {"x": 1.0, "y": 0.0}
    assert summary["a"]["toolchain"] == 0.5 and summary["b"]["toolchain"] == 2.0


def test_relative_gain_is_the_papers_headline_metric():
    assert evaluation.relative_gain({"a": 0.6, "b": 0.55}, {"a": 0.5, "b": 0.5}) == pytest.approx(0.15)
    assert evaluation.relative_gain({"a": 0.6, "z": 1.0}, {"a": 0.5, "z": 0.0}) == pytest.approx(0.2)


def test_eval_cli_writes_jsonl_table_and_plots(tmp_path, capsys):
    args = ["eval", "--env", "Pixelis-Image-v0", "--episodes", "4", "--out", str(tmp_path), "--quiet"]
    for key, value in IMAGE_KWARGS.items():
        args += ["--env-arg", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Relative gain over `random`" in out and "Per question type" in out
    for name in ("summary.md", "summary.json", "suite_scores.png", "toolchain_lengths.png",
                 "Pixelis-Image-v0_oracle.jsonl", "Pixelis-Image-v0_random.jsonl"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "suite_scores.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 0
    assert "relative gain: +0.0000" in capsys.readouterr().out


def test_viewer_replays_episodes_with_images(tmp_path):
    env = make_env("Pixelis-Image-v0", **IMAGE_KWARGS)
    env.spec = None
    trajectories = rollout(env, OracleAgent(env), episodes=1, seed=0)
    trajectories += rollout(env, RandomAgent(env, seed=1), episodes=2, seed=5)
    for t in trajectories:
        t.env_id = "Pixelis-Image-v0"
    page = write_html(trajectories, tmp_path / "view.html", env_kwargs=IMAGE_KWARGS).read_text()
    assert page.count("<div class=\"ep\">") == 3
    assert page.count("data:image/jpeg;base64,") >= 1 + sum(len(t.steps) + 1 for t in trajectories)
    assert "ground truth: 14" in page and "not replayed" not in page


def test_viewer_shows_unreplayable_episodes_as_text(tmp_path):
    trajectory = _trajectory("a", "x", 1.0, ["answer"])
    trajectory.env_id = "Pixelis-Nope-v0"
    page = write_html([trajectory], tmp_path / "v.html").read_text()
    assert "not replayed" in page and "step 1" in page


def test_view_cli(tmp_path, capsys):
    env = make_env("Pixelis-Image-v0", **IMAGE_KWARGS)
    path = save_jsonl(rollout(env, OracleAgent(env), episodes=2, seed=0), tmp_path / "run.jsonl")
    args = ["view", str(path)]
    for key, value in IMAGE_KWARGS.items():
        args += ["--env-arg", f"{key}={json.dumps(value)}"]
    assert main(args) == 0
    assert (tmp_path / "run.html").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
def test_viewer_renders_in_headless_chromium(tmp_path):
    env = make_env("Pixelis-Image-v0", **IMAGE_KWARGS)
    trajectories = rollout(env, OracleAgent(env), episodes=1, seed=0)
    page = write_html(trajectories, tmp_path / "v.html", env_kwargs=IMAGE_KWARGS)
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=900,700", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (700, 900)
    assert image.std() > 10, "the page rendered content, not a blank screen"


def test_eval_cli_vectorised_equals_single_env(tmp_path):
    args = ["eval", "--env", "Pixelis-Count-v0", "--episodes", "5", "--quiet", "--env-arg", "num_tasks=8"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "vec"), "--num-envs", "2"]) == 0
    for agent in ("oracle", "random"):
        one = (tmp_path / "one" / f"Pixelis-Count-v0_{agent}.jsonl").read_text().splitlines()
        vec = (tmp_path / "vec" / f"Pixelis-Count-v0_{agent}.jsonl").read_text().splitlines()
        strip = lambda lines: [  # noqa: E731
            {**t, "steps": [{**s, "seconds": 0} for s in t["steps"]]} for t in map(json.loads, lines)]
        assert strip(one) == strip(vec)


def test_vsi_suite_score_is_the_macro_mean_over_question_types():
    runs = [_trajectory("vsi", "object_counting", 1.0, ["answer"]),
            _trajectory("vsi", "object_counting", 0.0, ["answer"]),
            _trajectory("vsi", "room_size_estimation", 1.0, ["answer"]),
            _trajectory("vsi", "object_rel_direction_easy", 1.0, ["answer"])]
    assert evaluation.summarize(runs)["vsi"]["score"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)
