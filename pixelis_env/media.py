"""Images and videos behind one interface: size, frame count, fps and ``frame(i)``.

Video frames are decoded lazily and kept in a bounded LRU cache, so memory does not
grow with video length. Every frame is returned as an RGB ``uint8`` array of shape
``(height, width, 3)``; callers must not modify it (it may be shared with the cache).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_env.errors import MediaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
MAX_PIXELS = 100_000_000
"""Refuse images larger than this (decompression-bomb guard), about 10k x 10k."""
DEFAULT_CACHE_FRAMES = 32


def to_rgb_uint8(array: np.ndarray, name: str = "array") -> np.ndarray:
    """Convert grey, RGBA, 16-bit or float images to contiguous RGB ``uint8``."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise MediaError(f"{name}: expected an image of shape (H, W[, 1|3|4]), got {a.shape}")
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise MediaError(f"{name}: image contains NaN or infinite values")
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        a = np.clip(a * scale, 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


class Media:
    """Base class: a still image is a one-frame media with ``fps == 0``."""

    name: str
    width: int
    height: int
    num_frames: int
    fps: float

    @property
    def is_video(self) -> bool:
        return self.num_frames > 1 or self.fps > 0

    @property
    def duration(self) -> float:
        """Length in seconds (0 for images)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def frame(self, index: int) -> np.ndarray:
        """Return frame ``index`` as RGB uint8; raises :class:`MediaError` if out of range."""
        if not 0 <= index < self.num_frames:
            raise MediaError(f"{self.name}: frame {index} is outside 0..{self.num_frames - 1}")
        return self._frame(index)

    def _frame(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def frame_at(self, seconds: float) -> int:
        """The frame index shown at ``seconds`` (clamped to the video)."""
        if self.fps <= 0:
            return 0
        return int(min(max(round(seconds * self.fps), 0), self.num_frames - 1))

    def close(self) -> None:
        """Release file handles (a closed media reopens on the next access)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.width}x{self.height}, frames={self.num_frames})"


class ImageMedia(Media):
    """A still image held in memory."""

    def __init__(self, array: np.ndarray, name: str = "image") -> None:
        self._array = to_rgb_uint8(array, name)
        self._array.setflags(write=False)
        self.name = name
        self.height, self.width = self._array.shape[:2]
        self.num_frames, self.fps = 1, 0.0

    def _frame(self, index: int) -> np.ndarray:
        return self._array


