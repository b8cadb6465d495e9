"""Env overhead over the bare backends behind the OCR, tracking and SAM tools.

Run: ``python -m pytest benchmarks/bench_tools.py --benchmark-only``. Each test times
the env step and the bare backend call alternately in one process and stores the ratio
of medians in the benchmark JSON (``extra_info``). Targets are in the docstrings; the
asserted bounds are only regression guards (the machine is shared and noisy). Tests
marked ``slow`` (CSRT, SAM) are skipped by ``-m "not slow"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from benchmarks.ratios import interleaved_ratio, record
from pixelis_env import PixelisEnv, Task, TaskList
from pixelis_env.actions import ReadText, Segment, Track
from pixelis_env.media import ArrayVideo, ImageMedia, Media
from pixelis_env.tools import sam_backend, tesseract_backend
from pixelis_env.tools.track import make_tracker
from pixelis_env.views import box_to_pixels, crop

VIEW = 224


def _rounds(benchmark: Any, rounds: int) -> int:
    """``rounds``, or 2 under ``--benchmark-disable`` (the short CI form: a smoke run, not a measurement)."""
    return 2 if benchmark.disabled else rounds


def _env(media: Media, **kwargs: Any) -> PixelisEnv:
    task = Task(task_id="bench", question="?", answer="x", answer_type="text", media=media, metric="exact")
    kind = "video" if media.is_video else "image"
    source = TaskList([task], media_kinds=frozenset({kind}), max_frames=media.num_frames,
                      max_seconds=max(media.duration, 1.0))
    env = PixelisEnv(source, view_size=VIEW, max_steps=10**9, max_errors=10**9, **kwargs)
    env.reset(seed=0)
    return env


def _checked_step(env: PixelisEnv, action: Any) -> Callable[[], dict[str, Any]]:
    """``env.step(action)`` as a thunk; the first call must succeed (a benchmark of an error path is void)."""
    info = env.step(action)[4]
    assert info["error"] is None, info["error"]
    return lambda: env.step(action)


# --------------------------------------------------------------------- OCR
def _page_frame() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 640x480 frame with ``skimage.data.page()`` (a real, unevenly lit scan, 384x191) pasted in."""
    page = data.page()
    frame = np.full((480, 640, 3), 200, np.uint8)
    y, x = 120, 128
    frame[y:y + page.shape[0], x:x + page.shape[1]] = page[:, :, None]
    h, w = page.shape
    return frame, (x / 640, y / 480, (x + w) / 640, (y + h) / 480)


def test_read_text_step_vs_bare_tesseract(benchmark):
    """``read_text`` env step vs ``pytesseract.image_to_data`` on the same prepared crop.

    Target: <= 1.10x. The bare side gets the image exactly as the tool hands it to
    tesseract (greyscale, background divided out, upsampled to the tool's minimum side,
    bordered) and the same ``--psm``/language/``OMP_THREAD_LIMIT``; the preparation is
    done once outside the timing, so the ratio charges the tool's preprocessing, line
    grouping, view and the env's bookkeeping to the env. ``read_lines_vs_bare_tesseract`` splits off
    the tool's own share.
    """
    import pytesseract

    frame, box = _page_frame()
    env = _env(ImageMedia(frame))
    step = _checked_step(env, ReadText(box=box))
    options = dict(tesseract_backend.DEFAULTS)
    gray = cv2.cvtColor(crop(frame, box), cv2.COLOR_RGB2GRAY)
    scale = float(np.clip(options["ocr_min_side"] / min(gray.shape), 1.0, options["ocr_max_upsample"]))
    prepared = tesseract_backend.prepare(gray, scale)

    def bare() -> Any:
        return pytesseract.image_to_data(prepared, lang=options["ocr_lang"], config=f"--psm {options['ocr_psm']}",
                                         output_type=pytesseract.Output.DICT, timeout=options["ocr_timeout"])

    assert any(str(t).strip() for t in bare()["text"]), "tesseract read nothing: the benchmark would be void"
    result = interleaved_ratio(step, bare, rounds=_rounds(benchmark, 10))
    ratio = record(benchmark, "read_text_step_vs_bare_tesseract", result)
    region = crop(frame, box)
    record(benchmark, "read_lines_vs_bare_tesseract",
           interleaved_ratio(lambda: tesseract_backend.read_lines(region), bare, rounds=_rounds(benchmark, 4)))
    benchmark.extra_info["crop_px"] = list(region.shape[1::-1])
    benchmark.extra_info["upsample"] = round(scale, 3)
    benchmark.pedantic(step, rounds=3, iterations=1)
    assert ratio < 1.5


