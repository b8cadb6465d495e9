"""VSI-Bench's question types over a procedural scene, with exact ground truth.

Wordings follow VSI-Bench's templates: ``BENCHMARKS.md``, completed from the paper for
the sentences it elides (the 135-degree rule of medium directions, the quadrant
sentence of hard ones, the route-planning instructions).
Only well-posed questions are produced: objects named by category alone are the only
one of their category, every object a question needs is visible somewhere in the
video, and relative answers (closest object, left/right, turns, order) win by a
margin set by the difficulty. A builder returns ``None`` when the scene cannot give
such a question; the generator then samples another scene.

Geometry conventions (``scene.py``): positions for directions and routes are the
centres of the objects' floor footprints; distances are between the closest points
of the objects' 3D bounding boxes; an angle is positive when counter-clockwise, i.e.
to the left of someone facing the reference direction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pixelis_env.suites.vsi.render import Visibility
from pixelis_env.suites.vsi.scene import Difficulty, Scene, SceneObject

NUMERIC_TYPES = ("object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation")
DIRECTION_TYPES = ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard")
CHOICE_TYPES = ("object_rel_distance", *DIRECTION_TYPES, "route_planning", "obj_appearance_order")
QUESTION_TYPES = NUMERIC_TYPES + CHOICE_TYPES
"""VSI-Bench's ten ``question_type`` values."""

LETTERS = "ABCD"
MIN_DISTANCE = 0.3
"""Absolute distances below this are not asked (MRA is harsh near zero)."""
MIN_SEPARATION = 0.5
"""Objects used as standpoints, facings and waypoints are at least this far apart (m)."""
PICK_TRIES = 30
BALANCE_TRIES = 60
TURNS = ("Turn Left", "Turn Right", "Turn Back")

TEMPLATES = {
    "object_counting": "How many {category}(s) are in this room?",
    "object_abs_distance": ("Measuring from the closest point of each object, what is the distance between the {a} "
                            "and the {b} (in meters)?"),
    "object_size_estimation": ("What is the length of the longest dimension (length, width, or height) of the "
                               "{category}, measured in centimeters?"),
    "room_size_estimation": ("What is the size of this room (in square meters)? If multiple rooms are shown, "
                             "estimate the size of the combined space."),
    "object_rel_distance": ("Measuring from the closest point of each object, which of these objects ({choices}) "
                            "is the closest to the {category}?"),
    "object_rel_direction_easy": ("If I am standing by the {x} and facing the {y}, is the {z} to the left or the "
                                  "right of the {y}?"),
    "object_rel_direction_medium": ("If I am standing by the {x} and facing the {y}, is the {z} to my left, right, "
                                    "or back? An object is to my back if I would have to turn at least 135 degrees "
                                    "in order to face it."),
    "object_rel_direction_hard": ("If I am standing by the {x} and facing the {y}, is the {z} to my front-left, "
                                  "front-right, back-left, or back-right? The directions refer to the quadrants of a "
                                  "Cartesian plane (if I am standing at the origin and facing along the positive "
                                  "y-axis)."),
    "route_planning": ("You are a robot beginning at the {start} facing the {facing}. You want to navigate to the "
                       "{end}. You will perform the following actions (Note: for each [please fill in], choose "
                       "either 'turn back,' 'turn left,' or 'turn right.'): {actions} You have reached the final "
                       "destination."),
    "obj_appearance_order": ("What will be the first-time appearance order of the following categories in the "
                             "video: {choices}?"),
}

DIRECTION_CHOICES = {
    "object_rel_direction_easy": ("left", "right"),
    "object_rel_direction_medium": ("left", "right", "back"),
    "object_rel_direction_hard": ("front-left", "front-right", "back-left", "back-right"),
}
"""Option lists in VSI-Bench's fixed order."""


@dataclass(frozen=True)
class Question:
    """A generated question: its text, answer (letter or number) and the objects it is about."""

    question_type: str
    text: str
    answer: str | float
    options: tuple[str, ...] = ()
    objects: tuple[int, ...] = ()

    @property
    def answer_type(self) -> str:
        return "choice" if self.options else "number"


