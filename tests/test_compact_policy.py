"""The compact policy: grammar tokenizer round-trips, canonical generation, Policy contract."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from agents.compact import CanonicalTracker, CompactConfig, CompactPolicy, GrammarTokenizer, count_parameters  # noqa: E402
from agents.policy import ARGUMENT, OPERATION, Context, Policy, char_roles  # noqa: E402
from agents.policy_agent import PolicyAgent  # noqa: E402
from pixelis_env import Zoom, format_action  # noqa: E402
from pixelis_env.actions import (  # noqa: E402
    Answer,
    Localize,
    Properties,
    ReadText,
    Segment,
    SelectFrames,
    Track,
)
from pixelis_env.errors import ActionError  # noqa: E402

TOKENIZER = GrammarTokenizer(words=("cat", "dog"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: these models are tiny, and on 2 shared cores a second thread only adds contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


unit = st.floats(0, 1, allow_nan=False)
frame = st.integers(0, 400)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    x0, x1 = sorted((draw(unit), draw(unit)))
    y0, y1 = sorted((draw(unit), draw(unit)))
    assume(x1 - x0 > 0.002 and y1 - y0 > 0.002)
    return (x0, y0, x1, y1)


@st.composite
def actions(draw: st.DrawFn) -> str:
    """The canonical text of a random valid action of any built-in kind."""
    makers = [
        lambda: Zoom(box=draw(boxes()), frame=draw(frame)),
        lambda: SelectFrames(frames=draw(st.lists(frame, min_size=1, max_size=8))),
        lambda: SelectFrames(span=sorted(draw(st.lists(st.floats(0, 600), min_size=2, max_size=2, unique=True)))),
        lambda: Segment(point=(draw(unit), draw(unit)), frame=draw(frame)),
        lambda: Segment(box=draw(boxes())),
        lambda: Properties(mask_id=draw(st.integers(0, 10_000))),
        lambda: ReadText(box=draw(boxes())),
        lambda: Track(box=draw(boxes()), start_frame=draw(frame), end_frame=draw(frame),
                      tracker=draw(st.sampled_from(["csrt", "kcf"]))),
        lambda: Localize(box=draw(boxes()), frame=draw(frame)),
        lambda: Answer(text=draw(st.text(min_size=1, max_size=40))),
    ]
    try:
        return format_action(draw(st.sampled_from(makers))())
    except ActionError:
        assume(False)
        raise


def _canonical_by_tracker(ids: list[int]) -> bool:
    tracker = CanonicalTracker(TOKENIZER)
    for token in ids:
        if tracker.mask()[token]:
            return False
        tracker.push(token)
    return True


# ------------------------------------------------------------------ tokenizer
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(actions())
def test_action_texts_round_trip_with_consistent_offsets(text: str) -> None:
    encoding = TOKENIZER.encode(text)
    assert TOKENIZER.decode(encoding.ids) == text
    _check_offsets(text, encoding)
    assert _canonical_by_tracker(encoding.ids)


def _check_offsets(text: str, encoding) -> None:
    """Offsets tile the text; a non-ASCII char's byte tokens all carry that char's offsets."""
    previous = (0, 0)
    for (start, end), token in zip(encoding.offsets, encoding.ids):
        if token < TOKENIZER.byte_offset:
            assert start == previous[1] and text[start:end] == TOKENIZER.tokens[token]
        else:
            assert end == start + 1 and (start == previous[1] or (start, end) == previous)
        previous = (start, end)
    assert previous[1] == len(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_round_trips(text: str) -> None:
    encoding = TOKENIZER.encode(text)
    assert TOKENIZER.decode(encoding.ids) == text
    _check_offsets(text, encoding)
    assert _canonical_by_tracker(encoding.ids)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(3, len(TOKENIZER) - 1), max_size=30))
def test_tokens_allowed_by_the_mask_are_the_canonical_encoding(ids: list[int]) -> None:
    """Any sequence that never picks a forbidden token re-encodes to itself."""
    tracker, kept = CanonicalTracker(TOKENIZER), []
    for token in ids:
        if token != TOKENIZER.eos_id and not tracker.mask()[token]:
            kept.append(token)
            tracker.push(token)
    assert TOKENIZER.encode(TOKENIZER.decode(kept)).ids == kept


def test_grammar_pieces_are_single_tokens() -> None:
    text = format_action(Zoom(box=(0.1234, 0.2, 0.35, 1.0)))
    pieces = [TOKENIZER.tokens[i] for i in TOKENIZER.encode(text).ids]
    assert pieces[:5] == ["<tool_call>", "{", '"name"', ": ", '"zoom"']
    assert pieces[11:15] == ["[", "0.12", "34", ", "]  # 2-decimal bin, the rest after it
    assert "1.0" in pieces and pieces[-1] == "</tool_call>"
    assert [TOKENIZER.tokens[i] for i in TOKENIZER.encode("<answer>dog</answer>").ids] == ["<answer>", "dog",
                                                                                          "</answer>"]


def test_observation_text_is_cut_to_max_tokens() -> None:
    assert len(TOKENIZER.encode("zoomed to " * 50, max_tokens=7).ids) == 7
    assert len(TOKENIZER.encode("é" * 10, max_tokens=3).ids) == 3  # a char's bytes may be split at the cut


def test_tokenizer_is_deterministic_picklable_and_saved_as_json(tmp_path) -> None:
    assert GrammarTokenizer(words=("cat", "dog")).tokens == TOKENIZER.tokens
    assert pickle.loads(pickle.dumps(TOKENIZER)).tokens == TOKENIZER.tokens
    TOKENIZER.save(tmp_path / "tok.json")
    assert GrammarTokenizer.load(tmp_path / "tok.json").tokens == TOKENIZER.tokens
    with pytest.raises(ValueError, match="ASCII"):
        GrammarTokenizer(words=("café",))


# --------------------------------------------------------------------- policy
def _context(seed: int, steps: int = 0) -> Context:
    rng = np.random.default_rng(seed)
    context = Context(meta={"duration": 0.0})
    context.observe({"image": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                     "text": f"How many pixels wide is the red square? ({seed})"})
    for step in range(steps):
        context.act(format_action(Zoom(box=(0.1, 0.1, 0.5, 0.5))))
        context.observe({"image": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                         "text": f"zoomed to [0.1, 0.1, 0.5, 0.5] of frame 0: {20 + step}x20 px"})
    return context


@pytest.fixture(scope="module")
def policy() -> CompactPolicy:
    torch.manual_seed(0)
    return CompactPolicy(CompactConfig(image_size=64, d_model=64, heads=4, ffn=128, encoder_layers=1,
                                       decoder_layers=2, max_action_tokens=48), TOKENIZER).eval()


def test_policy_protocol_and_size(policy: CompactPolicy) -> None:
    assert isinstance(policy, Policy)
    assert policy.hidden_size == 64
    assert 1_000_000 < count_parameters(CompactPolicy()) < 3_000_000


def test_generate_is_deterministic_under_a_seed(policy: CompactPolicy) -> None:
    contexts = [_context(i, steps=i % 2) for i in range(4)]
    first = policy.generate(contexts, max_new_tokens=24, seed=7)
    again = policy.generate(contexts, max_new_tokens=24, seed=7)
    other = policy.generate(contexts, max_new_tokens=24, seed=8)
    assert [s.token_ids for s in first] == [s.token_ids for s in again]
    assert [s.text for s in first] != [s.text for s in other]
    for sample in first:
        assert len(sample.token_ids) == len(sample.logprobs)
        assert sample.text == TOKENIZER.decode(sample.token_ids)


def test_recorded_logprobs_match_score(policy: CompactPolicy) -> None:
    contexts = [_context(i, steps=i % 3) for i in range(6)]
    samples = policy.generate(contexts, max_new_tokens=40, temperature=1.5, top_p=0.9, seed=3)
    scored = policy.score(contexts, [s.text for s in samples])
    for sample, logprobs in zip(samples, scored.logprobs):
        assert TOKENIZER.encode(sample.text).ids == [t for t in sample.token_ids if t != TOKENIZER.eos_id]
        n = len(sample.logprobs)  # n == len(logprobs) - 1 when generation hit max_new_tokens (no eos)
        assert n in (len(logprobs), len(logprobs) - 1)
        np.testing.assert_allclose(sample.logprobs, logprobs[:n].detach().numpy(), atol=1e-5, rtol=0)


def test_batched_and_single_calls_agree(policy: CompactPolicy) -> None:
    contexts = [_context(i, steps=i) for i in range(3)]
    batched = policy.generate(contexts, max_new_tokens=20, greedy=True)
    single = [policy.generate([c], max_new_tokens=20, greedy=True)[0] for c in contexts]
    assert [s.token_ids for s in batched] == [s.token_ids for s in single]
    texts = [format_action(Zoom(box=(0.1, 0.2, 0.3, 0.4))), "<answer>20</answer>", "free text"]
    scored = policy.score(contexts, texts)
    for i, (context, text) in enumerate(zip(contexts, texts)):
        alone = policy.score([context], [text])
        np.testing.assert_allclose(alone.logprobs[0].detach(), scored.logprobs[i].detach(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(alone.hidden[0].detach(), scored.hidden[i].detach(), atol=1e-5, rtol=0)


def test_score_gives_roles_hidden_and_grounded_positions(policy: CompactPolicy) -> None:
    text = format_action(Zoom(box=(0.12, 0.2, 0.35, 0.9)))
    scored = policy.score([_context(0)], [text])
    encoding = TOKENIZER.encode(text)
    n = len(encoding.ids) + 1
    assert scored.logprobs[0].shape == (n,) and scored.hidden[0].shape == (n, 64)
    assert scored.logprobs[0].requires_grad
    roles = scored.roles[0].tolist()
    assert roles[encoding.ids.index(TOKENIZER.ids['"zoom"'])] == OPERATION
    assert roles[encoding.ids.index(TOKENIZER.ids["0.12"])] == ARGUMENT
    assert max(char_roles(text)) == ARGUMENT
    [(kind, index, values)] = scored.grounded[0]
    assert kind == "box" and TOKENIZER.tokens[encoding.ids[index]] == "[" and values == [0.12, 0.2, 0.35, 0.9]


def test_generation_is_capped_at_the_decoder_length(policy: CompactPolicy) -> None:
    [sample] = policy.generate([_context(0)], max_new_tokens=500, seed=0)
    assert len(sample.token_ids) <= policy.config.max_action_tokens
    policy.score([_context(0)], [sample.text])  # whatever was generated can be scored


def test_invalid_generation_arguments_raise(policy: CompactPolicy) -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        policy.generate([_context(0)], max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        policy.generate([_context(0)], temperature=0)
    with pytest.raises(ValueError, match="texts"):
        policy.score([_context(0)], ["a", "b"])


def test_policy_agent_keeps_the_context_and_returns_generations(policy: CompactPolicy, image_env) -> None:
    agent = PolicyAgent(policy, image_env, max_new_tokens=16, seed=1)
    obs, info = image_env.reset(seed=0)
    agent.reset(obs, info)
    generation = agent.act(obs, info)
    assert generation.text == generation.action and len(generation.token_ids) == len(generation.logprobs)
    obs, *_ = image_env.step(generation.action)
    agent.act(obs, info)
    assert len(agent.context.turns) == 2 and len(agent.context.actions) == 2
    assert agent.context.meta["duration"] == 0.0
    with pytest.raises(ValueError, match="heads"):
        PolicyAgent(policy, refine=True)


def test_policy_agent_serves_a_batch_of_envs(policy: CompactPolicy) -> None:
    agent = PolicyAgent(policy, max_new_tokens=12, greedy=True)
    first, second = _context(1), _context(2)
    agent.reset_at(0, {"image": first.turns[0].image, "text": first.question}, {"task_id": "a"})
    agent.reset_at(1, {"image": second.turns[0].image, "text": second.question}, {"task_id": "b"})
    batch = agent.act_batch([0, 1], [{}, {}], [{}, {}])
    assert [g.text for g in batch] == [s.text for s in policy.generate([first, second], 12, greedy=True)]
    assert agent.contexts[1].meta["task_id"] == "b" and agent.contexts[1].actions == [batch[1].text]
