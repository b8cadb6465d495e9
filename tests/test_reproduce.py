"""``pixelis reproduce``: a very small version of the whole pipeline end to end, the report's
arithmetic, resuming, failure isolation and the answer-only baseline's demonstrations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from agents.policy import Context, Turn  # noqa: E402
from pixelis_env.cli import main as pixelis_main  # noqa: E402
from training import reproduce  # noqa: E402
from training.reproduce import ARMS, FORMS, QUICK_SUITES, ReproduceConfig, Scale, plan  # noqa: E402
from training.reproduce_report import _overrides, arm_rows, mean_std, score_table  # noqa: E402
from training.sft import Demo, answer_only  # noqa: E402

TINY = Scale(train_tasks=2, test_tasks=1, sft_steps=4, sft_batch_size=4, rft_iterations=1, rft_tasks_per_iteration=2,
             rft_group_size=2, ttrl_samples=2, suite_kwargs=QUICK_SUITES,
             model={"image_size": 32, "channels": (8, 16), "grid": 2, "d_model": 32, "heads": 2, "ffn": 64,
                    "encoder_layers": 1, "decoder_layers": 1, "max_action_tokens": 64})
"""The whole pipeline at the smallest size that still runs every phase on every suite."""


@pytest.fixture
def tiny_form(monkeypatch):
    monkeypatch.setitem(FORMS, "tiny", TINY)
    return "tiny"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two seeds of the four main arms on two worker processes (the fixture is shared: one run)."""
    FORMS["tiny"] = TINY
    out = tmp_path_factory.mktemp("reproduce")
    try:
        cfg = ReproduceConfig(out=str(out), form="tiny", seeds=2, ablations=False, workers=2, progress=False)
        outcomes = reproduce.run(cfg)
    finally:
        del FORMS["tiny"]
    return out, outcomes


def test_tiny_reproduction_runs_every_phase_and_writes_the_report(tiny_run):
    out, outcomes = tiny_run
    assert outcomes == {f"seed-{s}/{arm}": {"status": "done", "seconds": outcomes[f"seed-{s}/{arm}"]["seconds"]}
                        for s in (0, 1) for arm in ("baseline", "sft", "rft", "ttrl")}
    results = json.loads((out / "results.json").read_text())
    assert [row["arm"] for row in results["arms"]] == ["baseline", "sft", "rft", "ttrl"]
    for row in results["arms"]:
        assert row["seeds"] == [0, 1]
        for suite in ("vsi", "vstar", "textvqa", "count", "track", "temporal"):
            assert 0.0 <= row[suite][0] <= 1.0 and row[suite][1] >= 0.0
    text = (out / "results.md").read_text()
    assert "| + Pixel TTRL |" in text and "KL to EMA" in text and "first call = oracle's first tool" in text
    for name in ("suite_scores", "toolchain_lengths", "training_curves", "ttrl_kl"):
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_each_job_leaves_its_training_run_and_held_out_episodes(tiny_run):
    out, _ = tiny_run
    from pixelis_env.trajectory import load_jsonl

    for arm in ("baseline", "sft", "rft", "ttrl"):
        folder = out / "seed-1" / arm
        episodes = list(load_jsonl(folder / "eval.jsonl"))
        assert sorted({e.suite for e in episodes}) == ["count", "temporal", "textvqa", "track", "vsi", "vstar"]
        assert len(episodes) == 6 * TINY.test_tasks
        assert (folder / "train" / "metrics.jsonl").exists()
        summary = json.loads((folder / "eval.json").read_text())
        for suite in summary["suites"].values():
            assert 0.0 <= suite["format_errors"] <= 1.0 and 0.0 <= suite["oracle_first_tool"] <= 1.0
        assert list((folder / "train" / "checkpoints").iterdir())
    config = json.loads(next((out / "seed-1" / "ttrl" / "train" / "checkpoints").iterdir()).joinpath(
        "config.json").read_text())
    assert config["ttrl"]["init"].startswith(str(out / "seed-1" / "rft"))
    assert config["ttrl"]["env_kwargs"]["split"] == "test"


def test_report_numbers_are_recomputed_from_the_jobs_eval_files(tiny_run):
    out, _ = tiny_run
    results = json.loads((out / "results.json").read_text())
    evals = {s: json.loads((out / f"seed-{s}" / "rft" / "eval.json").read_text()) for s in (0, 1)}
    row = next(r for r in results["arms"] if r["arm"] == "rft")
    expected = mean_std([evals[s]["suites"]["vstar"]["score"] for s in (0, 1)])
    assert row["vstar"] == pytest.approx(list(expected))


