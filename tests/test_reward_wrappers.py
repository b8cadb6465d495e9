"""Reward wrappers (curiosity, coherence, efficiency): terms, stacking, checks, vector envs, state."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pixelis_env
from pixelis_env import Answer, PixelisEnv, PixelisError, SelectFrames, Zoom
from pixelis_env.actions import InvalidAction
from pixelis_env.registration import make_env
from pixelis_env.wrappers import (
    CoherenceReward,
    CuriosityReward,
    EfficiencyReward,
    apply_reward_wrappers,
    default_reward_stack,
)
from pixelis_env.wrappers.coherence import DEFAULT_TABLE
from tests.conftest import square_image, square_tasks

TERMS = {"task", "curiosity", "coherence", "efficiency"}
WRAPPERS = (CuriosityReward, CoherenceReward, EfficiencyReward)


def square_env(max_steps: int = 8, view_size: int = 64) -> PixelisEnv:
    return PixelisEnv(square_tasks(), view_size=view_size, max_steps=max_steps)


def boxes(n: int) -> list[Zoom]:
    """``n`` distinct zooms, none an exact repeat of another."""
    return [Zoom(box=(0.05 * i, 0.05 * i, 0.5 + 0.05 * i, 0.5 + 0.05 * i)) for i in range(n)]


def play(env: gym.Env, actions: list, seed: int = 0) -> list[tuple[float, dict[str, float]]]:
    """Reset with ``seed`` and play ``actions``; the reward and terms of each step."""
    env.reset(seed=seed)
    out = []
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        out.append((reward, info["reward_terms"]))
        if terminated or truncated:
            break
    return out


def curiosity_terms(env: gym.Env, actions: list, seeds: range) -> list[float]:
    """The curiosity term of every step of one episode per seed (the model learns in between)."""
    return [terms["curiosity"] for seed in seeds for _, terms in play(env, actions, seed)]


# ------------------------------------------------------------------ all terms
def test_default_stack_adds_every_term_to_reward_and_info():
    env = apply_reward_wrappers(square_env(), default_reward_stack(seed=0))
    steps = play(env, [*boxes(4), InvalidAction("bad"), Answer(text="12")])
    for reward, terms in steps:
        assert set(terms) >= TERMS
        assert reward == pytest.approx(sum(terms.values()))
    assert steps[4][1]["invalid"] < 0


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.__name__)
def test_coef_zero_records_a_zero_term_and_leaves_the_reward(wrapper):
    base, wrapped = square_env(), wrapper(square_env(), coef=0.0)
    actions = [*boxes(4), boxes(4)[0], Answer(text="12")]
    for (reward, terms), (base_reward, _) in zip(play(wrapped, actions), play(base, actions)):
        assert terms[wrapper.term_name] == 0.0
        assert reward == base_reward


def test_stacking_order_does_not_change_the_terms():
    actions = [*boxes(3), boxes(3)[1], Answer(text="12")]
    results = []
    for order in itertools.permutations(WRAPPERS):
        env = apply_reward_wrappers(square_env(), [(w, {"seed": 3} if w is CuriosityReward else {}) for w in order])
        results.append([terms for seed in range(3) for _, terms in play(env, actions, seed)])
    assert all(r == results[0] for r in results)


def test_reward_terms_of_the_base_env_are_not_mutated():
    base = square_env()
    env = EfficiencyReward(base, free_calls=0)
    env.reset(seed=0)
    env.step(boxes(1)[0])
    assert set(base.records[-1].reward_terms) == {"task"}


def test_error_steps_earn_no_shaping():
    env = apply_reward_wrappers(square_env(), default_reward_stack(seed=0))
    for _, terms in play(env, [InvalidAction("nonsense"), "<tool_call>{\"name\": \"zom\"}</tool_call>"]):
        assert terms["curiosity"] == terms["coherence"] == terms["efficiency"] == 0.0
        assert terms["invalid"] < 0


# ----------------------------------------------------------------- efficiency
def test_efficiency_cost_grows_with_length_and_is_bounded():
    env = EfficiencyReward(square_env(max_steps=12), coef=0.1, free_calls=2, max_total=0.25)
    steps = play(env, [*boxes(9), Answer(text="12")])
    costs = [terms["efficiency"] for _, terms in steps]
    assert costs[:2] == [0.0, 0.0]
    assert costs[2:4] == pytest.approx([-0.1, -0.1])
    totals = np.cumsum(costs)
    assert all(a >= b for a, b in itertools.pairwise(totals))
    assert totals[-1] == pytest.approx(-0.25)
    assert costs[-1] == 0.0  # the answer itself is free


def test_efficiency_does_not_charge_errors():
    env = EfficiencyReward(square_env(), coef=0.1, free_calls=0)
    assert [terms["efficiency"] for _, terms in play(env, [InvalidAction("x"), boxes(1)[0]])] == [0.0, -0.1]


@pytest.mark.parametrize("kwargs", [{"max_total": 1.0}, {"max_total": -0.1}, {"free_calls": -1}, {"coef": -1.0},
                                    {"coef": float("nan")}])
def test_efficiency_rejects_bad_arguments(kwargs):
    with pytest.raises(PixelisError):
        EfficiencyReward(square_env(), **kwargs)


# ------------------------------------------------------------------ coherence
def test_coherence_penalises_exact_repeats_anywhere_in_the_episode():
    env = CoherenceReward(square_env(), coef=1.0, table={}, view_tools=())
    a, b = boxes(2)
    terms = [t["coherence"] for _, t in play(env, [a, a, b, a, b])]
    assert terms == [0.0, -1.0, 0.0, -1.0, -1.0]


def test_coherence_repeat_state_is_cleared_on_reset():
    env = CoherenceReward(square_env(), coef=1.0, table={}, view_tools=())
    a = boxes(1)[0]
    play(env, [a])
    assert [t["coherence"] for _, t in play(env, [a])] == [0.0]


@pytest.mark.parametrize("pair", [("segment", "properties"), ("zoom", "read_text"), ("segment", "track"),
                                  ("localize", "select_frames"), ("select_frames", "zoom"), ("zoom", "segment")])
def test_coherence_rewards_the_logical_successions(pair):
    env = CoherenceReward(square_env())
    assert env.succession(*pair) > 0
    assert env.succession(None, pair[1]) == 0.0


def test_coherence_penalises_incoherent_jumps_and_ignores_unlisted_pairs():
    env = CoherenceReward(square_env())
    assert any(value < 0 for value in DEFAULT_TABLE.values())
    assert env.succession("read_text", "track") < 0
    assert env.succession("zoom", "zoom") == 0.0


def test_coherence_table_is_applied_to_executed_steps(video_env):
    env = CoherenceReward(video_env, coef=1.0, view_tools=())
    steps = play(env, [SelectFrames(frames=(0, 4, 8)), Zoom(box=(0.2, 0.2, 0.8, 0.8), frame=4)])
    assert [t["coherence"] for _, t in steps] == [0.0, DEFAULT_TABLE[("select_frames", "zoom")]]


def test_coherence_custom_table_and_answer_successor():
    env = CoherenceReward(square_env(), coef=1.0, table={("zoom", "answer"): 0.7}, view_tools=())
    assert [t["coherence"] for _, t in play(env, [boxes(1)[0], Answer(text="3")])] == [0.0, 0.7]


def test_coherence_view_band_rewards_related_views_and_penalises_near_duplicates():
    env = CoherenceReward(square_env(view_size=96), coef=1.0, table={})
    env.reset(seed=0)
    x0, y0, x1, y1 = env.unwrapped.task.oracle[0].box
    around = Zoom(box=(max(x0 - 0.05, 0), max(y0 - 0.05, 0), min(x1 + 0.05, 1), min(y1 + 0.05, 1)))
    almost_all = Zoom(box=(0.0, 0.0, 0.98, 0.98))
    assert play(env, [almost_all])[0][1]["coherence"] == -env.duplicate_penalty
    assert play(env, [around])[0][1]["coherence"] == env.view_bonus


def test_coherence_rejects_a_bad_band():
    with pytest.raises(PixelisError, match="band"):
        CoherenceReward(square_env(), band=(0.9, 0.2))


# ------------------------------------------------------------------ curiosity
def learned_curiosity(seed: int = 0, episodes: int = 12, **kwargs) -> CuriosityReward:
    """A curiosity wrapper that has seen the same zoom many times."""
    env = CuriosityReward(PixelisEnv(square_tasks(1), view_size=64, max_steps=8), coef=1.0, seed=seed, lr=3e-3,
                          updates_per_step=2, stats_decay=0.9, **kwargs)
    familiar = Zoom(box=(0.1, 0.1, 0.6, 0.6))
    for episode in range(episodes):
        play(env, [familiar] * 3 + [Answer(text="1")], seed=episode)
    return env


def test_curiosity_is_higher_on_novel_transitions_once_the_model_has_learned():
    env = learned_curiosity()
    errors, terms = [], []
    for action in (Zoom(box=(0.1, 0.1, 0.6, 0.6)), Zoom(box=(0.5, 0.0, 1.0, 0.5))):
        terms.append(play(env, [action], seed=99)[0][1]["curiosity"])
        errors.append(env.last_error)
    assert errors[1] > 5 * errors[0]
    assert terms[1] > terms[0]
    assert 0.0 <= terms[0] <= env.clip and 0.0 < terms[1] <= env.clip


def test_curiosity_state_round_trip_gives_identical_rewards(tmp_path):
    trained = learned_curiosity(seed=0)
    trained.save(tmp_path / "curiosity.pt")
    script = [Zoom(box=(0.1, 0.1, 0.6, 0.6)), *boxes(2), Answer(text="1")]
    # later episodes depend on the restored optimiser, buffer and sampler, not only the weights
    expected = curiosity_terms(trained, script, range(4))
    restored = learned_curiosity(seed=1, episodes=0)
    restored.load(tmp_path / "curiosity.pt")
    assert curiosity_terms(restored, script, range(4)) == expected
    assert any(value > 0 for value in expected)


def test_curiosity_is_deterministic_under_a_seed():
    def weights(env: CuriosityReward) -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel() for p in env.model.parameters()])

    a, b, c = (learned_curiosity(seed=seed, episodes=3) for seed in (5, 5, 6))
    assert np.array_equal(weights(a), weights(b))
    assert not np.array_equal(weights(a), weights(c))


def test_curiosity_learns_when_the_env_is_stepped_under_no_grad():
    """RL loops sample under ``torch.no_grad()``; the forward model must still learn (found by a real RFT run)."""
    torch = pytest.importorskip("torch")
    with torch.no_grad():
        under_no_grad = learned_curiosity(seed=5, episodes=3)
    plain = learned_curiosity(seed=5, episodes=3)
    for a, b in zip(under_no_grad.model.parameters(), plain.model.parameters()):
        assert torch.equal(a, b)
    assert under_no_grad.buffer_len == 9


def test_curiosity_learns_only_from_finished_episodes():
    env = CuriosityReward(square_env(), coef=1.0, seed=0)
    play(env, boxes(3))  # abandoned by the next reset
    assert env.buffer_len == 0
    play(env, [*boxes(3), Answer(text="1")])
    assert env.buffer_len == 3


def test_curiosity_accepts_any_feature_function():
    env = CuriosityReward(square_env(), coef=1.0, seed=0, phi=lambda obs: obs["image"].mean(axis=(0, 1)) / 255.0)
    assert env.feature_dim == 3
    play(env, [*boxes(2), Answer(text="1")])


def test_curiosity_rejects_a_feature_function_that_is_not_1d():
    with pytest.raises(PixelisError, match="1-D"):
        CuriosityReward(square_env(), phi=lambda obs: obs["image"])


def test_curiosity_features_match_across_action_surfaces():
    env = CuriosityReward(square_env(), seed=0)
    zoom = Zoom(box=(0.1, 0.2, 0.6, 0.7))
    typed = env.action_features("zoom", zoom.to_arguments())
    assert typed[env.action_features.tools.index("zoom")] == 1.0
    start = env.action_features.offsets["box"]
    assert typed[start:start + 4].tolist() == pytest.approx([0.1, 0.2, 0.6, 0.7])
    other = boxes(2)[1]
    typed = curiosity_terms(CuriosityReward(square_env(), coef=1.0, seed=0), [zoom, other, Answer(text="1")], range(3))
    text = curiosity_terms(CuriosityReward(square_env(), coef=1.0, seed=0),
                           [pixelis_env.format_action(zoom), other, Answer(text="1")], range(3))
    assert typed == text


# ------------------------------------------------------------- env plumbing
def test_check_env_passes_on_the_wrapped_env(image_env):
    env = apply_reward_wrappers(image_env, default_reward_stack(seed=0))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(different from the unwrapped|not having a spec)")
        check_env(env)


def image_v0(**kwargs) -> gym.Env:
    image, _ = square_image(0)
    return gym.make("Pixelis-Image-v0", media=image, question="How many pixels wide is the red square?", answer=14,
                    view_size=64, **kwargs)


def test_gym_make_default_stack_records_its_wrappers_and_rebuilds():
    env = image_v0(reward_wrappers="default")
    names = [w.name for w in env.spec.additional_wrappers]
    assert names[:3] == ["CuriosityReward", "CoherenceReward", "EfficiencyReward"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*different from the unwrapped")
        check_env(env)
    rebuilt = gym.make(env.spec)
    assert set(play(rebuilt, boxes(1))[0][1]) >= TERMS


def test_vsi_default_stack_if_the_suite_exists():
    pytest.importorskip("pixelis_env.suites.vsi")
    env = gym.make("Pixelis-VSI-v0", reward_wrappers="default")
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.unwrapped.oracle_actions()[0])
    assert set(info["reward_terms"]) >= TERMS


def vector_env_fns(n: int) -> list:
    image, _ = square_image(1)
    # zoom only: sub-envs running different tools in one call put differently typed
    # `info["tool_result"]` values under one key, which gymnasium's info batching rejects
    return [functools.partial(make_env, "Pixelis-Image-v0", media=image, question="How wide is the square?",
                              answer=14, view_size=48, tools=["zoom", "answer"],
                              reward_wrappers=default_reward_stack(seed=i)) for i in range(n)]


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_reward_wrappers_work_in_vector_envs(vector_cls):
    envs = vector_cls(vector_env_fns(2))
    try:
        envs.reset(seed=0)
        envs.action_space.seed(0)
        stepped = 0
        for _ in range(5):
            _, rewards, _, _, infos = envs.step(envs.action_space.sample())
            assert np.isfinite(rewards).all()
            if "reward_terms" in infos:  # absent when every sub-env was auto-reset on this call
                assert all(infos["reward_terms"][name].shape == (2,) for name in TERMS)
                stepped += int(infos["_reward_terms"].sum())
        assert stepped >= 4
    finally:
        envs.close()


# --------------------------------------------------------- apply_reward_wrappers
def test_apply_reward_wrappers_accepts_classes_pairs_and_callables():
    env = apply_reward_wrappers(square_env(), [CoherenceReward, (EfficiencyReward, {"coef": 0.5}),
                                               lambda e: CuriosityReward(e, seed=0)])
    assert isinstance(env, CuriosityReward) and env.env.coef == 0.5
    assert apply_reward_wrappers(square_env(), None).unwrapped is not None


@pytest.mark.parametrize(("wrappers", "message"), [("defualt", "Did you mean `default`"), ([42], "class"),
                                                   ([lambda e: 3], "not a gymnasium.Env")])
def test_apply_reward_wrappers_errors(wrappers, message):
    with pytest.raises(PixelisError, match=message):
        apply_reward_wrappers(square_env(), wrappers)


def test_a_term_cannot_be_stacked_twice():
    with pytest.raises(PixelisError, match="already has"):
        EfficiencyReward(EfficiencyReward(square_env()))


def test_reward_wrappers_need_a_pixelis_env():
    with pytest.raises(PixelisError, match="PixelisEnv"):
        EfficiencyReward(gym.make("CartPole-v1"))


def test_importing_the_wrappers_does_not_import_torch():
    code = "import sys, pixelis_env.wrappers; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
