"""Pinhole rendering of a scene: colour, z-depth and object labels for each frame.

A small z-buffer rasteriser: every box face is moved to camera coordinates, culled
when it faces away, clipped against the near plane (walls and furniture behind the
camera are common), projected with the intrinsics and filled with ``cv2.fillPoly``.
Per-pixel depth comes from the face's plane equation, so the depth map is exact
(not interpolated) and the nearest face wins each pixel. Faces are flat-shaded by
their normal so boxes read as 3D.

Pixel coordinates follow OpenCV: pixel ``(i, j)`` has its centre at ``u = j, v = i``,
and depth is the distance along the optical axis (camera ``z``), not along the ray.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pixelis_env.errors import MediaError
from pixelis_env.suites.vsi.scene import RGB, Scene

NEAR = 0.05
"""Near clipping plane (metres)."""
HFOV_DEGREES = 70.0
LIGHT = np.array([-0.35, -0.25, 0.9]) / np.linalg.norm([-0.35, -0.25, 0.9])
AMBIENT = 0.5
GRID_STEP = 1.0
"""Floor tile lines every metre: a scale cue, as real floors have."""
SUBPIXEL_BITS = 4
VISIBILITY_WIDTH = 80
"""Width of the label renders used to decide which object is visible in which frame."""
VISIBLE_FRACTION = 0.0015
"""An object is visible in a frame when it covers at least this fraction of it."""
BOX_PAD = 0.15


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics (pixels) for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def for_size(cls, width: int, height: int, hfov_degrees: float = HFOV_DEGREES) -> Intrinsics:
        """Square pixels, principal point at the image centre, the given horizontal field of view."""
        f = (width / 2.0) / math.tan(math.radians(hfov_degrees) / 2.0)
        return cls(f, f, (width - 1) / 2.0, (height - 1) / 2.0, int(width), int(height))

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.fx, self.fy, self.cx, self.cy)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(N, 3)`` (z > 0) to pixel coordinates ``(N, 2)``."""
        points = np.asarray(points, dtype=np.float64)
        return np.stack([self.fx * points[:, 0] / points[:, 2] + self.cx,
                         self.fy * points[:, 1] / points[:, 2] + self.cy], axis=1)


@dataclass(frozen=True)
class RenderedFrame:
    """One frame: RGB image (``None`` for label-only renders), z-depth and object labels."""

    image: np.ndarray | None
    depth: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class FaceSet:
    """Quadrilateral faces as arrays: corners ``(F, 4, 3)``, normals, labels, shaded colours."""

    corners: np.ndarray
    normals: np.ndarray
    labels: np.ndarray
    colours: np.ndarray


