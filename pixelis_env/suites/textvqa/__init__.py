"""``Pixelis-TextVQA-v0``: reading text in scenes and documents.

Without ``data_root`` the embedded generator makes street-scene tasks (signs; VQA
accuracy) and document-page tasks (fields, tables, captions; ANLS), see
:mod:`~pixelis_env.suites.textvqa.generator`. With it, TextVQA
(:mod:`~pixelis_env.suites.textvqa.textvqa_json`) or DocVQA
(:mod:`~pixelis_env.suites.textvqa.docvqa`) is loaded, chosen by ``benchmark`` or by
what ``data_root`` holds. The ``vqa`` metric is registered on import.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelis_env.errors import DataError, did_you_mean
from pixelis_env.metrics import register_metric
from pixelis_env.suites.textvqa import docvqa, generator, textvqa_json
from pixelis_env.suites.textvqa.vqa_accuracy import vqa_accuracy
from pixelis_env.task import TaskList

MAX_STEPS = 8
BENCHMARKS = ("textvqa", "docvqa")

register_metric("vqa", vqa_accuracy)


def make_source(split: str = "train", num_tasks: int = 200, seed: int = 0, difficulty: int = 1,
                data_root: str | os.PathLike | None = None, benchmark: str | None = None,
                kind: str = "mixed") -> TaskList:
    """The TextVQA task source: generated, or loaded from ``data_root``.

    Args:
        split, num_tasks, seed, difficulty: the generator's split (``train``/``val``/``test``,
            disjoint), size, seed and level (1-3: larger images, smaller text). With
            ``data_root``, ``split`` picks the benchmark file and every row is loaded.
        data_root: a TextVQA folder (``TextVQA_0.5.1_{split}.json`` + ``train_images/``), a
            DocVQA folder (parquet shards or ``{split}_v1.0.json``), or one such file.
        benchmark: ``"textvqa"`` or ``"docvqa"``; detected from ``data_root`` when ``None``.
        kind: generator only: ``"mixed"``, ``"scene"`` or ``"document"``.
    """
    if data_root is None:
        return generator.make_generated_source(split, int(num_tasks), int(seed), int(difficulty), kind)
    root = Path(data_root)
    if not root.exists():
        raise DataError(f"{root}: data_root not found")
    chosen = benchmark or _detect(root, split)
    if chosen not in BENCHMARKS:
        raise DataError(f"unknown benchmark {chosen!r}; expected one of {list(BENCHMARKS)}."
                        + did_you_mean(chosen, BENCHMARKS))
    images = root.parent if root.is_file() else root
    if chosen == "textvqa":
        path = textvqa_json.find_file(root, split)
        if path is None:
            raise DataError(f"{root}: no {textvqa_json.FILE_PATTERN.format(split=split)}")
        return textvqa_json.load(path, images)
    paths = docvqa.find_files(root, split)
    if not paths:
        raise DataError(f"{root}: no DocVQA files for split {split!r} (DocVQA/{split}-*.parquet or "
                        f"{split}_v1.0.json)")
    return docvqa.load(paths, images)


def _detect(root: Path, split: str) -> str:
    if root.is_file():
        return "textvqa" if root.name.startswith("TextVQA") else "docvqa"
    if textvqa_json.find_file(root, split) is not None:
        return "textvqa"
    if docvqa.find_files(root, split):
        return "docvqa"
    raise DataError(f"{root}: found neither {textvqa_json.FILE_PATTERN.format(split=split)} nor DocVQA files for "
                    f"split {split!r}; pass benchmark='textvqa' or 'docvqa'")
