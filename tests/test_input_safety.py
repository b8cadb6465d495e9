"""Input safety: data files cannot reach outside their root, inputs have size limits, and
nothing in the package turns data into code.

* Every loader that reads paths from data refuses absolute paths, ``..``, ``~``, NUL
  bytes and symlinks that lead out of the data root (``safe_join`` resolves links).
* Text actions, their JSON and JSONL rows have maximum sizes; the limits are exact and
  a row with no end is refused without being read whole.
* No ``eval``/``exec``/pickle/unsafe ``torch.load``/unsafe ``yaml.load`` in the source tree.
* Checkpoints load tensors only (``weights_only=True`` or safetensors): a pickled
  object in a checkpoint is refused, not run.
"""

from __future__ import annotations

import ast
import hashlib
import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from pixelis_env import ActionError, DataError, PixelisEnv, PixelisError, parse_action
from pixelis_env.actions import BUILTIN_ACTIONS, MAX_ANSWER_CHARS
from pixelis_env.suites import custom, temporal, track
from pixelis_env.suites import vsi as vsi_suite
from pixelis_env.suites.count import make_source as count_source
from pixelis_env.suites.files import MAX_ROW_CHARS, read_jsonl, safe_join
from pixelis_env.suites.textvqa import make_source as text_source
from pixelis_env.suites.vstar import make_source as vstar_source
from pixelis_env.text_actions import MAX_ACTION_CHARS, MAX_JSON_DEPTH

ROOT = Path(__file__).resolve().parents[1]
SOURCE_TREES = ("pixelis_env", "agents", "training", "benchmarks")


# ------------------------------------------------------------ data layouts
def image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(path)
    return path


def video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (32, 24))
    for t in range(4):
        writer.write(np.full((24, 32, 3), 40 * t, np.uint8))
    writer.release()
    return path


def jsonl(path: Path, *rows: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load_custom(root: Path, value: str) -> Any:
    jsonl(root / "tasks.jsonl", {"media": value, "question": "What is it?", "answer": "grey"})
    return custom.make_source(tasks=root / "tasks.jsonl")


def load_count(root: Path, value: str) -> Any:
    jsonl(root / "count.jsonl", {"image": value, "question": "How many?", "count": 2})
    return count_source(data_root=root / "count.jsonl")


def load_vstar(root: Path, value: str) -> Any:
    jsonl(root / "test_questions.jsonl", {"image": value, "text": "Which colour?\n(A) grey\n(B) red", "label": "A"})
    return vstar_source(data_root=root)


def load_docvqa(root: Path, value: str) -> Any:
    rows = [{"questionId": 1, "question": "What is written?", "image": value, "answers": ["x"]}]
    (root / "val_v1.0.json").write_text(json.dumps({"data": rows}))
    return text_source(data_root=root, split="val", benchmark="docvqa")


def load_textvqa(root: Path, value: str) -> Any:
    """``image_id`` becomes ``train_images/{image_id}.jpg``."""
    stem = value.removeprefix("train_images/").removesuffix(".jpg")
    rows = [{"question": "what is written?", "image_id": stem, "answers": ["x"] * 10, "set_name": "val"}]
    (root / "TextVQA_0.5.1_val.json").write_text(json.dumps({"data": rows}))
    return text_source(data_root=root, split="val")


def load_track(root: Path, value: str) -> Any:
    jsonl(root / "test.jsonl", {"video": value, "question": "How many times?", "answer": 3})
    return track.make_source(data_root=root, split="test")


LOADERS: dict[str, tuple[Callable[[Path, str], Any], str, Callable[[Path], Path]]] = {
    "custom-jsonl": (load_custom, "imgs/a.png", image),
    "countbench-jsonl": (load_count, "imgs/a.png", image),
    "vstar-jsonl": (load_vstar, "direct_attributes/a.jpg", image),
    "docvqa-json": (load_docvqa, "documents/a.png", image),
    "textvqa-json": (load_textvqa, "train_images/a.jpg", image),
    "track-jsonl": (load_track, "clips/a.mp4", video),
}
"""Loader, the path field's legitimate value, and how to make such a file."""
ATTACKS = {"absolute": "absolute path", "dotdot": "escapes the data root", "home": "absolute path",
           "symlink": "escapes the data root", "symlinked-folder": "escapes the data root", "nul": "NUL"}


def attack_value(kind: str, root: Path, legit: str, outside: Path) -> str:
    """The path a hostile data file puts in the field (creating the links it relies on)."""
    folder, name = legit.rsplit("/", 1)
    if kind == "absolute":
        return str(outside)
    if kind == "dotdot":
        return f"{folder}/../../{outside.parent.name}/{outside.name}"
    if kind == "home":
        return f"~/{outside.name}"
    if kind == "symlink":
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"link{outside.suffix}").symlink_to(outside)
        return f"{folder}/link{outside.suffix}"
    if kind == "symlinked-folder":
        (root / folder).symlink_to(outside.parent, target_is_directory=True)
        return f"{folder}/{outside.name}"
    return f"{folder}/a\x00{outside.suffix}"