def box_faces(lo: Sequence[float], hi: Sequence[float]) -> list[tuple[list[tuple[float, ...]], tuple[int, int, int]]]:
    """The six faces of a box as (corner cycle, outward normal)."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    return [
        ([(x0, y0, z0), (x0, y1, z0), (x0, y1, z1), (x0, y0, z1)], (-1, 0, 0)),
        ([(x1, y0, z0), (x1, y0, z1), (x1, y1, z1), (x1, y1, z0)], (1, 0, 0)),
        ([(x0, y0, z0), (x0, y0, z1), (x1, y0, z1), (x1, y0, z0)], (0, -1, 0)),
        ([(x0, y1, z0), (x1, y1, z0), (x1, y1, z1), (x0, y1, z1)], (0, 1, 0)),
        ([(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0)], (0, 0, -1)),
        ([(x0, y0, z1), (x0, y1, z1), (x1, y1, z1), (x1, y0, z1)], (0, 0, 1)),
    ]


def _shade(colour: RGB, normal: np.ndarray) -> np.ndarray:
    light = AMBIENT + (1.0 - AMBIENT) * max(float(normal @ LIGHT), 0.0)
    return np.clip(np.asarray(colour, np.float64) * light, 0, 255).astype(np.uint8)


def _face_set(entries: list[tuple[list[tuple[float, ...]], np.ndarray, int, RGB]]) -> FaceSet:
    return FaceSet(corners=np.array([e[0] for e in entries], np.float64).reshape(-1, 4, 3),
                   normals=np.array([e[1] for e in entries], np.float64).reshape(-1, 3),
                   labels=np.array([e[2] for e in entries], np.int32),
                   colours=np.array([_shade(e[3], e[1]) for e in entries], np.uint8).reshape(-1, 3))


def scene_faces(scene: Scene) -> tuple[FaceSet, FaceSet]:
    """Room faces (normals pointing inwards, label 0) and object faces (label ``id + 1``)."""
    room = scene.room
    surface = {(0, 0, -1): room.floor_colour, (0, 0, 1): room.ceiling_colour}
    room_entries = []
    for corners, normal in box_faces((0.0, 0.0, 0.0), (room.width, room.depth, room.height)):
        inward = -np.asarray(normal, np.float64)
        room_entries.append((corners, inward, 0, surface.get(normal, room.wall_colour)))
    object_entries = []
    for obj in scene.objects:
        for part in obj.parts:
            for corners, normal in box_faces(part.lo, part.hi):
                object_entries.append((corners, np.asarray(normal, np.float64), obj.id + 1, part.colour))
    return _face_set(room_entries), _face_set(object_entries)


Point = tuple[float, ...]


def clip_polygon(polygon: list[Point], inside: Callable[[Point], float]) -> list[Point]:
    """Sutherland-Hodgman: keep the part of a convex polygon where ``inside(p) >= 0``."""
    out: list[Point] = []
    for i, a in enumerate(polygon):
        b = polygon[(i + 1) % len(polygon)]
        da, db = inside(a), inside(b)
        if da >= 0:
            out.append(a)
        if (da >= 0) != (db >= 0):
            t = da / (da - db)
            out.append(tuple(pa + t * (pb - pa) for pa, pb in zip(a, b)))
    return out


def _to_screen(polygon: list[Point], intr: Intrinsics) -> list[Point]:
    """Project a near-clipped polygon and clip it to the image (plus a pixel of margin)."""
    points = [(intr.fx * x / z + intr.cx, intr.fy * y / z + intr.cy) for x, y, z in polygon]
    lo_x, lo_y, hi_x, hi_y = -2.0, -2.0, intr.width + 1.0, intr.height + 1.0
    if all(lo_x <= x <= hi_x and lo_y <= y <= hi_y for x, y in points):
        return points
    for inside in (lambda p: p[0] - lo_x, lambda p: hi_x - p[0], lambda p: p[1] - lo_y, lambda p: hi_y - p[1]):
        points = clip_polygon(points, inside)
        if len(points) < 3:
            return []
    return points


def _clip_segment(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The part of a camera-frame segment in front of the near plane, or ``None``."""
    da, db = a[2] - NEAR, b[2] - NEAR
    if da < 0 and db < 0:
        return None
    if da < 0 or db < 0:
        crossing = a + da / (da - db) * (b - a)
        a, b = (crossing, b) if da < 0 else (a, crossing)
    return np.array([a, b])


