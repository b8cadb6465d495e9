"""Auxiliary heads: regress each grounded argument from the hidden state that opens it.

For every ``box``/``point``/``span`` argument of a target action, the policy's hidden
state at the token opening the value (``Scored.grounded``) goes through a small MLP
that predicts the values directly: box ``[x0, y0, x1, y1]`` and point ``[x, y]`` in
frame fractions, span ``[start, end]`` as fractions of the video's duration
(``Context.meta["duration"]``). Losses: L1 + (1 - IoU) for boxes, L1 + (1 - 1D IoU)
for spans, L1 for points. The heads supervise exactly the state that must know *where*
the object is before the coordinates are written, which is what makes small models
ground (DESIGN.md section 10). At inference :meth:`AuxHeads.refine` can replace the
decoded values with the heads' predictions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from agents.policy import GROUNDED_KINDS, Context, Scored, grounded_arguments

MIN_SIDE = 0.01
"""Smallest box side / span length (in fractions) a refined argument is widened to."""


class AuxHeads(nn.Module):
    """One MLP per grounded kind, over a policy's hidden states (``hidden_size``)."""

    def __init__(self, hidden_size: int, width: int = 128) -> None:
        super().__init__()
        self.hidden_size, self.width = int(hidden_size), int(width)
        self.heads = nn.ModuleDict({
            kind: nn.Sequential(nn.Linear(hidden_size, width), nn.GELU(), nn.Linear(width, size))
            for kind, size in GROUNDED_KINDS.items()})

    def forward(self, kind: str, hidden: torch.Tensor) -> torch.Tensor:
        """Predicted values in [0, 1] (fractions of the frame or of the duration), ``[N, size]``."""
        return torch.sigmoid(self.heads[kind](hidden))

    def loss(self, scored: Scored, contexts: Sequence[Context]) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean per-argument loss over every grounded argument in the batch (0 when there are none)."""
        inputs, targets = grounded_targets(scored, contexts)
        total, count, terms = None, 0, {}
        for kind, hidden in inputs.items():
            predicted = self(kind, hidden)
            per_item = argument_loss(kind, predicted, targets[kind])
            terms[f"aux_{kind}"] = float(per_item.detach().mean())
            total = per_item.sum() if total is None else total + per_item.sum()
            count += len(per_item)
        if total is None:
            reference = scored.logprobs[0] if scored.logprobs else torch.zeros(())
            return reference.sum() * 0.0, terms
        return total / count, terms

    @torch.no_grad()
    def predict(self, scored: Scored, contexts: Sequence[Context]) -> list[list[tuple[str, list[float]]]]:
        """Per text, ``(kind, values)`` for each grounded argument, in the action's units."""
        out = []
        for hidden, grounded, context in zip(scored.hidden, scored.grounded, contexts):
            row = []
            for kind, index, _values in grounded:
                fractions = self(kind, hidden[index][None])[0].tolist()
                row.append((kind, to_units(kind, fractions, context.meta)))
            out.append(row)
        return out

    @torch.no_grad()
    def refine(self, text: str, scored: Scored, context: Context) -> str:
        """``text`` with each grounded value replaced by the heads' prediction (2 decimals).

        ``scored`` is the policy's score of ``[text]`` in ``[context]``. Values come out
        ordered, inside the frame and at least :data:`MIN_SIDE` wide; spans need a
        known duration and are left alone otherwise.
        """
        located = grounded_arguments(text)
        predicted = self.predict(scored, [context])[0]
        if len(located) != len(predicted):
            return text
        for (kind, start, _old), (_kind, values) in sorted(zip(located, predicted), key=lambda p: -p[0][1]):
            if kind == "span" and not context.meta.get("duration"):
                continue
            end = text.index("]", start) + 1
            text = text[:start] + json.dumps(tidy(kind, values, context.meta)) + text[end:]
        return text


def grounded_targets(scored: Scored, contexts: Sequence[Context]
                     ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Hidden states and normalised targets per kind; spans without a duration are skipped."""
    hidden: dict[str, list[torch.Tensor]] = {}
    targets: dict[str, list[list[float]]] = {}
    for states, grounded, context in zip(scored.hidden, scored.grounded, contexts):
        for kind, index, values in grounded:
            fractions = to_fractions(kind, values, context.meta)
            if fractions is None:
                continue
            hidden.setdefault(kind, []).append(states[index])
            targets.setdefault(kind, []).append(fractions)
    return ({k: torch.stack(v) for k, v in hidden.items()},
            {k: torch.tensor(targets[k], dtype=hidden[k][0].dtype) for k in hidden})


def to_fractions(kind: str, values: Sequence[float], meta: dict[str, Any]) -> list[float] | None:
    if kind != "span":
        return [float(v) for v in values]
    duration = float(meta.get("duration") or 0.0)
    if duration <= 0:
        return None
    return [min(max(float(v) / duration, 0.0), 1.0) for v in values]


def to_units(kind: str, fractions: Sequence[float], meta: dict[str, Any]) -> list[float]:
    """Head outputs back to the action's units (seconds for spans)."""
    if kind != "span":
        return list(fractions)
    duration = float(meta.get("duration") or 0.0)
    return [f * duration for f in fractions]


def tidy(kind: str, values: Sequence[float], meta: dict[str, Any]) -> list[float]:
    """Round to 2 decimals and make the argument valid for the grammar (ordered, non-empty)."""
    if kind == "point":
        return [round(min(max(v, 0.0), 1.0), 2) for v in values]
    if kind == "box":
        x0, x1 = _ordered(values[0], values[2], 0.0, 1.0, MIN_SIDE)
        y0, y1 = _ordered(values[1], values[3], 0.0, 1.0, MIN_SIDE)
        return [x0, y0, x1, y1]
    duration = float(meta.get("duration") or 0.0)
    start, end = _ordered(values[0], values[1], 0.0, duration, max(MIN_SIDE * duration, 0.01))
    return [start, end]


def _ordered(a: float, b: float, low: float, high: float, min_gap: float) -> tuple[float, float]:
    a, b = sorted((min(max(a, low), high), min(max(b, low), high)))
    a, b = round(a, 2), round(b, 2)
    if b - a < min_gap:
        b = round(min(a + min_gap, high), 2)
        a = round(max(b - min_gap, low), 2)
    return a, b


def argument_loss(kind: str, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-argument loss ``[N]``: L1 (+ 1 - IoU for boxes and spans)."""
    l1 = (predicted - target).abs().mean(-1)
    if kind == "box":
        return l1 + 1.0 - box_iou(predicted, target)
    if kind == "span":
        return l1 + 1.0 - span_iou(predicted, target)
    return l1


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``[..., 4]`` boxes ``x0, y0, x1, y1`` (unordered corners count as empty)."""
    width = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    height = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(min=0)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    return inter / (area_a + area_b - inter).clamp(min=1e-8)


def span_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1D IoU of ``[..., 2]`` spans."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = (a[..., 1] - a[..., 0]).clamp(min=0) + (b[..., 1] - b[..., 0]).clamp(min=0) - inter
    return inter / union.clamp(min=1e-8)
