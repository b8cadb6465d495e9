"""Pixelis-Count-v0: drawn instances equal the answer (checked on pixels), splits, agents, loaders."""

from __future__ import annotations

import io
import json

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

from agents import OracleAgent, RandomAgent
from agents.rollout import rollout, summarize
from pixelis_env import DataError, MediaError, PixelisError
from pixelis_env.metrics import score
from pixelis_env.suites import drawing
from pixelis_env.suites.count import make_source
from pixelis_env.suites.count.countbench import masked_caption


def signature(task):
    return task.question, task.answer, tuple(task.oracle), json.dumps(task.meta)


def test_same_arguments_give_identical_tasks_and_images():
    a, b = make_source(num_tasks=5, seed=7), make_source(num_tasks=5, seed=7)
    assert [signature(a[i]) for i in range(5)] == [signature(b[i]) for i in range(5)]
    assert np.array_equal(a[1].load_media().frame(0), b[1].load_media().frame(0))


def test_train_and_test_splits_share_no_task():
    train = {signature(make_source("train", 80)[i]) for i in range(80)}
    test = {signature(make_source("test", 80)[i]) for i in range(80)}
    assert len(train) == 80 and not train & test


def test_background_never_holds_a_palette_colour():
    for colour in drawing.PALETTE.values():
        assert any(c < drawing.BACKGROUND_LOW or c > drawing.BACKGROUND_HIGH for c in colour)


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_the_answer_is_the_number_of_drawn_instances(difficulty):
    source = make_source("test", 6, seed=1, difficulty=difficulty)
    for task in (source[i] for i in range(6)):
        image = task.load_media().frame(0)
        instances, query = task.meta["instances"], task.meta["query"]
        matching = [i for i, inst in enumerate(instances) if inst["shape"] == query["shape"]
                    and query["colour"] in (None, inst["colour"])]
        assert task.meta["targets"] == matching and task.answer == len(matching)
        assert 2 <= task.answer <= 10
        for name, rgb in drawing.PALETTE.items():
            mask = cv2.inRange(image, rgb, rgb)
            components, labels = cv2.connectedComponents(mask, connectivity=8)
            drawn = [inst for inst in instances if inst["colour"] == name]
            assert components - 1 == len(drawn), f"{name}: {components - 1} blobs for {len(drawn)} shapes"
            for inst in drawn:
                x0, y0, x1, y1 = inst["pixels"]
                inside = set(np.unique(labels[y0:y1, x0:x1])) - {0}
                assert len(inside) == 1, "each instance is exactly one blob inside its own box"


def test_hardest_level_puts_shapes_close_and_zooms_per_quadrant():
    source = make_source(num_tasks=20, difficulty=3)
    gaps = []
    for task in (source[i] for i in range(20)):
        boxes = [inst["pixels"] for inst in task.meta["instances"]]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                gaps.append(max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3]))
        assert 1 <= len(task.oracle) <= 4
        centres = [((p[0] + p[2]) / 2 / 1280, (p[1] + p[3]) / 2 / 1280)
                   for p in (task.meta["instances"][t]["pixels"] for t in task.meta["targets"])]
        for x, y in centres:
            assert any(z.box[0] <= x <= z.box[2] and z.box[1] <= y <= z.box[3] for z in task.oracle)
    assert min(gaps) == 2, "some shapes sit 2 px apart: touching to the eye, separate as blobs"


def test_oracle_zoom_covers_every_target():
    source = make_source(num_tasks=20, difficulty=1)
    for task in (source[i] for i in range(20)):
        (zoom,) = task.oracle
        for t in task.meta["targets"]:
            box = task.meta["instances"][t]["box"]
            assert zoom.box[0] <= box[0] and box[2] <= zoom.box[2] and zoom.box[1] <= box[1] and box[3] <= zoom.box[3]


def test_make_and_check_env():
    env = gym.make("Pixelis-Count-v0", num_tasks=5)
    check_env(env.unwrapped)
    env.close()


