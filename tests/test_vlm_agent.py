"""The tiny Qwen2-VL: exact grammar tokenisation, parseable and unparseable actions in the
env, log-probs that a forward pass reproduces, long contexts, and checkpoint loading."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agents import make_vector_env, rollout  # noqa: E402
from agents.chat import IMAGE_PLACEHOLDER, system_prompt  # noqa: E402
from agents.policy import ARGUMENT, OPERATION, Context  # noqa: E402
from agents.tiny_vlm import build_tiny_vlm, save_tiny_vlm  # noqa: E402
from agents.vlm import SamplingConfig, VLMAgent, VLMPolicy  # noqa: E402
from pixelis_env import PixelisEnv, PixelisError, format_action  # noqa: E402
from pixelis_env.actions import BUILTIN_ACTIONS, Action  # noqa: E402
from tests.conftest import square_tasks  # noqa: E402
from tests.test_agents import one_torch_thread  # noqa: E402, F401  (fixture)
from tests.test_rollout import make_env as make_vector_ready_env  # noqa: E402
from tests.test_rollout import untimed  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ZOOM = '<tool_call>{"name": "zoom", "arguments": {"box": [0.25, 0.25, 0.75, 0.75]}}</tool_call>'
GREEDY = SamplingConfig(do_sample=False, max_new_tokens=40)


def make_env() -> PixelisEnv:
    return PixelisEnv(square_tasks(), view_size=64, max_steps=4)


@pytest.fixture(scope="module")
def policy() -> VLMPolicy:
    return VLMPolicy(*build_tiny_vlm(seed=0), make_env().actions.action_types)


def first_two_contexts(env: PixelisEnv) -> list[Context]:
    """The question's context and the one after zooming, of episode seed 0."""
    obs, _ = env.reset(seed=0)
    first = Context()
    first.observe(obs)
    obs, *_ = env.step(ZOOM)
    second = first.copy()
    second.act(ZOOM)
    second.observe(obs)
    return [first, second]


