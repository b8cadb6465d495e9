"""The test-time safety corridor: an EMA teacher, an adaptive KL coefficient, rollback.

* :class:`WeightSnapshot` copies a policy's *trainable* parameters (all of them for the
  compact policy; only the adapters under LoRA), can swap them into the policy for a
  scoring pass, and can restore them exactly. The RFT reference policy and the TTRL
  teacher are snapshots, so neither needs a second copy of the model.
* :class:`EMATeacher`: a float32 exponential moving average of the policy's weights.
* :class:`KLCorridor`: after each test-time update, the measured KL(policy || teacher)
  should lie in ``[low, high]``. Above it beta is multiplied by ``factor``, below it
  divided (within ``[beta_min, beta_max]``); above ``high * (1 + tolerance)`` the update
  is rolled back to the last good weights (and optimiser state). A KL below the
  corridor only lowers beta: the policy staying close to its teacher is never undone.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def trainable(module: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters an optimiser updates (``requires_grad``), by name."""
    return {name: p for name, p in module.named_parameters() if p.requires_grad}


class WeightSnapshot:
    """A copy of a module's trainable parameters (``dtype`` float32 keeps EMA precision)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype | None = None) -> None:
        with torch.no_grad():
            self.tensors = {name: p.detach().clone().to(dtype or p.dtype) for name, p in trainable(module).items()}

    def load_into(self, module: nn.Module) -> None:
        """Write the snapshot into ``module``'s parameters (exactly, when dtypes match)."""
        params = trainable(module)
        if params.keys() != self.tensors.keys():
            raise ValueError("the snapshot was taken of a module with different trainable parameters")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.tensors[name])

    @contextlib.contextmanager
    def swapped_in(self, module: nn.Module) -> Iterator[nn.Module]:
        """Temporarily give ``module`` the snapshot's weights (for scoring under no_grad)."""
        current = WeightSnapshot(module)
        self.load_into(module)
        try:
            yield module
        finally:
            current.load_into(module)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.cpu() for name, t in self.tensors.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if state.keys() != self.tensors.keys():
            raise ValueError("saved snapshot names differ from this module's trainable parameters")
        self.tensors = {name: state[name].to(t.device, t.dtype) for name, t in self.tensors.items()}


class EMATeacher(WeightSnapshot):
    """``teacher <- decay * teacher + (1 - decay) * policy`` after each kept update."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        super().__init__(module, torch.float32)
        self.decay = float(decay)

    def update(self, module: nn.Module) -> None:
        with torch.no_grad():
            for name, p in trainable(module).items():
                self.tensors[name].lerp_(p.detach().to(torch.float32), 1.0 - self.decay)


@dataclass
class Decision:
    """What the corridor did after one update."""

    kl: float
    beta: float
    rollback: bool
    side: str
    """``inside``, ``above`` or ``below`` the corridor."""


class KLCorridor:
    """Adaptive beta and rollback for test-time updates (see the module docstring).

    Call :meth:`remember` with the weights to fall back to (before an update), then
    :meth:`judge` with the KL measured after it.
    """

    def __init__(self, low: float, high: float, beta: float, factor: float = 1.5, tolerance: float = 0.5,
                 beta_min: float = 1e-4, beta_max: float = 10.0) -> None:
        if not 0.0 <= low < high:
            raise ValueError(f"the KL corridor needs 0 <= low < high, got [{low}, {high}]")
        if factor <= 1.0 or tolerance < 0.0 or not 0.0 < beta_min <= beta <= beta_max:
            raise ValueError("need factor > 1, tolerance >= 0 and 0 < beta_min <= beta <= beta_max")
        self.low, self.high, self.beta = float(low), float(high), float(beta)
        self.factor, self.tolerance = float(factor), float(tolerance)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.rollbacks = 0
        self._good: WeightSnapshot | None = None
        self._good_optimizer: dict[str, Any] | None = None

    def remember(self, module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Keep the current weights (and optimiser state) as the last good ones."""
        self._good = WeightSnapshot(module)
        self._good_optimizer = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None

    def judge(self, kl: float, module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Decision:
        """Adapt beta to ``kl``; roll ``module`` (and ``optimizer``) back when it is far above."""
        side = "above" if kl > self.high else "below" if kl < self.low else "inside"
        if side == "above":
            self.beta = min(self.beta * self.factor, self.beta_max)
        elif side == "below":
            self.beta = max(self.beta / self.factor, self.beta_min)
        rollback = not kl <= self.high * (1 + self.tolerance)  # a NaN KL rolls back too
        if rollback:
            self.rollback(module, optimizer)
        return Decision(kl=kl, beta=self.beta, rollback=rollback, side=side)

    def rollback(self, module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        if self._good is None:
            raise RuntimeError("rollback before any weights were remembered")
        self._good.load_into(module)
        if optimizer is not None and self._good_optimizer is not None:
            optimizer.load_state_dict(copy.deepcopy(self._good_optimizer))  # never alias the saved state
        self.rollbacks += 1
