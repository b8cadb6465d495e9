"""The ``letter`` metric: lmms-eval's V*Bench answer-letter extraction, quirks included.

``extract_answer_letter`` reproduces ``lmms_eval/tasks/vstar_bench/utils.py``: a regex
cascade over the upper-cased reply, then "the only A-D letter", then the first
character. So ``"Answer: B"`` scores as ``A`` (the first pattern matches the A of
ANSWER) and ``"red"`` as ``D`` (the only A-D letter in RED), exactly as the reference.
HR-Bench rows use the same scorer as a deterministic stand-in for its LLM judge.
"""

from __future__ import annotations

import re
from typing import Any

LETTER_PATTERNS = (
    r"^([A-D])\s*[\.)\]]*",
    r"(?:THE\s+)?(?:ANSWER|CHOICE|OPTION)(?:\s+IS)?[\s:]+([A-D])",
    r"\(([A-D])\)",
    r"([A-D])\s*(?:\.|\)|])",
    r"(?:^|\s)([A-D])(?:\s|$)",
)


def extract_answer_letter(response: str) -> str | None:
    """The option letter lmms-eval reads from a reply, or ``None``."""
    response = response.strip().upper()
    for pattern in LETTER_PATTERNS:
        match = re.search(pattern, response, re.IGNORECASE)
        if match:
            return match.group(1).upper()
    letters = re.findall(r"[A-D]", response)
    if len(letters) == 1:
        return letters[0]
    if response and response[0] in "ABCD":
        return response[0]
    return None


def letter_accuracy(prediction: str, ground_truth: Any) -> float:
    """1 when the extracted letter equals the label (``"B"``), else 0.

    >>> letter_accuracy("(B) red", "B"), letter_accuracy("Answer: B", "B")
    (1.0, 0.0)
    """
    return float(extract_answer_letter(prediction) == str(ground_truth).strip().upper())
