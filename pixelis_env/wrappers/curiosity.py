"""``CuriosityReward``: the prediction error of a learned forward model of the tools.

A small MLP predicts ``phi(obs_t+1)`` from ``phi(obs_t)`` and the executed call (tool
one-hot plus its normalised numeric arguments), optionally with an inverse-dynamics
head that names the tool from ``(phi_t, phi_t+1)`` so the shared input layer keeps what
tells tools apart. The term is the error z-scored by a running (exponential) mean and
std of recent errors, clipped to ``[0, clip]``: only transitions *more* surprising than
usual earn, familiar ones earn 0 rather than a penalty. Without the centring every
call would earn about the same bonus, a flat pay-per-call that fights the efficiency
prior; without the floor, the lag of the running mean while the model improves would
make most calls cost.

Learning happens at episode boundaries: the finished episode's transitions go into a
replay buffer, the model takes ``updates_per_step`` SGD steps per transition, and the
normaliser absorbs the episode's errors. Within an episode the reward is a pure
function of the transition, so a seeded reset replays identically (``check_env``), and
an episode abandoned by a reset before it ends is not learned from. The answer and
error steps earn 0 and are not learned from: they show no new pixels.

torch is imported when a wrapper is built, so ``import pixelis_env`` stays torch-free.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import cv2
import gymnasium as gym
import numpy as np

from pixelis_env.action_space import SpaceLimits
from pixelis_env.actions import (
    MAX_SELECTED_FRAMES,
    Action,
    BoxArg,
    ChoiceArg,
    FrameArg,
    FrameListArg,
    MaskIdArg,
    PointArg,
    SpanArg,
)
from pixelis_env.errors import PixelisError
from pixelis_env.wrappers.reward_term import RewardTerm, StepView
from pixelis_env.wrappers.vector_observation import hashed_bag_of_words

Phi = Callable[[Any], np.ndarray]
T = TypeVar("T")


class ObservationFeatures:
    """The default ``phi``: colour and gradient histograms, a thumbnail, hashed words of the text.

    Cheap (tens of microseconds on a 224 px view) and fixed, so the forward model's
    targets do not drift; histograms capture *what* is in view, the thumbnail *where*,
    the words what the tool said (OCR lines, measurements, errors).
    """

    def __init__(self, text_dims: int = 64, colour_bins: int = 4, orientation_bins: int = 8, thumb: int = 4,
                 side: int = 32) -> None:
        self.text_dims, self.colour_bins = int(text_dims), int(colour_bins)
        self.orientation_bins = int(orientation_bins)
        self.thumb, self.side = int(thumb), int(side)

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        text = obs["text"]
        if not isinstance(text, str):
            raise PixelisError("ObservationFeatures reads the base env's text observation; put the reward "
                               "wrappers directly on the env (inside VectorObservation) or pass your own phi")
        small = cv2.resize(obs["image"], (self.side, self.side), interpolation=cv2.INTER_AREA)
        return np.concatenate([self._colours(small), self._gradients(small),
                               cv2.resize(small, (self.thumb, self.thumb), interpolation=cv2.INTER_AREA)
                               .ravel().astype(np.float32) / 255.0,
                               hashed_bag_of_words(text, self.text_dims)]).astype(np.float32)

    def _colours(self, image: np.ndarray) -> np.ndarray:
        bins = self.colour_bins
        q = (image.reshape(-1, 3) // (256 // bins)).astype(np.int64)
        counts = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3)
        return (counts / counts.sum()).astype(np.float32)

    def _gradients(self, image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        magnitude, angle = cv2.cartToPolar(gx, gy)
        index = (angle.ravel() / (2 * math.pi) * self.orientation_bins).astype(np.int64) % self.orientation_bins
        hist = np.bincount(index, weights=magnitude.ravel(), minlength=self.orientation_bins)
        return (hist / (hist.sum() + 1e-6)).astype(np.float32)


class ActionFeatures:
    """A call as a vector: tool one-hot, then its numeric arguments in ``[0, 1]`` in slots by kind.

    Works on the JSON arguments the env records, so typed, text and flat actions that
    executed the same call get the same features. Non-numeric arguments (the answer
    text) have no slot.
    """

    SLOTS = {"box": 4, "point": 2, "frame": 2, "frames": MAX_SELECTED_FRAMES, "span": 2, "mask_id": 1, "choice": 1}

    def __init__(self, action_types: Sequence[type[Action]], limits: SpaceLimits) -> None:
        self.tools = [t.name for t in action_types]
        self.types = {t.name: t for t in action_types}
        self.limits = limits
        self.offsets: dict[str, int] = {}
        start = len(self.tools)
        for key, size in self.SLOTS.items():
            self.offsets[key] = start
            start += size
        self.dim = start

    def __call__(self, tool: str, arguments: Mapping[str, Any]) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        v[self.tools.index(tool)] = 1.0
        frame_slot = 0
        for key, f in self.types[tool].arguments().items():
            kind, value = f.metadata["arg"], arguments.get(key)
            if value is None:
                continue
            if isinstance(kind, FrameArg):
                v[self.offsets["frame"] + min(frame_slot, 1)] = value / max(self.limits.max_frames - 1, 1)
                frame_slot += 1
                continue
            values, slot = self._numeric(kind, value)
            if slot is not None:
                v[self.offsets[slot]: self.offsets[slot] + len(values)] = values
        return v

    def _numeric(self, kind: Any, value: Any) -> tuple[list[float], str | None]:
        if isinstance(kind, (BoxArg, PointArg)):
            return [float(x) for x in value], kind.kind
        if isinstance(kind, FrameListArg):
            padded = list(value) + [value[-1]] * (MAX_SELECTED_FRAMES - len(value))
            return [x / max(self.limits.max_frames - 1, 1) for x in padded], "frames"
        if isinstance(kind, SpanArg):
            return [min(float(x) / self.limits.max_seconds, 1.0) for x in value], "span"
        if isinstance(kind, MaskIdArg):
            return [min(value / max(self.limits.max_masks - 1, 1), 1.0)], "mask_id"
        if isinstance(kind, ChoiceArg):
            return [(kind.choices.index(value) + 0.5) / len(kind.choices)], "choice"
        return [], None


class RunningStats:
    """Exponential moving mean and variance, so the scale follows a model that keeps learning."""

    def __init__(self, decay: float) -> None:
        self.decay = float(decay)
        self.mean = self.var = 0.0
        self.count = 0

    def update(self, x: float) -> None:
        if self.count == 0:
            self.mean, self.var = x, 0.0
        else:
            delta = x - self.mean
            self.mean += (1 - self.decay) * delta
            self.var = self.decay * (self.var + (1 - self.decay) * delta * delta)
        self.count += 1

    def surprise(self, x: float, clip: float) -> float:
        """``(x - mean) / std`` clipped to ``[0, clip]``; 0 before any statistics exist."""
        if self.count == 0:
            return 0.0
        z = (x - self.mean) / max(math.sqrt(self.var), 1e-8)
        return min(max(z, 0.0), clip)


@contextmanager
def _one_thread(torch: Any) -> Iterator[None]:
    """Run torch single-threaded, then restore the caller's setting.

    The model is tiny, so intra-op threads buy nothing, and they cost twice: on a busy
    machine they wait for each other and make every op 10-100x slower (a 128x184 @
    184x64 matmul: 93 us on one thread, 7 ms on two with the cores shared); and once
    a process has started its OpenMP pool, a forked child (``AsyncVectorEnv``) that
    enters a parallel region hangs. Single-threaded, the wrapper never starts the pool.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _single_threaded(method: Callable[..., T]) -> Callable[..., T]:
    """Decorate a :class:`CuriosityReward` method that runs torch ops (see :func:`_one_thread`)."""
    @functools.wraps(method)
    def run(self: CuriosityReward, *args: Any, **kwargs: Any) -> T:
        with _one_thread(self.torch):
            return method(self, *args, **kwargs)
    return run


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise PixelisError("CuriosityReward needs torch: pip install 'pixelis-env[torch]'") from exc
    return torch


