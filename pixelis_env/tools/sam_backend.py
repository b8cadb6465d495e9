"""Segment Anything (SAM) behind the ``segment`` tool: checkpoint loading and cached embeddings.

The image encoder is the expensive part of SAM (seconds per image for ViT-H on a CPU)
and prompts are cheap, so each frame's embedding is kept in a bounded LRU cache keyed
by the media object and frame index: a second prompt on the same frame only runs the
prompt encoder and the mask decoder. Loaded models are cached per checkpoint file.

``torch`` and ``segment_anything`` are imported inside functions, so the package imports
without them; a missing install, file or corrupt checkpoint raises
:class:`~pixelis_env.errors.BackendUnavailableError` naming what was expected.

Model types are registered builders (``vit_b``, ``vit_l``, ``vit_h`` from
``segment_anything``); :func:`register_sam_builder` adds others (tests use a tiny one).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_env.errors import BackendUnavailableError, did_you_mean
from pixelis_env.media import Media

CHECKPOINT_ENV = "PIXELIS_SAM_CHECKPOINT"
DEFAULT_EMBEDDING_CACHE = 8
"""Frames whose embeddings are kept (ViT image embeddings are 256x64x64 floats, 4 MiB)."""
MAX_MODELS = 2
PATCH_EMBED_KEY = "image_encoder.patch_embed.proj.weight"
INSTALL_HINT = "pip install 'pixelis-env[torch]' (torch and segment-anything)"


@dataclass(frozen=True)
class SamBuilder:
    """How to build an (untrained) SAM of one type, and the encoder width that identifies it."""

    build: Callable[[], Any]
    embed_dim: int


@dataclass(frozen=True)
class SamMask:
    """SAM's answer to one prompt: the best of its three masks by predicted IoU."""

    mask: np.ndarray
    predicted_iou: float
    all_ious: tuple[float, ...]


@dataclass
class Embedding:
    """A frame's SAM image embedding and the sizes needed to map prompts and masks."""

    features: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    owners: tuple[weakref.ref, weakref.ref]
    """The model and media it was computed for: ids in the cache key may be reused after either dies."""


_BUILDERS: dict[str, SamBuilder] = {}
_MODELS: OrderedDict[tuple, Any] = OrderedDict()
_EMBEDDINGS: OrderedDict[tuple, Embedding] = OrderedDict()
_LOCK = threading.Lock()


def register_sam_builder(model_type: str, build: Callable[[], Any], embed_dim: int) -> None:
    """Make a SAM variant loadable by name (``sam_model_type``) or by its encoder width."""
    _BUILDERS[model_type] = SamBuilder(build, int(embed_dim))


def _official(model_type: str) -> Callable[[], Any]:
    def build() -> Any:
        from segment_anything import sam_model_registry

        return sam_model_registry[model_type]()
    return build


for _type, _dim in (("vit_b", 768), ("vit_l", 1024), ("vit_h", 1280)):
    register_sam_builder(_type, _official(_type), _dim)


def checkpoint_from(config: Mapping[str, Any]) -> str | None:
    """The configured checkpoint path (``sam_checkpoint``, else ``$PIXELIS_SAM_CHECKPOINT``), if any."""
    return config.get("sam_checkpoint") or os.environ.get(CHECKPOINT_ENV) or None


def load_sam(checkpoint: str | os.PathLike, model_type: str | None = None, device: str | None = None) -> Any:
    """The SAM model in ``checkpoint`` (cached), with its type given or recognised.

    The type is ``model_type`` if given, else a registered name found in the file name
    (``sam_vit_b_01ec64.pth``), else the one whose encoder width matches the weights.
    """
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise BackendUnavailableError(
            f"SAM checkpoint {str(path)!r} not found; expected a segment_anything .pth file (e.g. "
            f"sam_vit_b_01ec64.pth) at tool_config['sam_checkpoint'] or ${CHECKPOINT_ENV}")
    torch = _import_torch()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, model_type, device)
    with _LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    model = _build_and_load(path, model_type, device, torch)
    with _LOCK:
        _MODELS[key] = model
        while len(_MODELS) > MAX_MODELS:
            _MODELS.popitem(last=False)
    return model


def _import_torch() -> Any:
    try:
        import segment_anything  # noqa: F401
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"the SAM backend needs torch and segment_anything ({exc}); "
                                      f"{INSTALL_HINT}") from exc
    return torch