@pytest.fixture(scope="module")
def taught() -> VLMPolicy:
    """A tiny VLM taught (by teacher forcing through ``score``) to zoom, then answer 12."""
    env = make_env()
    policy = VLMPolicy(*build_tiny_vlm(seed=1), env.actions.action_types)
    contexts, texts = first_two_contexts(env), [ZOOM, "<answer>12</answer>"]
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for step in range(1, 301):
        loss = -sum(logprobs.sum() for logprobs in policy.score(contexts, texts).logprobs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0 and [s.text for s in policy.generate(contexts, 40, greedy=True)] == texts:
            return policy
    raise AssertionError("the tiny VLM did not learn two replies in 300 steps")


def example(action_type: type[Action]) -> Action:
    """An action built from each argument kind's example (first of each one-of group)."""
    skipped = {name for group in action_type.one_of for name in group[1:]}
    return action_type(**{k: f.metadata["arg"].example for k, f in action_type.arguments().items() if k not in skipped})


@pytest.mark.parametrize("action_type", BUILTIN_ACTIONS, ids=lambda t: t.name)
def test_tokenizer_round_trips_every_tool_call_exactly(policy: VLMPolicy, action_type: type[Action]) -> None:
    tokenizer = policy.tokenizer
    text = format_action(example(action_type))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_vocabulary_covers_coordinate_bins_and_the_system_prompt(policy: VLMPolicy) -> None:
    tokenizer = policy.tokenizer
    assert tokenizer.tokenize("[0.00, 0.37, 1.00]") == ["[", "0.00", ",", " ", "0.37", ",", " ", "1.00", "]"]
    prompt_ids = tokenizer(system_prompt(BUILTIN_ACTIONS), add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in prompt_ids


def test_unparseable_reply_gives_an_error_observation(policy: VLMPolicy) -> None:
    env = make_env()
    obs, info = env.reset(seed=0)
    agent = VLMAgent(policy, SamplingConfig(max_new_tokens=12))
    agent.reset(obs, info)
    generation = agent.act(obs, info)
    obs, reward, terminated, truncated, info = env.step(generation.action)
    assert info["error"] and obs["text"].startswith("error:")
    assert reward == -env.invalid_penalty and not (terminated or truncated)
    assert info["record"].text_action == generation.text


def test_taught_policy_acts_parseably_and_answers(taught: VLMPolicy) -> None:
    agent = VLMAgent(taught, GREEDY)
    (trajectory,) = rollout(make_env(), agent, seed=0)
    zoom, answer = trajectory.steps
    assert (zoom.text_action, zoom.error, zoom.tool) == (ZOOM, None, "zoom")
    assert zoom.arguments["box"] == [0.25, 0.25, 0.75, 0.75]
    assert trajectory.terminated and trajectory.answer == "12"
    for step in (zoom, answer):  # canonical replies: re-scoring the text matches generation
        assert agent.score(step.prompt_ref, step.text_action) == pytest.approx(step.logprobs, abs=1e-4)


@pytest.mark.parametrize("sampling", [GREEDY, SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=24)],
                         ids=["greedy", "sampled"])
def test_forward_pass_reproduces_generation_logprobs(policy: VLMPolicy, sampling: SamplingConfig) -> None:
    env = make_env()
    agent = VLMAgent(policy, sampling, seed=3)
    for trajectory in rollout(env, agent, episodes=2, seed=0):
        for step in trajectory.steps:
            assert step.logprobs and all(lp <= 0 for lp in step.logprobs)
    obs, info = env.reset(seed=1)
    agent.reset(obs, info)
    generation = agent.act(obs, info)
    recomputed = policy.token_logprobs(agent.context(generation.prompt_ref), generation.token_ids)
    assert recomputed.tolist() == pytest.approx(generation.logprobs, abs=1e-4)
    assert policy.tokenizer.decode(generation.token_ids, skip_special_tokens=True) == generation.text


def test_score_gives_roles_hidden_states_and_grounded_tokens(policy: VLMPolicy) -> None:
    context = first_two_contexts(make_env())[0]
    scored = policy.score([context], [ZOOM])
    n = len(policy.tokenizer(ZOOM, add_special_tokens=False)["input_ids"])
    assert scored.logprobs[0].shape == (n + 1,) and scored.hidden[0].shape == (n + 1, policy.hidden_size)
    assert OPERATION in scored.roles[0].tolist() and ARGUMENT in scored.roles[0].tolist()
    ((kind, token, values),) = scored.grounded[0]
    assert (kind, values) == ("box", [0.25, 0.25, 0.75, 0.75])
    assert policy.tokenizer.convert_ids_to_tokens(policy.tokenizer(ZOOM, add_special_tokens=False)["input_ids"])[
        token] == "["
    with pytest.raises(PixelisError, match="contexts"):
        policy.score([context], [ZOOM, ZOOM])


def test_vision_tokens_are_never_generated() -> None:
    model, processor = build_tiny_vlm(seed=0)
    image_pad = model.config.image_token_id
    with torch.no_grad():
        model.lm_head.weight[image_pad] = 10 * model.lm_head.weight.abs().max()  # the model's favourite token
    policy = VLMPolicy(model, processor, make_env().actions.action_types)
    context = first_two_contexts(make_env())[1]
    (sample,) = policy.generate([context], 16, seed=0)
    assert not set(sample.token_ids) & set(policy.vision_token_ids)
    assert policy.token_logprobs(context, sample.token_ids).tolist() == pytest.approx(sample.logprobs, abs=1e-4)


def test_sampling_repeats_per_seed_and_leaves_the_global_rng_alone(policy: VLMPolicy) -> None:
    env = make_env()
    obs, info = env.reset(seed=0)
    sampling = SamplingConfig(max_new_tokens=16)
    state = torch.random.get_rng_state()
    texts = [VLMAgent(policy, sampling, seed=s).act(obs, info).text for s in (5, 5, 6)]
    assert texts[0] == texts[1] != texts[2]
    assert torch.equal(torch.random.get_rng_state(), state)


def test_vector_rollout_of_spawned_agents_equals_single_env(policy: VLMPolicy) -> None:
    agent = VLMAgent(policy, SamplingConfig(max_new_tokens=12), seed=0)
    single = rollout(make_env(), agent, episodes=3, seed=7)
    envs = make_vector_env([make_vector_ready_env] * 2)
    vector = rollout(envs, [agent.spawn(seed=i) for i in range(2)], episodes=3, seed=7)
    assert untimed(vector) == untimed(single)
    step = vector[2].steps[0]
    assert agent.context(step.prompt_ref).turns[0].text.startswith("How many pixels")


def test_long_contexts_lose_their_oldest_images_first() -> None:
    model, processor = build_tiny_vlm(image_size=112)  # 18 tokens per image, 6 for the placeholder
    context = first_two_contexts(make_env())[1]
    full = VLMPolicy(model, processor, make_env().actions.action_types).prompt_inputs(context)["input_ids"].shape[1]
    tight = VLMPolicy(model, processor, make_env().actions.action_types, max_prompt_tokens=full - 1)
    inputs = tight.prompt_inputs(context)
    assert inputs["input_ids"].shape[1] == full - 12 and inputs["image_grid_thw"].shape[0] == 1
    prompt = tight.tokenizer.decode(inputs["input_ids"][0])
    assert IMAGE_PLACEHOLDER in prompt and prompt.index(IMAGE_PLACEHOLDER) < prompt.index("zoomed to")
    (sample,) = tight.generate([context], 24, temperature=0.8, seed=0)
    assert tight.token_logprobs(context, sample.token_ids).tolist() == pytest.approx(sample.logprobs, abs=1e-4)
    hopeless = VLMPolicy(model, processor, make_env().actions.action_types, max_prompt_tokens=10)
    assert hopeless.prompt_inputs(context)["image_grid_thw"].shape[0] == 1  # the latest view stays


def test_saved_tiny_vlm_loads_like_a_real_checkpoint(tmp_path: Path, policy: VLMPolicy) -> None:
    path = save_tiny_vlm(tmp_path / "tiny-vlm", seed=0)
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    action_types = make_env().actions.action_types
    loaded = VLMAgent.from_pretrained(path, action_types, GREEDY)
    in_memory = VLMAgent(policy, GREEDY)
    obs, info = make_env().reset(seed=0)
    a, b = loaded.act(obs, info), in_memory.act(obs, info)
    assert (a.text, a.token_ids, a.prompt_ref) == (b.text, b.token_ids, b.prompt_ref)
    assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


def test_bad_settings_are_rejected(policy: VLMPolicy) -> None:
    for kwargs in ({"temperature": 0.0}, {"top_p": 0.0}, {"max_new_tokens": 0}):
        with pytest.raises(PixelisError):
            SamplingConfig(**kwargs)
    with pytest.raises(PixelisError):
        VLMPolicy(policy.model, policy.processor, policy.action_types, max_prompt_tokens=0)
    with pytest.raises(PixelisError):
        policy.generate([Context()], max_new_tokens=0)
