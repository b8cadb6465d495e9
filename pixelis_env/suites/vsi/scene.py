"""Procedural rooms: a box room, furniture made of axis-aligned boxes, and a camera walk.

World frame: ``x`` east, ``y`` north, ``z`` up, in metres. The room spans
``[0, width] x [0, depth] x [0, height]`` with the floor at ``z = 0``. Furniture is
built from a few axis-aligned boxes ("parts", e.g. a chair's seat and backrest) and
turned in steps of 90 degrees, so every part stays axis-aligned and ground truth
(distances, sizes, directions) is exact arithmetic on box corners.

Objects keep out of a disc around the camera's walk so that the camera never enters
furniture; objects do not overlap and keep a walking gap between them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Vec3 = tuple[float, float, float]
RGB = tuple[int, int, int]
PartSpec = tuple[Vec3, Vec3, RGB]

FPS = 4.0
OBJECT_GAP = 0.3
"""Free floor (metres) kept between the footprints of two objects."""
WALL_GAP = 0.01
"""Gap between a wall-standing object's back and the wall."""
EDGE_GAP = 0.05
"""Gap between a free-standing object and any wall."""
KEEPOUT_MARGIN = 0.6
"""Objects stay this far beyond the camera's walking circle."""
PLACEMENT_TRIES = 40
MAX_OBJECTS = 8
MIN_OBJECTS = 3


@dataclass(frozen=True)
class Part:
    """One axis-aligned box of an object: opposite corners and a colour."""

    lo: Vec3
    hi: Vec3
    colour: RGB


@dataclass(frozen=True)
class SceneObject:
    """A piece of furniture: its id (index in the scene), category and boxes."""

    id: int
    category: str
    parts: tuple[Part, ...]
    colour: RGB

    @property
    def lo(self) -> np.ndarray:
        """Minimum corner of the object's 3D bounding box."""
        return np.min([p.lo for p in self.parts], axis=0)

    @property
    def hi(self) -> np.ndarray:
        """Maximum corner of the object's 3D bounding box."""
        return np.max([p.hi for p in self.parts], axis=0)

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2.0

    @property
    def size(self) -> np.ndarray:
        """Bounding-box extents along x, y, z (metres)."""
        return self.hi - self.lo

    def to_dict(self) -> dict[str, Any]:
        """The JSON-friendly description put in ``task.meta["objects"]``."""
        return {"id": self.id, "category": self.category,
                "center": [round(float(v), 4) for v in self.center],
                "size": [round(float(v), 4) for v in self.size],
                "colour": list(self.colour)}


@dataclass(frozen=True)
class Room:
    """The room box and its surface colours."""

    width: float
    depth: float
    height: float
    floor_colour: RGB = (140, 110, 80)
    wall_colour: RGB = (215, 210, 195)
    ceiling_colour: RGB = (240, 240, 235)

    @property
    def area(self) -> float:
        return self.width * self.depth


