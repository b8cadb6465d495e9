"""Bad media: odd pixel formats, bombs, corrupt, truncated and misnamed files, special files.

Each either loads as RGB ``uint8`` or fails at load with a :class:`MediaError` naming the
file, quickly (every load runs under a timeout: a hang fails the test, not the run).
Through the env, a task whose media cannot be opened is skipped at reset, a frame that
cannot be decoded is an error step, and an async vector env whose sub-env meets a corrupt
video mid-episode keeps running.
"""

from __future__ import annotations

import os
import resource
import shutil
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from agents import make_vector_env, rollout
from pixelis_env import MediaError, PixelisEnv, SelectFrames, Task, TaskList, Zoom, load_media
from pixelis_env.media import MAX_PIXELS, ImageMedia, Media
from pixelis_env.suites.images import decode_image, image_from_cell

LOAD_TIMEOUT = 20.0
RNG = np.random.default_rng(0)
PICTURE = RNG.integers(0, 255, (30, 40, 3), np.uint8)


def within(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, failing the test if it has not returned after ``seconds`` (a hang)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)}{args!r:.120} still running after {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def load_or_error(path: Path) -> Media | MediaError:
    """The loaded media with its first frame read, or the :class:`MediaError` (which must name the file)."""
    try:
        media = within(LOAD_TIMEOUT, load_media, path)
        within(LOAD_TIMEOUT, media.frame, 0)
        return media
    except MediaError as exc:
        assert path.name in str(exc), exc
        return exc


def write_video(path: Path, frames: int = 20, fourcc: str = "MJPG", size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, size)
    for t in range(frames):
        frame = np.full((size[1], size[0], 3), 12 * t % 255, np.uint8)
        cv2.putText(frame, str(t), (4, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    return path


def corrupt_mjpeg_frames(path: Path, frames: range) -> Path:
    """Wipe the JPEG headers of some frames of an MJPG AVI (the file still opens; those frames
    and, for OpenCV's seeking, the ones after them no longer decode)."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    for k in frames:
        data[starts[k] + 2:starts[k] + 200] = bytes(198)
    path.write_bytes(bytes(data))
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose header claims ``width`` x ``height`` (CRC fixed): a bomb without the bytes."""
    buffer = __import__("io").BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def gif_claiming(width: int, height: int, frames: int) -> bytes:
    """An animated GIF of 1x1 frames on a ``width`` x ``height`` canvas (each frame decodes to the canvas)."""
    buffer = __import__("io").BytesIO()
    images = [Image.fromarray(np.full((1, 1, 3), 7 * i % 256, np.uint8)) for i in range(frames)]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100, disposal=1)
    data = bytearray(buffer.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ formats
def _save(path: Path, mode: str) -> Path:
    Image.fromarray(PICTURE).convert(mode).save(path)
    return path


IMAGE_FORMATS = [("1", ".png"), ("1", ".bmp"), ("L", ".png"), ("L", ".jpg"), ("LA", ".png"), ("P", ".png"),
                 ("P", ".bmp"), ("PA", ".tif"), ("RGBA", ".png"), ("RGBA", ".webp"), ("CMYK", ".jpg"),
                 ("CMYK", ".tif"), ("YCbCr", ".tif"), ("LAB", ".tif"), ("I", ".tif"), ("F", ".tif"),
                 ("I;16", ".png"), ("I;16", ".tif")]


@pytest.mark.parametrize(("mode", "suffix"), IMAGE_FORMATS, ids=[f"{m}{s}" for m, s in IMAGE_FORMATS])
def test_every_pixel_format_loads_as_rgb_uint8_and_plays(tmp_path, mode, suffix):
    media = load_or_error(_save(tmp_path / f"img{suffix}", mode))
    assert isinstance(media, ImageMedia), media
    frame = media.frame(0)
    assert frame.dtype == np.uint8 and frame.shape == (30, 40, 3) and frame.flags.c_contiguous
    task = Task(task_id=mode, question="?", answer="a", answer_type="text", media=media, metric="exact")
    env = PixelisEnv([task], view_size=64)
    obs, _ = env.reset(seed=0)
    obs, *_, info = env.step(Zoom(box=(0.25, 0.25, 0.75, 0.75)))
    assert info["error"] is None and env.observation_space.contains(obs)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_sixteen_bit_pngs_keep_their_tones(tmp_path, channels):
    wide = PICTURE.astype(np.uint16) * 257
    image = wide[:, :, 0] if channels == 1 else wide if channels == 3 else np.dstack([wide, wide[:, :, :1]])
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), image)
    frame = load_media(path).frame(0)
    expected = np.repeat(PICTURE[:, :, :1], 3, axis=2) if channels == 1 else PICTURE[:, :, ::-1]  # cv2 wrote BGR
    assert np.abs(frame.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 3000), (3000, 1), (2, 7)])
