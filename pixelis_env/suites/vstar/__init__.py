"""``Pixelis-VStar-v0``: small details in high-resolution images (attributes, left/right relations).

Without ``data_root`` the embedded generator makes the tasks (see
:mod:`~pixelis_env.suites.vstar.generator`). With it, the real benchmark files are
loaded: V*Bench (:mod:`~pixelis_env.suites.vstar.vstar_bench`) or HR-Bench 4K/8K
(:mod:`~pixelis_env.suites.vstar.hr_bench`), chosen by ``benchmark`` or by what the
folder holds. Answers are option letters scored by the ``letter`` metric
(:mod:`~pixelis_env.suites.vstar.letters`), registered on import.
"""

from __future__ import annotations

import os
from pathlib import Path

from pixelis_env.errors import DataError, did_you_mean
from pixelis_env.metrics import register_metric
from pixelis_env.suites.vstar import generator, hr_bench, vstar_bench
from pixelis_env.suites.vstar.letters import letter_accuracy
from pixelis_env.task import TaskList

MAX_STEPS = 8
BENCHMARKS = ("vstar", "hrbench")

register_metric("letter", letter_accuracy)


def make_source(split: str = "train", num_tasks: int = 200, seed: int = 0, difficulty: int = 1,
                data_root: str | os.PathLike | None = None, benchmark: str | None = None,
                hr_subset: str | None = None) -> TaskList:
    """The VStar task source: generated, or loaded from ``data_root``.

    Args:
        split, num_tasks, seed, difficulty: the generator's split (``train``/``val``/``test``,
            disjoint), size, seed and level (1-3: larger images, smaller objects, more clutter).
        data_root: a V*Bench folder, an HR-Bench folder, or an HR-Bench ``.tsv``/``.parquet``
            file. Every row is loaded; the generator arguments do not apply, except
            ``seed``, which orders the options of V*Bench folders without ``test_questions.jsonl``.
        benchmark: ``"vstar"`` or ``"hrbench"``; detected from ``data_root`` when ``None``.
        hr_subset: ``"4k"`` or ``"8k"`` when an HR-Bench folder holds both files.
    """
    if data_root is None:
        return generator.make_generated_source(split, int(num_tasks), int(seed), int(difficulty))
    root = Path(data_root)
    if not root.exists():
        raise DataError(f"{root}: data_root not found")
    kind = benchmark or _detect(root, hr_subset)
    if kind not in BENCHMARKS:
        raise DataError(f"unknown benchmark {kind!r}; expected one of {list(BENCHMARKS)}."
                        + did_you_mean(kind, BENCHMARKS))
    if kind == "vstar":
        return vstar_bench.load(root, seed=int(seed))
    path = hr_bench.find_file(root, hr_subset)
    if path is None:
        raise DataError(f"{root}: no hr_bench_4k/8k .tsv or .parquet file")
    return hr_bench.load(path)


def _detect(root: Path, hr_subset: str | None) -> str:
    if root.is_dir() and vstar_bench.is_vstar_root(root):
        return "vstar"
    if hr_bench.find_file(root, hr_subset) is not None:
        return "hrbench"
    raise DataError(f"{root}: neither V*Bench ({vstar_bench.QUESTIONS_FILE} or category folders) nor HR-Bench "
                    "(hr_bench_4k.tsv / hr_bench_8k.tsv); pass benchmark='vstar' or 'hrbench'")
