"""Trajectory voting rules on hand-built episodes, with hand-computed weights."""

from __future__ import annotations

import pytest

from pixelis_env.trajectory import StepRecord
from training.voting import (
    Attempt,
    Evidence,
    VoteRule,
    agreement,
    attempt_from_steps,
    evidence,
    normalise_answer,
    vote,
)

LEFT = [0.0, 0.0, 0.5, 0.5]
SHIFTED = [0.25, 0.0, 0.75, 0.5]  # IoU with LEFT: 0.125 / 0.375 = 1/3
FAR = [0.5, 0.5, 1.0, 1.0]  # IoU with LEFT: 0


def zoom(box: list[float], frame: int = 0) -> tuple[str, dict]:
    return ("zoom", {"box": box, "frame": frame})


def test_answers_are_normalised_for_grouping() -> None:
    assert normalise_answer("  Red. ") == normalise_answer("red") == "red"
    assert normalise_answer("(B)") == normalise_answer("b. right") == normalise_answer("B") == "b"
    assert normalise_answer("12.0") == normalise_answer("12") == "12"
    assert normalise_answer("a cat") == "a cat"
    assert normalise_answer("") is None and normalise_answer(None) is None


def test_evidence_keys_boxes_by_frame_and_collects_frames_and_spans() -> None:
    found = evidence(Attempt("x", [zoom(LEFT, frame=3), ("segment", {"point": [0.5, 0.5], "frame": 0}),
                                   ("select_frames", {"frames": [1, 2]}), ("select_frames", {"span": [1.0, 2.0]}),
                                   ("track", {"box": FAR, "start_frame": 4, "end_frame": 9, "tracker": "csrt"})]))
    assert found.boxes[0] == (3, tuple(LEFT))
    assert found.boxes[1] == (0, pytest.approx((0.45, 0.45, 0.55, 0.55)))  # a point is a 0.1 box
    assert found.boxes[2] == (4, tuple(FAR))  # a tracked box sits on its start frame
    assert found.frames == {1, 2, 4, 9} and found.spans == ((1.0, 2.0),)
    # on an image every call has frame 0: that alone is no evidence
    assert evidence(Attempt("x", [zoom(LEFT)])).frames == frozenset()


def test_agreement_by_hand() -> None:
    left, shifted, far = (Evidence(boxes=((0, tuple(b)),)) for b in (LEFT, SHIFTED, FAR))
    assert agreement(left, left) == 1.0
    assert agreement(left, shifted) == pytest.approx(1 / 3)
    assert agreement(left, far) == 0.0
    assert agreement(left, Evidence(boxes=((1, tuple(LEFT)),))) == 0.0  # same box, another frame
    assert agreement(Evidence(), Evidence()) == 1.0  # nothing contradicts
    assert agreement(left, Evidence()) == 0.0
    # matched IoU, both ways: {LEFT, FAR} vs {LEFT}: (1 + 0) / 2 forward, 1 backward -> 0.75
    assert agreement(Evidence(boxes=((0, tuple(LEFT)), (0, tuple(FAR)))), left) == pytest.approx(0.75)
    # kinds are averaged: boxes agree (1), frames Jaccard {1,2} vs {2,3} = 1/3, spans IoU [0,2] vs [1,3] = 1/3
    a = Evidence(boxes=((0, tuple(LEFT)),), frames=frozenset({1, 2}), spans=((0.0, 2.0),))
    b = Evidence(boxes=((0, tuple(LEFT)),), frames=frozenset({2, 3}), spans=((1.0, 3.0),))
    assert agreement(a, b) == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)


