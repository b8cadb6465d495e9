"""Pixelis-VStar-v0: the generator's defining property, splits, oracle vs random, and the loaders."""

from __future__ import annotations

import base64
import io
import json
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

import pixelis_env
from agents import OracleAgent, RandomAgent
from agents.rollout import rollout, summarize
from pixelis_env import DataError, Zoom
from pixelis_env.metrics import score
from pixelis_env.suites import drawing
from pixelis_env.suites.vstar import make_source
from pixelis_env.suites.vstar.generator import LEVELS
from pixelis_env.suites.vstar.letters import extract_answer_letter

VIEW = 224


def signature(task):
    return task.question, tuple(task.options), task.answer, tuple(task.oracle), json.dumps(task.meta)


def test_same_arguments_give_identical_tasks_and_images():
    a, b = make_source(num_tasks=6, seed=3), make_source(num_tasks=6, seed=3)
    assert [signature(a[i]) for i in range(6)] == [signature(b[i]) for i in range(6)]
    assert np.array_equal(a[2].load_media().frame(0), b[2].load_media().frame(0))
    assert signature(make_source(num_tasks=50, seed=3)[4]) == signature(a[4]), "task i ignores num_tasks"


def test_train_and_test_splits_share_no_task():
    train = {signature(t) for t in (make_source("train", 60)[i] for i in range(60))}
    test = {signature(t) for t in (make_source("test", 60)[i] for i in range(60))}
    assert len(train) == 60 and len(test) == 60 and not train & test


@pytest.mark.parametrize("difficulty", sorted(LEVELS))
def test_targets_are_tiny_in_the_overview_and_large_after_the_oracle_zoom(difficulty):
    source = make_source(num_tasks=40, difficulty=difficulty)
    for task in (source[i] for i in range(40)):
        width, height = task.meta["image_size"]
        assert max(width, height) >= 2000
        for target, zoom in zip(task.meta["targets"], task.oracle, strict=True):
            x0, y0, x1, y1 = task.meta["objects"][target]["pixels"]
            side = max(x1 - x0, y1 - y0)
            assert side * VIEW / max(width, height) < 4, "the object must be unreadable in the overview"
            zoom_side = max((zoom.box[2] - zoom.box[0]) * width, (zoom.box[3] - zoom.box[1]) * height)
            assert side * VIEW / zoom_side >= 40, "the oracle zoom must show the object large"
            assert zoom.box[0] <= x0 / width and x1 / width <= zoom.box[2] + 1e-4


def test_the_zoomed_view_shows_the_target_in_its_colour():
    env = gym.make("Pixelis-VStar-v0", num_tasks=8).unwrapped
    for index in range(4):
        env.reset(options={"task_index": index})
        task = env.task
        target = task.meta["objects"][task.meta["targets"][0]]
        obs = env.step(task.oracle[0])[0]
        box, zoom = target["box"], task.oracle[0].box
        sx, sy = VIEW / (zoom[2] - zoom[0]), VIEW / (zoom[3] - zoom[1])
        x0, y0 = int((box[0] - zoom[0]) * sx), int((box[1] - zoom[1]) * sy)
        x1, y1 = int((box[2] - zoom[0]) * sx), int((box[3] - zoom[1]) * sy)
        assert min(x1 - x0, y1 - y0) >= 40
        patch = obs["image"][y0:y1, x0:x1].astype(int)
        close = np.abs(patch - np.array(drawing.PALETTE[target["colour"]])).sum(axis=2) < 60
        assert close.mean() > 0.08, f"task {index}: the {target['kind']} is not where the oracle zooms"


def test_images_render_fast_enough():
    source = make_source(num_tasks=4, difficulty=1)
    source[0].load_media()
    started = time.perf_counter()
    for i in range(1, 4):
        source[i].load_media()
    assert (time.perf_counter() - started) / 3 < 0.5, "target is ~60 ms per image; 0.5 s leaves room for slow CI"


def test_make_and_check_env():
    env = gym.make("Pixelis-VStar-v0", num_tasks=5)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert "Options:" in obs["text"] and info["answer_candidates"]
    env.close()


def test_oracle_scores_high_and_random_scores_low():
    env = gym.make("Pixelis-VStar-v0", num_tasks=30, split="test")
    oracle = rollout(env, OracleAgent(env), episodes=20, seed=0)
    assert summarize(oracle)["score"] >= 0.95
    assert all(step.error is None for t in oracle for step in t.steps)
    plain = gym.make("Pixelis-VStar-v0", num_tasks=30, split="test", tools=["zoom"])  # fast: no OCR/GrabCut
    assert summarize(rollout(plain, RandomAgent(plain, seed=0), episodes=30, seed=0))["score"] <= 0.6


