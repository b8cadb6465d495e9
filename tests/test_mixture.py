"""Pixelis-Mix-v0: the six suites interleaved as one task source."""

from __future__ import annotations

import gymnasium as gym
import pytest

import pixelis_env
from agents.oracle import OracleAgent
from agents.rollout import rollout
from pixelis_env.errors import PixelisError
from pixelis_env.suites.mixture import BENCHMARK_IDS, MAX_STEPS, make_source, mixed
from pixelis_env.suites.vstar import make_source as vstar_source


def test_tasks_interleave_suites_so_every_prefix_is_balanced():
    source = make_source(split="train", num_tasks=3)
    assert len(source) == 3 * len(BENCHMARK_IDS)
    suites = [source[i].suite for i in range(len(source))]
    assert suites[:6] == ["vsi", "vstar", "textvqa", "count", "track", "temporal"]
    assert suites[6:12] == suites[:6]
    assert source[7].task_id == vstar_source(split="train", num_tasks=3)[1].task_id
    assert source[-1].task_id == source[len(source) - 1].task_id
    with pytest.raises(IndexError):
        source[len(source)]


def test_suite_kwargs_reach_only_their_suite():
    source = make_source(split="test", num_tasks=2, suite_kwargs={"Pixelis-Track-v0": {"difficulty": 0}})
    assert "-d0-" in source[4].task_id and "-d1-" in source[5].task_id
    assert source[0].task_id.startswith("vsi-test")


def test_bounds_cover_every_suite():
    source = make_source(split="train", num_tasks=2)
    assert source.max_frames == max(pixelis_env.registration.suite_module(i).make_source(num_tasks=2).max_frames
                                     for i in BENCHMARK_IDS)
    assert source.media_kinds == {"image", "video"}
    assert max(pixelis_env.registration.suite_module(i).MAX_STEPS for i in BENCHMARK_IDS) <= MAX_STEPS


def test_unequal_sources_are_cut_to_the_smallest():
    source = mixed([vstar_source(num_tasks=3), vstar_source(split="test", num_tasks=5)])
    assert len(source) == 6 and source[5].task_id.startswith("vstar-test")


@pytest.mark.parametrize("kwargs, message", [
    ({"suite_kwargs": {"Pixelis-Nope-v0": {}}}, "not mixed in"),
    ({"env_ids": ["Pixelis-VStar-v0", "Pixelis-VStar-v0"]}, "distinct"),
    ({"env_ids": []}, "distinct|at least one"),
    ({"env_ids": ["Pixelis-Mix-v0"]}, "itself"),
    ({"env_ids": ["Pixelis-Vstar-v0"]}, "Did you mean"),
])
def test_bad_mixtures_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(PixelisError, match=message):
        make_source(**kwargs)


def test_registered_but_not_counted_among_the_suites():
    assert "Pixelis-Mix-v0" in gym.registry and "Pixelis-Mix-v0" not in pixelis_env.ENV_IDS


def test_oracle_solves_every_suite_through_the_mixture():
    env = gym.make("Pixelis-Mix-v0", split="test", num_tasks=1,
                   suite_kwargs={"Pixelis-Track-v0": {"difficulty": 0}, "Pixelis-Temporal-v0": {"difficulty": 0}})
    assert env.unwrapped.max_steps == MAX_STEPS
    scores = {}
    for index in range(len(env.unwrapped.tasks)):
        obs, info = env.reset(seed=index, options={"task_index": index})
        agent = OracleAgent(env)
        agent.reset(obs, info)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info))
            done = terminated or truncated
        scores[info["suite"]] = info["score"]
    assert scores == dict.fromkeys(["vsi", "vstar", "textvqa", "count", "track", "temporal"], 1.0)
    env.close()


def test_rollout_over_the_mixture_is_seed_deterministic():
    def run():
        env = gym.make("Pixelis-Mix-v0", split="train", num_tasks=1, env_ids=["Pixelis-VStar-v0", "Pixelis-Count-v0"])
        trajectories = rollout(env, OracleAgent(env), episodes=4, seed=3)
        env.close()
        return [(t.task_id, t.score) for t in trajectories]
    assert run() == run()
