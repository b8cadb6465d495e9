"""Pixelis-TextVQA-v0: small text that OCR reads once zoomed, splits, the metrics, and the loaders."""

from __future__ import annotations

import io
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

import pixelis_env
from agents import OracleAgent, RandomAgent
from agents.rollout import rollout, summarize
from pixelis_env import DataError, PixelisError, ReadText, Zoom
from pixelis_env.metrics import score
from pixelis_env.suites.textvqa import make_source
from pixelis_env.suites.textvqa.vqa_accuracy import process_answer, vqa_accuracy
from pixelis_env.tools import registered_tools
from pixelis_env.views import crop, fit

VIEW = 224


def signature(task):
    return task.question, json.dumps(task.answer), tuple(task.oracle), json.dumps(task.meta)


def answer_text(task) -> str:
    return task.answer if isinstance(task.answer, str) else task.answer[0]


def test_same_arguments_give_identical_tasks_and_images():
    a, b = make_source(num_tasks=6, seed=2), make_source(num_tasks=6, seed=2)
    assert [signature(a[i]) for i in range(6)] == [signature(b[i]) for i in range(6)]
    for i in (0, 1):
        assert np.array_equal(a[i].load_media().frame(0), b[i].load_media().frame(0))


def test_train_and_test_splits_share_no_task():
    train = {signature(make_source("train", 60)[i]) for i in range(60)}
    test = {signature(make_source("test", 60)[i]) for i in range(60)}
    assert len(train) == 60 and not train & test


def test_both_kinds_and_their_metrics():
    tasks = [make_source(num_tasks=40)[i] for i in range(40)]
    kinds = {t.meta["kind"]: t for t in tasks}
    assert set(kinds) == {"scene", "document"}
    assert kinds["scene"].metric == "vqa" and kinds["scene"].answer == [kinds["scene"].answer[0]] * 10
    assert kinds["document"].metric == "anls" and isinstance(kinds["document"].answer, str)
    assert make_source(num_tasks=3, kind="document")[0].meta["kind"] == "document"
    with pytest.raises(PixelisError, match="kind"):
        make_source(kind="poster")


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_text_is_unreadable_in_the_overview_and_large_in_the_oracle_zoom(difficulty):
    source = make_source(num_tasks=40, difficulty=difficulty)
    for task in (source[i] for i in range(40)):
        width, height = task.meta["image_size"]
        font = task.meta["font_px"]
        assert font * VIEW / max(width, height) < 4.5, "text must be a blur in the 224 px overview"
        zoom, read = task.oracle
        assert isinstance(zoom, Zoom) and isinstance(read, ReadText)
        zoom_side = max((zoom.box[2] - zoom.box[0]) * width, (zoom.box[3] - zoom.box[1]) * height)
        assert font * VIEW / zoom_side >= 10, f"{task.question_type}: text too small after the zoom"
        text = task.meta["text_box"]
        assert read.box[0] <= text[0] and text[2] <= read.box[2] and read.box[1] <= text[1] and text[3] <= read.box[3]


def ocr(region: np.ndarray) -> str:
    """The tools' OCR when it is there (what ``read_text`` will see), else tesseract on the zoomed view."""
    try:
        from pixelis_env.tools.tesseract_backend import read_lines
    except ImportError:
        import pytesseract

        return pytesseract.image_to_string(fit(region, VIEW), config="--psm 6")
    return " ".join(line.text for line in read_lines(region))


def test_ocr_reads_the_answer_in_the_oracle_region():
    source = make_source("test", 60, seed=4)
    tasks = [source[i] for i in range(0, 60, 3)]
    hits = []
    for task in tasks:
        region = np.ascontiguousarray(crop(task.load_media().frame(0), task.oracle[1].box))
        hits.append(process_answer(ocr(region)) == process_answer(answer_text(task)))
    assert np.mean(hits) >= 0.8, f"OCR exact-match rate {np.mean(hits):.2f} over {len(hits)} tasks"


def test_make_and_check_env():
    env = gym.make("Pixelis-TextVQA-v0", num_tasks=5)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.skipif("read_text" not in registered_tools(),
                    reason="the read_text tool is not registered yet (tools engineer); the oracle needs it")
def test_oracle_scores_high():
    env = gym.make("Pixelis-TextVQA-v0", num_tasks=30, split="test")
    oracle = rollout(env, OracleAgent(env), episodes=12, seed=0)
    assert summarize(oracle)["score"] >= 0.95
    assert all(step.error is None for t in oracle for step in t.steps)


def test_random_agent_scores_low():
    env = gym.make("Pixelis-TextVQA-v0", num_tasks=30, split="test", tools=["zoom"])
    assert summarize(rollout(env, RandomAgent(env, seed=0), episodes=20, seed=0))["score"] <= 0.1


# ----------------------------------------------------------------- metrics
@pytest.mark.parametrize(("raw", "processed"), [
    ("The Stop-Sign!", "stop sign"), ("twenty three", "twenty 3"), ("It's", "it 's"), ("3.5", "3.5"),
    ("$1,250.00", "$1250.00"), ("dont", "don't"), ("a cat.", "cat"),
])
def test_evalai_answer_processor(raw, processed):
    assert process_answer(raw) == processed