def _build_and_load(path: Path, model_type: str | None, device: str, torch: Any) -> Any:
    state = _read_state_dict(path, torch)
    model_type = model_type or _recognise_type(path, state)
    if model_type not in _BUILDERS:
        raise BackendUnavailableError(f"unknown sam_model_type {model_type!r}; registered: {sorted(_BUILDERS)}."
                                      + did_you_mean(model_type, _BUILDERS))
    model = _BUILDERS[model_type].build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise BackendUnavailableError(f"SAM checkpoint {str(path)!r} does not fit a {model_type} model: "
                                      + " ".join(first)[:400]) from exc
    return model.to(device).eval()


def _read_state_dict(path: Path, torch: Any) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise BackendUnavailableError(f"SAM checkpoint {str(path)!r} is not a readable torch state dict "
                                      f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or PATCH_EMBED_KEY not in state:
        raise BackendUnavailableError(f"SAM checkpoint {str(path)!r} holds no SAM weights "
                                      f"(no {PATCH_EMBED_KEY!r} tensor)")
    return state


def _recognise_type(path: Path, state: Mapping[str, Any]) -> str:
    for name in sorted(_BUILDERS, key=len, reverse=True):
        if name in path.name:
            return name
    width = int(state[PATCH_EMBED_KEY].shape[0])
    for name, builder in _BUILDERS.items():
        if builder.embed_dim == width:
            return name
    raise BackendUnavailableError(f"cannot tell the SAM model type of {str(path)!r}: encoder width {width} "
                                  f"matches none of {sorted(_BUILDERS)}; set tool_config['sam_model_type']")


def embed(model: Any, media: Media, frame_index: int, cache_size: int = DEFAULT_EMBEDDING_CACHE) -> Embedding:
    """The image embedding of one frame, computed once and cached (LRU) per media and frame."""
    key = (id(model), id(media), media.name, int(frame_index))
    with _LOCK:
        hit = _EMBEDDINGS.get(key)
        if hit is not None and hit.owners[0]() is model and hit.owners[1]() is media:
            _EMBEDDINGS.move_to_end(key)
            return hit
    image = media.frame(frame_index)
    features, input_size = _encode(model, image)
    embedding = Embedding(features, image.shape[:2], input_size, (weakref.ref(model), weakref.ref(media)))
    with _LOCK:
        _EMBEDDINGS[key] = embedding
        while len(_EMBEDDINGS) > max(1, cache_size):
            _EMBEDDINGS.popitem(last=False)
    return embedding


def _encode(model: Any, image: np.ndarray) -> tuple[Any, tuple[int, int]]:
    """SAM's image embedding of an RGB frame, and the size the frame was resized to for it."""
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    resized = ResizeLongestSide(model.image_encoder.img_size).apply_image(image)
    device = next(model.parameters()).device
    pixels = torch.as_tensor(resized, device=device).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        features = model.image_encoder(model.preprocess(pixels))
    return features, resized.shape[:2]


def predict(model: Any, embedding: Embedding, point: tuple[float, float] | None = None,
            box: tuple[float, float, float, float] | None = None) -> SamMask:
    """Decode the masks for a pixel point or pixel box and keep the one with the highest predicted IoU."""
    import torch
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(model.image_encoder.img_size)
    device = embedding.features.device
    points = boxes = None
    if point is not None:
        coords = transform.apply_coords(np.array([point], dtype=np.float32), embedding.original_size)
        points = (torch.as_tensor(coords[None], dtype=torch.float, device=device),
                  torch.ones((1, 1), dtype=torch.int, device=device))
    if box is not None:
        coords = transform.apply_boxes(np.array([box], dtype=np.float32), embedding.original_size)
        boxes = torch.as_tensor(coords, dtype=torch.float, device=device)
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=None)
        low_res, ious = model.mask_decoder(image_embeddings=embedding.features,
                                           image_pe=model.prompt_encoder.get_dense_pe(),
                                           sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                           multimask_output=True)
        scores = ious[0].float().cpu().numpy()
        best = int(np.argmax(scores))
        # Upsample only the kept mask: all three, to the frame's size, took 15-35% of a cached prompt on a CPU.
        masks = model.postprocess_masks(low_res[:, best:best + 1], embedding.input_size, embedding.original_size)
    mask = (masks[0, 0] > model.mask_threshold).cpu().numpy()
    return SamMask(mask, float(scores[best]), tuple(round(float(s), 4) for s in scores))


def clear_caches() -> None:
    """Drop cached models and embeddings (frees memory; the next call reloads)."""
    with _LOCK:
        _MODELS.clear()
        _EMBEDDINGS.clear()