def lettered(choices: Sequence[str]) -> tuple[str, ...]:
    """``("A. x", "B. y", ...)`` as VSI-Bench writes options."""
    return tuple(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


# ------------------------------------------------------------- ground truth
def box_distance(a: SceneObject, b: SceneObject) -> float:
    """Distance between the closest points of two objects' 3D bounding boxes (0 if they touch)."""
    gaps = np.maximum(np.maximum(a.lo - b.hi, b.lo - a.hi), 0.0)
    return float(np.linalg.norm(gaps))


def longest_dimension_cm(obj: SceneObject) -> float:
    """The object's longest bounding-box side, in centimetres."""
    return round(float(obj.size.max()) * 100.0, 1)


def floor_point(obj: SceneObject) -> np.ndarray:
    """The centre of the object's floor footprint (x, y)."""
    return obj.center[:2]


def signed_angle(origin: np.ndarray, facing: np.ndarray, target: np.ndarray) -> float:
    """Degrees from the direction ``origin -> facing`` to ``origin -> target``; positive is left."""
    f, v = np.asarray(facing) - origin, np.asarray(target) - origin
    return math.degrees(math.atan2(f[0] * v[1] - f[1] * v[0], f[0] * v[0] + f[1] * v[1]))


def direction_label(angle: float, question_type: str, margin: float) -> str | None:
    """The answer word for a relative-direction question, or ``None`` within ``margin`` of a boundary.

    easy: left/right of the line of sight; medium: back from 135 degrees on, else left/right;
    hard: quadrants, front being within 90 degrees of the facing direction.
    """
    side = "left" if angle > 0 else "right"
    a = abs(angle)
    if question_type == "object_rel_direction_easy":
        return side if margin <= a <= 180.0 - margin else None
    if question_type == "object_rel_direction_medium":
        if a >= 135.0 + margin:
            return "back"
        return side if margin <= a <= 135.0 - margin else None
    if margin <= a <= 90.0 - margin:
        return f"front-{side}"
    return f"back-{side}" if 90.0 + margin <= a <= 180.0 - margin else None


def turn_label(angle: float, margin: float) -> str | None:
    """The turn that faces the next waypoint: back from 135 degrees, left/right from 45; else ``None``."""
    a = abs(angle)
    if a >= 135.0 + margin:
        return "Turn Back"
    if 45.0 + margin <= a <= 135.0 - margin:
        return "Turn Left" if angle > 0 else "Turn Right"
    return None


def route_turns(points: Sequence[np.ndarray], margin: float) -> list[str] | None:
    """Turns at each intermediate waypoint of a walk through ``points`` (start faces ``points[1]``)."""
    labels = []
    for prev, here, nxt in zip(points, points[1:], points[2:]):
        label = turn_label(signed_angle(here, 2 * here - prev, nxt), margin)
        if label is None:
            return None
        labels.append(label)
    return labels


def first_appearances(scene: Scene, vis: Visibility) -> dict[str, int]:
    """First frame in which any instance of each category is visible (unseen categories left out)."""
    firsts: dict[str, int] = {}
    for obj in scene.objects:
        frame = vis.first_frame(obj.id)
        if frame is not None and (obj.category not in firsts or frame < firsts[obj.category]):
            firsts[obj.category] = frame
    return firsts


# ------------------------------------------------------------------ builders
@dataclass
class Context:
    """What a builder needs: the scene, what the video shows, the random stream and margins."""

    scene: Scene
    vis: Visibility
    rng: np.random.Generator
    level: Difficulty

    def unique_visible(self) -> list[SceneObject]:
        """Objects that are the only one of their category and appear in the video."""
        counts = self.scene.category_counts()
        return [o for o in self.scene.objects if counts[o.category] == 1 and self.vis.is_visible(o.id)]

    def pick(self, pool: Sequence, k: int) -> list:
        return [pool[i] for i in self.rng.choice(len(pool), size=k, replace=False)]

    def shuffled_options(self, correct: str, others: Sequence[str]) -> tuple[tuple[str, ...], str]:
        """Lettered options from the correct text and distractors, in random order, and the answer letter."""
        texts = [correct, *others]
        order = [int(i) for i in self.rng.permutation(len(texts))]
        ordered = [texts[i] for i in order]
        return lettered(ordered), LETTERS[order.index(0)]


def _counting(ctx: Context) -> Question | None:
    counts = ctx.scene.category_counts()
    seen = [c for c in counts if all(ctx.vis.is_visible(o.id) for o in ctx.scene.objects if o.category == c)]
    pool = [c for c in seen if counts[c] >= 2] or seen
    if not pool:
        return None
    category = pool[int(ctx.rng.integers(len(pool)))]
    ids = tuple(o.id for o in ctx.scene.objects if o.category == category)
    return Question("object_counting", TEMPLATES["object_counting"].format(category=category),
                    float(counts[category]), objects=ids)


def _abs_distance(ctx: Context) -> Question | None:
    pool = ctx.unique_visible()
    if len(pool) < 2:
        return None
    for _ in range(PICK_TRIES):
        a, b = ctx.pick(pool, 2)
        distance = box_distance(a, b)
        if distance >= MIN_DISTANCE:
            text = TEMPLATES["object_abs_distance"].format(a=a.category, b=b.category)
            return Question("object_abs_distance", text, round(distance, 3), objects=(a.id, b.id))
    return None


def _size(ctx: Context) -> Question | None:
    pool = ctx.unique_visible()
    if not pool:
        return None
    (obj,) = ctx.pick(pool, 1)
    text = TEMPLATES["object_size_estimation"].format(category=obj.category)
    return Question("object_size_estimation", text, longest_dimension_cm(obj), objects=(obj.id,))


def _room_size(ctx: Context) -> Question | None:
    return Question("room_size_estimation", TEMPLATES["room_size_estimation"], round(ctx.scene.room.area, 2))


def _rel_distance(ctx: Context) -> Question | None:
    pool = ctx.unique_visible()
    if len(pool) < 5:
        return None
    for _ in range(PICK_TRIES):
        target, *candidates = ctx.pick(pool, 5)
        distances = [box_distance(target, c) for c in candidates]
        ranked = sorted(range(4), key=distances.__getitem__)
        if distances[ranked[1]] - distances[ranked[0]] >= ctx.level.distance_margin:
            names = [c.category for c in candidates]
            text = TEMPLATES["object_rel_distance"].format(choices=", ".join(names), category=target.category)
            return Question("object_rel_distance", text, LETTERS[ranked[0]], lettered(names),
                            (target.id, *(c.id for c in candidates)))
    return None


def _rel_direction(question_type: str) -> Callable[[Context], Question | None]:
    """Builder for one direction level; it aims at a randomly drawn answer so that classes stay balanced."""
    choices = DIRECTION_CHOICES[question_type]

    def build(ctx: Context) -> Question | None:
        pool = ctx.unique_visible()
        if len(pool) < 3:
            return None
        wanted = choices[int(ctx.rng.integers(len(choices)))]
        found: tuple[str, tuple[SceneObject, ...]] | None = None
        for _ in range(BALANCE_TRIES):
            x, y, z = ctx.pick(pool, 3)
            here, facing, target = floor_point(x), floor_point(y), floor_point(z)
            if min(np.linalg.norm(facing - here), np.linalg.norm(target - here)) < MIN_SEPARATION:
                continue
            label = direction_label(signed_angle(here, facing, target), question_type, ctx.level.angle_margin)
            if label is not None and (found is None or label == wanted):
                found = (label, (x, y, z))
                if label == wanted:
                    break
        if found is None:
            return None
        label, (x, y, z) = found
        text = TEMPLATES[question_type].format(x=x.category, y=y.category, z=z.category)
        return Question(question_type, text, LETTERS[choices.index(label)], lettered(choices), (x.id, y.id, z.id))
    return build


def route_actions(names: Sequence[str]) -> str:
    """'1. Go forward until the b 2. [please fill in] 3. Go forward until the c ...' for a route."""
    steps = [f"Go forward until the {names[1]}"]
    for name in names[2:]:
        steps += ["[please fill in]", f"Go forward until the {name}"]
    return " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1)) + "."


def _route(ctx: Context) -> Question | None:
    turns = ctx.level.route_turns[int(ctx.rng.integers(len(ctx.level.route_turns)))]
    pool = ctx.unique_visible()
    if len(pool) < turns + 2:
        return None
    for _ in range(PICK_TRIES):
        path = ctx.pick(pool, turns + 2)
        points = [floor_point(o) for o in path]
        if min(np.linalg.norm(b - a) for a, b in itertools.pairwise(points)) < MIN_SEPARATION:
            continue
        labels = route_turns(points, ctx.level.angle_margin)
        if labels is None:
            continue
        correct = ", ".join(labels)
        combos = [", ".join(c) for c in itertools.product(TURNS, repeat=turns) if ", ".join(c) != correct]
        distractors = ctx.pick(combos, min(3, len(combos)))
        options, answer = ctx.shuffled_options(correct, distractors)
        names = [o.category for o in path]
        text = TEMPLATES["route_planning"].format(start=names[0], facing=names[1], end=names[-1],
                                                  actions=route_actions(names))
        return Question("route_planning", text, answer, options, tuple(o.id for o in path))
    return None


def _appearance_order(ctx: Context) -> Question | None:
    firsts = first_appearances(ctx.scene, ctx.vis)
    if len(firsts) < 4:
        return None
    gap = max(1, round(ctx.level.order_margin * ctx.scene.camera.num_frames))
    for _ in range(PICK_TRIES):
        listed = ctx.pick(list(firsts), 4)
        ordered = sorted(listed, key=firsts.__getitem__)
        if min(firsts[b] - firsts[a] for a, b in itertools.pairwise(ordered)) < gap:
            continue
        correct = ", ".join(ordered)
        others = [", ".join(p) for p in itertools.permutations(ordered) if list(p) != ordered]
        options, answer = ctx.shuffled_options(correct, ctx.pick(others, 3))
        text = TEMPLATES["obj_appearance_order"].format(choices=", ".join(listed))
        first_ids = tuple(min((o for o in ctx.scene.objects if o.category == c and ctx.vis.is_visible(o.id)),
                              key=lambda o: ctx.vis.first_frame(o.id)).id for c in ordered)
        return Question("obj_appearance_order", text, answer, options, first_ids)
    return None


BUILDERS: dict[str, Callable[[Context], Question | None]] = {
    "object_counting": _counting,
    "object_abs_distance": _abs_distance,
    "object_size_estimation": _size,
    "room_size_estimation": _room_size,
    "object_rel_distance": _rel_distance,
    **{t: _rel_direction(t) for t in DIRECTION_TYPES},
    "route_planning": _route,
    "obj_appearance_order": _appearance_order,
}

SCENE_NEEDS: dict[str, dict[str, int | bool]] = {
    "object_counting": {"duplicates": True},
    "object_abs_distance": {"min_unique": 2},
    "object_size_estimation": {"min_unique": 1},
    "room_size_estimation": {},
    "object_rel_distance": {"min_unique": 5},
    **{t: {"min_unique": 3} for t in DIRECTION_TYPES},
    "route_planning": {"min_unique": 4},
    "obj_appearance_order": {"min_unique": 4},
}
"""What to ask of the scene sampler so that a question type is likely to be posable."""


def make_question(question_type: str, scene: Scene, vis: Visibility, rng: np.random.Generator,
                  level: Difficulty) -> Question | None:
    """A well-posed question of the given type about the scene, or ``None`` if it has none."""
    return BUILDERS[question_type](Context(scene, vis, rng, level))
