"""Pixelis-VSI-v0: the procedural rooms, their ground truth, oracle traces and the real-format loader."""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pixelis_env
from pixelis_env.actions import Answer, Localize, Properties, Segment, SelectFrames, Zoom
from pixelis_env.errors import DataError, MediaError, PixelisError
from pixelis_env.suites.vsi import QUESTION_TYPES, aggregate, make_source
from pixelis_env.suites.vsi.oracle import build_oracle
from pixelis_env.suites.vsi.questions import (
    DIRECTION_TYPES,
    box_distance,
    direction_label,
    make_question,
    signed_angle,
)
from pixelis_env.suites.vsi.render import Intrinsics, Renderer
from pixelis_env.suites.vsi.scene import DIFFICULTIES, CameraPath, Room, Scene, make_object
from pixelis_env.tools import registered_tools

NUM_ORACLE_TASKS = 40
CORE_TOOLS = ("zoom", "select_frames", "answer")


# ------------------------------------------------------------------ helpers
def hand_scene(num_frames: int = 32) -> Scene:
    """A 6 x 6 m room with known furniture around a camera turning at the centre."""
    boxes = [
        ("chair", (0.5, 0.5, 0.0), (1.0, 1.0, 0.9)),
        ("chair", (5.0, 0.5, 0.0), (5.5, 1.0, 0.9)),
        ("bed", (0.2, 4.0, 0.0), (2.2, 5.8, 0.6)),
        ("sofa", (4.0, 5.0, 0.0), (5.8, 5.8, 0.8)),
        ("table", (2.5, 0.3, 0.0), (3.5, 1.0, 0.75)),
        ("cabinet", (5.4, 2.5, 0.0), (5.9, 3.5, 1.8)),
        ("plant", (0.3, 2.5, 0.0), (0.8, 3.0, 1.2)),
    ]
    objects = tuple(make_object(i, c, lo, hi) for i, (c, lo, hi) in enumerate(boxes))
    camera = CameraPath(centre=(3.0, 3.0), radius=0.2, height=1.5, start_angle=0.0, start_yaw=0.0,
                        sweep=1.15 * 2 * math.pi, pitch=math.radians(-20), num_frames=num_frames)
    return Scene(room=Room(6.0, 6.0, 2.8), objects=objects, camera=camera)


