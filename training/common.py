"""What every training loop shares: config from flags/JSON, run logs, seeding, checkpoints.

* Config: one ``@dataclass`` per trainer; :func:`parse_config` builds an argparse CLI
  from its fields (help from the docstring under each field), reads ``--config
  file.json`` and lets flags override the file.
* Logs: :class:`MetricsLogger` writes one JSON object per line (and TensorBoard scalars
  when ``tensorboard`` is installed).
* Checkpoints: a directory ``checkpoints/step-XXXXXXXX`` with the module weights
  (safetensors), the optimiser, step and RNG states (``trainer.pt``, read with
  ``weights_only=True``), the config, and a manifest of sizes and SHA-256 sums. It is
  written under a temporary name and renamed in one ``os.replace``, so a crash never
  leaves a half-written checkpoint under a real name, and a damaged one fails its
  manifest check with a clear :class:`CheckpointError` instead of loading garbage.
  Restoring weights, optimiser, step and RNG states makes a resumed run end with the
  same weights as an uninterrupted one (tested bit for bit).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import importlib
import inspect
import itertools
import json
import logging
import os
import random
import re
import shutil
import sys
import textwrap
import time
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from pixelis_env.errors import PixelisError, did_you_mean

logger = logging.getLogger(__name__)

C = TypeVar("C")
CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
_STEP_DIR = re.compile(r"step-(\d{8})")


class CheckpointError(PixelisError, OSError):
    """A checkpoint that is missing, incomplete or corrupt; names the file."""


# --------------------------------------------------------------------- config
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each dataclass field (for ``--help``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON types (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build ``cls`` from a mapping; unknown keys raise ``ValueError`` with a suggestion."""
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ValueError(f"{cls.__name__}: unknown option `{key}`." + did_you_mean(key, names))
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(value, hints[key]) for key, value in data.items()})