def test_degenerate_shapes_load_and_zoom(tmp_path, shape):
    path = tmp_path / "thin.png"
    Image.fromarray(RNG.integers(0, 255, (*shape, 3), np.uint8)).save(path)
    env = PixelisEnv([Task(task_id="thin", question="?", answer="a", answer_type="text", media=path,
                           metric="exact")], view_size=64)
    env.reset(seed=0)
    for box in [(0, 0, 1, 1), (0.5, 0.5, 0.501, 0.501), (0.999, 0, 1, 0.001)]:
        obs, *_, info = env.step(Zoom(box=box))
        assert info["error"] is None and obs["image"].shape == (64, 64, 3)


# -------------------------------------------------------------------- bombs
@pytest.mark.parametrize(("width", "height"), [(50_000, 50_000), (12_000, 9_000), (65_535, 1_600)])
def test_decompression_bombs_are_refused_from_the_header(tmp_path, width, height):
    """Headers claiming 2.5G, 108M and 105M pixels: refused before any pixel is decoded."""
    assert width * height > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(width, height))
    before = max_rss_mb()
    with pytest.raises(MediaError, match="too large") as info:
        within(LOAD_TIMEOUT, load_media, path)
    assert str(path) in str(info.value)
    with pytest.raises(MediaError, match="too large|decompression bomb"):
        decode_image(path.read_bytes(), "row 7")
    with pytest.raises(MediaError, match="too large|decompression bomb"):
        image_from_cell({"bytes": path.read_bytes(), "path": None}, "row 7")
    assert max_rss_mb() - before < 100


@pytest.mark.parametrize(("width", "height", "frames"), [(65_535, 65_535, 2), (6_000, 6_000, 3), (2_000, 2_000, 30)])
def test_animated_gif_bombs_are_refused_before_decoding(tmp_path, width, height, frames):
    """A ~100-byte GIF whose frames decode onto a huge canvas (once 750 MB for 6000x6000x3)."""
    path = tmp_path / "bomb.gif"
    path.write_bytes(gif_claiming(width, height, frames))
    before = max_rss_mb()
    with pytest.raises(MediaError, match="too large") as info:
        within(LOAD_TIMEOUT, load_media, path)
    assert str(path) in str(info.value)
    assert max_rss_mb() - before < 100


def test_small_animated_gif_still_loads_as_a_video(tmp_path):
    path = tmp_path / "ok.gif"
    path.write_bytes(gif_claiming(64, 48, 5))
    media = load_media(path)
    assert media.is_video and media.num_frames == 5 and media.frame(4).shape == (48, 64, 3)


# ---------------------------------------------------------- corrupt images
def _truncated(source: Path, fraction: float) -> bytes:
    data = source.read_bytes()
    return data[: int(len(data) * fraction)]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".bmp", ".gif"])