@dataclass(frozen=True)
class CameraPath:
    """A walk on a circle at eye height while turning the head around the room.

    The position makes one loop of ``radius`` around ``centre`` over the video while
    the heading turns by ``sweep`` radians (more than a full turn, so that every wall
    is seen); ``pitch`` tilts the view down (negative) to show the furniture.
    """

    centre: tuple[float, float]
    radius: float
    height: float
    start_angle: float
    start_yaw: float
    sweep: float
    pitch: float
    num_frames: int
    fps: float = FPS

    def pose(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Camera position (3,) and world-to-camera rotation (3, 3) at a frame.

        The camera frame is OpenCV's: x right, y down, z forward.
        """
        s = index / max(self.num_frames - 1, 1)
        turn = math.copysign(2.0 * math.pi, self.sweep) if self.sweep else 0.0
        angle = self.start_angle + turn * s
        position = np.array([self.centre[0] + self.radius * math.cos(angle),
                             self.centre[1] + self.radius * math.sin(angle), self.height])
        return position, look_rotation(self.start_yaw + self.sweep * s, self.pitch)


def look_rotation(yaw: float, pitch: float) -> np.ndarray:
    """World-to-camera rotation for a heading (from +x, counter-clockwise) and a pitch."""
    forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


@dataclass(frozen=True)
class Scene:
    """A room, its furniture, and the camera walk that films it."""

    room: Room
    objects: tuple[SceneObject, ...]
    camera: CameraPath

    def category_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.category] = counts.get(obj.category, 0) + 1
        return counts


# --------------------------------------------------------------- categories
Builder = Callable[[float, float, float, RGB], list[PartSpec]]


def _block(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
    return [((-w / 2, -d / 2, 0.0), (w / 2, d / 2, h), colour)]


def _seat_with_back(seat: float, back: float) -> Builder:
    """Chairs and sofas: a seat block and a backrest along the back (local -y) side."""
    def build(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
        return [((-w / 2, -d / 2, 0.0), (w / 2, d / 2, seat), colour),
                ((-w / 2, -d / 2, seat), (w / 2, -d / 2 + back, h), colour)]
    return build


def _table(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
    return [((-w / 2, -d / 2, h - 0.05), (w / 2, d / 2, h), colour),
            ((-0.2 * w, -0.2 * d, 0.0), (0.2 * w, 0.2 * d, h - 0.05), colour)]


def _bed(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
    return [((-w / 2, -d / 2, 0.0), (w / 2, d / 2, 0.55), colour),
            ((-w / 2, -d / 2, 0.55), (w / 2, -d / 2 + 0.08, h), (110, 75, 45))]


def _tv(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
    """A wall-mounted 16:9 screen whose top edge is at ``h``."""
    return [((-w / 2, -d / 2, h - 0.5625 * w), (w / 2, d / 2, h), colour)]


def _lamp(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
    return [((-0.03, -0.03, 0.0), (0.03, 0.03, h - 0.3), (70, 70, 70)),
            ((-w / 2, -d / 2, h - 0.3), (w / 2, d / 2, h), colour)]


def _plant(w: float, d: float, h: float, colour: RGB) -> list[PartSpec]:
    pot = 0.3
    return [((-0.3 * w, -0.3 * d, 0.0), (0.3 * w, 0.3 * d, pot), (175, 95, 55)),
            ((-w / 2, -d / 2, pot), (w / 2, d / 2, h), colour)]


@dataclass(frozen=True)
class Category:
    """A furniture kind: characteristic colour, realistic size ranges and shape.

    ``width`` runs along the object's front, ``depth`` front to back, ``height`` up;
    wall-standing kinds put their back against a wall.
    """

    name: str
    colour: RGB
    width: tuple[float, float]
    depth: tuple[float, float]
    height: tuple[float, float]
    build: Builder
    against_wall: bool = False
    max_count: int = 1


CATEGORIES: dict[str, Category] = {c.name: c for c in (
    Category("bed", (235, 232, 220), (1.4, 2.0), (1.9, 2.2), (0.9, 1.2), _bed, against_wall=True),
    Category("sofa", (55, 85, 165), (1.6, 2.4), (0.8, 1.0), (0.75, 0.95), _seat_with_back(0.45, 0.22),
             against_wall=True),
    Category("table", (150, 100, 55), (0.8, 1.8), (0.6, 1.0), (0.7, 0.78), _table, max_count=2),
    Category("cabinet", (95, 140, 150), (0.5, 1.2), (0.4, 0.6), (0.8, 2.0), _block, against_wall=True, max_count=2),
    Category("door", (95, 60, 35), (0.8, 1.0), (0.04, 0.06), (2.0, 2.1), _block, against_wall=True, max_count=2),
    Category("tv", (25, 25, 30), (0.8, 1.4), (0.06, 0.1), (1.5, 1.9), _tv, against_wall=True),
    Category("plant", (45, 135, 55), (0.4, 0.7), (0.4, 0.7), (0.6, 1.5), _plant, max_count=3),
    Category("lamp", (250, 215, 110), (0.3, 0.45), (0.3, 0.45), (1.4, 1.8), _lamp, max_count=2),
    Category("chair", (200, 55, 45), (0.42, 0.55), (0.42, 0.55), (0.8, 1.0), _seat_with_back(0.45, 0.07),
             max_count=4),
    Category("box", (215, 180, 120), (0.3, 0.6), (0.3, 0.6), (0.25, 0.6), _block, max_count=4),
)}
"""Categories, largest first (placed first so that big furniture finds room)."""

FLOOR_COLOURS: tuple[RGB, ...] = ((140, 110, 80), (120, 120, 125), (165, 140, 110), (90, 80, 75))
WALL_COLOURS: tuple[RGB, ...] = ((215, 210, 195), (190, 205, 215), (215, 200, 200), (200, 215, 195))


@dataclass(frozen=True)
class Difficulty:
    """What the difficulty knob changes: clutter, camera speed, and answer margins."""

    objects: tuple[int, int]
    """Range of the number of objects planned (placement may drop some)."""
    sweep_turns: float
    """Head turns over the whole video: more turns is a faster pan."""
    path_radius: float
    """Radius of the walking circle (metres): a wider walk moves the viewpoint more."""
    distance_margin: float
    """Relative distance: closest candidate beats the runner-up by at least this (m)."""
    angle_margin: float
    """Directions and turns: angles keep this far (degrees) from any class boundary."""
    order_margin: float
    """Appearance order: first appearances are at least this fraction of the video apart."""
    route_turns: tuple[int, ...]
    """Numbers of turns a route-planning question may have."""


DIFFICULTIES: dict[int, Difficulty] = {
    0: Difficulty((4, 5), 1.05, 0.2, 0.6, 25.0, 0.08, (1,)),
    1: Difficulty((5, 7), 1.15, 0.35, 0.35, 15.0, 0.05, (1, 2)),
    2: Difficulty((6, 8), 1.3, 0.5, 0.2, 8.0, 0.03, (2,)),
}


# ---------------------------------------------------------------- placement
def rotate_parts(parts: Sequence[PartSpec], quarter_turns: int) -> list[PartSpec]:
    """Turn local parts counter-clockwise by ``quarter_turns`` x 90 degrees about the z axis."""
    def turn(x: float, y: float) -> tuple[float, float]:
        for _ in range(quarter_turns % 4):
            x, y = -y, x
        return x, y

    out = []
    for lo, hi, colour in parts:
        (ax, ay), (bx, by) = turn(lo[0], lo[1]), turn(hi[0], hi[1])
        out.append(((min(ax, bx), min(ay, by), lo[2]), (max(ax, bx), max(ay, by), hi[2]), colour))
    return out


def footprint(parts: Sequence[PartSpec]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` floor rectangle covered by the parts."""
    return (min(p[0][0] for p in parts), min(p[0][1] for p in parts),
            max(p[1][0] for p in parts), max(p[1][1] for p in parts))


WALL_TURNS = {"south": 0, "east": 1, "north": 2, "west": 3}
"""Quarter turns that put an object's back (local -y) against each wall."""


def _position(rect: tuple[float, float, float, float], room: Room, wall: str | None,
              rng: np.random.Generator) -> tuple[float, float] | None:
    """Where to put a footprint centred at the origin: against ``wall`` or anywhere."""
    x0, y0, x1, y1 = rect
    fw, fd = x1 - x0, y1 - y0
    if fw + 2 * EDGE_GAP > room.width or fd + 2 * EDGE_GAP > room.depth:
        return None
    x = rng.uniform(EDGE_GAP - x0, room.width - EDGE_GAP - x1)
    y = rng.uniform(EDGE_GAP - y0, room.depth - EDGE_GAP - y1)
    if wall == "south":
        y = WALL_GAP - y0
    elif wall == "north":
        y = room.depth - WALL_GAP - y1
    elif wall == "west":
        x = WALL_GAP - x0
    elif wall == "east":
        x = room.width - WALL_GAP - x1
    return x, y


def _rect_gap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Distance between two floor rectangles (0 when they touch or overlap)."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return math.hypot(dx, dy)


def _point_gap(rect: tuple[float, ...], centre: tuple[float, float]) -> float:
    """Distance from a point to a floor rectangle."""
    return _rect_gap(rect, (centre[0], centre[1], centre[0], centre[1]))


def try_place(category: Category, room: Room, taken: Sequence[tuple[float, ...]], keepout: tuple[float, float, float],
              rng: np.random.Generator) -> list[PartSpec] | None:
    """Sample a size, orientation and free spot for one object, or ``None`` after some tries."""
    for _ in range(PLACEMENT_TRIES):
        w, d, h = (rng.uniform(*category.width), rng.uniform(*category.depth), rng.uniform(*category.height))
        wall = list(WALL_TURNS)[rng.integers(4)] if category.against_wall else None
        turns = WALL_TURNS[wall] if wall else int(rng.integers(4))
        parts = rotate_parts(category.build(w, d, h, category.colour), turns)
        spot = _position(footprint(parts), room, wall, rng)
        if spot is None:
            continue
        moved = [((lo[0] + spot[0], lo[1] + spot[1], lo[2]), (hi[0] + spot[0], hi[1] + spot[1], hi[2]), c)
                 for lo, hi, c in parts]
        rect = footprint(moved)
        if _point_gap(rect, keepout[:2]) < keepout[2]:
            continue
        if all(_rect_gap(rect, other) >= OBJECT_GAP for other in taken):
            return moved
    return None


def plan_categories(rng: np.random.Generator, count: int, min_unique: int, duplicates: bool) -> list[str]:
    """Which categories to place: at least ``min_unique`` distinct ones, plus a repeated one if asked.

    Without ``duplicates`` a second instance of some category is still added now and then,
    as long as ``min_unique`` categories stay single.
    """
    names = [str(n) for n in rng.permutation(list(CATEGORIES))]
    plan: list[str] = []
    if duplicates:
        name = next(n for n in names if CATEGORIES[n].max_count > 1)
        plan += [name] * int(rng.integers(2, min(CATEGORIES[name].max_count, 4) + 1))
    target = min(max(count, len(plan) + min_unique), MAX_OBJECTS)
    plan += [n for n in names if n not in plan][:max(target - len(plan), 0)]
    repeatable = [n for n in plan if CATEGORIES[n].max_count > plan.count(n)]
    if repeatable and len(plan) < MAX_OBJECTS and rng.random() < 0.3:
        extra = repeatable[int(rng.integers(len(repeatable)))]
        if sum(plan.count(n) == 1 for n in set(plan)) - (plan.count(extra) == 1) >= min_unique:
            plan.append(extra)
    return plan


def sample_room(rng: np.random.Generator, num_objects: int) -> Room:
    """A room whose floor grows with the furniture to fit (3-8 m sides, 2.5-3 m high)."""
    low = min(3.0 + 0.35 * max(num_objects - MIN_OBJECTS, 0), 6.0)
    return Room(width=round(float(rng.uniform(low, 8.0)), 2), depth=round(float(rng.uniform(low, 8.0)), 2),
                height=round(float(rng.uniform(2.5, 3.0)), 2),
                floor_colour=FLOOR_COLOURS[int(rng.integers(len(FLOOR_COLOURS)))],
                wall_colour=WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))])


