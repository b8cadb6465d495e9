"""Procedural counting tasks: "How many red circles are there?" among distractors.

Shapes are drawn hard-edged in exact palette colours on a background that never holds
those colours, and never overlap: each keeps ``gap`` pixels of background to the next
(at difficulty 3, half of them are put right next to another, 2 px apart, so they
look touching). So a colour mask's connected components are exactly the drawn
instances, which the tests check. Counts are 2-10, as in CountBench. Distractors share
the shape or the colour of the target. The oracle zooms on the region holding the
targets, or at difficulty 3 on each quadrant that holds one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelis_env.actions import Zoom
from pixelis_env.errors import PixelisError
from pixelis_env.media import ImageMedia
from pixelis_env.suites import drawing
from pixelis_env.suites.procedural import PixelBox, generated_source, padded_box, union
from pixelis_env.task import Task, TaskList
from pixelis_env.views import pixels_to_box

SUITE = "count"
COUNT_RANGE = (2, 10)
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
           "diamond": "diamonds", "hexagon": "hexagons"}
SHAPE_ONLY_SHARE = 0.3
"""Share of questions that name only the shape ("How many stars ...?"), any colour."""
PLACEMENT_TRIES = 200
QUADRANT_OVERLAP = 0.1
"""Quadrant zooms reach this fraction of the frame past the midlines, so no shape is cut in all of them."""
METRICS = ("count", "mra")


@dataclass(frozen=True)
class Level:
    """Image side, shape side range, distractor count range, gap, adjacent share, quadrant oracle."""

    size: int
    side: tuple[int, int]
    distractors: tuple[int, int]
    gap: int
    adjacent: float
    quadrants: bool


LEVELS = {
    1: Level(size=768, side=(40, 60), distractors=(6, 10), gap=10, adjacent=0.0, quadrants=False),
    2: Level(size=1024, side=(30, 48), distractors=(12, 20), gap=6, adjacent=0.0, quadrants=False),
    3: Level(size=1280, side=(24, 40), distractors=(20, 30), gap=2, adjacent=0.5, quadrants=True),
}


@dataclass(frozen=True)
class Instance:
    shape: str
    colour: str
    box: PixelBox


@dataclass(frozen=True)
class Scene:
    size: int
    instances: tuple[Instance, ...]
    targets: tuple[int, ...]
    texture_seed: int


def _kinds(rng: np.random.Generator, shape: str, colour: str | None, count: int, distractors: int
           ) -> list[tuple[str, str, bool]]:
    """``(shape, colour, is_target)`` for targets then distractors; none of the latter matches the query."""
    colours, shapes = list(drawing.PALETTE), list(PLURALS)
    kinds = [(shape, colour or str(rng.choice(colours)), True) for _ in range(count)]
    for _ in range(distractors):
        other_shape = str(rng.choice([s for s in shapes if s != shape]))
        if colour is None:
            kinds.append((other_shape, str(rng.choice(colours)), False))
            continue
        other_colour = str(rng.choice([c for c in colours if c != colour]))
        options = [(shape, other_colour), (other_shape, colour), (other_shape, other_colour)]
        kinds.append((*options[int(rng.integers(3))], False))
    return kinds


def _free(box: PixelBox, placed: list[PixelBox], gap: int, size: int) -> bool:
    if box[0] < 0 or box[1] < 0 or box[2] > size or box[3] > size:
        return False
    return not any(box[0] < b[2] + gap and b[0] < box[2] + gap and box[1] < b[3] + gap and b[1] < box[3] + gap
                   for b in placed)


def _place(rng: np.random.Generator, side: int, placed: list[PixelBox], level: Level) -> PixelBox | None:
    """A free box, next to an earlier one (``gap`` apart) with probability ``adjacent``, else anywhere."""
    if placed and rng.random() < level.adjacent:
        x0, y0, x1, y1 = placed[int(rng.integers(len(placed)))]
        g = level.gap
        x, y = [(x1 + g, y0), (x0 - g - side, y0), (x0, y1 + g), (x0, y0 - g - side)][int(rng.integers(4))]
        if _free((x, y, x + side, y + side), placed, level.gap, level.size):
            return (x, y, x + side, y + side)
    for _ in range(PLACEMENT_TRIES):
        x, y = (int(v) for v in rng.integers(0, level.size - side, 2))
        if _free((x, y, x + side, y + side), placed, level.gap, level.size):
            return (x, y, x + side, y + side)
    return None


def plan_scene(rng: np.random.Generator, level: Level, shape: str, colour: str | None) -> Scene:
    """Place the targets, then as many distractors as fit (targets always fit: the image is roomy)."""
    count = int(rng.integers(COUNT_RANGE[0], COUNT_RANGE[1] + 1))
    kinds = _kinds(rng, shape, colour, count, int(rng.integers(level.distractors[0], level.distractors[1] + 1)))
    instances: list[Instance] = []
    targets: list[int] = []
    for kind_shape, kind_colour, is_target in kinds:
        box = _place(rng, int(rng.integers(level.side[0], level.side[1] + 1)), [i.box for i in instances], level)
        if box is None and is_target:
            raise PixelisError(f"could not place {count} targets in a {level.size} px image")
        if box is not None:
            targets += [len(instances)] if is_target else []
            instances.append(Instance(kind_shape, kind_colour, box))
    return Scene(level.size, tuple(instances), tuple(targets), int(rng.integers(2**63 - 1)))


def render(scene: Scene) -> np.ndarray:
    """Textured background and hard-edged shapes in exact palette colours."""
    rng = np.random.default_rng(scene.texture_seed)
    image = drawing.textured_background(rng, scene.size, scene.size, blotch=64)
    for instance in scene.instances:
        x0, y0, x1, _ = instance.box
        drawing.paste_shape(image, instance.shape, x0, y0, x1 - x0, drawing.PALETTE[instance.colour], soft=False)
    return image


def oracle(scene: Scene, level: Level) -> list[Zoom]:
    """One zoom on the targets' region, or one per quadrant holding a target."""
    boxes = [scene.instances[t].box for t in scene.targets]
    if not level.quadrants:
        return [Zoom(box=padded_box(union(boxes), scene.size, scene.size, level.side[1]))]
    reach = 0.5 + QUADRANT_OVERLAP
    centres = [((b[0] + b[2]) / 2 >= scene.size / 2, (b[1] + b[3]) / 2 >= scene.size / 2) for b in boxes]
    zooms = []
    for quadrant in sorted(set(centres), key=lambda q: (q[1], q[0])):
        x0, y0 = (1 - reach) * quadrant[0], (1 - reach) * quadrant[1]
        zooms.append(Zoom(box=(x0, y0, x0 + reach, y0 + reach)))
    return zooms