def _coerce(value: Any, hint: Any) -> Any:
    """JSON lists become tuples where the field is a tuple."""
    options = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    if isinstance(value, list) and any(typing.get_origin(o) is tuple for o in options):
        return tuple(value)
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def config_parser(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--flag`` per field (defaults hidden: see :func:`parse_config`)."""
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip().splitlines()[0],
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", help="JSON file with options; flags given here override it")
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs = _flag_kwargs(hints[f.name])
        kwargs["help"] = f"{docs.get(f.name, '')} (default: {json.dumps(default)})"
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kwargs)
    return parser


def _flag_kwargs(hint: Any) -> dict[str, Any]:
    if _is_union(hint):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        kwargs = _flag_kwargs(inner[0])
        if "type" in kwargs and "nargs" not in kwargs:
            kwargs["type"] = _or_none(kwargs["type"])
        return kwargs
    origin = typing.get_origin(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is tuple or origin is list:
        item = typing.get_args(hint)[0]
        return {"nargs": "*", "type": item if item in (int, float, str) else str}
    if origin is dict or hint is dict:
        return {"type": json.loads, "metavar": "JSON"}
    return {"type": hint}


def _or_none(kind: Any) -> Any:
    def convert(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    convert.__name__ = getattr(kind, "__name__", "value")
    return convert


def parse_config(cls: type[C], argv: Sequence[str] | None = None) -> C:
    """Config from ``--config file.json`` (optional) overridden by command-line flags."""
    args = vars(config_parser(cls).parse_args(argv))
    data: dict[str, Any] = {}
    path = args.pop("config", None)
    if path is not None:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of options")
    data.update(args)
    return config_from_dict(cls, data)


# -------------------------------------------------------------- seeds and RNG
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors and plain types (loadable with ``weights_only=True``)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}}


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["gauss"]))


# -------------------------------------------------------------------- metrics
class MetricsLogger:
    """Appends ``{"step", "kind", "time", **metrics}`` lines to ``metrics.jsonl``.

    On resume (``resume_step`` given) lines logged after that step by the interrupted
    run are dropped first, so the file reads like one uninterrupted run. TensorBoard
    scalars are written too when ``torch.utils.tensorboard`` imports.
    """

    _said_no_tensorboard = False

    def __init__(self, run_dir: str | os.PathLike, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        elif resume_step is None:
            self.path.write_text("", encoding="utf-8")
        self._file = self.path.open("a", encoding="utf-8")
        self._writer = self._tensorboard(Path(run_dir) / "tensorboard") if tensorboard else None

    def _truncate(self, step: int) -> None:
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)

    @classmethod
    def _tensorboard(cls, path: Path) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if not cls._said_no_tensorboard:
                logger.info("tensorboard is not installed: metrics go to metrics.jsonl only")
                cls._said_no_tensorboard = True
            return None
        return SummaryWriter(str(path))

    def log(self, step: int, metrics: Mapping[str, Any], kind: str = "train") -> None:
        record = {"step": int(step), "kind": kind, "time": round(time.time(), 3), **metrics}
        self._file.write(json.dumps(record, default=_plain) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key if "/" in key else f"{kind}/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def read_metrics(run_dir: str | os.PathLike, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (optionally of one kind)."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if kind is None or r["kind"] == kind]


def _plain(value: Any) -> Any:
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# ---------------------------------------------------------------- checkpoints
@dataclass
class Checkpoint:
    """A loaded checkpoint: weights per module, trainer state, and the run's config."""

    path: Path
    step: int
    weights: dict[str, dict[str, torch.Tensor]]
    trainer: dict[str, Any]
    config: dict[str, Any]


def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def save_checkpoint(run_dir: str | os.PathLike, step: int, modules: Mapping[str, nn.Module],
                    optimizer: torch.optim.Optimizer | None, config: Mapping[str, Any],
                    extra: Mapping[str, Any] | None = None, keep: int | None = None) -> Path:
    """Write a complete checkpoint atomically and return its directory.

    ``modules`` are saved by name (``config["modules"]`` should say how to rebuild
    them; see :func:`build_modules`). ``keep`` deletes all but the newest ``keep``.
    """
    final = checkpoint_dir(run_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights_file = _write_weights(tmp, {name: m.state_dict() for name, m in modules.items()})
    trainer = {"step": int(step), "optimizer": optimizer.state_dict() if optimizer is not None else None,
               "rng": rng_state(), "extra": dict(extra or {})}
    torch.save(trainer, tmp / "trainer.pt")
    (tmp / "config.json").write_text(json.dumps(config, indent=1, default=_plain), encoding="utf-8")
    files = [weights_file, "trainer.pt", "config.json"]
    manifest = {"step": int(step), "weights": weights_file, "files": {name: _digest(tmp / name) for name in files}}
    _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
    for name in files:
        _fsync(tmp / name)
    if final.exists():
        stale = final.parent / f".old-{final.name}-{os.getpid()}"
        os.replace(final, stale)
        shutil.rmtree(stale)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if keep is not None:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_weights(directory: Path, states: Mapping[str, Mapping[str, torch.Tensor]]) -> str:
    flat = {f"{name}.{key}": tensor.detach().cpu().contiguous().clone()
            for name, state in states.items() for key, tensor in state.items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        torch.save(flat, directory / "weights.pt")
        return "weights.pt"
    save_file(flat, str(directory / "weights.safetensors"))
    return "weights.safetensors"


def _read_weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        flat = load_file(str(path))
    else:
        flat = torch.load(path, map_location="cpu", weights_only=True)
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        name, _, rest = key.partition(".")
        states.setdefault(name, {})[rest] = tensor
    return states


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint directories of a run, oldest first (temporary ones are never listed)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP_DIR.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(_STEP_DIR.fullmatch(p.name).group(1)))


def verify_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Check every file against the manifest; return it or raise :class:`CheckpointError`."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{path}: no {MANIFEST}; the checkpoint was not completely written")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{manifest_path}: unreadable manifest ({exc.msg})") from None
    for name, expected in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file}: missing (listed in the manifest)")
        actual = _digest(file)
        if actual["bytes"] != expected["bytes"]:
            raise CheckpointError(f"{file}: {actual['bytes']} bytes, the manifest says {expected['bytes']}: "
                                  "the file is truncated or was overwritten")
        if actual["sha256"] != expected["sha256"]:
            raise CheckpointError(f"{file}: SHA-256 differs from the manifest: the file is corrupt")
    return manifest


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a verified checkpoint directory."""
    path = Path(path)
    manifest = verify_checkpoint(path)
    try:
        weights = _read_weights(path / manifest["weights"])
        trainer = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except Exception as exc:  # verified bytes that still fail to parse: report, don't half-load
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from exc
    return Checkpoint(path=path, step=int(trainer["step"]), weights=weights, trainer=trainer, config=config)


def latest_checkpoint(run_dir: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint of a run that verifies; damaged newer ones are skipped with a warning."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return load_checkpoint(path)
        except CheckpointError as exc:
            logger.warning("skipping checkpoint: %s", exc)
    return None


def restore(checkpoint: Checkpoint, modules: Mapping[str, nn.Module],
            optimizer: torch.optim.Optimizer | None = None, rng: bool = True) -> None:
    """Load weights (strictly), optimiser state and global RNG states from a checkpoint."""
    for name, module in modules.items():
        if name not in checkpoint.weights:
            raise CheckpointError(f"{checkpoint.path}: no weights for `{name}` (has {sorted(checkpoint.weights)})")
        module.load_state_dict(checkpoint.weights[name])
    if optimizer is not None and checkpoint.trainer.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint.trainer["optimizer"])
    if rng:
        set_rng_state(checkpoint.trainer["rng"])


# ---------------------------------------------------------- rebuilding modules
def module_spec(factory: str, **kwargs: Any) -> dict[str, Any]:
    """How to rebuild a module: ``"package.module:callable"`` and JSON keyword arguments."""
    return {"factory": factory, "kwargs": kwargs}


TRUSTED_FACTORY_PACKAGES = ("agents", "training", "pixelis_env")
"""Packages whose callables a config or checkpoint may name; extend with PIXELIS_TRUSTED_FACTORIES
(comma-separated top-level packages) for your own policy factories."""


def import_object(path: str) -> Any:
    """``"package.module:attr.sub"`` -> the object, only from trusted packages.

    A checkpoint's config names its model factories; restricting them to known packages
    keeps a tampered ``config.json`` from calling arbitrary code (``os:system``...).
    """
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"expected `package.module:callable`, got {path!r}")
    extra = tuple(p for p in os.environ.get("PIXELIS_TRUSTED_FACTORIES", "").split(",") if p)
    if module_name.split(".")[0] not in TRUSTED_FACTORY_PACKAGES + extra:
        raise PixelisError(f"refusing factory {path!r}: only callables from {TRUSTED_FACTORY_PACKAGES + extra} "
                           "may be named (set PIXELIS_TRUSTED_FACTORIES to add packages)")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def build_modules(specs: Mapping[str, Mapping[str, Any]]) -> dict[str, nn.Module]:
    """Instantiate modules from :func:`module_spec` entries."""
    return {name: import_object(spec["factory"])(**spec["kwargs"]) for name, spec in specs.items()}


def load_modules(path: str | os.PathLike) -> dict[str, nn.Module]:
    """Rebuild and load every module of a checkpoint (e.g. ``{"policy", "aux"}``) for inference."""
    checkpoint = load_checkpoint(path)
    specs = checkpoint.config.get("modules")
    if not specs:
        raise CheckpointError(f"{path}: config.json has no `modules` section; cannot rebuild the model")
    modules = build_modules(specs)
    restore(checkpoint, modules, rng=False)
    for module in modules.values():
        module.eval()
    return modules