def test_a_finished_run_is_not_run_again(tiny_run, monkeypatch):
    out, _ = tiny_run
    before = (out / "seed-0" / "sft" / "eval.json").read_text()
    monkeypatch.setattr(reproduce, "_train", lambda *a: pytest.fail("a finished job was trained again"))
    FORMS["tiny"] = TINY
    try:
        outcomes = reproduce.run(ReproduceConfig(out=str(out), form="tiny", seeds=2, ablations=False, workers=1,
                                                 progress=False))
    finally:
        del FORMS["tiny"]
    assert all(o["status"] == "done" for o in outcomes.values())
    assert (out / "seed-0" / "sft" / "eval.json").read_text() == before


def test_a_folder_refuses_a_run_of_another_setting(tiny_run, tiny_form):
    out, _ = tiny_run
    with pytest.raises(ValueError, match="other scale"):
        reproduce.run(ReproduceConfig(out=str(out), form=tiny_form, seeds=2, ablations=False, sft_steps=5))


def test_a_job_gives_the_same_episodes_in_a_worker_process_and_in_this_one(tiny_run, tmp_path, tiny_form):
    out, _ = tiny_run
    job = next(j for j in plan(ReproduceConfig(out=str(tmp_path), form=tiny_form, seeds=2, ablations=False))
               if j.key == "seed-1/sft")
    reproduce.run_job(job)
    assert _untimed(tmp_path / "seed-1" / "sft" / "eval.jsonl") == _untimed(out / "seed-1" / "sft" / "eval.jsonl")