def test_oracle_scores_high_and_random_scores_low():
    env = gym.make("Pixelis-Count-v0", num_tasks=40, split="test", difficulty=2)
    oracle = rollout(env, OracleAgent(env), episodes=30, seed=0)
    assert summarize(oracle)["score"] >= 0.95
    assert all(step.error is None for t in oracle for step in t.steps)
    plain = gym.make("Pixelis-Count-v0", num_tasks=40, split="test", difficulty=2, tools=["zoom"])
    assert summarize(rollout(plain, RandomAgent(plain, seed=0), episodes=30, seed=0))["score"] <= 0.2


def test_metric_choice():
    task = make_source(num_tasks=2, metric="mra")[0]
    assert task.metric == "mra" and score("mra", str(task.answer), task.answer) == 1.0
    assert make_source(num_tasks=2)[0].metric == "count"
    assert score("count", "five", 5) == 1.0 and score("count", "5.", 5) == 0.0
    with pytest.raises(PixelisError, match="metric"):
        make_source(metric="iou")


# ----------------------------------------------------------------- loaders
def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_masked_caption_hides_the_count():
    assert masked_caption("Five fresh red apples isolated on white background", 5) == \
        "fresh red apples isolated on white background"
    assert masked_caption("3 kittens, not 30", 3) == "kittens, not 30"


def test_countbenchqa_and_countbench_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "data").mkdir()
    qa = [{"image": {"bytes": jpeg(), "path": None}, "text": "Five fresh red apples",
           "question": "How many apples are there in the image?", "number": 5}]
    pq.write_table(pa.Table.from_pylist(qa), tmp_path / "data" / "test-00000-of-00001.parquet")
    task = make_source(data_root=tmp_path)[0]
    assert task.question == "How many apples are there in the image?" and task.answer == 5
    assert task.load_media().width == 64 and task.metric == "count"

    plain = [{"image_url": "http://x/a.jpg", "text": "Two dogs on a sofa", "number": 2,
              "image": {"bytes": jpeg(), "path": None}},
             {"image_url": "http://x/dead.jpg", "text": "Seven birds", "number": 7, "image": None}]
    single = tmp_path / "countbench.parquet"
    pq.write_table(pa.Table.from_pylist(plain), single)
    source = make_source(data_root=single, metric="mra")
    assert "dogs on a sofa" in source[0].question and "Two" not in source[0].question
    with pytest.raises(MediaError, match="row 1"):
        source[1].load_media()

    pq.write_table(pa.Table.from_pylist([{"image": None, "number": "two", "text": "x"}]), single)
    with pytest.raises(DataError, match="row 0.*number"):
        make_source(data_root=single)


def test_user_jsonl(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(jpeg())
    rows = [{"image": "imgs/a.jpg", "question": "How many red squares?", "count": 1, "id": "a"}]
    path = tmp_path / "counts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = make_source(data_root=path)[0]
    assert task.task_id == "countbench-a" and task.answer == 1
    env = gym.make("Pixelis-Count-v0", data_root=path)
    assert summarize(rollout(env, OracleAgent(env), episodes=1))["score"] == 1.0


@pytest.mark.parametrize(("row", "message"), [
    ({"image": "imgs/a.jpg", "question": "How many?", "count": -1}, "count"),
    ({"image": "imgs/a.jpg", "question": "How many?", "count": True}, "count"),
    ({"image": "imgs/none.jpg", "question": "How many?", "count": 2}, "not found"),
    ({"image": "../a.jpg", "question": "How many?", "count": 2}, "escapes"),
    ({"image": "imgs/a.jpg", "count": 2}, "question"),
])
def test_user_jsonl_bad_rows_name_the_line(tmp_path, row, message):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(jpeg())
    path = tmp_path / "counts.jsonl"
    path.write_text(json.dumps({"image": "imgs/a.jpg", "question": "How many?", "count": 3}) + "\n"
                    + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message) as info:
        make_source(data_root=path)
    assert "counts.jsonl:2" in str(info.value)


def test_empty_data_root(tmp_path):
    with pytest.raises(DataError, match="no parquet files"):
        make_source(data_root=tmp_path)
