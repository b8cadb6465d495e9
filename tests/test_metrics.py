"""Scorers against hand-computed values and the reference implementations' quirks."""

from __future__ import annotations

import pytest

from pixelis_env import PixelisError
from pixelis_env.metrics import (
    MRA_THRESHOLDS,
    anls,
    answer_fits,
    box_iou,
    count_accuracy,
    exact_match,
    mean_relative_accuracy,
    option_accuracy,
    parse_span,
    score,
    span_iou,
    temporal_iou,
)


def test_mra_thresholds_are_vsi_benchs():
    assert len(MRA_THRESHOLDS) == 10
    assert MRA_THRESHOLDS[0] == pytest.approx(0.5) and MRA_THRESHOLDS[-1] == pytest.approx(0.95)


@pytest.mark.parametrize(("pred", "gt", "expected"), [
    ("10", 10, 1.0),
    ("11", 10, 0.9),        # error 0.1 <= 1 - theta for theta <= 0.9: 9 of 10
    ("15", 10, 0.1),        # error 0.5 passes theta = 0.5 only
    ("1.5", 1.2, 0.5),      # float rounding: 0.25 error, the reference gives 0.5
    ("120", 150, 0.6),      # the reference gives 0.6, not the 0.7 of exact decimals
    ("30", 10, 0.0),
    ("ten", 10, 0.0),
    ("10 metres", 10, 1.0), # only the first token counts
    ("10.", 10, 1.0),
])
def test_mean_relative_accuracy(pred, gt, expected):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(expected)


@pytest.mark.parametrize(("pred", "gt", "expected"), [
    ("B", "B", 1.0), ("b", "B", 1.0), ("B.", "B", 1.0), ("B. lamp", "B", 1.0),
    ("The answer is B", "B", 0.0), ("(B)", "B", 0.0), ("C", "B", 0.0),
])
def test_option_accuracy_follows_vsi_fuzzy_matching(pred, gt, expected):
    assert option_accuracy(pred, gt) == expected


def test_anls_reference_vectors():
    assert anls("1250", "1,250.00") == pytest.approx(0.5)   # distance 4 over raw length 8, kept at 0.5
    assert anls("nikon", ["Nikon", "canon"]) == 1.0
    assert anls("nikn", "nikon") == pytest.approx(0.8)
    assert anls("abc", "xyz") == 0.0


def test_span_parsing_and_iou():
    assert parse_span("from 2.5 to 7") == (2.5, 7.0)
    assert parse_span("7 - 2.5") == (2.5, 7.0)
    assert parse_span("no idea") is None
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert span_iou("0-10", (5, 15)) == pytest.approx(1 / 3)
    assert span_iou("nothing", (5, 15)) == 0.0


def test_exact_count_and_box_iou():
    assert exact_match("  Stop   Sign ", ["stop sign"]) == 1.0
    assert exact_match("stop", "stop sign") == 0.0
    assert count_accuracy("five", 5) == 1.0 and count_accuracy("5.", 5) == 0.0
    assert count_accuracy("There are 5 apples.", 5) == 0.0
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)


def test_score_dispatch_and_unknown_metric():
    assert score("mra", "10", 10) == 1.0
    with pytest.raises(PixelisError, match="Did you mean `mra`"):
        score("mr", "1", 1)


@pytest.mark.parametrize("answer_type, prediction, fits", [
    ("choice", "B", True), ("choice", "(c).", True), ("choice", "4.5-7.25", False), ("choice", "BC", False),
    ("number", "2.394", True), ("number", " 12 ", True), ("number", "A", False), ("number", "1-3", False),
    ("span", "4.5-7.25", True), ("span", "1 - 3", True), ("span", "B", False), ("span", "3.5", False),
    ("text", "EXIT 12", True), ("text", " ", False),
])
def test_answer_fits_tells_the_form_a_question_asks_for(answer_type, prediction, fits):
    assert answer_fits(answer_type, prediction) is fits
