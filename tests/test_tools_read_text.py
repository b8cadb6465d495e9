"""``read_text``: tesseract OCR on a real scanned page and on rendered text, boxes mapped to
the frame, and a missing binary reported with an install hint."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from pixelis_env.actions import ReadText
from pixelis_env.errors import BackendUnavailableError
from pixelis_env.media import ArrayVideo, ImageMedia
from pixelis_env.tools import read_text, tesseract_backend
from pixelis_env.tools.base import ToolContext
from tests.tool_scenes import char_accuracy, one_task_env

pytesseract = pytest.importorskip("pytesseract")
try:
    tesseract_backend.check_tesseract()
except BackendUnavailableError:
    pytest.skip("the tesseract binary is not installed", allow_module_level=True)

PAGE_TEXT = """Region-based segmentation
Let us first determine markers of the coins and the
background. These markers are pixels that we can label
unambiguously as either object or background. Here,
the markers are found at the two extreme parts of the
histogram of grey values:
>>> markers = np.zeros_like(coins)"""
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "pixel", "agent", "zoom", "track",
         "segment", "read", "text", "video", "frame"]


def _read(image: np.ndarray, box=(0.0, 0.0, 1.0, 1.0), **config):
    ctx = ToolContext(media=ImageMedia(image), view_size=224, config=config)
    return read_text.run(ReadText(box=box), ctx)


def _joined(result) -> str:
    return "\n".join(line["text"] for line in result.data["lines"])


def test_real_scanned_page():
    result = _read(data.page())
    assert char_accuracy(_joined(result), PAGE_TEXT) >= 0.85
    assert result.candidates[0] == "Region-based segmentation"
    first = result.data["lines"][0]
    assert 0 <= first["box"][1] < 0.1 and 0.1 < first["box"][3] < 0.25 and first["confidence"] > 0.5
    json.dumps(result.data)


def test_small_crop_of_one_line_is_upsampled_and_boxes_are_in_frame_coordinates():
    page = data.page()
    box = (0.0, round(40 / 191, 4), 1.0, round(62 / 191, 4))
    result = _read(page, box)
    assert char_accuracy(_joined(result), "Let us first determine markers of the coins and the") >= 0.95
    line = result.data["lines"][0]["box"]
    assert box[1] - 0.01 <= line[1] < line[3] <= box[3] + 0.01


def test_without_upsampling_the_small_line_reads_worse_or_equal():
    box = (0.0, round(40 / 191, 4), 1.0, round(62 / 191, 4))
    plain = _read(data.page(), box, ocr_max_upsample=1.0)
    upsampled = _read(data.page(), box)
    truth = "Let us first determine markers of the coins and the"
    assert char_accuracy(_joined(upsampled), truth) >= char_accuracy(_joined(plain), truth)


def _cv2_text(text: str, scale: float, light_on_dark: bool) -> np.ndarray:
    thickness = 1 if scale < 1 else 2
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    image = np.full((h + base + 20, w + 20, 3), 30 if light_on_dark else 250, np.uint8)
    colour = (255, 255, 200) if light_on_dark else (10, 10, 60)
    cv2.putText(image, text, (10, 10 + h), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return image


def _pil_text(text: str, size: int) -> np.ndarray:
    image = Image.new("RGB", (420, 50), (230, 230, 200))
    ImageDraw.Draw(image).text((5, 8), text, fill=(20, 20, 20), font=ImageFont.load_default(size=size))
    return np.asarray(image)


def test_rendered_text_char_accuracy():
    rng = np.random.default_rng(0)
    scores = []
    for i in range(6):
        text = " ".join(rng.choice(WORDS, 3))
        image = _cv2_text(text, [0.6, 1.0, 1.6][i % 3], light_on_dark=i >= 3)
        scores.append(char_accuracy(_joined(_read(image)), text))
    for size in (12, 20):
        text = " ".join(rng.choice(WORDS, 4))
        scores.append(char_accuracy(_joined(_read(_pil_text(text, size))), text))
    assert np.mean(scores) >= 0.9, scores


def test_text_inside_a_larger_frame_is_found_where_it_is():
    frame = np.full((300, 400, 3), 255, np.uint8)
    cv2.putText(frame, "EXIT 42", (220, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    result = _read(frame, (0.5, 0.6, 1.0, 1.0))
    assert result.candidates == ["EXIT 42"]
    x0, y0, x1, y1 = result.data["lines"][0]["box"]
    assert 0.53 < x0 < 0.6 and 0.7 < y0 < 0.8 and 0.75 < x1 < 0.9 and 0.8 < y1 < 0.87


def test_handwriting_and_blank_regions_do_not_crash():
    assert isinstance(_read(data.text()).data["lines"], list)
    blank = _read(np.full((50, 50, 3), 200, np.uint8))
    assert blank.data["lines"] == [] and "no text found" in blank.text and blank.candidates == []


def test_one_pixel_crop_reads_nothing():
    result = _read(data.page(), (0.5, 0.5, 0.501, 0.501))
    assert result.data["lines"] == [] and result.image.shape[2] == 3


def test_missing_binary_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(BackendUnavailableError, match="apt-get install tesseract-ocr"):
        _read(data.page())
    with pytest.raises(BackendUnavailableError, match="/nonexistent/tesseract"):
        tesseract_backend.check_tesseract()


def test_missing_language_data_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="tesseract-ocr-xyz"):
        _read(data.page(), ocr_lang="xyz")


def test_check_tesseract_returns_a_version():
    assert tesseract_backend.check_tesseract()[0].isdigit()


def test_env_read_text_offers_lines_as_candidates_and_scores_the_answer():
    frames = np.stack([np.full((60, 200, 3), 255, np.uint8), cv2.resize(_cv2_text("ZOOM IN", 1.0, False), (200, 60))])
    env = one_task_env(ArrayVideo(frames, fps=1), answer="ZOOM IN")
    env.reset(seed=0)
    obs, _, _, _, info = env.step(ReadText(frame=1))
    assert info["error"] is None and "ZOOM IN" in info["answer_candidates"] and "ZOOM IN" in obs["text"]
    _, reward, terminated, _, _ = env.step('<answer>ZOOM IN</answer>')
    assert terminated and reward == 1.0


def test_env_missing_binary_is_an_error_observation(monkeypatch):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    env = one_task_env(ImageMedia(data.page()))
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step(ReadText())
    assert "tesseract" in info["error"] and "apt-get" in obs["text"] and reward < 0 and not terminated