def _untimed(path: Path) -> list:
    """The episodes of a JSONL file without their wall-clock step times."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "seconds"}
        return [strip(v) for v in value] if isinstance(value, list) else value
    return [strip(json.loads(line)) for line in path.read_text().splitlines()]


def test_a_failed_job_skips_its_dependants_and_the_command_says_so(tmp_path, tiny_form, capsys):
    missing = tmp_path / "not-a-checkpoint"
    missing.mkdir()
    code = pixelis_main(["reproduce", "--out", str(tmp_path / "run"), "--form", tiny_form, "--seeds", "1",
                         "--no-ablations", "--workers", "1", "--model", str(missing)])
    assert code == 1
    jobs = json.loads((tmp_path / "run" / "jobs.json").read_text())
    assert jobs["seed-0/sft"]["status"] == "failed" and jobs["seed-0/baseline"]["status"] == "failed"
    assert jobs["seed-0/rft"]["status"] == jobs["seed-0/ttrl"]["status"] == "skipped"
    assert str(missing) in (tmp_path / "run" / "seed-0" / "sft" / "error.txt").read_text()
    text = (tmp_path / "run" / "results.md").read_text()
    assert "Jobs that did not finish" in text and "seed-0/ttrl" in text
    assert "did not finish" in capsys.readouterr().out


def test_plan_orders_parents_first_and_names_every_arm(tmp_path):
    jobs = plan(ReproduceConfig(out=str(tmp_path), seeds=3))
    assert len(jobs) == 3 * len(ARMS)
    position = {job.folder: i for i, job in enumerate(jobs)}
    for job in jobs:
        if job.parent_folder is not None:
            assert position[job.parent_folder] < position[job.folder]
    assert {j.arm for j in plan(ReproduceConfig(out=str(tmp_path), ablations=False))} == {
        "baseline", "sft", "rft", "ttrl"}


def test_ablation_arms_switch_off_exactly_their_part(tmp_path):
    jobs = {j.key: j for j in plan(ReproduceConfig(out=str(tmp_path), seeds=1))}
    assert reproduce.phase_config(jobs["seed-0/baseline"]).direct_answer is True
    assert reproduce.phase_config(jobs["seed-0/sft-no-upweight"]).upweight == 1.0
    assert reproduce.phase_config(jobs["seed-0/sft-no-aux"]).aux_weight == 0.0
    full = reproduce.phase_config(jobs["seed-0/sft"])
    assert (full.upweight, full.aux_weight, full.direct_answer) == (2.0, 1.0, False)


@pytest.mark.parametrize("kwargs, message", [({"form": "huge"}, "form"), ({"seeds": 0}, "seeds"),
                                             ({"test_tasks": 0}, "test_tasks"),
                                             ({"model": "/no/such/dir"}, "nothing is downloaded"),
                                             ({"device": "cuda"}, "compact policy trains on CPU"),
                                             ({"suites": ["Pixelis-Image-v0"]}, "suites"),
                                             ({"suites": []}, "suites")])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReproduceConfig(**kwargs)


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        pixelis_main(["reproduce", "--help"])
    assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out


# ----------------------------------------------------------------- report arithmetic
class _Arm:
    def __init__(self, name, ablation=False):
        self.name, self.label, self.ablation, self.phase = name, name, ablation, "sft"


def _summary(arm, seed, scores, toolchain=1.0):
    return {"arm": arm, "seed": seed, "suites": {s: {"score": v, "episodes": 2, "toolchain": toolchain,
                                                     "invalid_rate": 0.0, "answered": 1.0}
                                                 for s, v in scores.items()}}


def test_relative_gain_is_per_seed_against_that_seeds_baseline_and_skips_zero_baselines():
    evaluations = {
        "baseline": {0: _summary("baseline", 0, {"vsi": 0.5, "count": 0.0}),
                     1: _summary("baseline", 1, {"vsi": 0.25, "count": 0.0})},
        "sft": {0: _summary("sft", 0, {"vsi": 0.75, "count": 0.5}), 1: _summary("sft", 1, {"vsi": 0.25, "count": 1.0})},
    }
    rows = {r["arm"]: r for r in arm_rows(evaluations, [_Arm("baseline"), _Arm("sft")])}
    gain, spread = rows["sft"]["relative_gain"]
    assert gain == pytest.approx(0.25)  # seed 0: +50% on vsi, seed 1: 0%; count's baseline is 0
    assert spread == pytest.approx(math.sqrt(2 * 0.25**2))
    assert rows["sft"]["count"] == pytest.approx((0.75, math.sqrt(0.125)))
    assert rows["sft"]["mean_score"][0] == pytest.approx(((0.75 + 0.5) / 2 + (0.25 + 1.0) / 2) / 2)
    assert math.isnan(rows["sft"]["vstar"][0])
    table = score_table(list(rows.values()))
    assert "+25.0% ± 35.4" in table and "| n/a |" in table


def test_answer_only_keeps_answers_from_the_first_view():
    turns = [Turn(image=None, text="Q?"), Turn(image=None, text="zoomed")]
    demos = [Demo(Context(turns[:1], [], {"k": 1}), '<tool_call>{"name": "zoom", "arguments": {}}</tool_call>', "e"),
             Demo(Context(turns, ["zoom"], {"k": 1}), "<answer>B</answer>", "e")]
    (only,) = answer_only(demos)
    assert only.text == "<answer>B</answer>" and only.context.actions == []
    assert [t.text for t in only.context.turns] == ["Q?"] and only.context.meta == {"k": 1}


def test_model_option_builds_the_pretrained_policy_factory(tmp_path):
    jobs = plan(ReproduceConfig(out=str(tmp_path), seeds=1, model=str(tmp_path), device="cuda", dtype="bfloat16"))
    cfg = reproduce.phase_config(next(j for j in jobs if j.arm == "sft"))
    assert cfg.policy == "agents.vlm:pretrained_policy"
    assert cfg.policy_kwargs == {"path": str(tmp_path), "dtype": "bfloat16", "device_map": "cuda"}


@pytest.mark.slow
def test_tiny_reproduction_with_a_local_vlm_checkpoint(tmp_path, tiny_form):
    """``--model PATH``: the same pipeline on a Hugging Face checkpoint directory (a tiny Qwen2-VL here)."""
    from agents.tiny_vlm import save_tiny_vlm

    model = save_tiny_vlm(tmp_path / "tiny-qwen2vl")
    outcomes = reproduce.run(ReproduceConfig(out=str(tmp_path / "run"), form=tiny_form, seeds=1, ablations=False,
                                             workers=1, model=str(model), progress=False))
    assert {k: v["status"] for k, v in outcomes.items()} == dict.fromkeys(
        ["seed-0/baseline", "seed-0/sft", "seed-0/rft", "seed-0/ttrl"], "done")
    checkpoint = next((tmp_path / "run" / "seed-0" / "ttrl" / "train" / "checkpoints").iterdir())
    spec = json.loads((checkpoint / "config.json").read_text())["modules"]["policy"]
    assert spec["factory"] == "agents.vlm:pretrained_policy" and spec["kwargs"]["path"] == str(model)
    assert Path(tmp_path / "run" / "results.md").exists()


def test_a_subset_of_suites_is_trained_and_evaluated_alone(tmp_path):
    suites = ("Pixelis-VStar-v0", "Pixelis-Track-v0")
    jobs = {j.key: j for j in plan(ReproduceConfig(out=str(tmp_path), seeds=1, suites=suites))}
    sft = reproduce.phase_config(jobs["seed-0/sft"])
    assert sft.env_kwargs["env_ids"] == list(suites) and sft.train_tasks == 2 * FORMS["quick"].train_tasks
    assert sft.env_kwargs["suite_kwargs"] == {"Pixelis-Track-v0": {"difficulty": 0}}
    test = reproduce.env_kwargs(jobs["seed-0/ttrl"], "test")
    assert test["split"] == "test" and test["num_tasks"] == FORMS["quick"].test_tasks


def test_the_report_header_names_the_sizes_a_run_changed():
    assert _overrides({"form": "quick", "sft_steps": 2000, "train_tasks": None}) == " with sft_steps=2000"
    assert _overrides({"form": "quick"}) == ""
