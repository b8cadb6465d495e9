"""Images and videos behind one interface; lazy bounded decoding; clear errors naming the file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from pixelis_env import MediaError, load_media
from pixelis_env.media import ArrayVideo, ImageMedia, RenderedVideo, VideoFile


def write_video(path, frames: int = 20, size=(64, 48), fourcc: str = "mp4v", fps: float = 10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for t in range(frames):
        frame = np.full((size[1], size[0], 3), 10 * (t % 20), np.uint8)
        frame[:, :, 2] = 200  # red in BGR
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_video_file_interface(tmp_path, suffix, fourcc):
    media = load_media(write_video(tmp_path / f"v{suffix}", fourcc=fourcc))
    assert isinstance(media, VideoFile)
    assert (media.width, media.height, media.num_frames) == (64, 48, 20)
    assert media.fps == pytest.approx(10.0) and media.is_video and media.duration == pytest.approx(2.0)
    frame = media.frame(5)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert frame[..., 0].mean() > 150, "frames are RGB (red channel first)"
    assert abs(int(frame[..., 1].mean()) - 50) < 12
    assert np.array_equal(media.frame(19), media.frame(19))
    with pytest.raises(MediaError, match="outside 0..19"):
        media.frame(20)
    media.close()
    assert media.frame(3).shape == (48, 64, 3), "a closed video reopens on access"


def test_video_cache_is_bounded(tmp_path):
    media = VideoFile(write_video(tmp_path / "long.mp4", frames=60), cache_frames=8)
    for i in range(60):
        media.frame(i)
    assert len(media._cache) == 8


def test_rendered_video_is_lazy():
    calls = []

    def render(i):
        calls.append(i)
        return np.full((8, 8, 3), i, np.uint8)

    media = RenderedVideo(render, num_frames=1000, fps=4, size=(8, 8), cache_frames=4)
    assert calls == []
    media.frame(10)
    media.frame(10)
    assert calls == [10]
    assert media.duration == 250


@pytest.mark.parametrize("array", [
    np.zeros((10, 12), np.uint8),
    np.zeros((10, 12, 1), np.uint8),
    np.zeros((10, 12, 4), np.uint8),
    np.full((10, 12, 3), 65535, np.uint16),
    np.full((10, 12, 3), 0.5, np.float32),
    np.ones((10, 12), bool),
])
def test_image_conversions(array):
    media = load_media(array)
    frame = media.frame(0)
    assert frame.shape == (10, 12, 3) and frame.dtype == np.uint8 and not media.is_video


def test_image_from_path_and_pil(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "x.png")
    assert np.array_equal(load_media(tmp_path / "x.png").frame(0), array)
    assert np.array_equal(load_media(Image.fromarray(array)).frame(0), array)
    Image.fromarray(array[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    assert load_media(tmp_path / "g16.png").frame(0).shape == (20, 30, 3)


def test_array_video():
    media = load_media(np.zeros((5, 8, 9, 3), np.uint8), fps=5)
    assert isinstance(media, ArrayVideo) and media.num_frames == 5 and media.duration == 1.0


def test_animated_gif_is_a_video(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    assert load_media(tmp_path / "a.gif").num_frames == 4


@pytest.mark.parametrize("content,suffix,message", [
    (b"", ".mp4", "cannot open|no decodable frame"),
    (b"not a video at all" * 100, ".mp4", "cannot open|no decodable frame"),
    (b"\x89PNG\r\n\x1a\n garbage", ".png", "cannot read image"),
    (b"hello", ".xyz", "unsupported file type"),
])
def test_corrupt_files_name_the_file(tmp_path, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=message) as info:
        load_media(path)
    assert str(path) in str(info.value)


def test_truncated_video_raises_on_the_missing_frames(tmp_path):
    path = write_video(tmp_path / "t.avi", frames=40, fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    try:
        media = load_media(path)
    except MediaError as exc:
        assert str(path) in str(exc)
        return
    with pytest.raises(MediaError, match=str(path)):
        for i in range(media.num_frames):
            media.frame(i)


def test_missing_file_and_bad_arrays(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        load_media(tmp_path / "missing.mp4")
    with pytest.raises(MediaError, match="expected an image"):
        ImageMedia(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(MediaError, match="NaN"):
        ImageMedia(np.full((4, 4), np.nan))
    with pytest.raises(MediaError, match="fps"):
        ArrayVideo(np.zeros((2, 4, 4, 3), np.uint8), fps=0)


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (12_000, 12_000)).save(path)
    with pytest.raises(MediaError, match="too large"):
        load_media(path)