class _Canvas:
    """The buffers one frame is drawn into."""

    def __init__(self, intr: Intrinsics, with_colour: bool) -> None:
        self.intr = intr
        self.depth = np.full((intr.height, intr.width), np.inf, np.float32)
        self.labels = np.zeros((intr.height, intr.width), np.int32)
        self.image = np.zeros((intr.height, intr.width, 3), np.uint8) if with_colour else None

    def fill(self, polygon: list[Point], normal: np.ndarray, offset: float, label: int, colour: np.ndarray) -> None:
        """Z-test and write one camera-frame polygon on the plane ``normal . X = offset``."""
        if min(p[2] for p in polygon) < NEAR:
            polygon = clip_polygon(polygon, lambda p: p[2] - NEAR)
            if len(polygon) < 3:
                return
        intr = self.intr
        points = _to_screen(polygon, intr)
        if not points:
            return
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1 = max(math.floor(min(xs)), 0), min(math.ceil(max(xs)) + 1, intr.width)
        y0, y1 = max(math.floor(min(ys)), 0), min(math.ceil(max(ys)) + 1, intr.height)
        if x0 >= x1 or y0 >= y1:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        scale = 1 << SUBPIXEL_BITS
        shifted = np.round((np.asarray(points) - (x0, y0)) * scale).astype(np.int32)
        cv2.fillPoly(mask, [shifted], 1, cv2.LINE_8, SUBPIXEL_BITS)
        a, b = normal[0] / intr.fx, normal[1] / intr.fy
        c = normal[2] - a * intr.cx - b * intr.cy
        rays = a * np.arange(x0, x1)[None, :] + b * np.arange(y0, y1)[:, None] + c
        with np.errstate(divide="ignore", invalid="ignore"):
            z = offset / rays
        region = self.depth[y0:y1, x0:x1]
        selected = mask.view(bool) & (z > 0) & (z < region)
        np.copyto(region, z, where=selected)
        np.copyto(self.labels[y0:y1, x0:x1], label, where=selected)
        if self.image is not None:
            np.copyto(self.image[y0:y1, x0:x1], colour, where=selected[:, :, None])

    def draw(self, faces: FaceSet, position: np.ndarray, rotation: np.ndarray) -> None:
        """Draw every face that faces the camera and is not entirely behind it."""
        if len(faces.labels) == 0:
            return
        cam = (faces.corners - position) @ rotation.T
        normals = faces.normals @ rotation.T
        offsets = np.einsum("fi,fi->f", normals, cam[:, 0])
        keep = (offsets < -1e-9) & (cam[:, :, 2].max(axis=1) > NEAR) & ~self._off_screen(cam)
        for f in np.flatnonzero(keep):
            polygon = [tuple(p) for p in cam[f].tolist()]
            self.fill(polygon, normals[f], float(offsets[f]), int(faces.labels[f]), faces.colours[f])

    def _off_screen(self, cam: np.ndarray) -> np.ndarray:
        """Faces wholly in front of the near plane whose projection misses the image."""
        intr = self.intr
        z = cam[:, :, 2]
        front = z.min(axis=1) > NEAR
        safe = np.where(front[:, None], z, 1.0)
        u = intr.fx * cam[:, :, 0] / safe + intr.cx
        v = intr.fy * cam[:, :, 1] / safe + intr.cy
        return front & ((u.max(axis=1) < -1) | (u.min(axis=1) > intr.width)
                        | (v.max(axis=1) < -1) | (v.min(axis=1) > intr.height))

    def floor_grid(self, scene: Scene, position: np.ndarray, rotation: np.ndarray) -> None:
        """Tile lines on the floor (drawn before furniture, which then covers them)."""
        room, intr = scene.room, self.intr
        colour = tuple(int(v) for v in _shade(room.floor_colour, np.array([0.0, 0.0, 1.0])) * 0.8)
        xs = np.arange(GRID_STEP, room.width - 1e-6, GRID_STEP)
        ys = np.arange(GRID_STEP, room.depth - 1e-6, GRID_STEP)
        segments = [((x, 0.0, 0.0), (x, room.depth, 0.0)) for x in xs]
        segments += [((0.0, y, 0.0), (room.width, y, 0.0)) for y in ys]
        for start, end in segments:
            cam = (np.array([start, end]) - position) @ rotation.T
            line = _clip_segment(cam[0], cam[1])
            if line is None:
                continue
            (u0, v0), (u1, v1) = intr.project(line)
            ok, p0, p1 = cv2.clipLine((0, 0, intr.width, intr.height), (int(u0), int(v0)), (int(u1), int(v1)))
            if ok:
                cv2.line(self.image, p0, p1, colour, 1, cv2.LINE_AA)

    def frame(self) -> RenderedFrame:
        for array in (self.image, self.depth, self.labels):
            if array is not None:
                array.setflags(write=False)
        return RenderedFrame(self.image, self.depth, self.labels)


def render_frame(scene: Scene, faces: tuple[FaceSet, FaceSet], intr: Intrinsics, index: int,
                 with_colour: bool = True) -> RenderedFrame:
    """Render frame ``index``; label-only renders skip the room (it is behind every object)."""
    position, rotation = scene.camera.pose(index)
    canvas = _Canvas(intr, with_colour)
    if with_colour:
        canvas.draw(faces[0], position, rotation)
        canvas.floor_grid(scene, position, rotation)
    canvas.draw(faces[1], position, rotation)
    return canvas.frame()


