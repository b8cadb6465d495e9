"""Several suites as one task source, so one policy trains on all of them with one env.

``gym.make("Pixelis-Mix-v0", split="train", num_tasks=64)`` interleaves the six
benchmark suites: task ``i`` is task ``i // k`` of suite ``i % k`` (``k`` suites), so
any prefix of the indices is balanced across suites, which is what RFT's task sampling
and SFT's ``train_tasks`` need. Every task keeps its own suite, metric and tools; the
episode limit is the largest of the suites'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pixelis_env.errors import PixelisError
from pixelis_env.registration import SUITES, suite_module
from pixelis_env.task import TaskList, TaskSource

BENCHMARK_IDS = tuple(env_id for env_id in SUITES if env_id != "Pixelis-Image-v0")
"""The six benchmark suites (the user-media env has no generator to mix in)."""
MAX_STEPS = max(getattr(suite_module(env_id), "MAX_STEPS", 10) for env_id in BENCHMARK_IDS)


def mixed(sources: Sequence[TaskSource], name: str = "mix") -> TaskList:
    """Interleave equal numbers of tasks of each source (the shortest sets the number)."""
    if not sources:
        raise PixelisError("a mixture needs at least one task source")
    sources, k = list(sources), len(sources)
    return TaskList(make=lambda i: sources[i % k][i // k], size=k * min(len(s) for s in sources), name=name,
                    media_kinds=frozenset().union(*(s.media_kinds for s in sources)),
                    max_frames=max(s.max_frames for s in sources), max_seconds=max(s.max_seconds for s in sources))


def make_source(env_ids: Sequence[str] = BENCHMARK_IDS, suite_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
                **shared: Any) -> TaskList:
    """The mixture of ``env_ids``' sources.

    ``shared`` keyword arguments (``split``, ``num_tasks``, ``seed``, ``difficulty``...) go
    to every suite's ``make_source``; ``suite_kwargs[env_id]`` adds or overrides some for
    one suite (e.g. ``{"Pixelis-Track-v0": {"difficulty": 0}}``).
    """
    suite_kwargs = dict(suite_kwargs or {})
    unknown = sorted(set(suite_kwargs) - set(env_ids))
    if unknown:
        raise PixelisError(f"suite_kwargs names suites that are not mixed in: {unknown}")
    if len(set(env_ids)) != len(env_ids) or not env_ids:
        raise PixelisError(f"env_ids must name distinct suites, got {list(env_ids)}")
    if "Pixelis-Mix-v0" in env_ids:
        raise PixelisError("a mixture cannot contain itself")
    sources = [suite_module(env_id).make_source(**{**shared, **suite_kwargs.get(env_id, {})}) for env_id in env_ids]
    return mixed(sources, name="mix-" + "+".join(s.name for s in sources))
