"""``segment``: the classical GrabCut backend, the SAM backend (a tiny random-weight SAM
loaded from a real checkpoint file), backend selection and error paths, directly and
through the env."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
from skimage import data

from pixelis_env.actions import Properties, Segment
from pixelis_env.errors import BackendUnavailableError, ToolError
from pixelis_env.media import ArrayVideo, ImageMedia
from pixelis_env.tools import properties, sam_backend, segment
from pixelis_env.tools.base import ToolContext
from pixelis_env.tools.mask_store import MASKS_KEY
from tests.tool_scenes import coins_with_truth, interior_point, mask_iou, one_task_env, shapes_scene


def _ctx(image: np.ndarray, **config: object) -> ToolContext:
    return ToolContext(media=ImageMedia(image), view_size=224, config=dict(config))


def _norm_point(x: int, y: int, image: np.ndarray) -> tuple[float, float]:
    h, w = image.shape[:2]
    return (round((x + 0.5) / w, 4), round((y + 0.5) / h, 4))


# ------------------------------------------------------------------ classical
def test_point_on_flat_shape_gives_its_mask_and_keeps_it():
    image, masks = shapes_scene(np.random.default_rng(1), "flat")
    ctx = _ctx(image)
    result = segment.run(Segment(point=_norm_point(*interior_point(masks[-1]), image)), ctx)
    assert result.data["backend"] == "classical"
    assert result.data["mask_id"] == 0
    stored = ctx.state[MASKS_KEY][0]
    assert stored["frame"] == 0 and stored["mask"].dtype == bool
    assert mask_iou(stored["mask"], masks[-1]) > 0.95
    assert result.data["area_px"] == int(stored["mask"].sum())
    assert result.image.shape[2] == 3 and max(result.image.shape[:2]) == 224
    json.dumps(result.data)


def test_box_on_real_coin_follows_its_outline():
    image, coins = coins_with_truth()
    ys, xs = np.nonzero(coins[0])
    h, w = coins[0].shape
    box = (round((xs.min() - 4) / w, 4), round((ys.min() - 4) / h, 4), round((xs.max() + 5) / w, 4),
           round((ys.max() + 5) / h, 4))
    result = segment.run(Segment(box=box), ctx := _ctx(image))
    assert mask_iou(ctx.state[MASKS_KEY][0]["mask"], coins[0]) > 0.9
    assert result.data["box"][0] >= box[0] and result.data["box"][2] <= box[2]


def test_point_on_real_coin():
    image, coins = coins_with_truth()
    ctx = _ctx(image)
    segment.run(Segment(point=_norm_point(*interior_point(coins[5]), image)), ctx)
    assert mask_iou(ctx.state[MASKS_KEY][0]["mask"], coins[5]) > 0.9


@pytest.mark.parametrize("prompt", [{"point": (0.5, 0.5)}, {"box": (0.2, 0.2, 0.8, 0.8)},
                                    {"box": (0.0, 0.0, 1.0, 1.0)}])
def test_blank_region_gives_an_empty_mask_not_an_error(prompt):
    noisy = np.clip(128 + np.random.default_rng(0).normal(0, 8, (120, 160, 3)), 0, 255).astype(np.uint8)
    ctx = _ctx(noisy)
    result = segment.run(Segment(**prompt), ctx)
    assert result.data["mask_id"] == 0 and result.data["area_px"] == 0 and result.data["box"] is None
    assert "mask 0 (classical) is empty: nothing stands out" in result.text
    with pytest.raises(ToolError, match="mask 0 is empty"):
        properties.run(Properties(mask_id=0), ctx)


def test_tiny_box_and_corner_point_do_not_crash():
    image = data.astronaut()
    segment.run(Segment(box=(0.5, 0.5, 0.501, 0.501)), _ctx(image))
    segment.run(Segment(point=(1.0, 1.0)), _ctx(image))
    segment.run(Segment(point=(0.0, 0.0)), _ctx(image))


def test_video_frame_is_the_one_segmented():
    frames = np.full((3, 60, 80, 3), 30, np.uint8)
    frames[2, 20:40, 30:50] = (250, 0, 0)
    ctx = ToolContext(media=ArrayVideo(frames, fps=2), view_size=64)
    assert segment.run(Segment(point=(0.5, 0.5), frame=0), ctx).data["area_px"] == 0
    result = segment.run(Segment(point=(0.5, 0.5), frame=2), ctx)
    assert result.data["frame"] == 2 and result.data["area_px"] == 400 and result.data["mask_id"] == 1


def test_unknown_backend_name_is_an_error():
    with pytest.raises(BackendUnavailableError, match="segment_backend"):
        segment.run(Segment(point=(0.5, 0.5)), _ctx(data.astronaut(), segment_backend="deeplab"))


def test_sam_backend_without_checkpoint_says_what_to_set(monkeypatch):
    monkeypatch.delenv(sam_backend.CHECKPOINT_ENV, raising=False)
    with pytest.raises(BackendUnavailableError, match="sam_checkpoint"):
        segment.run(Segment(point=(0.5, 0.5)), _ctx(data.astronaut(), segment_backend="sam"))


# ------------------------------------------------------------------------ env
def test_env_segment_then_properties_by_mask_id():
    image, masks = shapes_scene(np.random.default_rng(2), "gradient")
    env = one_task_env(ImageMedia(image), view_size=96)
    env.reset(seed=0)
    obs, reward, _, _, info = env.step(Segment(point=_norm_point(*interior_point(masks[-1]), image)))
    assert info["error"] is None and info["tool_result"]["mask_id"] == 0
    assert obs["image"].shape == (96, 96, 3) and "mask 0" in obs["text"]
    _, _, _, _, info = env.step(Properties(mask_id=0))
    assert info["error"] is None and info["tool_result"]["area_px"] == int(masks[-1].sum())


def test_env_rejects_out_of_range_frame_and_goes_on():
    env = one_task_env(ArrayVideo(np.zeros((4, 32, 32, 3), np.uint8), fps=2))
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(Segment(point=(0.5, 0.5), frame=9))
    assert "outside the video" in info["error"] and reward < 0 and not terminated and not truncated


def test_env_text_action_and_missing_checkpoint_error(tmp_path):
    env = one_task_env(ImageMedia(data.astronaut()), tool_config={"sam_checkpoint": str(tmp_path / "nope.pth")})
    env.reset(seed=0)
    obs, reward, _, _, info = env.step('<tool_call>{"name": "segment", "arguments": {"point": [0.5, 0.5]}}'
                                       '</tool_call>')
    assert "BackendUnavailableError" in info["error"] and "nope.pth" in obs["text"] and reward < 0


# ------------------------------------------------------------------------ SAM
TINY = "tiny-test"
TINY_DIM = 32


def build_tiny_sam():
    """A SAM with a 64 px input, one encoder block and 32 channels: the real architecture, random weights."""
    import torch
    from segment_anything import modeling

    dim, size, patch = TINY_DIM, 64, 8
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=size, patch_size=patch, embed_dim=dim, depth=1, num_heads=2, mlp_ratio=2, out_chans=dim,
            qkv_bias=True, use_rel_pos=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), window_size=4,
            global_attn_indexes=(0,)),
        prompt_encoder=modeling.PromptEncoder(embed_dim=dim, image_embedding_size=(size // patch, size // patch),
                                              input_image_size=(size, size), mask_in_chans=4),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3, transformer=modeling.TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64,
                                                                             num_heads=2),
            transformer_dim=dim, iou_head_depth=2, iou_head_hidden_dim=32),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


@pytest.fixture()
def tiny_checkpoint(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    pytest.importorskip("segment_anything")
    monkeypatch.setitem(sam_backend._BUILDERS, TINY, sam_backend.SamBuilder(build_tiny_sam, TINY_DIM))
    sam_backend.clear_caches()
    torch.manual_seed(0)
    model = build_tiny_sam()
    path = tmp_path / "tiny_sam.pth"
    torch.save(model.state_dict(), path)
    yield path
    sam_backend.clear_caches()


def _count_encoder_calls(model) -> list[int]:
    calls = [0]
    model.image_encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_sam_loads_by_encoder_width_and_caches_the_frame_embedding(tiny_checkpoint):
    ctx = _ctx(data.astronaut(), sam_checkpoint=str(tiny_checkpoint))
    model = sam_backend.load_sam(tiny_checkpoint)
    assert sam_backend.load_sam(tiny_checkpoint) is model
    calls = _count_encoder_calls(model)
    first = segment.run(Segment(point=(0.5, 0.4)), ctx)
    second = segment.run(Segment(box=(0.2, 0.1, 0.8, 0.9)), ctx)
    assert calls[0] == 1
    assert first.data["backend"] == second.data["backend"] == "sam"
    json.dumps(first.data)


def test_sam_keeps_the_mask_with_the_highest_predicted_iou(tiny_checkpoint):
    ctx = _ctx(data.astronaut(), sam_checkpoint=str(tiny_checkpoint), sam_model_type=TINY)
    model = sam_backend.load_sam(tiny_checkpoint, TINY)
    seen = {}
    model.mask_decoder.register_forward_hook(lambda _m, _i, out: seen.update(masks=out[0], ious=out[1]))
    result = segment.run(Segment(point=(0.5, 0.5)), ctx)
    ious = seen["ious"][0].cpu().numpy()
    assert result.data["predicted_iou"] == pytest.approx(float(ious.max()), abs=1e-4)
    best = int(np.argmax(ious))
    upscaled = model.postprocess_masks(seen["masks"], (64, 64), (512, 512))[0, best] > 0
    assert result.data["mask_id"] == 0  # seed 0 gives a non-empty mask
    assert np.array_equal(ctx.state[MASKS_KEY][0]["mask"], upscaled.cpu().numpy())


def test_sam_embedding_cache_is_per_frame_and_bounded(tiny_checkpoint):
    frames = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), np.uint8)
    ctx = ToolContext(media=ArrayVideo(frames, fps=1), view_size=64,
                      config={"sam_checkpoint": str(tiny_checkpoint), "sam_cache_size": 2})
    calls = _count_encoder_calls(sam_backend.load_sam(tiny_checkpoint))
    for frame in (0, 1, 0, 1, 2, 0):
        segment.run(Segment(point=(0.5, 0.5), frame=frame), ctx)
    assert calls[0] == 4  # 0, 1 encoded; 0, 1 hits; 2 evicts 0; 0 again


def test_corrupt_checkpoint_is_an_error_not_a_fallback(tmp_path):
    pytest.importorskip("segment_anything")
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(BackendUnavailableError, match="not a readable torch state dict"):
        segment.run(Segment(point=(0.5, 0.5)), _ctx(data.astronaut(), sam_checkpoint=str(path)))


def test_checkpoint_of_another_size_names_the_mismatch(tiny_checkpoint, tmp_path):
    renamed = tmp_path / "sam_vit_b_tiny.pth"
    renamed.write_bytes(tiny_checkpoint.read_bytes())
    with pytest.raises(BackendUnavailableError, match="does not fit a vit_b model"):
        sam_backend.load_sam(renamed)


def test_unrecognised_width_and_unknown_type_are_errors(tiny_checkpoint, monkeypatch):
    with pytest.raises(BackendUnavailableError, match="unknown sam_model_type 'vit_q'"):
        sam_backend.load_sam(tiny_checkpoint, "vit_q")
    monkeypatch.delitem(sam_backend._BUILDERS, TINY)
    with pytest.raises(BackendUnavailableError, match="encoder width 32"):
        sam_backend.load_sam(tiny_checkpoint)


def test_checkpoint_from_environment_variable(tiny_checkpoint, monkeypatch):
    monkeypatch.setenv(sam_backend.CHECKPOINT_ENV, str(tiny_checkpoint))
    assert segment.run(Segment(point=(0.5, 0.5)), _ctx(data.astronaut())).data["backend"] == "sam"
    result = segment.run(Segment(point=(0.5, 0.5)), _ctx(data.astronaut(), segment_backend="classical"))
    assert result.data["backend"] == "classical"


def test_env_step_with_sam(tiny_checkpoint):
    env = one_task_env(ImageMedia(data.astronaut()), tool_config={"sam_checkpoint": str(tiny_checkpoint)})
    env.reset(seed=0)
    _, _, _, _, info = env.step(Segment(box=(0.3, 0.1, 0.7, 0.5)))
    assert info["error"] is None and info["tool_result"]["backend"] == "sam"
