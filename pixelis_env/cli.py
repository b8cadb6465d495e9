"""The ``pixelis`` command line: play and evaluate agents on Pixelis envs.

Subcommands import what they need lazily, so ``pixelis --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

AGENTS = ("random", "oracle")
EVAL_COLUMNS = ["env", "agent", "episodes", "score", "toolchain", "invalid_rate", "answered", "seconds"]


def _env_kwargs(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env-arg expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _env_ids(spec: str) -> list[str]:
    import pixelis_env

    if spec == "all":
        return [i for i in pixelis_env.ENV_IDS if i != "Pixelis-Image-v0"]
    return [s.strip() for s in spec.split(",") if s.strip()]


def _make_agent(name: str, env: Any, seed: int) -> Any:
    from agents import OracleAgent, RandomAgent

    if name == "random":
        return RandomAgent(env, seed=seed)
    if name == "oracle":
        return OracleAgent(env)
    raise SystemExit(f"unknown agent {name!r}; choose from {AGENTS}")


def markdown_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table; floats with 3 decimals."""
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from pixelis_env import evaluation, plots
    from pixelis_env.trajectory import save_jsonl

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env_kwargs = _env_kwargs(args.env_arg)
    rows, scores, lengths = [], {}, {}
    for env_id in _env_ids(args.env):
        for agent_name in args.agent:
            started = time.perf_counter()
            trajectories = _evaluate(env_id, agent_name, env_kwargs, args)
            seconds = time.perf_counter() - started
            save_jsonl(trajectories, out_dir / f"{env_id}_{agent_name}.jsonl")
            for suite, summary in evaluation.summarize(trajectories).items():
                rows.append({"env": env_id, "agent": agent_name, **summary, "seconds": round(seconds, 1)})
                scores.setdefault(agent_name, {})[suite] = summary["score"]
            lengths.setdefault(agent_name, []).extend(evaluation.toolchain_lengths(trajectories))
    table = markdown_table(rows, EVAL_COLUMNS)
    breakdown = [{"suite": r["suite"], "agent": r["agent"], "question_type": q, "score": v}
                 for r in rows for q, v in r["by_question_type"].items()]
    table += "\n\nPer question type:\n\n" + markdown_table(breakdown, ["suite", "agent", "question_type", "score"])
    if args.baseline_agent in scores:
        base = scores[args.baseline_agent]
        gains = [{"agent": a, "relative_gain": evaluation.relative_gain(s, base)} for a, s in scores.items()]
        table += f"\n\nRelative gain over `{args.baseline_agent}` (mean over suites of (ours - base) / base):\n\n"
        table += markdown_table(gains, ["agent", "relative_gain"])
    (out_dir / "summary.md").write_text(table + "\n", encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps({"env_kwargs": env_kwargs, "rows": rows}, indent=2),
                                          encoding="utf-8")
    plots.suite_bars(scores, out_dir / "suite_scores.png")
    plots.length_histogram(lengths, out_dir / "toolchain_lengths.png")
    print(table)
    print(f"\ntrajectories, summary and plots in {out_dir}/")
    return 0


def _evaluate(env_id: str, agent_name: str, env_kwargs: dict[str, Any], args: argparse.Namespace) -> list[Any]:
    """Roll one agent out on one env id, on ``--num-envs`` sub-envs of a vector env when > 1.

    The random and oracle agents read their sub-env (action space, oracle trace), so the
    vector env is a synchronous one; the trajectories equal a single-env run's.
    """
    import functools

    import gymnasium as gym

    from agents.rollout import make_vector_env, rollout

    if args.num_envs <= 1:
        env = gym.make(env_id, **env_kwargs)
        agent: Any = _make_agent(agent_name, env, args.seed)
    else:
        env = make_vector_env([functools.partial(gym.make, env_id, **env_kwargs)] * args.num_envs)
        agent = [_make_agent(agent_name, sub_env, args.seed) for sub_env in env.envs]
    try:
        return rollout(env, agent, args.episodes, seed=args.seed, progress=not args.quiet)
    finally:
        env.close()


