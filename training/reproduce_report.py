"""The reproduction's report: ``results.md``, ``results.json`` and ``plots/`` from a run folder.

Reads only what the jobs wrote (``seed-*/ARM/eval.json`` and each training run's
``metrics.jsonl``), so it can be re-run on a finished or partly finished folder. Every
figure is a mean over the seeds that finished, with the sample standard deviation
(``±``) and the number of seeds; relative gain is computed per seed against that
seed's baseline, then averaged, over the suites where the baseline scores above 0
(the ratio is undefined at 0, as in :func:`pixelis_env.evaluation.relative_gain`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_env.evaluation import relative_gain
from pixelis_env.plots import pyplot

SUITES = {
    "vsi": "VSI (acc/MRA)", "vstar": "V* (acc)", "textvqa": "TextVQA (VQA acc/ANLS)", "count": "Count (exact)",
    "track": "Track (acc/exact)", "temporal": "Temporal (mIoU)",
}
"""Suite name in the episodes -> column header with the benchmark's metric."""


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaN for none)."""
    array = np.asarray(values, dtype=float)
    if not len(array):
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def load_evaluations(out: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """``eval.json`` summaries by arm and seed."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(out.glob("seed-*/*/eval.json")):
        summary = json.loads(path.read_text())
        found.setdefault(summary["arm"], {})[int(summary["seed"])] = summary
    return found


def run_metrics(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    """:func:`training.common.read_metrics` of a job's training run; none for a job that never started."""
    from training.common import read_metrics

    return read_metrics(run_dir, kind) if (run_dir / "metrics.jsonl").exists() else []


def arm_rows(evaluations: Mapping[str, Mapping[int, Mapping[str, Any]]], arms: Sequence[Any]) -> list[dict[str, Any]]:
    """Per arm: per-suite score, mean score, relative gain, toolchain, invalid rate and wrong-form answers."""
    baseline = evaluations.get("baseline", {})
    rows = []
    for arm in arms:
        by_seed = evaluations.get(arm.name, {})
        if not by_seed:
            continue
        seeds = sorted(by_seed)
        scores = {s: {suite: by_seed[s]["suites"][suite]["score"] for suite in by_seed[s]["suites"]} for s in seeds}
        row: dict[str, Any] = {"arm": arm.name, "label": arm.label, "ablation": arm.ablation, "seeds": seeds}
        for suite in SUITES:
            row[suite] = mean_std([scores[s][suite] for s in seeds if suite in scores[s]])
        row["mean_score"] = mean_std([float(np.mean(list(scores[s].values()))) for s in seeds])
        paired = [s for s in seeds if s in baseline]
        base = {s: {k: v["score"] for k, v in baseline[s]["suites"].items()} for s in paired}
        row["relative_gain"] = mean_std([relative_gain(scores[s], base[s]) for s in paired]) if paired else None
        row["toolchain"] = mean_std([_episode_mean(by_seed[s], "toolchain") for s in seeds])
        row["invalid_rate"] = mean_std([_episode_mean(by_seed[s], "invalid_rate") for s in seeds])
        for key in ("format_errors", "oracle_first_tool", "answered"):
            row[key] = mean_std([_episode_mean(by_seed[s], key) for s in seeds])
        rows.append(row)
    return rows


def _episode_mean(summary: Mapping[str, Any], key: str) -> float:
    """A per-suite figure averaged over suites weighted by episodes (NaN where a summary lacks it)."""
    suites = [s for s in summary["suites"].values() if key in s]
    if not suites:
        return float("nan")
    return float(sum(s[key] * s["episodes"] for s in suites) / max(sum(s["episodes"] for s in suites), 1))


def ttrl_rows(out: Path, arms: Sequence[Any]) -> list[dict[str, Any]]:
    """Per TTRL arm: accepted rate, pseudo-label accuracy, KL to the EMA teacher (mean, max), rollbacks."""
    rows = []
    for arm in arms:
        if arm.phase != "ttrl":
            continue
        per_seed = []
        for folder in sorted(out.glob(f"seed-*/{arm.name}")):
            tasks = run_metrics(folder / "train", "task")
            if not tasks or not (folder / "eval.json").exists():
                continue
            kls = [t["kl"] for t in tasks if t.get("kl") is not None]
            correct = [t["report/pseudo_label_correct"] for t in tasks if t["accepted"]]
            judged = [t["corridor"] for t in tasks if t.get("corridor")]
            per_seed.append({"accepted": float(np.mean([t["accepted"] for t in tasks])),
                             "label_accuracy": float(np.mean(correct)) if correct else float("nan"),
                             "kl_mean": float(np.mean(kls)) if kls else 0.0,
                             "kl_max": float(np.max(kls)) if kls else 0.0,
                             "not_above": float(np.mean([side != "above" for side in judged])) if judged
                             else float("nan"),
                             "rollbacks": float(sum(t.get("rollback", 0) for t in tasks)),
                             "tasks": float(len(tasks))})
        if per_seed:
            rows.append({"arm": arm.name, "label": arm.label, "seeds": len(per_seed),
                         **{k: mean_std([p[k] for p in per_seed]) for k in per_seed[0]}})
    return rows