def test_trajectory_weights_by_hand() -> None:
    """red: two episodes on the same box; blue: two episodes on disjoint boxes.

    length_penalty 0.25, one call each: shortness 1 / 1.25 = 0.8. red fidelity 1 -> weight
    (0.1 + 0.9) * 0.8 = 0.8; blue fidelity 0 -> 0.1 * 0.8 = 0.08. Share 1.6 / 1.76.
    """
    attempts = [Attempt("red", [zoom(LEFT)]), Attempt("blue", [zoom(LEFT)]), Attempt("red", [zoom(LEFT)]),
                Attempt("blue", [zoom(FAR)])]
    result = vote(attempts, VoteRule(threshold=0.6))
    assert result.fidelity == [1.0, 0.0, 1.0, 0.0]
    assert result.weights == pytest.approx([0.8, 0.08, 0.8, 0.08])
    assert result.groups == {"red": [0, 2], "blue": [1, 3]}
    assert (result.label, result.accepted, result.exemplar) == ("red", True, 0)
    assert result.share == pytest.approx(1.6 / 1.76)


def test_answer_voting_is_a_plain_majority() -> None:
    attempts = [Attempt("red", [zoom(LEFT)]), Attempt("blue", [zoom(LEFT)]), Attempt("red", [zoom(LEFT)]),
                Attempt("blue", [zoom(FAR)])]
    result = vote(attempts, VoteRule(mode="answer", threshold=0.6))
    assert result.weights == [1.0] * 4 and result.share == 0.5
    assert (result.label, result.accepted) == ("red", False)  # a tie: first seen, below threshold
    assert vote(attempts[:3], VoteRule(mode="answer", threshold=0.6)).accepted  # 2 of 3


def test_shortness_and_unanswered_episodes_count() -> None:
    """No evidence anywhere: fidelity 1 within groups, so weights are shortness only.

    Answer-only "3": 1.0; "4" after 2 calls: 1 / 1.5; unanswered after 1 call: floor 0.1 * 0.8.
    """
    rule = VoteRule(threshold=0.5)
    attempts = [Attempt("3"), Attempt("3"), Attempt("4", [("read_text", {}), ("read_text", {})]),
                Attempt("4", [("read_text", {}), ("read_text", {})]), Attempt(None, [("read_text", {})])]
    result = vote(attempts, rule)
    assert result.weights == pytest.approx([1.0, 1.0, 1 / 1.5, 1 / 1.5, 0.08])
    assert result.label == "3" and result.share == pytest.approx(2 / (2 + 2 / 1.5 + 0.08))
    assert vote([Attempt(None), Attempt(None)], rule).label is None


def test_exemplar_is_the_shortest_high_fidelity_member() -> None:
    """Members 0 and 1 agree (fidelity ~0.5 each, the group of three); 2 is off alone."""
    attempts = [Attempt("red", [zoom(LEFT), zoom(LEFT)]), Attempt("red", [zoom(LEFT)]),
                Attempt("red", [zoom(FAR)])]
    result = vote(attempts, VoteRule(fidelity_slack=0.1))
    assert result.fidelity == pytest.approx([0.5, 0.5, 0.0])
    assert result.exemplar == 1  # as faithful as 0 and shorter; 2 is shorter still but unfaithful
    assert vote([Attempt("red", [zoom(LEFT)])], VoteRule()).fidelity == [0.5]  # lone member


def test_attempts_read_only_what_the_agent_did() -> None:
    def record(step: int, tool: str | None, arguments: dict | None, error: str | None = None) -> StepRecord:
        return StepRecord(step=step, tool=tool, arguments=arguments, text_action=None, observation="", reward=9.0,
                          reward_terms={"task": 9.0}, error=error)

    steps = [record(1, None, None, "bad json"), record(2, "zoom", {"box": LEFT, "frame": 0}),
             record(3, "zoom", {"box": FAR, "frame": 0}, "box too small"), record(4, "answer", {"text": " Red."})]
    assert attempt_from_steps(steps) == Attempt("red", [("zoom", {"box": LEFT, "frame": 0})])


def test_rule_checks() -> None:
    with pytest.raises(ValueError, match="mode"):
        VoteRule(mode="majority")
    with pytest.raises(ValueError, match="threshold"):
        VoteRule(threshold=0.0)
    with pytest.raises(ValueError, match="at least one"):
        vote([])