def cmd_compare(args: argparse.Namespace) -> int:
    from pixelis_env import evaluation

    def scores(path: str) -> dict[str, float]:
        rows = json.loads((Path(path) / "summary.json").read_text(encoding="utf-8"))["rows"]
        return {r["suite"]: r["score"] for r in rows if r["agent"] == args.agent}

    ours, base = scores(args.ours), scores(args.base)
    rows = [{"suite": s, "base": base.get(s, float("nan")), "ours": ours[s]} for s in sorted(ours)]
    print(markdown_table(rows, ["suite", "base", "ours"]))
    print(f"\nrelative gain: {evaluation.relative_gain(ours, base):+.4f}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from pixelis_env.trajectory import load_jsonl
    from pixelis_env.viewer import write_html

    trajectories = list(load_jsonl(args.run))[: args.limit]
    out = args.out or str(Path(args.run).with_suffix(".html"))
    write_html(trajectories, out, env_kwargs=_env_kwargs(args.env_arg), title=Path(args.run).name)
    print(f"wrote {out} ({len(trajectories)} episodes)")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    import gymnasium as gym

    env = gym.make(args.env, render_mode="rgb_array", **_env_kwargs(args.env_arg))
    agent = _make_agent(args.agent, env, args.seed)
    obs, info = env.reset(seed=args.seed)
    agent.reset(obs, info)
    print(f"[{info['task_id']}] {obs['text']}")
    done = False
    while not done:
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        record = env.unwrapped.records[-1]
        shown = record.text_action or json.dumps({"name": record.tool, "arguments": record.arguments})
        print(f"step {record.step}: {shown}\n  -> {obs['text'][:300]}\n  reward {reward:+.3f}")
        done = terminated or truncated
    print(f"score {info.get('score', 0.0):.3f} (ground truth: {env.unwrapped.task.answer})")
    if args.save_render:
        import cv2

        cv2.imwrite(args.save_render, env.render()[:, :, ::-1])
        print(f"rendered episode saved to {args.save_render}")
    env.close()
    return 0


TRAINERS = {"sft": "training.sft", "rft": "training.rft", "ttrl": "training.ttrl"}


def cmd_train(args: argparse.Namespace) -> int:
    """Hand the remaining arguments to the phase's own config parser (``--help`` lists them)."""
    import importlib

    result = importlib.import_module(TRAINERS[args.phase]).cli(args.args)
    print(json.dumps({k: v for k, v in result.items() if isinstance(v, (str, int, float, bool))}, indent=2))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Hand the remaining arguments to :mod:`training.reproduce` (``--help`` lists them)."""
    from training.reproduce import cli

    return cli(args.args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixelis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="run agents over env ids and print a score table")
    ev.add_argument("--env", default="all", help="env id, comma-separated ids, or 'all'")
    ev.add_argument("--agent", nargs="+", default=["oracle", "random"], choices=AGENTS)
    ev.add_argument("--episodes", type=int, default=20)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--num-envs", type=int, default=1, help="sub-envs of a vector env per (env, agent)")
    ev.add_argument("--out", default="runs/eval", help="folder for JSONL trajectories and the summary")
    ev.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="keyword argument for gym.make (JSON values), repeatable")
    ev.add_argument("--baseline-agent", default="random", help="agent the relative gain is measured against")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_eval)

    cp = sub.add_parser("compare", help="relative gain of one eval run folder over another")
    cp.add_argument("ours")
    cp.add_argument("base")
    cp.add_argument("--agent", default="oracle", help="the agent whose rows are compared")
    cp.set_defaults(func=cmd_compare)

    vw = sub.add_parser("view", help="write an HTML page showing the episodes of a JSONL run")
    vw.add_argument("run", help="a trajectories .jsonl file")
    vw.add_argument("--out", default="", help="HTML path (default: next to the run)")
    vw.add_argument("--limit", type=int, default=50, help="at most this many episodes")
    vw.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="the gym.make kwargs the run used (to replay it)")
    vw.set_defaults(func=cmd_view)

    tr = sub.add_parser("train", help="train a policy: sft, rft or ttrl (see `pixelis train PHASE --help`)",
                        add_help=False)
    tr.add_argument("phase", choices=sorted(TRAINERS))
    tr.add_argument("args", nargs=argparse.REMAINDER, help="the phase's own flags, e.g. --steps 200 --out runs/sft")
    tr.set_defaults(func=cmd_train)

    rp = sub.add_parser("reproduce", add_help=False,
                        help="miniature reproduction of the paper's comparison (see `pixelis reproduce --help`)")
    rp.add_argument("args", nargs=argparse.REMAINDER, help="e.g. --form quick --seeds 3 --out runs/reproduce")
    rp.set_defaults(func=cmd_reproduce)

    pl = sub.add_parser("play", help="play one episode and print every step")
    pl.add_argument("--env", default="Pixelis-VSI-v0")
    pl.add_argument("--agent", default="oracle", choices=AGENTS)
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE")
    pl.add_argument("--save-render", default="", help="write the episode's render to this PNG")
    pl.set_defaults(func=cmd_play)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reproduce"]:  # its flags (``--help`` included) belong to its own parser
        return cmd_reproduce(argparse.Namespace(args=argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