def test_vqa_accuracy_matches_the_reference():
    assert vqa_accuracy("Stop sign", ["stop sign"] * 3 + ["stop"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy("stop", ["stop sign"] * 3 + ["stop"] * 7) == pytest.approx(1.0)
    assert vqa_accuracy("nikon", ["nikon"]) == 0.0, "one answer has empty leave-one-out subsets (reference quirk)"
    assert score("vqa", "EXIT", ["exit"] * 10) == 1.0


# ----------------------------------------------------------------- loaders
def jpeg(colour=(240, 240, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def textvqa_row(**change):
    row = {"question": "what is the brand of this camera?", "image_id": "a1b2c3d4e5f60718",
           "image_classes": ["Camera"], "flickr_original_url": "", "flickr_300k_url": "", "image_width": 64,
           "image_height": 48, "answers": ["nikon"] * 9 + ["nikon camera"], "question_tokens": ["what"],
           "question_id": 34602, "set_name": "val"}
    return {**row, **change}


def write_textvqa(root, rows):
    (root / "train_images").mkdir(exist_ok=True)
    (root / "train_images" / "a1b2c3d4e5f60718.jpg").write_bytes(jpeg())
    (root / "TextVQA_0.5.1_val.json").write_text(json.dumps(
        {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": rows}))


def test_textvqa_official_json(tmp_path):
    write_textvqa(tmp_path, [textvqa_row()])
    source = make_source(split="val", data_root=tmp_path)
    task = source[0]
    assert task.question == "What is the brand of this camera?" and task.metric == "vqa"
    assert score(task.metric, "Nikon", task.answer) == 1.0
    assert task.load_media().width == 64 and task.oracle == []
    env = gym.make("Pixelis-TextVQA-v0", split="val", data_root=tmp_path)
    assert summarize(rollout(env, OracleAgent(env), episodes=1))["score"] == 1.0


@pytest.mark.parametrize(("change", "message"), [
    ({"answers": None}, "answers"),
    ({"answers": []}, "answers"),
    ({"image_id": "missing0000000000"}, "not found"),
    ({"image_id": "../../../etc/passwd"}, "escapes"),
    ({"question": 7}, "question"),
])
def test_textvqa_bad_rows_name_the_row(tmp_path, change, message):
    write_textvqa(tmp_path, [textvqa_row(), textvqa_row(**change)])
    with pytest.raises(DataError, match=message) as info:
        make_source(split="val", data_root=tmp_path)
    assert "TextVQA_0.5.1_val.json: data[1]" in str(info.value)


def test_textvqa_test_rows_and_missing_files(tmp_path):
    row = textvqa_row(set_name="test")
    del row["answers"]
    write_textvqa(tmp_path, [row])
    with pytest.raises(DataError, match="EvalAI"):
        make_source(split="val", data_root=tmp_path)
    with pytest.raises(DataError, match="TextVQA_0.5.1_train.json"):
        make_source(split="train", data_root=tmp_path, benchmark="textvqa")
    (tmp_path / "TextVQA_0.5.1_val.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="`data` list"):
        make_source(split="val", data_root=tmp_path)


def docvqa_row(**change):
    row = {"questionId": 337, "question": "What is the invoice number?", "question_types": ["form"],
           "image": "documents/pybv0228_81.png", "docId": 279, "ucsf_document_id": "pybv0228",
           "ucsf_document_page_no": "81", "answers": ["1250", "1,250"], "data_split": "val"}
    return {**row, **change}


def test_docvqa_json_release(tmp_path):
    folder = tmp_path / "val"
    (folder / "documents").mkdir(parents=True)
    Image.new("RGB", (80, 100), "white").save(folder / "documents" / "pybv0228_81.png")
    rows = [docvqa_row(), docvqa_row(questionId=338, image="documents/absent.png")]
    (folder / "val_v1.0.json").write_text(json.dumps({"dataset_name": "docvqa", "data": rows[:1]}))
    task = make_source(split="val", data_root=tmp_path)[0]
    assert task.metric == "anls" and task.question_type == "form" and task.meta["questionId"] == "337"
    assert score("anls", "1,250.00", task.answer) == pytest.approx(1 - 3 / 8)
    assert task.load_media().height == 100
    (folder / "val_v1.0.json").write_text(json.dumps({"data": rows}))
    with pytest.raises(DataError, match=r"data\[1\].*absent.png"):
        make_source(split="val", data_root=tmp_path)
    (folder / "val_v1.0.json").write_text(json.dumps({"data": [docvqa_row(image="../../outside.png")]}))
    with pytest.raises(DataError, match="escapes"):
        make_source(split="val", data_root=tmp_path)


def test_docvqa_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    buffer = io.BytesIO()
    Image.new("RGB", (90, 120), "white").save(buffer, format="PNG")
    rows = [docvqa_row(questionId="337", image={"bytes": buffer.getvalue(), "path": "a.png"}),
            docvqa_row(questionId="338", image={"bytes": b"not an image", "path": "b.png"})]
    (tmp_path / "DocVQA").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "DocVQA" / "validation-00000-of-00001.parquet")
    source = make_source(split="val", data_root=tmp_path)
    assert len(source) == 2 and source[0].answer == ["1250", "1,250"]
    assert source[0].load_media().width == 90
    with pytest.raises(pixelis_env.MediaError, match="row 1"):
        source[1].load_media()
    bad = [docvqa_row(questionId="9", answers=None, image={"bytes": buffer.getvalue(), "path": "c.png"})]
    pq.write_table(pa.Table.from_pylist(bad), tmp_path / "DocVQA" / "validation-00000-of-00001.parquet")
    with pytest.raises(DataError, match="row 0.*answers"):
        make_source(split="val", data_root=tmp_path)
    pq.write_table(pa.Table.from_pylist([{"question": "q"}]), tmp_path / "DocVQA" / "validation-00000-of-00001.parquet")
    with pytest.raises(DataError, match="missing columns"):
        make_source(split="val", data_root=tmp_path)


def test_unknown_data_root_layout(tmp_path):
    with pytest.raises(DataError, match="neither"):
        make_source(split="val", data_root=tmp_path)
    with pytest.raises(DataError, match="Did you mean `docvqa`"):
        make_source(split="val", data_root=tmp_path, benchmark="docvq")