def sampled_distance(a, b, steps: int = 41) -> float:
    """Closest-point distance by clamping a grid of a's points into b (independent of box_distance)."""
    axes = [np.linspace(lo, hi, steps) for lo, hi in zip(a.lo, a.hi)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    nearest = np.clip(points, b.lo, b.hi)
    return float(np.linalg.norm(points - nearest, axis=1).min())


def observer_frame(here, facing, target) -> tuple[float, float, float]:
    """Target in the observer's frame: (right, forward) components and the turn angle in degrees."""
    f = (np.asarray(facing) - here) / np.linalg.norm(np.asarray(facing) - here)
    v = np.asarray(target) - here
    right, forward = f[1] * v[0] - f[0] * v[1], f @ v
    turn = math.degrees(math.acos(np.clip(forward / np.linalg.norm(v), -1, 1)))
    return right, forward, turn


def expected_direction(question_type: str, here, facing, target) -> str:
    right, forward, turn = observer_frame(here, facing, target)
    side = "right" if right > 0 else "left"
    if question_type == "object_rel_direction_easy":
        return side
    if question_type == "object_rel_direction_medium":
        return "back" if turn >= 135 else side
    return ("front-" if forward > 0 else "back-") + side


def option_text(question, letter: str) -> str:
    return next(o.split(". ", 1)[1] for o in question.options if o.startswith(letter + "."))


def run_episode(env: gym.Env, index: int, plan) -> tuple[float, int]:
    """Reset to a task, play ``plan(env)`` (a list of actions), return the score and the error count."""
    env.reset(options={"task_index": index})
    info: dict = {}
    errors = 0
    for action in plan(env):
        _, _, terminated, truncated, info = env.step(action)
        errors += info.get("error") is not None
        if terminated or truncated:
            break
    return float(info.get("score", 0.0)), errors


def oracle_plan(env: pixelis_env.PixelisEnv) -> list:
    return env.oracle_actions()


@pytest.fixture(scope="module")
def hand():
    scene = hand_scene()
    renderer = Renderer(scene, Intrinsics.for_size(320, 240))
    return scene, renderer, renderer.visibility()


@pytest.fixture(scope="module")
def source():
    """Tasks whose oracle uses the core tools only, so the test's cost does not grow as tools land."""
    return make_source(num_tasks=NUM_ORACLE_TASKS, seed=0, oracle_tools=CORE_TOOLS)


# -------------------------------------------------------------- determinism
def test_same_arguments_give_identical_tasks_and_frames():
    a, b = make_source(num_tasks=6, seed=7), make_source(num_tasks=6, seed=7)
    for i in range(6):
        ta, tb = a[i], b[i]
        assert (ta.question, ta.options, ta.answer, ta.oracle) == (tb.question, tb.options, tb.answer, tb.oracle)
        assert ta.meta["objects"] == tb.meta["objects"] and ta.meta["visible"] == tb.meta["visible"]
        ma, mb = ta.load_media(), tb.load_media()
        for frame in (0, ma.num_frames // 2, ma.num_frames - 1):
            assert ma.frame(frame).tobytes() == mb.frame(frame).tobytes()
            assert ta.meta["depth"](frame).tobytes() == tb.meta["depth"](frame).tobytes()


def test_train_and_test_splits_share_no_task():
    def signature(task):
        return task.question, str(task.answer), json.dumps(task.meta["objects"])

    train, test = make_source("train", num_tasks=30), make_source("test", num_tasks=30)
    train_ids = {signature(train[i]) for i in range(30)}
    assert not train_ids & {signature(test[i]) for i in range(30)}
    assert train[0].task_id != test[0].task_id


def test_every_question_type_is_generated_at_every_difficulty():
    for difficulty in DIFFICULTIES:
        source = make_source(num_tasks=10, question_types=QUESTION_TYPES, difficulty=difficulty, seed=1)
        for question_type in QUESTION_TYPES:
            task = make_source(num_tasks=1, question_types=[question_type], difficulty=difficulty, seed=2)[0]
            assert task.question_type == question_type and task.suite == "vsi"
            assert (task.answer_type, task.metric) in {("choice", "option"), ("number", "mra")}
        assert len({source[i].question_type for i in range(10)}) > 3


def test_difficulty_changes_clutter():
    def mean_objects(difficulty: int) -> float:
        source = make_source(num_tasks=12, difficulty=difficulty, question_types=["room_size_estimation"])
        return float(np.mean([len(source[i].meta["objects"]) for i in range(12)]))

    assert mean_objects(0) < mean_objects(2)


# ----------------------------------------------------- ground truth by hand
def test_box_distance_matches_hand_values_and_sampling(hand):
    scene = hand[0]
    a = make_object(0, "box", (1, 1, 0), (2, 2, 1))
    assert box_distance(a, make_object(1, "box", (4, 1, 0), (5, 2, 0.5))) == pytest.approx(2.0)
    assert box_distance(a, make_object(1, "box", (4, 5, 0), (5, 6, 1))) == pytest.approx(math.sqrt(13))
    assert box_distance(a, make_object(1, "box", (1.5, 1.5, 0), (3, 3, 1))) == 0.0
    for x, y in itertools.combinations(scene.objects, 2):
        assert box_distance(x, y) == pytest.approx(sampled_distance(x, y), abs=0.05)


def test_direction_labels_match_an_observer_frame():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(500):
        here, facing, target = rng.uniform(0, 6, (3, 2))
        angle = signed_angle(here, facing, target)
        for question_type in DIRECTION_TYPES:
            label = direction_label(angle, question_type, margin=2.0)
            if label is not None:
                assert label == expected_direction(question_type, here, facing, target)
                checked += 1
    assert checked > 1000
    here, north = np.array([2.0, 2.0]), np.array([2.0, 5.0])
    assert direction_label(signed_angle(here, north, [1.0, 3.0]), "object_rel_direction_hard", 5) == "front-left"
    assert direction_label(signed_angle(here, north, [2.5, 0.0]), "object_rel_direction_medium", 5) == "back"
    assert direction_label(signed_angle(here, north, [2.5, 0.0]), "object_rel_direction_easy", 5) == "right"


def questions_of(question_type: str, hand, count: int = 12, difficulty: int = 1):
    scene, _, vis = hand
    made = [make_question(question_type, scene, vis, np.random.default_rng(s), DIFFICULTIES[difficulty])
            for s in range(count)]
    made = [q for q in made if q is not None]
    assert made, f"the hand-built scene gives no {question_type} question"
    return made


def test_counting_size_room_and_distance_on_a_hand_built_scene(hand):
    scene = hand[0]
    counts = {"chair": 2, "bed": 1, "sofa": 1, "table": 1, "cabinet": 1, "plant": 1}
    for q in questions_of("object_counting", hand):
        category = q.text.split("How many ")[1].split("(s)")[0]
        assert q.answer == counts[category] == 2.0
    sizes = {"bed": 200.0, "sofa": 180.0, "table": 100.0, "cabinet": 180.0, "plant": 120.0}
    for q in questions_of("object_size_estimation", hand):
        assert q.answer == pytest.approx(sizes[scene.objects[q.objects[0]].category])
    assert questions_of("room_size_estimation", hand)[0].answer == 36.0
    for q in questions_of("object_abs_distance", hand):
        a, b = (scene.objects[i] for i in q.objects)
        assert f"the {a.category} and the {b.category}" in q.text
        assert q.answer == pytest.approx(sampled_distance(a, b), abs=0.05)
        assert "chair" not in q.text


def test_relative_distance_and_directions_on_a_hand_built_scene(hand):
    scene = hand[0]
    for q in questions_of("object_rel_distance", hand):
        target, *candidates = (scene.objects[i] for i in q.objects)
        closest = min(candidates, key=lambda c: sampled_distance(target, c))
        assert option_text(q, q.answer) == closest.category
        assert len(q.options) == 4 and q.text.endswith(f"closest to the {target.category}?")
    for question_type in DIRECTION_TYPES:
        for q in questions_of(question_type, hand):
            x, y, z = (scene.objects[i].center[:2] for i in q.objects)
            assert option_text(q, q.answer) == expected_direction(question_type, x, y, z)


def turned(heading: np.ndarray, turn: str) -> np.ndarray:
    degrees = {"Turn Left": 90, "Turn Right": -90, "Turn Back": 180}[turn]
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([c * heading[0] - s * heading[1], s * heading[0] + c * heading[1]])


def route_works(points, turns) -> bool:
    """Walk the route with the given turns: after each turn the next waypoint must be within 45 degrees ahead."""
    for prev, here, nxt, turn in zip(points, points[1:], points[2:], turns):
        heading = turned(here - prev, turn)
        cosine = heading @ (nxt - here) / np.linalg.norm(heading) / np.linalg.norm(nxt - here)
        if cosine < math.cos(math.radians(45)):
            return False
    return True


def test_route_planning_on_a_hand_built_scene(hand):
    scene = hand[0]
    for difficulty in (0, 2):
        for q in questions_of("route_planning", hand, difficulty=difficulty):
            points = [scene.objects[i].center[:2] for i in q.objects]
            working = [o[0] for o in q.options if route_works(points, o.split(". ", 1)[1].split(", "))]
            assert working == [q.answer]
            actions = q.text.split("'turn right.'): ")[1]
            assert actions.count("[please fill in]") == len(q.objects) - 2


def test_appearance_order_matches_full_resolution_masks(hand):
    scene, renderer, _ = hand
    threshold = 0.0015 * 320 * 240
    firsts = {}
    for frame in range(scene.camera.num_frames):
        counts = np.bincount(renderer.labels(frame).ravel(), minlength=len(scene.objects) + 1)[1:]
        for obj in scene.objects:
            if counts[obj.id] >= threshold:
                firsts.setdefault(obj.category, frame)
    for q in questions_of("obj_appearance_order", hand, difficulty=0):
        listed = q.text.split("video: ")[1].rstrip("?").split(", ")
        assert option_text(q, q.answer).split(", ") == sorted(listed, key=firsts.__getitem__)


# ----------------------------------------------------------------- rendering
def test_a_box_on_the_optical_axis_renders_where_and_as_far_as_expected():
    box = make_object(0, "box", (4.0, 2.5, 0.5), (5.0, 3.5, 1.5))
    camera = CameraPath(centre=(1.0, 3.0), radius=0.0, height=1.0, start_angle=0.0, start_yaw=0.0, sweep=0.0,
                        pitch=0.0, num_frames=1)
    intr = Intrinsics.for_size(320, 240)
    frame = Renderer(Scene(Room(8.0, 6.0, 3.0), (box,), camera), intr).frame(0)
    assert frame.labels[120, 160] == 1 and frame.depth[120, 160] == pytest.approx(3.0, abs=1e-4)
    rows, cols = np.nonzero(frame.labels == 1)
    half = intr.fx * 0.5 / 3.0
    assert cols.min() == pytest.approx(intr.cx - half, abs=1.0) and cols.max() == pytest.approx(intr.cx + half, abs=1.0)
    assert rows.min() == pytest.approx(intr.cy - half, abs=1.0) and rows.max() == pytest.approx(intr.cy + half, abs=1.0)
    assert frame.labels[5, 5] == 0 and np.isfinite(frame.depth).all() and (frame.depth > 0).all()


def test_projected_centres_land_on_their_objects_at_the_right_depth(source):
    intr_tuple = None
    checked = 0
    for index in range(6):
        task = source[index]
        scene, fx, fy, cx, cy = task.meta["scene"], *task.meta["intrinsics"]
        intr_tuple = task.meta["intrinsics"]
        for frame in range(0, scene.camera.num_frames, 3):
            position, rotation = scene.camera.pose(frame)
            labels, depth = task.meta["object_masks"](frame), task.meta["depth"](frame)
            assert labels.dtype == np.int32 and depth.dtype == np.float32 and np.isfinite(depth).all()
            for obj_id in task.meta["visible"][frame]:
                obj = scene.objects[obj_id]
                assert (labels == obj_id + 1).any()
                x, y, z = rotation @ (obj.center - position)
                u, v = round(fx * x / z + cx), round(fy * y / z + cy)
                if z <= 0.1 or not (0 <= u < labels.shape[1] and 0 <= v < labels.shape[0]):
                    continue
                if labels[v, u] == obj_id + 1:
                    radius = float(np.linalg.norm(obj.size)) / 2
                    assert z - radius - 1e-3 <= depth[v, u] <= z + 1e-3
                    checked += 1
                else:
                    assert depth[v, u] < z
    assert checked > 20 and intr_tuple[0] == intr_tuple[1]


def test_frames_are_rgb_video_and_meta_is_complete(source):
    task = source[0]
    media = task.load_media()
    assert media.is_video and media.num_frames == 32 and media.fps == 4.0 and (media.width, media.height) == (320, 240)
    assert media.frame(3).shape == (240, 320, 3) and media.frame(3).dtype == np.uint8
    assert {"depth", "intrinsics", "object_masks", "objects", "visible"} <= set(task.meta)
    assert len(task.meta["visible"]) == 32
    assert set(task.meta["objects"][0]) >= {"category", "center", "size", "colour"}
    with pytest.raises(MediaError):
        task.meta["depth"](32)


# ------------------------------------------------------------------ env level
def test_gym_make_passes_check_env():
    env = gym.make("Pixelis-VSI-v0", num_tasks=8)
    check_env(env.unwrapped)
    assert env.unwrapped.max_steps == pixelis_env.suites.vsi.MAX_STEPS
    env.close()


def test_oracle_traces_solve_tasks_and_random_actions_do_not(source):
    env = pixelis_env.PixelisEnv(source, tools=CORE_TOOLS, max_steps=pixelis_env.suites.vsi.MAX_STEPS)
    oracle = [run_episode(env, i, oracle_plan) for i in range(NUM_ORACLE_TASKS)]
    assert sum(errors for _, errors in oracle) == 0
    oracle_mean = np.mean([score for score, _ in oracle])
    assert oracle_mean >= 0.95
    rng = np.random.default_rng(0)
    env.action_space.seed(0)

    def random_plan(env):
        options = env.task.options
        guess = str(rng.choice(list("ABCD"[:len(options)]))) if options else f"{rng.uniform(0, 10):.2f}"
        return [env.action_space.sample(), env.action_space.sample(), Answer(text=guess)]

    random_mean = np.mean([run_episode(env, i, random_plan)[0] for i in range(NUM_ORACLE_TASKS)])
    assert random_mean < 0.5 and oracle_mean - random_mean > 0.4


def test_oracle_uses_only_registered_tools_and_upgrades_with_perception_tools(hand):
    scene, _, vis = hand
    size = questions_of("object_size_estimation", hand)[0]
    order = questions_of("obj_appearance_order", hand, difficulty=0)[0]
    plain = build_oracle(size, vis, tools=CORE_TOOLS)
    assert [type(a) for a in plain] == [SelectFrames, Zoom]
    frame = vis.best_frame(size.objects[0])
    assert plain[1].frame == frame and plain[0].frames == (frame,)
    rich_tools = {"zoom", "select_frames", "answer", "segment", "properties", "localize"}
    rich = build_oracle(size, vis, tools=rich_tools)
    assert [type(a) for a in rich] == [SelectFrames, Segment, Properties] and rich[2].mask_id == 0
    point = rich[1].point
    labels = Renderer(scene, Intrinsics.for_size(320, 240)).labels(frame)
    assert labels[int(point[1] * 240), int(point[0] * 320)] == size.objects[0] + 1
    assert [type(a) for a in build_oracle(order, vis, tools=rich_tools)] == [SelectFrames] + [Localize] * 4
    assert [type(a) for a in build_oracle(order, vis, tools={"zoom", "select_frames"})] == [SelectFrames]


def test_upgraded_oracle_runs_once_segment_and_properties_are_registered():
    tools = set(registered_tools())
    if not {"segment", "properties"} <= tools:
        pytest.skip("segment/properties are not registered yet")
    source = make_source(num_tasks=3, seed=5, question_types=["object_size_estimation", "object_abs_distance"],
                         oracle_tools=tools - {"localize"})
    env = pixelis_env.PixelisEnv(source, max_steps=pixelis_env.suites.vsi.MAX_STEPS)
    for index in range(3):
        assert run_episode(env, index, oracle_plan) == (1.0, 0)
        assert "segment" in [a.name for a in env.task.oracle]


def test_bad_arguments_raise_typed_errors():
    with pytest.raises(PixelisError, match="Did you mean `object_counting`"):
        make_source(question_types=["object_count"])
    for kwargs in ({"split": "val"}, {"difficulty": 3}, {"frames": 4}, {"seed": -1}, {"resolution": (8, 8)},
                   {"num_tasks": 0}):
        with pytest.raises(PixelisError):
            make_source(**kwargs)


# ----------------------------------------------------------- real-data loader
def write_video(path: Path, frames: int = 5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 4.0, (32, 24))
    for i in range(frames):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()


ROWS = [
    {"id": 1, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_counting",
     "question": "How many chair(s) are in this room?", "ground_truth": "4", "options": None, "pruned": False},
    {"id": 4, "dataset": "scannet", "scene_name": "scene0011_00", "question_type": "object_rel_distance",
     "question": "Measuring from the closest point of each object, which of these objects (bed, tv, lamp, desk) "
                 "is the closest to the door?", "ground_truth": "C",
     "options": ["A. bed", "B. tv", "C. lamp", "D. desk"], "pruned": True},
    {"id": 7, "dataset": "arkitscenes", "scene_name": "41069025", "question_type": "object_abs_distance",
     "question": "Measuring from the closest point of each object, what is the distance between the sofa and the "
                 "tv (in meters)?", "ground_truth": "2.3", "options": None, "pruned": False},
]


def write_release(root: Path, rows=ROWS, videos=True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if videos:
        write_video(root / "scannet" / "scene0011_00.mp4")
        write_video(root / "arkitscenes" / "41069025.mp4")
    return root


def test_loader_reads_the_release_format_and_scores_like_vsi_bench(tmp_path):
    root = write_release(tmp_path / "vsi")
    source = make_source(data_root=root)
    assert len(source) == 3 and source.media_kinds == frozenset({"video"}) and source.max_frames == 64
    count, choice, dist = source[0], source[1], source[2]
    assert (count.answer, count.answer_type, count.metric, count.options) == ("4", "number", "mra", [])
    assert (choice.answer, choice.answer_type, choice.metric) == ("C", "choice", "option")
    assert choice.prompt().endswith("Options:\nA. bed\nB. tv\nC. lamp\nD. desk")
    assert choice.meta["lmms_eval_prompt"].startswith("These are frames of a video.\nMeasuring")
    assert dist.meta["video"].endswith("arkitscenes/41069025.mp4") and dist.task_id == "vsibench-7"
    media = count.load_media()
    assert media.num_frames == 5 and media.frame(4).shape == (24, 32, 3)
    env = gym.make("Pixelis-VSI-v0", data_root=str(root))
    for index, (reply, expected) in enumerate([("4", 1.0), ("C.", 1.0), ("2.3", 1.0)]):
        assert run_episode(env.unwrapped, index, lambda _, r=reply: [Answer(text=r)]) == (expected, 0)
    assert run_episode(env.unwrapped, 1, lambda _: [Answer(text="The answer is C")])[0] == 0.0
    env.unwrapped.reset(options={"task_index": 0})
    _, _, _, _, info = env.unwrapped.step(SelectFrames(frames=(0, 60)))
    assert "outside the video" in info["error"]
    env.close()


def test_loader_filters_by_type_pruned_and_count(tmp_path):
    root = write_release(tmp_path / "vsi")
    only = make_source(data_root=root, question_types=["object_rel_distance"])
    assert len(only) == 1 and only[0].task_id == "vsibench-4"
    kept = make_source(data_root=root, exclude_pruned=True)
    assert [kept[i].task_id for i in range(len(kept))] == ["vsibench-1", "vsibench-7"]
    assert len(make_source(data_root=root, num_tasks=2)) == 2
    with pytest.raises(PixelisError, match="only a test split"):
        make_source(data_root=root, split="train")


@pytest.mark.parametrize(("change", "message"), [
    ({"ground_truth": None}, "test.jsonl:2: missing field `ground_truth`"),
    ({"ground_truth": "E"}, "test.jsonl:2: field `ground_truth` 'E' is not one of the option letters"),
    ({"options": None}, "test.jsonl:2: field `options`"),
    ({"question_type": "object_rel_dist"}, "Did you mean `object_rel_distance`"),
    ({"id": True}, "test.jsonl:2: field `id`"),
    ({"question": 3}, "test.jsonl:2: field `question`"),
])
def test_malformed_rows_name_the_row_and_field(tmp_path, change, message):
    rows = [ROWS[0], {**ROWS[1], **change}, ROWS[2]]
    with pytest.raises(DataError, match=re.escape(message)):
        make_source(data_root=write_release(tmp_path / "vsi", rows))


def test_numeric_ground_truth_and_json_must_be_readable(tmp_path):
    with pytest.raises(DataError, match="test.jsonl:1: field `ground_truth` 'many' is not a number"):
        make_source(data_root=write_release(tmp_path / "a", [{**ROWS[0], "ground_truth": "many"}]))
    root = write_release(tmp_path / "b")
    (root / "test.jsonl").write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match="test.jsonl:2: not valid JSON"):
        make_source(data_root=root)


def test_missing_videos_are_listed_or_skipped_with_a_warning(tmp_path):
    root = write_release(tmp_path / "vsi")
    (root / "arkitscenes" / "41069025.mp4").unlink()
    with pytest.raises(DataError, match="1 video file\\(s\\) not found: .*41069025.mp4"):
        make_source(data_root=root)
    with pytest.warns(UserWarning, match="dropped 1 question"):
        source = make_source(data_root=root, skip_missing=True)
    assert len(source) == 2


@pytest.mark.parametrize(("field", "value"), [
    ("dataset", "../outside"), ("scene_name", "../../etc/passwd"), ("scene_name", "a/b"), ("dataset", "..\\x"),
])
def test_paths_cannot_escape_the_data_root(tmp_path, field, value):
    root = write_release(tmp_path / "vsi", [{**ROWS[0], field: value}])
    with pytest.raises(DataError, match=f"test.jsonl:1: field `{field}` must be a plain name"):
        make_source(data_root=root)


def test_a_symlinked_folder_cannot_escape_the_data_root(tmp_path):
    outside = tmp_path / "outside"
    write_video(outside / "scene0011_00.mp4")
    root = write_release(tmp_path / "vsi", [{**ROWS[0], "dataset": "linked"}], videos=False)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataError, match="escapes the data root"):
        make_source(data_root=root)


def test_parquet_release_loads_like_jsonl_and_needs_pyarrow(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    root = write_release(tmp_path / "vsi")
    (root / "test.jsonl").unlink()
    columns = ["id", "dataset", "scene_name", "question_type", "question", "ground_truth", "options"]
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in columns} for r in ROWS]),
                   root / "test-00000-of-00001.parquet")
    source = make_source(data_root=root)
    assert [source[i].answer for i in range(3)] == ["4", "C", "2.3"] and source[1].options[2] == "C. lamp"
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match="pip install pyarrow"):
        make_source(data_root=root)


def test_missing_release_files_are_reported(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        make_source(data_root=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither test.jsonl nor"):
        make_source(data_root=tmp_path / "empty")


# ---------------------------------------------------------------- aggregation
def test_aggregate_is_a_macro_mean_with_merged_directions():
    results = [("object_counting", 1.0), ("object_counting", 0.0), ("object_abs_distance", 0.8),
               ("object_rel_direction_easy", 1.0), ("object_rel_direction_easy", 1.0),
               ("object_rel_direction_medium", 0.0)]
    scores = aggregate(results)
    assert scores["object_counting"] == 0.5 and scores["object_abs_distance"] == 0.8
    assert scores["object_rel_direction"] == pytest.approx(1 / 3)
    assert scores["overall"] == pytest.approx((0.5 + 0.8 + 1 / 3) / 3)
    assert set(scores) == {"object_counting", "object_abs_distance", "object_rel_direction", "overall"}
    full = aggregate([(t, 1.0) for t in QUESTION_TYPES])
    assert len(full) == 9 and full["overall"] == 1.0
    with pytest.raises(DataError, match="Did you mean"):
        aggregate([("object_countin", 1.0)])
