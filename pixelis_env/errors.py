"""The package's error hierarchy.

Model mistakes (a malformed action) become :class:`ActionError`, which the env turns
into an error observation; programmer and data mistakes raise the other types.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PixelisError(Exception):
    """Base class of every error this package raises on purpose."""


class ActionError(PixelisError, ValueError):
    """An action (typed, sampled or text) that does not fit the tool grammar."""


class MediaError(PixelisError, OSError):
    """Media that is missing, corrupt or of an unsupported kind; names the file."""


class ToolError(PixelisError, RuntimeError):
    """A tool that could not produce a result for a well-formed action."""


class BackendUnavailableError(ToolError):
    """An optional backend (tesseract binary, SAM checkpoint, ...) is not usable."""


class DataError(PixelisError, ValueError):
    """A task file or benchmark row that cannot be loaded; names the row."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean `x`?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean `{close[0]}`?" if close else ""
