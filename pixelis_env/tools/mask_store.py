"""Masks kept for the rest of an episode, so ``properties`` can measure what ``segment`` found.

They live in ``ctx.state["masks"]``, a list whose index is the mask id the agent sees
(every ``segment`` call appends one, empty when nothing stood out).
Each entry is a dict with the full-frame ``mask`` (bool ``H x W``), its ``frame`` index
and the ``backend`` that made it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelis_env.errors import ActionError, ToolError

MASKS_KEY = "masks"


def add_mask(state: dict[str, Any], mask: np.ndarray, frame: int, backend: str) -> int:
    """Keep a mask for later steps and return its id."""
    masks = state.setdefault(MASKS_KEY, [])
    masks.append({"mask": mask, "frame": int(frame), "backend": backend})
    return len(masks) - 1


def get_mask(state: dict[str, Any], mask_id: int) -> dict[str, Any]:
    """The entry of an earlier mask; an unknown id is the agent's mistake and names the valid ids."""
    masks = state.get(MASKS_KEY, [])
    if not 0 <= mask_id < len(masks):
        known = f"ids 0..{len(masks) - 1}" if masks else "none yet (call segment first)"
        raise ActionError(f"properties.mask_id: no mask {mask_id} in this episode; masks available: {known}")
    return masks[mask_id]


def get_nonempty_mask(state: dict[str, Any], mask_id: int) -> dict[str, Any]:
    """Like :func:`get_mask`, but an empty mask (segment found nothing) is a tool error."""
    entry = get_mask(state, mask_id)
    if not entry["mask"].any():
        raise ToolError(f"mask {mask_id} is empty (segment found nothing there); segment again with a box "
                        "or another point")
    return entry


def mask_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Pixel bounds ``(x0, y0, x1, y1)`` (exclusive ends) of a mask, or ``None`` if it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