@dataclass(frozen=True)
class Visibility:
    """Which object covers how much of each frame, from small label renders.

    ``labels[t]`` is a ``(h, w)`` label image (0 background, ``id + 1`` objects) and
    ``counts[t, id]`` its pixel count; an object is visible in a frame when its count
    reaches ``min_pixels``. Boxes and points are in normalised frame coordinates.
    """

    labels: np.ndarray
    counts: np.ndarray
    min_pixels: int

    def visible_ids(self, frame: int) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.counts[frame] >= self.min_pixels)]

    def frames_of(self, object_id: int) -> list[int]:
        return [int(t) for t in np.flatnonzero(self.counts[:, object_id] >= self.min_pixels)]

    def is_visible(self, object_id: int) -> bool:
        return bool((self.counts[:, object_id] >= self.min_pixels).any())

    def first_frame(self, object_id: int) -> int | None:
        frames = self.frames_of(object_id)
        return frames[0] if frames else None

    def best_frame(self, object_id: int) -> int:
        """The frame where the object covers the most pixels."""
        return int(np.argmax(self.counts[:, object_id]))

    def box(self, object_id: int, frame: int, pad: float = BOX_PAD) -> tuple[float, float, float, float]:
        """The object's padded bounding box in a frame, normalised to [0, 1]."""
        h, w = self.labels.shape[1:]
        rows, cols = np.nonzero(self.labels[frame] == object_id + 1)
        if len(rows) == 0:
            return (0.0, 0.0, 1.0, 1.0)
        x0, x1 = cols.min() / w, (cols.max() + 1) / w
        y0, y1 = rows.min() / h, (rows.max() + 1) / h
        px, py = pad * (x1 - x0) + 1 / w, pad * (y1 - y0) + 1 / h
        return (round(max(x0 - px, 0.0), 4), round(max(y0 - py, 0.0), 4),
                round(min(x1 + px, 1.0), 4), round(min(y1 + py, 1.0), 4))

    def point(self, object_id: int, frame: int) -> tuple[float, float]:
        """A point well inside the object's mask (the pixel farthest from its edge)."""
        h, w = self.labels.shape[1:]
        mask = (self.labels[frame] == object_id + 1).astype(np.uint8)
        inside = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        row, col = np.unravel_index(int(np.argmax(inside)), inside.shape)
        return (round((col + 0.5) / w, 4), round((row + 0.5) / h, 4))


def compute_visibility(scene: Scene, faces: tuple[FaceSet, FaceSet], intr: Intrinsics) -> Visibility:
    """Label-render every frame at low resolution and count each object's pixels."""
    width = min(VISIBILITY_WIDTH, intr.width)
    small = Intrinsics.for_size(width, max(1, round(width * intr.height / intr.width)))
    count = len(scene.objects)
    labels = np.stack([render_frame(scene, faces, small, t, with_colour=False).labels.astype(np.uint8)
                       for t in range(scene.camera.num_frames)])
    counts = np.stack([np.bincount(frame.ravel(), minlength=count + 1)[1:count + 1] for frame in labels])
    return Visibility(labels=labels, counts=counts.reshape(len(labels), count),
                      min_pixels=max(4, round(VISIBLE_FRACTION * small.width * small.height)))


class Renderer:
    """Renders one scene's frames on demand, keeping the last few (colour, depth, labels)."""

    def __init__(self, scene: Scene, intrinsics: Intrinsics, cache_frames: int = 4) -> None:
        self.scene, self.intrinsics = scene, intrinsics
        self.faces = scene_faces(scene)
        self._cache: OrderedDict[int, RenderedFrame] = OrderedDict()
        self._capacity = max(1, cache_frames)
        self._lock = threading.Lock()

    @property
    def num_frames(self) -> int:
        return self.scene.camera.num_frames

    def frame(self, index: int) -> RenderedFrame:
        """Frame ``index`` rendered in full; raises :class:`MediaError` outside the video."""
        if not 0 <= index < self.num_frames:
            raise MediaError(f"frame {index} is outside 0..{self.num_frames - 1}")
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            rendered = render_frame(self.scene, self.faces, self.intrinsics, index)
            self._cache[index] = rendered
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
            return rendered

    def image(self, index: int) -> np.ndarray:
        """RGB uint8 ``(H, W, 3)``."""
        return self.frame(index).image

    def depth(self, index: int) -> np.ndarray:
        """Float32 z-depth in metres ``(H, W)`` (every pixel sees the floor, a wall or furniture)."""
        return self.frame(index).depth

    def labels(self, index: int) -> np.ndarray:
        """Int32 ``(H, W)``: 0 for room surfaces, ``id + 1`` where object ``id`` is nearest."""
        return self.frame(index).labels

    def visibility(self) -> Visibility:
        return compute_visibility(self.scene, self.faces, self.intrinsics)