def sample_camera(rng: np.random.Generator, room: Room, level: Difficulty, num_frames: int) -> CameraPath:
    """An eye-height walk around the middle of the room, panning more than a full turn."""
    centre = (room.width / 2 + rng.uniform(-0.1, 0.1) * room.width,
              room.depth / 2 + rng.uniform(-0.1, 0.1) * room.depth)
    start = float(rng.uniform(0.0, 2.0 * math.pi))
    direction = 1.0 if rng.random() < 0.5 else -1.0
    return CameraPath(centre=centre, radius=min(level.path_radius, 0.15 * min(room.width, room.depth)),
                      height=float(rng.uniform(1.4, 1.6)), start_angle=start,
                      start_yaw=start + float(rng.uniform(-0.3, 0.3)),
                      sweep=direction * level.sweep_turns * 2.0 * math.pi,
                      pitch=-math.radians(float(rng.uniform(15.0, 22.0))), num_frames=num_frames)


def sample_scene(rng: np.random.Generator, level: Difficulty, num_frames: int, min_unique: int = 0,
                 duplicates: bool = False) -> Scene:
    """A random room with furniture and a camera walk; placement may drop objects that do not fit."""
    count = int(rng.integers(level.objects[0], level.objects[1] + 1))
    plan = plan_categories(rng, max(count, MIN_OBJECTS), min_unique, duplicates)
    room = sample_room(rng, len(plan))
    camera = sample_camera(rng, room, level, num_frames)
    keepout = (camera.centre[0], camera.centre[1], camera.radius + KEEPOUT_MARGIN)
    order = list(CATEGORIES)
    objects: list[SceneObject] = []
    taken: list[tuple[float, ...]] = []
    for name in sorted(plan, key=order.index):
        parts = try_place(CATEGORIES[name], room, taken, keepout, rng)
        if parts is None:
            continue
        taken.append(footprint(parts))
        objects.append(SceneObject(id=len(objects), category=name, colour=CATEGORIES[name].colour,
                                   parts=tuple(Part(tuple(map(float, lo)), tuple(map(float, hi)), c)
                                               for lo, hi, c in parts)))
    return Scene(room=room, objects=tuple(objects), camera=camera)


def make_object(object_id: int, category: str, lo: Vec3, hi: Vec3) -> SceneObject:
    """A one-box object at given corners (for hand-built scenes in tests and examples)."""
    colour = CATEGORIES[category].colour if category in CATEGORIES else (128, 128, 128)
    return SceneObject(id=object_id, category=category, colour=colour,
                       parts=(Part(tuple(map(float, lo)), tuple(map(float, hi)), colour),))