def test_truncated_random_and_empty_images_fail_at_load_naming_the_file(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    Image.fromarray(RNG.integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    contents = {"half": _truncated(good, 0.5), "header": _truncated(good, 0.1), "empty": b"",
                "random": RNG.bytes(4096), "text": b"not an image\n" * 50}
    for name, content in contents.items():
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(content)
        outcome = load_or_error(path)
        assert isinstance(outcome, MediaError), f"{name}{suffix} loaded as {outcome}"


def test_base64_and_byte_cells_of_benchmark_tables(tmp_path):
    """The parquet/TSV loaders' image cells: bad base64, no bytes, garbage bytes all name the row."""
    for cell, message in [("!!!not base64!!!", "cannot decode|base64"), ({"bytes": None}, "no image bytes"),
                          (b"", "no image bytes"), (RNG.bytes(300), "cannot decode"), (12, "no image bytes")]:
        with pytest.raises(MediaError, match=message) as info:
            image_from_cell(cell, "questions.tsv: row 3")
        assert "row 3" in str(info.value)


# ----------------------------------------------------- misnamed and special
def test_wrong_extensions_load_by_content_or_fail_clearly(tmp_path):
    video = write_video(tmp_path / "v.mp4", fourcc="mp4v")
    picture = tmp_path / "p.png"
    Image.fromarray(PICTURE).save(picture)
    jpeg = tmp_path / "j.jpg"
    Image.fromarray(PICTURE).save(jpeg)
    for source, name in [(video, "video_as.png"), (video, "video_as.jpg"), (video, "video_as.gif")]:
        shutil.copy(source, tmp_path / name)
        assert isinstance(load_or_error(tmp_path / name), MediaError)
    for source, name in [(picture, "png_as.jpg"), (picture, "png_as.gif"), (jpeg, "jpg_as.png"), (picture, "noext")]:
        shutil.copy(source, tmp_path / name)
        media = load_or_error(tmp_path / name)
        assert isinstance(media, ImageMedia) and media.frame(0).shape == (30, 40, 3)
    shutil.copy(video, tmp_path / "video_as.avi")
    assert load_or_error(tmp_path / "video_as.avi").num_frames == 20
    shutil.copy(picture, tmp_path / "png_as.mp4")  # FFmpeg reads a PNG as a one-frame video, or refuses it
    outcome = load_or_error(tmp_path / "png_as.mp4")
    assert isinstance(outcome, MediaError) or outcome.frame(0).shape == (30, 40, 3)


@pytest.mark.parametrize("suffix", [".mp4", ".png", ".gif"])
def test_fifos_devices_folders_and_dangling_links_fail_fast(tmp_path, suffix):
    """A FIFO would block a reader forever; /dev/zero would never end: neither is opened."""
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    device = tmp_path / f"zero{suffix}"
    device.symlink_to("/dev/zero")
    dangling = tmp_path / f"dangling{suffix}"
    dangling.symlink_to(tmp_path / "nothing-here")
    for path, message in [(fifo, "not a file"), (folder, "not a file"), (device, "not a file"),
                          (dangling, "not found")]:
        with pytest.raises(MediaError, match=message):
            within(5.0, load_media, path)


@pytest.mark.parametrize(("suffix", "fourcc"), [(".mp4", "mp4v"), (".avi", "MJPG"), (".mkv", "mp4v")])
def test_empty_garbage_and_truncated_videos_fail_at_load_or_per_frame(tmp_path, suffix, fourcc):
    zero = tmp_path / f"zero{suffix}"
    write_video(zero, frames=0, fourcc=fourcc)
    if zero.exists():
        assert isinstance(load_or_error(zero), MediaError)
    for name, content in [("empty", b""), ("random", RNG.bytes(8192)), ("text", b"hello video\n" * 200)]:
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(content)
        assert isinstance(load_or_error(path), MediaError)
    good = write_video(tmp_path / f"good{suffix}", frames=40, fourcc=fourcc)
    for fraction in (0.05, 0.3, 0.6, 0.9):
        path = tmp_path / f"cut{int(fraction * 100)}{suffix}"
        path.write_bytes(_truncated(good, fraction))
        media = load_or_error(path)
        if isinstance(media, MediaError):
            continue
        readable = []
        for i in range(media.num_frames):
            try:
                within(LOAD_TIMEOUT, media.frame, i)
                readable.append(i)
            except MediaError as exc:
                assert path.name in str(exc) and f"frame {i}" in str(exc)
        assert readable[0] == 0 and len(readable) < 40
        media.close()


# ---------------------------------------------------------- through the env
class FlakyVideo(Media):
    """Fault injection: an in-memory video whose listed frames fail to decode."""

    def __init__(self, frames: int = 12, bad: frozenset[int] = frozenset({5, 6})) -> None:
        self.name, self.width, self.height, self.num_frames, self.fps = "flaky.mp4", 32, 24, frames, 4.0
        self.bad = bad

    def _frame(self, index: int) -> np.ndarray:
        if index in self.bad:
            raise MediaError(f"{self.name}: frame {index} could not be decoded (injected fault)")
        return np.full((self.height, self.width, 3), 10 * index, np.uint8)


def video_task(task_id: str, media: Any) -> Task:
    return Task(task_id=task_id, question="What happens?", answer="B", answer_type="choice", media=media,
                metric="option", options=["A. nothing", "B. something"], suite="bad-media")


def video_source(tasks: list[Task]) -> TaskList:
    return TaskList(tasks, name="bad-media", media_kinds=frozenset({"video"}), max_frames=40, max_seconds=4.0)


@pytest.fixture
def videos(tmp_path) -> dict[str, Path]:
    good = write_video(tmp_path / "good.avi")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(_truncated(write_video(tmp_path / "full.mp4", fourcc="mp4v"), 0.5))
    broken = corrupt_mjpeg_frames(write_video(tmp_path / "broken.avi"), range(8, 11))
    return {"good": good, "cut": cut, "broken": broken}


def test_unopenable_video_is_skipped_at_reset_and_named(videos, caplog):
    env = PixelisEnv(video_source([video_task("cut", videos["cut"]), video_task("good", videos["good"])]),
                     view_size=64)
    skipped = []
    for seed in range(12):
        _, info = within(LOAD_TIMEOUT, lambda s=seed: env.reset(seed=s))
        assert info["task_id"] == "good"
        skipped += info.get("skipped", [])
    assert skipped and all("cut.mp4" in s for s in skipped)
    assert "skipping task cut" in caplog.text
    with pytest.raises(MediaError, match="cut.mp4"):
        env.reset(options={"task_index": 0})  # an explicit choice is not skipped
    only_bad = PixelisEnv(video_source([video_task("cut", videos["cut"])]), view_size=64)
    with pytest.raises(MediaError, match="no loadable media after 8 tries"):
        only_bad.reset(seed=0)


def test_missing_frames_are_error_steps_and_the_episode_goes_on(videos):
    env = PixelisEnv(video_source([video_task("broken", videos["broken"])]), view_size=64, max_errors=3)
    obs, info = within(LOAD_TIMEOUT, lambda: env.reset(seed=0))  # overview frames 13 and 19 are unreadable
    assert info["error"] is None and env.observation_space.contains(obs)
    steps = [
        (SelectFrames(frames=(0, 3, 7)), None),
        (SelectFrames(frames=(2, 9)), "frame 9 could not be decoded"),
        (Zoom(box=(0, 0, 1, 1), frame=4), None),
        (Zoom(box=(0, 0, 1, 1), frame=10), "frame 10 could not be decoded"),
    ]
    for action, error in steps:
        obs, reward, terminated, truncated, info = within(LOAD_TIMEOUT, env.step, action)
        assert reward == (-0.1 if error else 0.0)
        if error is None:
            assert info["error"] is None
        else:
            assert error in info["error"] and "broken.avi" in info["error"] and obs["text"].startswith("error:")
        assert not terminated and not truncated and env.observation_space.contains(obs)
    obs, *_, truncated, info = env.step(SelectFrames(frames=(8,)))
    assert truncated and info["errors"] == 3


def test_overview_marks_unreadable_frames_and_skips_media_with_none():
    """The reset view spreads 4 frames over the video; undecodable ones are marked, not fatal."""
    env = PixelisEnv(video_source([video_task("flaky", FlakyVideo(bad=frozenset({4, 7, 11})))]), view_size=96)
    obs, info = env.reset(seed=0)
    assert info["error"] is None and env.observation_space.contains(obs)
    assert env.step(SelectFrames(frames=(0, 1)))[4]["error"] is None
    assert "injected fault" in env.step(SelectFrames(frames=(3, 4)))[4]["error"]
    dead = FlakyVideo(bad=frozenset(range(12)))
    env = PixelisEnv(video_source([video_task("dead", dead), video_task("good", FlakyVideo())]), view_size=96)
    for seed in range(6):
        assert env.reset(seed=seed)[1]["task_id"] == "good"


def test_nan_frames_of_array_videos_are_error_steps():
    frames = np.zeros((8, 16, 16, 3), np.float32)
    frames[5] = np.nan
    task = video_task("nan", lambda: __import__("pixelis_env").media.ArrayVideo(frames, fps=4.0))
    env = PixelisEnv(video_source([task]), view_size=64)
    env.reset(seed=0)
    assert "NaN" in env.step(Zoom(box=(0, 0, 1, 1), frame=5))[4]["error"]
    assert env.step(Zoom(box=(0, 0, 1, 1), frame=6))[4]["error"] is None


class BadFrameAgent:
    """Asks for frames past the corrupt ones, then good ones, then answers."""

    SCRIPT = (SelectFrames(frames=(9, 12)), Zoom(box=(0, 0, 1, 1), frame=15), SelectFrames(frames=(0, 2)))

    def reset(self, obs: dict[str, Any], info: dict[str, Any]) -> None:
        self.turn = 0

    def act(self, obs: dict[str, Any], info: dict[str, Any]) -> Any:
        self.turn += 1
        if self.turn <= len(self.SCRIPT):
            return self.SCRIPT[self.turn - 1]
        return "<answer>B</answer>"


def test_async_vector_env_keeps_running_when_a_sub_env_meets_a_corrupt_video(videos):
    tasks = [video_task("broken", videos["broken"]), video_task("cut", videos["cut"]),
             video_task("good", videos["good"])]

    def make() -> PixelisEnv:
        return PixelisEnv(video_source(tasks), view_size=64, max_errors=4)

    envs = make_vector_env([make, make], asynchronous=True)
    try:
        first = within(120, rollout, envs, [BadFrameAgent(), BadFrameAgent()], 6, 0)
        again = within(120, rollout, envs, [BadFrameAgent(), BadFrameAgent()], 4, 100)
    finally:
        envs.close()
    trajectories = first + again
    assert all(t.terminated and t.score == 1.0 for t in trajectories)
    assert {t.task_id for t in trajectories} <= {"broken", "good"}
    broken = [t for t in trajectories if t.task_id == "broken"]
    assert broken and all(t.invalid_steps >= 1 and "could not be decoded" in t.steps[0].error for t in broken)
    assert all(t.invalid_steps == 0 for t in trajectories if t.task_id == "good")
