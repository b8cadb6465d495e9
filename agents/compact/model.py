"""``CompactPolicy``: a small CNN + transformer policy that learns tool calls on a CPU.

Architecture (defaults: about 1.19M parameters, 0.5 s of CPU per SFT step of 32 on one core):

* image encoder: the latest view resized to ``image_size`` with two CoordConv channels
  (x, y in [-1, 1]), strided 3x3 convolutions, the coordinates again before a 1x1
  projection, pooled to a ``grid`` x ``grid`` map of feature tokens;
* text: the question, the last ``history`` actions and the latest observation text,
  tokenized by :class:`GrammarTokenizer`, with segment and position embeddings;
* a joint encoder (pre-norm transformer) over [step token; image tokens; text tokens];
* a causal transformer decoder with cross-attention to the encoder output, writing the
  action text token by token; input and output embeddings are shared (tied).

The policy distribution is the decoder's softmax restricted to tokens that keep the
sequence canonical for the tokenizer (see :mod:`agents.compact.tokenizer`): every text
the policy generates has one token sequence, the one :meth:`score` re-derives, so the
log-probs recorded while generating equal the re-scored ones. Temperature and top-p
only change how tokens are *drawn*; recorded log-probs are always under this
unmodified (temperature 1) distribution.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.compact.tokenizer import CanonicalTracker, GrammarTokenizer
from agents.policy import Context, Sample, Scored, token_grounded, token_roles

QUESTION, HISTORY, OBSERVATION = 0, 1, 2
"""Segments of the encoder text."""
MAX_STEP_EMBEDDINGS = 32


@dataclass
class CompactConfig:
    """Sizes of :class:`CompactPolicy`."""

    image_size: int = 96
    """Side the latest view is resized to before the CNN."""
    channels: tuple[int, ...] = (16, 32, 64)
    """Output channels of the strided convolutions (each halves the resolution; multiples of 8)."""
    grid: int = 6
    """The CNN output is pooled to grid x grid image tokens."""
    d_model: int = 128
    """Width of every transformer layer (the policy's ``hidden_size``)."""
    heads: int = 4
    """Attention heads per layer."""
    ffn: int = 384
    """Hidden width of each layer's MLP."""
    encoder_layers: int = 2
    """Layers of the joint image-text encoder."""
    decoder_layers: int = 3
    """Layers of the action decoder."""
    max_question_tokens: int = 48
    """The question is cut to this many tokens."""
    max_observation_tokens: int = 64
    """The latest tool output is cut to this many tokens."""
    history: int = 1
    """How many earlier actions of the episode the encoder reads."""
    max_history_tokens: int = 40
    """Each earlier action is cut to this many tokens."""
    max_action_tokens: int = 96
    """Longest action text (in tokens, without bos/eos) the decoder handles."""

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.image_size < 2 ** len(self.channels):
            raise ValueError(f"image_size {self.image_size} is too small for {len(self.channels)} strided convs")
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or any(c <= 0 or c % 8 for c in self.channels):
            raise ValueError(f"channels must be positive multiples of 8 (GroupNorm groups), got {self.channels}")


class Attention(nn.Module):
    """Multi-head attention whose keys/values can be precomputed (memory) or cached (decoding)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, value = self.key_value(source).chunk(2, dim=-1)
        return self._split(key), self._split(value)

    def forward(self, x: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None,
                causal: bool = False) -> torch.Tensor:
        attended = F.scaled_dot_product_attention(self._split(self.query(x)), key, value, attn_mask=mask,
                                                  is_causal=causal)
        return self.out(attended.transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    """Pre-norm transformer layer: self-attention, optional cross-attention, MLP."""

    def __init__(self, dim: int, heads: int, ffn: int, cross: bool) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attention = Attention(dim, heads)
        self.norm_cross = nn.LayerNorm(dim) if cross else None
        self.cross_attention = Attention(dim, heads) if cross else None
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                memory: tuple[torch.Tensor, torch.Tensor] | None = None, memory_mask: torch.Tensor | None = None,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``cache`` (decoding) holds this layer's earlier keys/values and is extended in place."""
        normed = self.norm_self(x)
        key, value = self.self_attention.keys_values(normed)
        if cache is not None:
            if cache:
                key, value = torch.cat([cache["key"], key], 2), torch.cat([cache["value"], value], 2)
            cache["key"], cache["value"] = key, value
        x = x + self.self_attention(normed, key, value, mask, causal)
        if self.cross_attention is not None:
            x = x + self.cross_attention(self.norm_cross(x), *memory, memory_mask)
        return x + self.mlp(self.norm_mlp(x))


class ImageEncoder(nn.Module):
    """CoordConv CNN: RGB + (x, y) channels -> grid x grid feature tokens."""

    def __init__(self, config: CompactConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 5
        for channels in config.channels:
            layers += [nn.Conv2d(width, channels, 3, stride=2, padding=1), nn.GroupNorm(8, channels), nn.GELU()]
            width = channels
        self.convs = nn.Sequential(*layers)
        self.project = nn.Conv2d(width + 2, config.d_model, 1)
        self.grid = config.grid
        self.position = nn.Parameter(torch.zeros(config.grid * config.grid, config.d_model))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.project(_with_coords(self.convs(_with_coords(images))))
        features = F.adaptive_avg_pool2d(features, self.grid)
        return features.flatten(2).transpose(1, 2) + self.position


def _with_coords(x: torch.Tensor) -> torch.Tensor:
    """Append x and y coordinate channels in [-1, 1] (CoordConv)."""
    batch, _, height, width = x.shape
    ys = torch.linspace(-1, 1, height, dtype=x.dtype).view(1, 1, height, 1).expand(batch, 1, height, width)
    xs = torch.linspace(-1, 1, width, dtype=x.dtype).view(1, 1, 1, width).expand(batch, 1, height, width)
    return torch.cat([x, xs, ys], 1)


@dataclass
class _Inputs:
    images: torch.Tensor
    text: torch.Tensor
    segments: torch.Tensor
    text_mask: torch.Tensor
    steps: torch.Tensor


class CompactPolicy(nn.Module):
    """The compact trainable policy; implements :class:`agents.policy.Policy`.

    Build with ``CompactPolicy(config, tokenizer)``; :meth:`spec` and :func:`from_spec`
    rebuild the same architecture and vocabulary (weights come from a state dict).
    """

    def __init__(self, config: CompactConfig | None = None, tokenizer: GrammarTokenizer | None = None) -> None:
        super().__init__()
        self.config = config = config or CompactConfig()
        self.tokenizer = tokenizer = tokenizer or GrammarTokenizer()
        self.hidden_size = config.d_model
        dim = config.d_model
        text_positions = config.max_question_tokens + config.max_observation_tokens + 2 + config.history * (
            config.max_history_tokens + 1)
        self.embed = nn.Embedding(len(tokenizer), dim)
        self.segment = nn.Embedding(3, dim)
        self.text_position = nn.Embedding(text_positions, dim)
        self.step = nn.Embedding(MAX_STEP_EMBEDDINGS, dim)
        self.image = ImageEncoder(config)
        self.encoder = nn.ModuleList(Block(dim, config.heads, config.ffn, cross=False)
                                     for _ in range(config.encoder_layers))
        self.encoder_norm = nn.LayerNorm(dim)
        self.action_position = nn.Embedding(config.max_action_tokens + 2, dim)
        self.decoder = nn.ModuleList(Block(dim, config.heads, config.ffn, cross=True)
                                     for _ in range(config.decoder_layers))
        self.decoder_norm = nn.LayerNorm(dim)
        self.apply(_init_weights)
        self._init_number_embeddings()

    def _init_number_embeddings(self) -> None:
        """Coordinate bins and small integers start as Fourier features of their value.

        With tied input/output embeddings the logit of bin ``v`` is ``h . e(v)``; when
        ``e`` varies smoothly with ``v``, a hidden state close to ``e(x)`` scores bins
        near ``x`` high, so the policy learns coordinates as regression-like readouts
        instead of 101 unrelated classes.
        """
        with torch.no_grad():
            for values, tokens in _numeric_tokens(self.tokenizer).values():
                features = _fourier(torch.tensor(values), self.hidden_size)
                scale = self.embed.weight.std() * self.hidden_size**0.5 / features.norm(dim=1, keepdim=True)
                self.embed.weight[tokens] = features * scale

    def spec(self) -> dict[str, Any]:
        """JSON-able description that :func:`from_spec` rebuilds the (untrained) policy from."""
        return {"config": dataclasses.asdict(self.config), "tokenizer": self.tokenizer.to_dict()}

    # ------------------------------------------------------------- encoding
    def _prepare(self, contexts: Sequence[Context]) -> _Inputs:
        size = self.config.image_size
        images = np.stack([cv2.resize(np.asarray(c.turns[-1].image, np.uint8), (size, size),
                                      interpolation=cv2.INTER_AREA) for c in contexts])
        texts = [self._context_tokens(c) for c in contexts]
        length = max(len(ids) for ids, _ in texts)
        text = torch.full((len(contexts), length), self.tokenizer.pad_id, dtype=torch.long)
        segments = torch.zeros_like(text)
        for row, (ids, segs) in enumerate(texts):
            text[row, :len(ids)] = torch.tensor(ids)
            segments[row, :len(segs)] = torch.tensor(segs)
        steps = torch.tensor([min(len(c.actions), MAX_STEP_EMBEDDINGS - 1) for c in contexts])
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return _Inputs(pixels, text, segments, text != self.tokenizer.pad_id, steps)

    def _context_tokens(self, context: Context) -> tuple[list[int], list[int]]:
        """Question, sep, each recent action + sep, latest observation (none on the first step)."""
        cfg, tok = self.config, self.tokenizer
        ids = [*tok.encode(context.question, cfg.max_question_tokens).ids, tok.sep_id]
        segments = [QUESTION] * len(ids)
        for action in context.actions[-cfg.history:] if cfg.history else []:
            piece = [*tok.encode(action, cfg.max_history_tokens).ids, tok.sep_id]
            ids += piece
            segments += [HISTORY] * len(piece)
        observation = context.turns[-1].text if len(context.turns) > 1 else ""
        piece = [*tok.encode(observation, cfg.max_observation_tokens).ids, tok.sep_id]
        return ids + piece, segments + [OBSERVATION] * len(piece)

    def encode(self, contexts: Sequence[Context]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``[B, M, D]`` and its key mask ``[B, 1, 1, M]`` (True = attend)."""
        if not contexts or any(not c.turns for c in contexts):
            raise ValueError("every context needs at least one observed turn")
        inputs = self._prepare(contexts)
        batch, length = inputs.text.shape
        positions = torch.arange(length)
        text = self.embed(inputs.text) + self.segment(inputs.segments) + self.text_position(positions)
        x = torch.cat([self.step(inputs.steps)[:, None], self.image(inputs.images), text], 1)
        visible = torch.ones(batch, x.shape[1] - length, dtype=torch.bool)
        mask = torch.cat([visible, inputs.text_mask], 1)[:, None, None, :]
        for block in self.encoder:
            x = block(x, mask)
        return self.encoder_norm(x), mask

    def _memory(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [block.cross_attention.keys_values(memory) for block in self.decoder]

    def _decode(self, tokens: torch.Tensor, start: int, memory: list[tuple[torch.Tensor, torch.Tensor]],
                memory_mask: torch.Tensor, caches: list[dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
        positions = torch.arange(start, start + tokens.shape[1])
        x = self.embed(tokens) + self.action_position(positions)
        causal = caches is None
        for index, block in enumerate(self.decoder):
            x = block(x, causal=causal, memory=memory[index], memory_mask=memory_mask,
                      cache=None if caches is None else caches[index])
        return self.decoder_norm(x)

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.embed.weight.T

    # ------------------------------------------------------------- Policy API
    @torch.no_grad()
    def generate(self, contexts: Sequence[Context], max_new_tokens: int = 64, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, seed: int | None = None) -> list[Sample]:
        """Sample (or greedily decode) one action text per context, batched.

        ``seed`` makes sampling reproducible (a private ``torch.Generator``); without it
        the global torch RNG is used. ``token_ids``/``logprobs`` end with the eos token
        when the policy stopped before ``max_new_tokens`` (capped at the decoder's
        ``max_action_tokens``, so every generated text can be scored).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        max_new_tokens = min(max_new_tokens, self.config.max_action_tokens)
        if temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError("temperature must be > 0 and top_p in (0, 1]; use greedy=True for argmax")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        encoded, memory_mask = self.encode(contexts)
        memory = self._memory(encoded)
        batch = len(contexts)
        caches: list[dict[str, torch.Tensor]] = [{} for _ in self.decoder]
        trackers = [CanonicalTracker(self.tokenizer) for _ in range(batch)]
        samples = [Sample(text="", token_ids=[], logprobs=[]) for _ in range(batch)]
        done = [False] * batch
        tokens = torch.full((batch, 1), self.tokenizer.bos_id, dtype=torch.long)
        for position in range(max_new_tokens):
            hidden = self._decode(tokens, position, memory, memory_mask, caches)
            forbidden = torch.from_numpy(np.stack([tracker.mask() for tracker in trackers]))
            logits = self._logits(hidden[:, -1]).masked_fill(forbidden, float("-inf"))
            logprobs = torch.log_softmax(logits, -1)
            chosen = _choose(logits, temperature, top_p, greedy, generator)
            for row in range(batch):
                if done[row]:
                    continue
                token = int(chosen[row])
                samples[row].token_ids.append(token)
                samples[row].logprobs.append(float(logprobs[row, token]))
                trackers[row].push(token)
                done[row] = token == self.tokenizer.eos_id
            if all(done):
                break
            tokens = chosen[:, None]
        for sample in samples:
            sample.text = self.tokenizer.decode(sample.token_ids)
        return samples

    def score(self, contexts: Sequence[Context], texts: Sequence[str]) -> Scored:
        """Teacher-forced per-token log-probs of ``texts`` (each followed by eos).

        Per text, with ``n`` text tokens: ``logprobs`` ``[n + 1]`` (the last is eos),
        ``roles`` ``[n + 1]``, ``hidden`` ``[n + 1, D]`` where ``hidden[i]`` is the final
        decoder state after reading token ``i`` (the state that predicts token ``i + 1``),
        and ``grounded`` token indices of each opening ``[``.
        """
        if len(contexts) != len(texts):
            raise ValueError(f"got {len(contexts)} contexts for {len(texts)} texts")
        tok = self.tokenizer
        encodings = [tok.encode(text) for text in texts]
        longest = max(len(e.ids) for e in encodings)
        if longest > self.config.max_action_tokens:
            raise ValueError(f"an action text has {longest} tokens; max_action_tokens is "
                             f"{self.config.max_action_tokens}")
        batch = len(texts)
        inputs = torch.full((batch, longest + 2), tok.pad_id, dtype=torch.long)
        targets = torch.full((batch, longest + 1), tok.eos_id, dtype=torch.long)
        forbidden = np.broadcast_to(tok.forbidden("", []), (batch, longest + 1, len(tok))).copy()
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            inputs[row, : n + 2] = torch.tensor([tok.bos_id, *encoding.ids, tok.eos_id])
            targets[row, :n] = torch.tensor(encoding.ids, dtype=torch.long)
            forbidden[row, : n + 1] = np.stack(tok.forbidden_along(encoding.ids))
        encoded, memory_mask = self.encode(contexts)
        hidden = self._decode(inputs, 0, self._memory(encoded), memory_mask)
        logits = self._logits(hidden[:, :-1]).masked_fill(torch.from_numpy(forbidden), float("-inf"))
        logprobs = torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
        lengths = [len(e.ids) + 1 for e in encodings]
        return Scored(
            logprobs=[logprobs[row, :n] for row, n in enumerate(lengths)],
            roles=[torch.tensor([*token_roles(text, e.offsets), 0]) for text, e in zip(texts, encodings)],
            hidden=[hidden[row, 1: n + 1] for row, n in enumerate(lengths)],
            grounded=[token_grounded(text, e.offsets) for text, e in zip(texts, encodings)],
        )


def _choose(logits: torch.Tensor, temperature: float, top_p: float, greedy: bool,
            generator: torch.Generator | None) -> torch.Tensor:
    """Greedy argmax, or a draw from the temperature-scaled, top-p-truncated distribution."""
    if greedy:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, -1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _numeric_tokens(tokenizer: GrammarTokenizer) -> dict[str, tuple[list[float], list[int]]]:
    """Coordinate bins (value in [0, 1]) and integers 0..255 (value / 255) with their ids."""
    bins = [t for t in tokenizer.ids if re.fullmatch(r"[01]\.\d\d?", t) and float(t) <= 1]
    integers = [t for t in tokenizer.ids if t.isdigit() and int(t) < 256 and str(int(t)) == t]
    return {"bins": ([float(t) for t in bins], [tokenizer.ids[t] for t in bins]),
            "integers": ([int(t) / 255 for t in integers], [tokenizer.ids[t] for t in integers])}


def _fourier(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``[N, dim]`` cos/sin features of values in [0, 1] at frequencies pi * 1..dim/2."""
    frequencies = torch.arange(1, dim // 2 + 1, dtype=torch.float32) * math.pi / 2
    angles = values[:, None].float() * frequencies[None]
    features = torch.cat([angles.cos(), angles.sin()], 1)
    return F.pad(features, (0, dim - features.shape[1]))


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        module.reset_parameters()
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


def from_spec(config: dict[str, Any], tokenizer: dict[str, Any]) -> CompactPolicy:
    """Rebuild a policy from :meth:`CompactPolicy.spec` (untrained: load weights after)."""
    return CompactPolicy(CompactConfig(**config), GrammarTokenizer.from_dict(tokenizer))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