@pytest.mark.parametrize(("reply", "letter"), [
    ("B", "B"), ("(C) red", "C"), ("The answer is D", "D"), ("Answer: B", "A"), ("red", "D"), ("none", None),
])
def test_letter_extraction_matches_lmms_eval_quirks(reply, letter):
    assert extract_answer_letter(reply) == letter
    assert score("letter", reply, "B") == float(letter == "B")


# ------------------------------------------------------------------ loaders
def jpeg(width=320, height=240, colour=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_vstar(root, with_questions=True):
    for category, name, question, options, bbox in (
        ("direct_attributes", "sa_1", "What is the color of the cup?", ["red", "blue", "green", "yellow"],
         [[100, 80, 30, 40]]),
        ("relative_position", "sa_2", "Is the cup on the left or right side of the key?", ["left", "right"],
         [[10, 10, 20, 20], [200, 100, 20, 20]]),
    ):
        (root / category).mkdir(parents=True, exist_ok=True)
        (root / category / f"{name}.jpg").write_bytes(jpeg())
        (root / category / f"{name}.json").write_text(json.dumps(
            {"target_object": ["cup"], "bbox": bbox, "question": question, "options": options}))
    if with_questions:
        rows = [
            {"image": "direct_attributes/sa_1.jpg", "text": "What is the color of the cup?\n(A) blue\n(B) red\n"
             "(C) green\n(D) yellow\nAnswer with the option's letter from the given choices directly.",
             "category": "direct_attributes", "question_id": 0, "label": "B"},
            {"image": "relative_position/sa_2.jpg", "text": "Is the cup on the left or right side of the key?\n"
             "(A) right\n(B) left\nAnswer with the option's letter from the given choices directly.",
             "category": "relative_position", "question_id": "1", "label": "B"},
        ]
        (root / "test_questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_vstar_bench_questions_file(tmp_path):
    write_vstar(tmp_path)
    source = make_source(data_root=tmp_path)
    assert len(source) == 2
    task = source[0]
    assert task.question == "What is the color of the cup?" and task.answer == "B"
    assert task.options == ["A. blue", "B. red", "C. green", "D. yellow"]
    assert task.question_type == "direct_attributes" and task.metric == "letter"
    (zoom,) = task.oracle
    assert zoom.box[0] <= 100 / 320 and zoom.box[2] >= 130 / 320
    assert task.load_media().width == 320
    assert len(source[1].oracle) == 2 and source[1].options == ["A. right", "B. left"]


def test_vstar_bench_category_folders_shuffle_options_reproducibly(tmp_path):
    write_vstar(tmp_path, with_questions=False)
    first, again = make_source(data_root=tmp_path, seed=1), make_source(data_root=tmp_path, seed=1)
    assert [signature(first[i]) for i in range(2)] == [signature(again[i]) for i in range(2)]
    for task in (first[0], first[1]):
        correct = task.options["ABCD".index(task.answer)].split(". ", 1)[1]
        assert correct in ("red", "left")


def test_vstar_bench_env_runs_the_oracle(tmp_path):
    write_vstar(tmp_path)
    env = gym.make("Pixelis-VStar-v0", data_root=tmp_path)
    summary = summarize(rollout(env, OracleAgent(env), episodes=2, seed=0))
    assert summary["score"] == 1.0 and summary["invalid_rate"] == 0.0


@pytest.mark.parametrize(("row", "message"), [
    ({"image": "direct_attributes/sa_1.jpg", "text": "What?", "label": "A"}, "options"),
    ({"image": "direct_attributes/sa_1.jpg", "text": "Q?\n(A) x\n(B) y", "label": "C"}, "label"),
    ({"image": "direct_attributes/sa_1.jpg", "text": "Q?\n(A) x\n(B) y", "label": ""}, "label"),
    ({"image": "direct_attributes/missing.jpg", "text": "Q?\n(A) x\n(B) y", "label": "A"}, "not found"),
    ({"image": "../outside.jpg", "text": "Q?\n(A) x\n(B) y", "label": "A"}, "escapes"),
    ({"image": "/etc/passwd", "text": "Q?\n(A) x\n(B) y", "label": "A"}, "absolute"),
    ({"text": "Q?\n(A) x\n(B) y", "label": "A"}, "image"),
])
def test_vstar_bench_bad_rows_name_the_row(tmp_path, row, message):
    write_vstar(tmp_path)
    with (tmp_path / "test_questions.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message) as info:
        make_source(data_root=tmp_path)
    assert "test_questions.jsonl:3" in str(info.value)


def test_vstar_bench_bad_annotation_is_a_data_error(tmp_path):
    write_vstar(tmp_path, with_questions=False)
    (tmp_path / "direct_attributes" / "sa_1.json").write_text("{not json")
    with pytest.raises(DataError, match="sa_1.json"):
        make_source(data_root=tmp_path)


def write_hr_bench(path, rows):
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "image", "cycle_category"]
    lines = ["\t".join(header)] + ["\t".join(str(row.get(k, "")) for k in header) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def hr_rows():
    picture = base64.b64encode(jpeg(400, 300, (10, 200, 30))).decode()
    return [
        {"index": 0, "question": "What is the code on the sign?", "answer": "A", "category": "single", "A": "27B",
         "B": "37B", "C": "27D", "D": "27E", "image": picture, "cycle_category": 0},
        {"index": 1, "question": "Which code is on the door?", "answer": "C", "category": "cross",
         "A": "27E", "B": "27B", "C": "37B", "D": "27D", "image": "0", "cycle_category": 1},
    ]


def test_hr_bench_tsv_with_image_references_and_quoted_fields(tmp_path):
    rows = hr_rows()
    rows[1]["question"] = '"""Quoted""\tquestion\nover two lines?"'
    write_hr_bench(tmp_path / "hr_bench_4k.tsv", rows)
    source = make_source(data_root=tmp_path)
    assert len(source) == 2
    first, second = source[0], source[1]
    assert first.answer == "A" and first.options[0] == "A. 27B" and first.question_type == "single"
    assert second.question == '"Quoted"\tquestion\nover two lines?' and second.answer == "C"
    assert first.metric == "letter" and first.oracle == []
    assert second.load_media().frame(0)[150, 200, 1] > 150, "row 1 shows row 0's picture"


@pytest.mark.parametrize(("change", "message"), [
    ({"answer": "E"}, "answer"),
    ({"answer": ""}, "answer"),
    ({"image": "7"}, "not the index"),
    ({"index": "x"}, "index"),
    ({"A": "", "B": ""}, "options"),
])
def test_hr_bench_bad_rows_name_the_line(tmp_path, change, message):
    rows = hr_rows()
    rows[1].update(change)
    write_hr_bench(tmp_path / "hr_bench_8k.tsv", rows)
    with pytest.raises(DataError, match=message) as info:
        make_source(data_root=tmp_path / "hr_bench_8k.tsv", benchmark="hrbench")
    assert "hr_bench_8k.tsv:3" in str(info.value)


def test_hr_bench_wrong_field_count_and_missing_header(tmp_path):
    path = tmp_path / "hr_bench_4k.tsv"
    write_hr_bench(path, hr_rows())
    path.write_text(path.read_text() + "5\tonly three\tfields\n")
    with pytest.raises(DataError, match=r"hr_bench_4k.tsv:4: 3 fields"):
        make_source(data_root=tmp_path)
    path.write_text("index\tquestion\n0\tq\n")
    with pytest.raises(DataError, match="lacks columns"):
        make_source(data_root=tmp_path)


def test_hr_bench_parquet_copy(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = hr_rows()
    rows[1]["image"] = rows[0]["image"]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "hr_bench_4k.parquet")
    source = make_source(data_root=tmp_path)
    assert len(source) == 2 and source[1].answer == "C"
    assert source[1].load_media().width == 400


def test_data_root_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="not found"):
        make_source(data_root=tmp_path / "nowhere")
    with pytest.raises(DataError, match="neither V\\*Bench"):
        make_source(data_root=tmp_path)
    write_hr_bench(tmp_path / "hr_bench_4k.tsv", hr_rows())
    write_hr_bench(tmp_path / "hr_bench_8k.tsv", hr_rows())
    with pytest.raises(DataError, match="hr_subset"):
        make_source(data_root=tmp_path)
    assert len(make_source(data_root=tmp_path, hr_subset="8k")) == 2


def test_generator_arguments_are_checked():
    with pytest.raises(pixelis_env.PixelisError, match="Did you mean `test`"):
        make_source(split="tset")
    with pytest.raises(pixelis_env.PixelisError, match="difficulty"):
        make_source(difficulty=4)
    assert isinstance(make_source(num_tasks=1)[0].oracle[0], Zoom)