# ----------------------------------------------------------------------- text
def cell(value: tuple[float, float] | None, digits: int = 3) -> str:
    if value is None or np.isnan(value[0]):
        return "n/a"
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def score_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = ["arm", *SUITES.values(), "mean score", "rel. gain vs baseline", "toolchain", "invalid rate", "seeds"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        gain = row["relative_gain"]
        gain_text = "n/a" if gain is None else f"{100 * gain[0]:+.1f}% ± {100 * gain[1]:.1f}"
        cells = [row["label"], *(cell(row[s]) for s in SUITES), cell(row["mean_score"]), gain_text,
                 cell(row["toolchain"], 2), cell(row["invalid_rate"]), str(len(row["seeds"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def behaviour_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """How each arm acts, beyond its score: tool choice against the oracle's, answer form, answer rate."""
    columns = ["arm", "first call = oracle's first tool", "answers in the wrong form", "episodes answered",
               "toolchain", "invalid rate"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row["label"], cell(row["oracle_first_tool"], 2), cell(row["format_errors"], 2),
                 cell(row["answered"], 2), cell(row["toolchain"], 2), cell(row["invalid_rate"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ttrl_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = ["arm", "accepted", "pseudo-label accuracy", "KL to EMA (mean)", "KL to EMA (max)",
               "updates not above the corridor", "rollbacks", "tasks", "seeds"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [row["label"], cell(row["accepted"]), cell(row["label_accuracy"]), cell(row["kl_mean"], 4),
                 cell(row["kl_max"], 4), cell(row["not_above"]), cell(row["rollbacks"], 1),
                 f"{row['tasks'][0]:.0f}", str(row["seeds"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(out: str | Path, arms: Sequence[Any], elapsed: float | None = None) -> Path:
    """Write results.md, results.json and the plots; the path of results.md."""
    out = Path(out)
    evaluations = load_evaluations(out)
    rows = arm_rows(evaluations, arms)
    ttrl = ttrl_rows(out, arms)
    config = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else {}
    if elapsed is None and (out / "results.json").exists():  # re-rendering: keep the run's own wall time
        elapsed = json.loads((out / "results.json").read_text()).get("elapsed_seconds")
    jobs = json.loads((out / "jobs.json").read_text()) if (out / "jobs.json").exists() else {}
    plots = write_plots(out, rows, evaluations, arms)
    (out / "results.json").write_text(json.dumps({"config": config, "arms": rows, "ttrl": ttrl, "jobs": jobs,
                                                  "elapsed_seconds": elapsed}, indent=1))
    main_rows = [r for r in rows if not r["ablation"]]
    ablation_rows = [r for r in rows if r["ablation"] or r["arm"] in ("sft", "rft", "ttrl")]
    failed = {k: v for k, v in jobs.items() if v.get("status") != "done"}
    parts = [
        "# Pixelis miniature reproduction",
        f"Form `{config.get('form', '?')}`{_overrides(config)}, seeds {config.get('seeds', '?')}, model "
        f"`{config.get('model') or 'compact policy (from scratch)'}`"
        + (f", {elapsed / 60:.1f} min wall" if elapsed is not None else "") + ". "
        "Scores are on each suite's held-out test split, in the benchmark's metric; mean ± sample std over seeds.",
        "## Phases", score_table(main_rows),
        "## Ablations (each row switches one thing off; the full arms repeated for reference)",
        score_table(ablation_rows),
        "## How the arms act (held-out episodes)", behaviour_table(rows),
        "## Test-time RL: pseudo-labels and the KL corridor", ttrl_table(ttrl),
        "## Plots", *(f"![{p.stem}](plots/{p.name})" for p in plots),
    ]
    if failed:
        parts += ["## Jobs that did not finish",
                  *(f"- `{key}`: {v['status']}: {v.get('error', '')}" for key, v in sorted(failed.items()))]
    path = out / "results.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def _overrides(config: Mapping[str, Any]) -> str:
    """The form's sizes a run changed, e.g. `` with sft_steps=2000``."""
    changed = [f"{key}={config[key]}" for key in ("train_tasks", "test_tasks", "sft_steps", "rft_iterations")
               if config.get(key) is not None]
    return f" with {', '.join(changed)}" if changed else ""


# ----------------------------------------------------------------------- plots
def write_plots(out: Path, rows: Sequence[Mapping[str, Any]], evaluations: Mapping[str, Any],
                arms: Sequence[Any]) -> list[Path]:
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    main = [r for r in rows if not r["ablation"]]
    paths = []
    if main:
        paths.append(suite_bars(main, folder / "suite_scores.png"))
        paths.append(toolchain_histogram(main, evaluations, folder / "toolchain_lengths.png"))
    paths.append(training_curves(out, arms, folder / "training_curves.png"))
    paths.append(ttrl_kl(out, [a for a in arms if a.phase == "ttrl"], folder / "ttrl_kl.png"))
    return paths


def suite_bars(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        xs = [j + i * width for j in range(len(SUITES))]
        means, stds = zip(*(row[s] if not np.isnan(row[s][0]) else (0.0, 0.0) for s in SUITES))
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=row["label"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(SUITES))], [h.split(" (")[0] for h in SUITES.values()])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out score (mean ± std over seeds)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def toolchain_histogram(rows: Sequence[Mapping[str, Any]], evaluations: Mapping[str, Any], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    lengths = {row["label"]: [n for summary in evaluations[row["arm"]].values()
                              for values in summary["toolchains"].values() for n in values] for row in rows}
    top = max((max(v) for v in lengths.values() if v), default=1)
    bins = np.arange(top + 2) - 0.5
    for label, values in lengths.items():
        ax.hist(values, bins=bins, alpha=0.5, label=label)
    ax.set_xlabel("tool calls before the episode ended (held-out episodes, all seeds)")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=7)
    return _save(fig, path)


def training_curves(out: Path, arms: Sequence[Any], path: Path) -> Path:
    """SFT imitation loss per step, RFT mean return per iteration, TTRL accepted share along the stream (seed 0)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    panels = {"sft": (axes[0], "train", "imitation", "SFT imitation loss"),
              "rft": (axes[1], "train", "return", "RFT mean return"),
              "ttrl": (axes[2], "task", "accepted", "TTRL pseudo-label accepted (running mean)")}
    for arm in arms:
        ax, kind, key, title = panels[arm.phase]
        records = [r for r in run_metrics(out / "seed-0" / arm.name / "train", kind)
                   if r.get(key) is not None]
        if not records:
            continue
        values = np.asarray([r[key] for r in records], dtype=float)
        if arm.phase == "ttrl":
            values = np.cumsum(values) / np.arange(1, len(values) + 1)
        ax.plot([r["step"] for r in records], values, label=arm.name, linestyle="--" if arm.ablation else "-")
        ax.set_title(title + " (seed 0)", fontsize=9)
    for ax in axes:
        _legend(ax)
    return _save(fig, path)


def ttrl_kl(out: Path, arms: Sequence[Any], path: Path) -> Path:
    """KL to the EMA teacher after each task's update, per seed, with the corridor's band."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    band = None
    for arm in arms:
        for folder in sorted(out.glob(f"seed-*/{arm.name}")):
            tasks = run_metrics(folder / "train", "task")
            if tasks:
                ax.plot([t["task"] for t in tasks], [t.get("kl") or 0.0 for t in tasks], marker=".", linewidth=0.8,
                        label=f"{arm.name} {folder.parent.name}")
                rollbacks = [t["task"] for t in tasks if t.get("rollback")]
                ax.scatter(rollbacks, [0.0] * len(rollbacks), marker="x", color="red")
            band = band or _corridor(folder)
    if band is not None:
        ax.axhspan(*band, color="green", alpha=0.1, label="KL corridor")
    ax.set_xlabel("test task (stream order)")
    ax.set_ylabel("KL to EMA teacher")
    _legend(ax)
    return _save(fig, path)


def _corridor(folder: Path) -> tuple[float, float] | None:
    from training.common import latest_checkpoint

    checkpoint = latest_checkpoint(folder / "train")
    if checkpoint is None:
        return None
    ttrl = checkpoint.config.get("ttrl", {})
    return float(ttrl.get("kl_low", 0.0)), float(ttrl.get("kl_high", 0.0))


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path