@pytest.mark.parametrize("loader", LOADERS)
def test_loaders_read_legitimate_paths(tmp_path, loader):
    load, legit, make = LOADERS[loader]
    make(tmp_path / "root" / legit)
    assert len(load(tmp_path / "root", legit)) == 1


@pytest.mark.parametrize("kind", ATTACKS)
@pytest.mark.parametrize("loader", LOADERS)
def test_loaders_refuse_paths_out_of_the_data_root(tmp_path, loader, kind):
    load, legit, make = LOADERS[loader]
    root = tmp_path / "root"
    root.mkdir()
    outside = make(tmp_path / "secret" / Path(legit).name)
    if kind in ("absolute", "home") and loader == "textvqa-json":
        pytest.skip("TextVQA builds the path from an id: train_images/<id>.jpg is never absolute")
    value = attack_value(kind, root, legit, outside)
    with pytest.raises(DataError, match=ATTACKS[kind]):
        load(root, value)


def vsi_row(**change: Any) -> dict[str, Any]:
    return {"id": 1, "dataset": "scannet", "scene_name": "scene0", "question_type": "object_counting",
            "question": "How many chairs?", "options": None, "ground_truth": "3", **change}


def test_vsi_bench_refuses_names_and_linked_videos_out_of_the_root(tmp_path):
    root, outside = tmp_path / "vsi", video(tmp_path / "secret" / "scene0.mp4")
    root.mkdir()
    (root / "scannet").mkdir()
    (root / "scannet" / "scene0.mp4").symlink_to(outside)
    jsonl(root / "test.jsonl", vsi_row())
    with pytest.raises(DataError, match="escapes the data root"):
        vsi_suite.make_source(data_root=root)
    for field, value in [("scene_name", "/etc/passwd"), ("dataset", "a\x00b"), ("dataset", "..")]:
        jsonl(root / "test.jsonl", vsi_row(**{field: value}))
        with pytest.raises(DataError, match="plain name|escapes"):
            vsi_suite.make_source(data_root=root)


def test_charades_refuses_ids_annotations_and_linked_videos_out_of_the_root(tmp_path):
    root, outside = tmp_path / "charades", video(tmp_path / "secret" / "VID01.mp4")
    (root / "Charades_v1_480").mkdir(parents=True)
    (root / "Charades_v1_480" / "VID01.mp4").symlink_to(outside)
    (root / "charades_sta_test.txt").write_text("VID01 0.5 1.5##a person opens a door.\n")
    with pytest.raises(DataError, match="escapes the data root"):
        temporal.make_source(data_root=root, split="test")
    (root / "charades_sta_test.txt").write_text("../../secret/VID01 0.5 1.5##a person opens a door.\n")
    with pytest.raises(DataError, match="video id"):
        temporal.make_source(data_root=root, split="test")
    for relative, message in [("/etc/passwd", "absolute"), ("../secret/x.txt", "escapes")]:
        with pytest.raises(DataError, match=message):
            temporal.make_source(data_root=root, annotations=relative)
        with pytest.raises(DataError, match=message):
            track.make_source(data_root=root, annotations=relative)