# ---------------------------------------------------------------- tracking
def _moving_video(frames: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """640x480 frames: a textured patch moving over a blurred-noise background, and its first box."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (9, 9), 3)
    patch = cv2.resize(data.astronaut()[100:260, 160:320], (80, 80), interpolation=cv2.INTER_AREA)
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x, y = 100 + 6 * t, 200 + 2 * t
        video[t, y:y + 80, x:x + 80] = patch
    return video, (100 / 640, 200 / 480, 180 / 640, 280 / 480)


def _track_ratio(benchmark, tracker: str, frames: int, rounds: int) -> float:
    video, box = _moving_video(frames)
    env = _env(ArrayVideo(video, fps=8.0))
    action = Track(box=box, start_frame=0, end_frame=frames - 1, tracker=tracker)
    step = _checked_step(env, action)
    # The action's box (rounded to 4 decimals), not ``box``: KCF's cost changes ~3x with one pixel of box width.
    x0, y0, x1, y1 = box_to_pixels(action.box, 640, 480)

    def bare() -> list[Any]:
        t = make_tracker(tracker)
        t.init(cv2.cvtColor(video[0], cv2.COLOR_RGB2BGR), (x0, y0, x1 - x0, y1 - y0))
        return [t.update(cv2.cvtColor(f, cv2.COLOR_RGB2BGR)) for f in video[1:]]

    result = interleaved_ratio(step, bare, rounds=_rounds(benchmark, rounds))
    ratio = record(benchmark, f"track_{tracker}_step_vs_bare", result)
    benchmark.extra_info["frames"] = frames
    benchmark.extra_info[f"bare_{tracker}_ms_per_frame"] = round(result["b_s"] * 1e3 / (frames - 1), 3)
    benchmark.pedantic(step, rounds=3, iterations=1)
    return ratio


def test_track_kcf_step_vs_bare_opencv(benchmark):
    """``track`` (KCF) env step over 24 640x480 frames vs a bare ``TrackerKCF`` init + updates
    on the same RGB frames, each converted to BGR just before its update (as OpenCV needs).

    Target: <= 1.10x. Converting in the loop, not once ahead, is what any caller does, and
    is faster: 23 pre-converted frames (21 MB) are cold in cache on a shared machine, one
    reused buffer is hot; a pre-converted baseline made the env look 0.7x of bare.
    """
    assert _track_ratio(benchmark, "kcf", frames=24, rounds=20) < 1.5


@pytest.mark.slow
def test_track_csrt_step_vs_bare_opencv(benchmark):
    """``track`` (CSRT) env step over 10 640x480 frames vs bare ``TrackerCSRT``, as for KCF. Target: <= 1.10x."""
    assert _track_ratio(benchmark, "csrt", frames=10, rounds=6) < 1.5


# --------------------------------------------------------------------- SAM
SAM_TYPE = "bench-vit-384"
SAM_DIM = 384


def build_bench_sam() -> Any:
    """SAM's architecture at 1024 px with a cut-down encoder (384 wide, 4 windowed blocks, ~0.2x
    ViT-B's FLOPs) and the real prompt encoder and mask decoder; random weights.

    The encoder still dominates a first prompt, but by far less than ViT-B/H do, so the
    measured speed-up is a lower bound on a real checkpoint's.
    """
    import torch
    from segment_anything import modeling

    size, patch, out = 1024, 16, 256
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=size, patch_size=patch, embed_dim=SAM_DIM, depth=4, num_heads=6, mlp_ratio=4, out_chans=out,
            qkv_bias=True, use_rel_pos=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), window_size=14,
            global_attn_indexes=()),
        prompt_encoder=modeling.PromptEncoder(embed_dim=out, image_embedding_size=(size // patch, size // patch),
                                              input_image_size=(size, size), mask_in_chans=16),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3, transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=out, mlp_dim=2048,
                                                                             num_heads=8),
            transformer_dim=out, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


@pytest.fixture()
def bench_sam(tmp_path, monkeypatch) -> Iterator[str]:
    """A checkpoint file of :func:`build_bench_sam`, on one torch thread."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    monkeypatch.setitem(sam_backend._BUILDERS, SAM_TYPE, sam_backend.SamBuilder(build_bench_sam, SAM_DIM))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = tmp_path / "bench_sam.pth"
    torch.save(build_bench_sam().state_dict(), path)
    sam_backend.clear_caches()
    yield str(path)
    sam_backend.clear_caches()
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_sam_second_prompt_vs_first(benchmark, bench_sam):
    """A second ``segment`` prompt on the same frame (cached embedding) vs a first one.

    Target: the second is >= 10x faster. Both sides are whole env steps on a 1024x768
    image; the first-prompt side clears the embedding cache before stepping. One torch
    thread (stable on a shared machine). ``sam_encoder_share_ms`` is the difference;
    ``sam_second_step_vs_backend_predict`` is the env's and the tool's overhead around a
    cached prompt (the bare side is ``sam_backend.predict``: prompt encoder, mask decoder,
    upsampling of the kept mask).
    """
    image = cv2.resize(data.astronaut(), (1024, 768), interpolation=cv2.INTER_CUBIC)
    env = _env(ImageMedia(image), tool_config={"sam_checkpoint": bench_sam, "sam_model_type": SAM_TYPE})
    action = Segment(point=(0.45, 0.3))
    second = _checked_step(env, action)
    assert env.records[-1].tool_result["backend"] == "sam"

    def first() -> Any:
        sam_backend._EMBEDDINGS.clear()
        return env.step(action)

    result = interleaved_ratio(first, second, rounds=_rounds(benchmark, 3))
    speedup = record(benchmark, "sam_first_vs_second_prompt", result)
    benchmark.extra_info["sam_encoder_share_ms"] = round((result["a_s"] - result["b_s"]) * 1e3, 2)
    model = sam_backend.load_sam(bench_sam, SAM_TYPE)
    embedding = sam_backend.embed(model, env.media, 0)
    h, w = image.shape[:2]
    record(benchmark, "sam_second_step_vs_backend_predict",
           interleaved_ratio(second, lambda: sam_backend.predict(model, embedding, point=(0.45 * w, 0.3 * h)),
                             rounds=_rounds(benchmark, 8)))
    benchmark.pedantic(second, rounds=3, iterations=1)
    assert speedup > 3