def make_task(rng: np.random.Generator, task_id: str, difficulty: int, metric: str) -> Task:
    """One counting question about a freshly planned scene."""
    level = LEVELS[difficulty]
    shape = str(rng.choice(list(PLURALS)))
    colour = None if rng.random() < SHAPE_ONLY_SHARE else str(rng.choice(list(drawing.PALETTE)))
    scene = plan_scene(rng, level, shape, colour)
    noun = PLURALS[shape] if colour is None else f"{colour} {PLURALS[shape]}"
    instances = [{"shape": i.shape, "colour": i.colour, "box": pixels_to_box(*i.box, scene.size, scene.size),
                  "pixels": list(i.box)} for i in scene.instances]
    return Task(task_id=task_id, question=f"How many {noun} are there?", answer=len(scene.targets),
                answer_type="number", media=lambda: ImageMedia(render(scene), name=task_id), metric=metric,
                suite=SUITE, question_type="shape" if colour is None else "colour_shape",
                oracle=oracle(scene, level),
                meta={"instances": instances, "targets": list(scene.targets), "query": {"shape": shape,
                      "colour": colour}, "image_size": [scene.size, scene.size], "difficulty": difficulty})


def make_generated_source(split: str, num_tasks: int, seed: int, difficulty: int, metric: str) -> TaskList:
    """The embedded generator as a lazy task source."""
    if metric not in METRICS:
        raise PixelisError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return generated_source(SUITE, lambda rng, task_id: make_task(rng, task_id, difficulty, metric), split=split,
                            num_tasks=num_tasks, seed=seed, difficulty=difficulty, levels=len(LEVELS))