class _FrameCache:
    """A thread-safe bounded LRU cache of decoded frames."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: int, produce: Callable[[int], np.ndarray]) -> np.ndarray:
        with self._lock:
            if index in self._frames:
                self._frames.move_to_end(index)
                return self._frames[index]
            frame = produce(index)
            frame.setflags(write=False)
            self._frames[index] = frame
            while len(self._frames) > self.capacity:
                self._frames.popitem(last=False)
            return frame

    def __len__(self) -> int:
        return len(self._frames)


class ArrayVideo(Media):
    """A video given as a ``(T, H, W[, C])`` array (kept as given; no cache needed)."""

    def __init__(self, frames: np.ndarray, fps: float = 1.0, name: str = "video") -> None:
        frames = np.asarray(frames)
        if frames.ndim not in (3, 4) or frames.shape[0] == 0:
            raise MediaError(f"{name}: expected frames of shape (T, H, W[, C]) with T > 0, got {frames.shape}")
        if fps <= 0:
            raise MediaError(f"{name}: fps must be positive, got {fps}")
        self._frames = frames
        self.name, self.fps = name, float(fps)
        self.num_frames = int(frames.shape[0])
        self.height, self.width = int(frames.shape[1]), int(frames.shape[2])

    def _frame(self, index: int) -> np.ndarray:
        return to_rgb_uint8(self._frames[index], f"{self.name}[{index}]")


class RenderedVideo(Media):
    """A video whose frames come from a function (procedural suites), rendered lazily."""

    def __init__(self, render: Callable[[int], np.ndarray], num_frames: int, fps: float, size: tuple[int, int],
                 name: str = "rendered", cache_frames: int = DEFAULT_CACHE_FRAMES) -> None:
        self._render = render
        self._cache = _FrameCache(cache_frames)
        self.name, self.num_frames, self.fps = name, int(num_frames), float(fps)
        self.width, self.height = int(size[0]), int(size[1])

    def _frame(self, index: int) -> np.ndarray:
        return self._cache.get(index, lambda i: to_rgb_uint8(self._render(i), f"{self.name}[{i}]"))


class VideoFile(Media):
    """An mp4/avi/... file read with OpenCV, decoding frames on demand.

    Sequential reads continue from the decoder's position; random access seeks. The
    capture is opened lazily and released by :meth:`close` (e.g. at episode end).
    """

    def __init__(self, path: str | os.PathLike, cache_frames: int = DEFAULT_CACHE_FRAMES) -> None:
        import cv2

        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise MediaError(f"{self.name}: video file not found")
        self._lock = threading.Lock()
        self._cache = _FrameCache(cache_frames)
        self._capture: Any = None
        self._next_index = 0
        capture = self._open()
        try:
            self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
            counted = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            ok, first = capture.read()
            if not ok or first is None:
                raise MediaError(f"{self.name}: no decodable frame (corrupt or empty video)")
            self.height, self.width = first.shape[:2]
            self._next_index = 1
            self._cache.get(0, lambda _: np.ascontiguousarray(first[:, :, ::-1]))
        except Exception:
            self.close()
            raise
        if self.fps <= 0 or not np.isfinite(self.fps):
            self.fps = 30.0
        self.num_frames = max(counted, 1)
        self.close()  # probed: frames reopen it, so a VideoFile kept in a task list holds no file handle
        if self.height * self.width > MAX_PIXELS:
            raise MediaError(f"{self.name}: {self.width}x{self.height} frames exceed {MAX_PIXELS} pixels")

    def _open(self) -> Any:
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise MediaError(f"{self.name}: OpenCV cannot open this video (corrupt or unsupported codec)")
        self._capture, self._next_index = capture, 0
        return capture

    def _decode(self, index: int) -> np.ndarray:
        import cv2

        with self._lock:
            capture = self._capture if self._capture is not None else self._open()
            if index != self._next_index:
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = capture.read()
            if not ok or frame is None:
                self._next_index = -1
                raise MediaError(f"{self.name}: frame {index} could not be decoded (truncated or corrupt video)")
            self._next_index = index + 1
            return np.ascontiguousarray(frame[:, :, ::-1])

    def _frame(self, index: int) -> np.ndarray:
        return self._cache.get(index, self._decode)

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
            self._capture = None


def _read_image_file(path: Path) -> np.ndarray:
    from PIL import Image, ImageSequence

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise MediaError(f"{path}: image too large ({image.width}x{image.height} > {MAX_PIXELS} pixels)")
            frame = next(ImageSequence.Iterator(image))
            if frame.mode in ("I;16", "I;16B", "I;16L", "I"):
                return (np.asarray(frame, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8)
            return np.asarray(frame.convert("RGB"))
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{path}: image too large ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{path}: cannot read image ({exc})") from exc


def _animated_frames(path: Path) -> list[np.ndarray] | None:
    from PIL import Image, ImageSequence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(path)
    with image:
        count = getattr(image, "n_frames", 1)
        if count <= 1:
            return None
        if image.width * image.height * count > MAX_PIXELS:
            raise MediaError(f"{path}: animation too large ({count} frames of {image.width}x{image.height} > "
                             f"{MAX_PIXELS} pixels in all)")
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)]


def load_media(source: Any, name: str | None = None, fps: float | None = None) -> Media:
    """Open any supported source: a path (image or video), a PIL image, an array or a Media.

    A 4-D array, or a 3-D array with ``fps`` given, is a video. Animated GIFs load as videos.
    Missing or corrupt files raise :class:`MediaError` naming the file.
    """
    if isinstance(source, Media):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise MediaError(f"{path}: file not found")
        if not path.is_file():
            raise MediaError(f"{path}: not a file")
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return VideoFile(path)
        if suffix == ".gif":
            from PIL import Image

            try:
                frames = _animated_frames(path)
            except MediaError:
                raise
            except Image.DecompressionBombError as exc:
                raise MediaError(f"{path}: image too large ({exc})") from exc
            except (OSError, SyntaxError, ValueError) as exc:
                raise MediaError(f"{path}: cannot read image ({exc})") from exc
            if frames:
                return ArrayVideo(np.stack(frames), fps=fps or 10.0, name=name or str(path))
        if suffix in IMAGE_SUFFIXES or suffix == "":
            return ImageMedia(_read_image_file(path), name=name or str(path))
        raise MediaError(f"{path}: unsupported file type {suffix!r}")
    if hasattr(source, "convert") and hasattr(source, "size"):
        return ImageMedia(np.asarray(source.convert("RGB")), name=name or "pil-image")
    array = np.asarray(source)
    if array.ndim == 4 or (array.ndim == 3 and fps is not None and array.shape[2] not in (1, 3, 4)):
        return ArrayVideo(array, fps=fps or 1.0, name=name or "video")
    return ImageMedia(array, name=name or "image")