def test_vstar_category_folders_refuse_linked_images(tmp_path):
    """The V*Bench layout without test_questions.jsonl lists files instead of reading paths."""
    root = tmp_path / "vstar"
    outside = image(tmp_path / "secret" / "sa_1.jpg")
    (tmp_path / "secret" / "sa_1.json").write_text(json.dumps({"question": "Colour?", "options": ["grey", "red"]}))
    (root / "direct_attributes").mkdir(parents=True)
    (root / "direct_attributes" / "sa_1.jpg").symlink_to(outside)
    (root / "direct_attributes" / "sa_1.json").symlink_to(tmp_path / "secret" / "sa_1.json")
    with pytest.raises(DataError, match="escapes the data root"):
        vstar_source(data_root=root)
    (root / "direct_attributes" / "sa_1.jpg").unlink()
    image(root / "direct_attributes" / "sa_1.jpg")
    with pytest.raises(DataError, match="escapes the data root"):  # the annotation is linked from outside too
        vstar_source(data_root=root)


@pytest.mark.parametrize(("relative", "message"), [
    ("a\x00b.png", "NUL"), ("x" * 5000, "unusable path"), ("loop/a.png", "unusable path|escapes"),
    ("/abs.png", "absolute"), ("~user/a.png", "absolute"), ("", "expected a relative file path"),
])
def test_safe_join_names_every_unusable_path(tmp_path, relative, message):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(DataError, match=message):
        safe_join(tmp_path, relative, "tasks.jsonl:3")


def test_safe_join_keeps_links_that_stay_inside(tmp_path):
    image(tmp_path / "data" / "real.png")
    (tmp_path / "alias.png").symlink_to(tmp_path / "data" / "real.png")
    assert safe_join(tmp_path, "alias.png") == (tmp_path / "data" / "real.png").resolve()
    assert safe_join(tmp_path, "data/../data/real.png") == (tmp_path / "data" / "real.png").resolve()


json_rows = st.dictionaries(
    st.sampled_from(["id", "media", "question", "answer", "options", "answer_type", "metric", "fps", "question_type"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=8),
    max_size=9)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(row=json_rows, media=st.sampled_from(["a.png", "a.gif", "../a.png", "missing.png", None]))
@example(row={"question": "q", "answer": "a", "fps": "fast"}, media="a.gif")
@example(row={"question": "q", "answer": "a", "metric": "nope"}, media="a.png")
@example(row={"question": "q", "answer": "a", "answer_type": [1]}, media="a.png")
@example(row={"question": "q", "answer": "x", "options": ["A. x"], "metric": "span_iou"}, media="a.png")
@example(row={"question": "q", "answer": "x", "media": "a\x00.png"}, media=None)
def test_any_custom_row_loads_and_plays_or_is_refused_naming_its_line(tmp_path, row, media):
    """Arbitrary user rows: a DataError naming ``file:line`` at load, or an env whose resets and
    answers never raise. The examples once escaped as TypeError, ValueError or IndexError,
    at load, at reset or at the answer step."""
    if not (tmp_path / "a.gif").exists():
        frames = [Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)) for i in range(3)]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        image(tmp_path / "a.png")
    if media is not None:
        row = {**row, "media": media}
    path = jsonl(tmp_path / "rows.jsonl", row)
    try:
        source = custom.make_source(tasks=path)
    except DataError as exc:
        assert "rows.jsonl:1" in str(exc) or "task " in str(exc)
        return
    env = PixelisEnv(source, view_size=32)
    for reply in (f"{row.get('answer')!s:.40}", "A", "0.5-2", "3"):
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step(f"<answer>{reply}</answer>")
        assert (terminated and 0.0 <= reward <= 1.0) or info["error"]