class CuriosityReward(RewardTerm, gym.utils.RecordConstructorArgs):
    """Pay for transitions a learned forward model did not predict (see the module docstring).

    Args:
        env: a Pixelis env (possibly wrapped by other reward terms).
        coef: scale of the clipped z-score (0 disables the term and all learning).
        phi: observation -> 1-D float array; default :class:`ObservationFeatures`. Any
            encoder works (e.g. a policy's), as long as it returns a fixed size.
        hidden: width of the MLPs.
        lr: Adam learning rate.
        inverse_coef: weight of the inverse-dynamics loss (0: no inverse head).
        buffer_size: transitions kept for replay.
        batch_size: transitions per SGD step.
        updates_per_step: SGD steps per learned transition, rounded up per episode (few, large
            batches: at this size torch's per-call overhead dominates the cost).
        clip: upper bound of the term before ``coef`` (the z-score is clipped to ``[0, clip]``).
        stats_decay: decay of the running error statistics.
        seed: seeds the model's initial weights and the replay sampling (default: drawn from
            torch's global RNG).
    """

    term_name = "curiosity"

    def __init__(self, env: gym.Env, coef: float = 0.03, phi: Phi | None = None, hidden: int = 64,
                 lr: float = 1e-3, inverse_coef: float = 0.1, buffer_size: int = 2048, batch_size: int = 128,
                 updates_per_step: float = 0.25, clip: float = 2.0, stats_decay: float = 0.97,
                 seed: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, _disable_deepcopy=True, coef=coef, phi=phi, hidden=hidden, lr=lr, inverse_coef=inverse_coef,
            buffer_size=buffer_size, batch_size=batch_size, updates_per_step=updates_per_step, clip=clip,
            stats_decay=stats_decay, seed=seed)
        RewardTerm.__init__(self, env, coef)
        if min(hidden, buffer_size, batch_size) < 1 or updates_per_step <= 0 or clip <= 0 or not 0 <= stats_decay < 1:
            raise PixelisError("hidden, buffer_size and batch_size must be >= 1, updates_per_step and clip > 0, and "
                               "0 <= stats_decay < 1")
        self.torch = _torch()
        self.phi: Phi = phi or ObservationFeatures()
        base = env.unwrapped
        self.action_features = ActionFeatures(base.actions.action_types, base.actions.limits)
        self.feature_dim = len(self._features(self.observation_space.sample()))
        self.lr, self.inverse_coef, self.clip = float(lr), float(inverse_coef), float(clip)
        self.batch_size, self.updates_per_step = int(batch_size), float(updates_per_step)
        self.stats = RunningStats(stats_decay)
        self._build(int(hidden), int(buffer_size), seed)
        self.last_error: float | None = None
        self._phi_t = np.zeros(self.feature_dim, np.float32)
        self._episode: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, float]] = []

    @_single_threaded
    def _build(self, hidden: int, buffer_size: int, seed: int | None) -> None:
        torch, nn = self.torch, self.torch.nn
        n_tools, act_dim = len(self.action_features.tools), self.action_features.dim
        if seed is None:  # follow torch's global RNG, as a plain nn.Linear would
            seed = int(torch.randint(2**62, ()).item())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            modules = {
                "encoder": nn.Sequential(nn.Linear(self.feature_dim, hidden), nn.ReLU()),
                "dynamics": nn.Sequential(nn.Linear(hidden + act_dim, hidden), nn.ReLU(),
                                         nn.Linear(hidden, self.feature_dim)),
            }
            if self.inverse_coef > 0:
                modules["inverse"] = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_tools))
            self.model = nn.ModuleDict(modules)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.buffer = {"phi": torch.zeros(buffer_size, self.feature_dim), "action": torch.zeros(buffer_size, act_dim),
                       "next_phi": torch.zeros(buffer_size, self.feature_dim),
                       "tool": torch.zeros(buffer_size, dtype=torch.long)}
        self.buffer_size, self.buffer_len, self.buffer_pos = buffer_size, 0, 0

    def _features(self, obs: Any) -> np.ndarray:
        features = np.asarray(self.phi(obs), np.float32)
        if features.ndim != 1 or not np.isfinite(features).all():
            raise PixelisError(f"phi must return a finite 1-D array, got shape {features.shape}")
        return features

    # ------------------------------------------------------------ reward
    def begin_episode(self, obs: Any, info: dict[str, Any]) -> None:
        self._phi_t = self._features(obs)
        self._episode = []

    def compute(self, step: StepView) -> float:
        value = 0.0
        if step.is_tool_call:
            phi_next = self._features(step.next_obs)
            value = self._surprise(step, phi_next)
            self._phi_t = phi_next
        elif not step.done:  # an error step changes the text the next call is made from
            self._phi_t = self._features(step.next_obs)
        if step.done:
            self._learn_episode()
        return value

    @_single_threaded
    def _surprise(self, step: StepView, phi_next: np.ndarray) -> float:
        action = self.action_features(step.tool, step.arguments or {})
        tool = self.action_features.tools.index(step.tool)
        torch = self.torch
        with torch.no_grad():
            error = float(self._losses(torch.from_numpy(self._phi_t)[None], torch.from_numpy(action)[None],
                                       torch.from_numpy(phi_next)[None])[0][0])
        self.last_error = error
        self._episode.append((self._phi_t, action, phi_next, tool, error))
        return self.stats.surprise(error, self.clip)

    def _losses(self, phi: Any, action: Any, phi_next: Any) -> tuple[Any, Any, Any]:
        """Per-transition forward error, and the encodings the inverse head reads."""
        torch = self.torch
        encoded = self.model["encoder"](phi)
        predicted = phi + self.model["dynamics"](torch.cat([encoded, action], dim=1))
        return ((predicted - phi_next) ** 2).mean(dim=1), encoded, self.model["encoder"](phi_next)

    # ------------------------------------------------------------ learning
    @_single_threaded
    def _learn_episode(self) -> None:
        for phi, action, phi_next, tool, error in self._episode:
            self._store(phi, action, phi_next, tool)
            self.stats.update(error)
        for _ in range(math.ceil(len(self._episode) * self.updates_per_step)):
            self._sgd_step()
        self._episode = []

    def _store(self, phi: np.ndarray, action: np.ndarray, phi_next: np.ndarray, tool: int) -> None:
        i, torch = self.buffer_pos, self.torch
        self.buffer["phi"][i] = torch.from_numpy(phi)
        self.buffer["action"][i] = torch.from_numpy(action)
        self.buffer["next_phi"][i] = torch.from_numpy(phi_next)
        self.buffer["tool"][i] = tool
        self.buffer_pos = (i + 1) % self.buffer_size
        self.buffer_len = min(self.buffer_len + 1, self.buffer_size)

    def _sgd_step(self) -> None:
        """One update of the forward model, with gradients on even when the caller steps the env
        under ``torch.no_grad()`` (as RL loops do while sampling)."""
        torch = self.torch
        index = torch.randint(self.buffer_len, (self.batch_size,), generator=self.generator)
        batch = {k: v[index] for k, v in self.buffer.items()}
        with torch.enable_grad():
            errors, encoded, encoded_next = self._losses(batch["phi"], batch["action"], batch["next_phi"])
            loss = errors.mean()
            if "inverse" in self.model:
                logits = self.model["inverse"](torch.cat([encoded, encoded_next], dim=1))
                loss = loss + self.inverse_coef * torch.nn.functional.cross_entropy(logits, batch["tool"])
            self.optimizer.zero_grad()
            loss.backward()
        self.optimizer.step()

    # ------------------------------------------------------------ state
    @_single_threaded
    def state_dict(self) -> dict[str, Any]:
        """Model, optimiser, normaliser, replay buffer and sampler state (tensors and numbers only)."""
        torch = self.torch
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "stats": torch.tensor([self.stats.mean, self.stats.var, self.stats.count], dtype=torch.float64),
            "buffer": {k: v.clone() for k, v in self.buffer.items()},
            "buffer_meta": torch.tensor([self.buffer_len, self.buffer_pos]),
            "generator": self.generator.get_state(),
        }

    @_single_threaded
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the wrapper must be built with the same sizes)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        mean, var, count = (float(x) for x in state["stats"])
        self.stats.mean, self.stats.var, self.stats.count = mean, var, int(count)
        for key, value in state["buffer"].items():
            if value.shape != self.buffer[key].shape:
                raise PixelisError(f"saved buffer `{key}` has shape {tuple(value.shape)}, this wrapper "
                                   f"{tuple(self.buffer[key].shape)}")
            self.buffer[key] = value.clone()
        self.buffer_len, self.buffer_pos = (int(x) for x in state["buffer_meta"])
        self.generator.set_state(state["generator"])

    @_single_threaded
    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` with ``torch.save``."""
        self.torch.save(self.state_dict(), path)

    @_single_threaded
    def load(self, path: str | os.PathLike) -> None:
        """Read a file written by :meth:`save` (``weights_only``: no code runs on load)."""
        self.load_state_dict(self.torch.load(path, weights_only=True))