# -------------------------------------------------------------------- limits
def test_text_actions_are_limited_to_max_action_chars():
    env = PixelisEnv([custom_task()], view_size=32)
    env.reset(seed=0)
    at_limit = "<answer>" + "x" * (MAX_ACTION_CHARS - len("<answer></answer>")) + "</answer>"
    assert len(at_limit) == MAX_ACTION_CHARS
    error = env.step(at_limit)[4]["error"]
    assert f"longer than {MAX_ANSWER_CHARS}" in error  # read, then refused for what it says
    error = env.step(at_limit + " ")[4]["error"]
    assert f"{MAX_ACTION_CHARS + 1} characters long; the limit is {MAX_ACTION_CHARS}" in error


def custom_task() -> Any:
    return custom.make_source(media=np.zeros((16, 16, 3), np.uint8), question="What?", answer="x")[0]


def nested(depth: int) -> str:
    """A tool call whose JSON is exactly ``depth`` levels deep (payload, arguments, then lists)."""
    box = "[" * (depth - 2) + "]" * (depth - 2)
    return '<tool_call>{"name": "zoom", "arguments": {"box": ' + box + "}}</tool_call>"


def test_json_depth_limit_is_exact():
    with pytest.raises(ActionError) as info:
        parse_action(nested(MAX_JSON_DEPTH), BUILTIN_ACTIONS)
    assert "nested" not in str(info.value)  # parsed; refused for the box
    with pytest.raises(ActionError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        parse_action(nested(MAX_JSON_DEPTH + 1), BUILTIN_ACTIONS)


@pytest.mark.parametrize("text", [
    "<tool_call>" * (MAX_ACTION_CHARS // 11), "<answer>" * (MAX_ACTION_CHARS // 8),
    "</tool_call>" + "<answer><tool_call>" * (MAX_ACTION_CHARS // 19 - 1),
    "<tool_call>" + "[" * 8000 + "]" * 8000 + "</tool_call>",
    '<tool_call>{"name": "zoom", "arguments": {"box": [' + "9" * 16000 + "]}}</tool_call>",
])
def test_worst_case_actions_parse_in_bounded_time(text):
    """The tag search is quadratic in the worst case; the length limit keeps it near 0.1 s."""
    started = time.perf_counter()
    with pytest.raises(ActionError):
        parse_action(text[:MAX_ACTION_CHARS], BUILTIN_ACTIONS)
    assert time.perf_counter() - started < 2.0


def test_jsonl_rows_are_limited_to_max_row_chars(tmp_path):
    fill = MAX_ROW_CHARS - len('{"a": ""}\n')
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": "' + "x" * fill + '"}\n{"b": 1}\n')
    assert [where for where, _ in read_jsonl(path)] == [f"{path}:1", f"{path}:2"]
    path.write_text('{"b": 1}\n{"a": "' + "x" * (fill + 1) + '"}\n')
    with pytest.raises(DataError, match=f"rows.jsonl:2: row longer than {MAX_ROW_CHARS}"):
        list(read_jsonl(path))


def test_an_endless_row_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "endless.jsonl"
    with path.open("w") as fh:
        for _ in range(40):
            fh.write("x" * 1_000_000)  # 40 MB, no newline
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="row longer than"):
            list(read_jsonl(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_ROW_CHARS * 2  # about one row of str, not 40 MB


def test_binary_task_files_are_data_errors(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_bytes(b'{"a": 1}\n' + bytes(range(256)) * 64)
    with pytest.raises(DataError, match="not UTF-8"):
        list(read_jsonl(path))
    with pytest.raises(DataError, match="not UTF-8"):
        custom.make_source(tasks=path)


# ---------------------------------------------------------------- the source
def python_files() -> list[Path]:
    return sorted(p for tree in SOURCE_TREES for p in (ROOT / tree).rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


PICKLERS = ("pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib")


def unsafe_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls that can turn data into code: eval/exec, pickle-family loads, torch.load without
    ``weights_only=True``, yaml.load without a safe loader, numpy loads allowing pickles."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        module = name.split(".")[-2:-1]
        code = name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__")
        unpickle = last in ("load", "loads", "Unpickler") and module and module[0] in PICKLERS
        if code or unpickle or name.endswith(("read_pickle", "shelve.open")):
            found.append((node.lineno, name))
        elif name.endswith("torch.load"):
            flag = _keyword(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                found.append((node.lineno, f"{name} without weights_only=True"))
        elif name.endswith("yaml.load") or name.endswith("yaml.load_all"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or "Safe" not in _dotted(loader):
                found.append((node.lineno, f"{name} without SafeLoader"))
        elif last == "load" and name.split(".")[0] in ("np", "numpy"):
            flag = _keyword(node, "allow_pickle")
            if isinstance(flag, ast.Constant) and flag.value is True:
                found.append((node.lineno, f"{name} with allow_pickle=True"))
    return found


def test_no_source_file_turns_data_into_code():
    files = python_files()
    assert len(files) > 50
    offenders = {str(p.relative_to(ROOT)): calls for p in files
                 if (calls := unsafe_calls(ast.parse(p.read_text(encoding="utf-8"), str(p))))}
    assert offenders == {}


def test_the_scanner_finds_what_it_looks_for():
    bad = """
eval(text); exec(code); pickle.load(fh); pickle.loads(b); cloudpickle.loads(b); marshal.loads(b)
torch.load(path); torch.load(path, weights_only=False); self.torch.load(path)
yaml.load(fh); yaml.load(fh, Loader=yaml.FullLoader); np.load(path, allow_pickle=True); pd.read_pickle(p)
"""
    good = """
model.eval(); torch.load(path, map_location="cpu", weights_only=True); self.torch.load(p, weights_only=True)
yaml.load(fh, Loader=yaml.SafeLoader); yaml.safe_load(fh); np.load(path); json.loads(s); re.compile(p)
"""
    assert len(unsafe_calls(ast.parse(bad))) == 13
    assert unsafe_calls(ast.parse(good)) == []


# --------------------------------------------------------------- checkpoints
class Payload:
    """Pickles as a call that creates ``marker``: what a hostile checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return Path.touch, (self.marker,)


def _resign(directory: Path) -> None:
    """Update the manifest's sizes and sums, as an attacker shipping a whole checkpoint would."""
    manifest = json.loads((directory / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (directory / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (directory / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch = pytest.importorskip("torch")
    from training.common import save_checkpoint

    return save_checkpoint(tmp_path / "run", 3, {"policy": torch.nn.Linear(2, 2)}, None, {"lr": 0.1})


@pytest.mark.parametrize("target", ["trainer.pt", "weights.pt"])
def test_a_checkpoint_holding_a_pickled_object_is_refused_not_run(checkpoint, tmp_path, target):
    import torch

    from training.common import CheckpointError, load_checkpoint

    assert load_checkpoint(checkpoint).step == 3
    marker = tmp_path / "payload-ran"
    if target == "weights.pt":  # the fallback format when safetensors is missing
        manifest = json.loads((checkpoint / "manifest.json").read_text())
        (checkpoint / manifest["weights"]).unlink()
        del manifest["files"][manifest["weights"]]
        manifest["weights"], manifest["files"]["weights.pt"] = "weights.pt", {}
        (checkpoint / "manifest.json").write_text(json.dumps(manifest))
        torch.save({"policy.weight": Payload(marker)}, checkpoint / "weights.pt")
    else:
        torch.save({"step": 3, "optimizer": None, "rng": Payload(marker), "extra": {}}, checkpoint / target)
    _resign(checkpoint)
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        load_checkpoint(checkpoint)
    assert not marker.exists()


def test_a_checkpoint_config_cannot_name_an_arbitrary_callable(checkpoint, tmp_path):
    from training.common import load_modules

    marker = tmp_path / "factory-ran"
    config = json.loads((checkpoint / "config.json").read_text())
    config["modules"] = {"policy": {"factory": "pathlib:Path.touch", "kwargs": {"self": str(marker)}}}
    (checkpoint / "config.json").write_text(json.dumps(config))
    _resign(checkpoint)
    with pytest.raises(PixelisError, match="refusing factory 'pathlib:Path.touch'"):
        load_modules(checkpoint)
    assert not marker.exists()
