r"""A simulated LiDAR that writes KITTI-format frames.

:class:`SimLidar` builds a street scene out of simple meshes (open3d's boxes,
cylinders and spheres), casts one ray per beam and azimuth step through it
with :class:`open3d.t.geometry.RaycastingScene`, and labels the objects the way
the KITTI 3D-object benchmark does, so that a detector can be trained and
evaluated on it with the KITTI tools (:func:`~pointkd.datasets.kitti.load_kitti_frame`,
OpenPCDet's KITTI dataset and evaluation):

- the scene: a road along the LiDAR :math:`x` axis with lane markings, sidewalks,
  buildings and walls beside them, poles, trees and bushes; cars (body, cabin,
  wheels, number plates), pedestrians (legs, torso, arms, head) and cyclists
  (bicycle and rider) placed without overlapping one another or the clutter
  in bird's eye view;
- the sensor: beams at fixed elevations (by default a Velodyne HDL-64E's 64,
  :math:`+2^\circ` to :math:`-24.8^\circ`, denser in the upper half), one ray
  per azimuth step, the first hit within range becomes a point with Gaussian
  range noise along the ray (clipped to :math:`\pm 3\sigma`), random dropout,
  and intensity :math:`\rho \, |\cos\theta| + \epsilon` clipped to
  :math:`[0, 1]` (:math:`\rho` the surface's reflectivity, :math:`\theta` the
  incidence angle); occlusion falls out of the ray casting;
- the labels: each object's tight oriented box (OpenPCDet's LiDAR convention
  ``(x, y, z, length, width, height, yaw)``, the centre, the yaw about
  :math:`+z` from :math:`+x`), its 2D box and truncation from the projection
  into image 2 with a KITTI calibration, and its occlusion level from the
  fraction :math:`f` of the rays through it that something else stops first
  (by default 0 when :math:`f < 0.2`, 1 when :math:`f < 0.6`, else 2).

Objects that no ray reaches, or that lie outside image 2, are not labelled
(KITTI annotates what camera 2 sees). Objects with fewer than ``min_points``
points in the camera's field of view are labelled ``DontCare`` (after all other
objects, as in KITTI), with their real 3D box rather than KITTI's ``-1`` /
``-1000`` placeholders so that every label line still gives a valid box.

Frames are deterministic in ``(seed, index)`` and do not depend on the order in
which they are generated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pointkd.datasets.kitti import (
    CLASSES,
    KITTI_IMAGE_SIZE,
    Calibration,
    KittiFrame,
    camera_fov_mask,
    kitti_default_calibration,
    lidar_boxes_to_objects,
    write_bytes_atomic,
    write_calibration,
    write_labels,
)

# Bump when a change to the generator changes its output for the same
# (config, seed): cached folders (simlidar_root) and stamps then differ.
FORMAT_VERSION = 1

# Rejection sampling: tries per object before it is left out, and the gap
# kept between footprints in bird's eye view (metres).
_PLACEMENT_TRIES = 40
_PLACEMENT_MARGIN = 0.3

# Reflectivities of the materials (the intensity of a head-on return).
_ROAD, _MARKING, _KERB_SIDE = 0.18, 0.6, 0.32
_GLASS, _TYRE, _PLATE, _SKIN = 0.05, 0.05, 0.95, 0.3


def _range_pair(value: object, name: str, integer: bool = False, ordered: bool = True) -> tuple:
    try:
        low, high = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    kind = int if integer else float
    if integer and not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise ValueError(f"{name} must be a pair of integers, got {value!r}")
    if not all(isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) for v in (low, high)):
        raise ValueError(f"{name} must be a pair of finite numbers, got {value!r}")
    if ordered and low > high:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return kind(low), kind(high)


def _triple(value: object, name: str, positive: bool) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers (length, width, height), got {value!r}") from None
    if len(numbers) != 3 or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{name} must be three finite numbers (length, width, height), got {value!r}")
    if any(v <= 0 if positive else v < 0 for v in numbers):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return numbers


@dataclass(frozen=True)
class SimLidarConfig:
    r"""Sensor and scene of :class:`SimLidar`; every field is checked on construction:
    a bad value raises :class:`ValueError` naming the field (a value of the wrong
    type, :class:`TypeError`).

    Args:
        num_beams (int): laser beams. (default: ``64``)
        beam_elevations (tuple[float, ...], optional): elevation of each beam in
            degrees; ``None`` spaces ``num_beams`` beams over ``elevation_range``
            like a Velodyne HDL-64E (the upper half of the beams over the upper
            38.5% of the range, so about :math:`1/3^\circ` apart there and
            :math:`1/2^\circ` below). (default: ``None``)
        elevation_range (tuple[float, float]): top and bottom beam elevation in
            degrees for the default spacing. (default: ``(2.0, -24.8)``)
        azimuth_step (float): degrees between two rays of a beam. (default: ``0.18``)
        azimuth_range (tuple[float, float]): scanned azimuths in degrees, 0 along
            :math:`+x`, positive to the left; ``(-180, 180)`` is a full turn. The
            default covers camera 2's field of view (about :math:`\pm 41^\circ`)
            with a margin, since KITTI's evaluation crops to it. (default: ``(-45.0, 45.0)``)
        max_range (float): metres; farther hits give no point. (default: ``80.0``)
        range_noise (float): standard deviation of the range noise in metres. (default: ``0.02``)
        dropout (float): probability that a return is lost. (default: ``0.05``)
        intensity_noise (float): standard deviation of the intensity noise. (default: ``0.02``)
        sensor_height (float): metres above the ground, which lies at
            :math:`z = -\text{sensor\_height}`. (default: ``1.73``)
        x_range (tuple[float, float]): where objects are placed along :math:`x`. (default: ``(2.0, 60.0)``)
        y_range (tuple[float, float]): where objects are placed along :math:`y`. (default: ``(-30.0, 30.0)``)
        num_cars (tuple[int, int]): cars per scene, uniform in this range
            (inclusive; fewer when they do not fit). (default: ``(4, 12)``)
        num_pedestrians (tuple[int, int]): pedestrians per scene. (default: ``(0, 6)``)
        num_cyclists (tuple[int, int]): cyclists per scene. (default: ``(0, 4)``)
        num_walls (tuple[int, int]): walls and buildings beside the road. (default: ``(2, 6)``)
        num_poles (tuple[int, int]): poles along the kerbs. (default: ``(2, 10)``)
        num_vegetation (tuple[int, int]): trees and bushes. (default: ``(2, 8)``)
        car_size (tuple[float, float, float]): mean length, width, height of cars
            in metres (KITTI's averages). (default: ``(3.9, 1.6, 1.55)``)
        car_size_std (tuple[float, float, float]): their standard deviations. (default: ``(0.35, 0.08, 0.1)``)
        pedestrian_size (tuple[float, float, float]): mean pedestrian size. (default: ``(0.8, 0.6, 1.75)``)
        pedestrian_size_std (tuple[float, float, float]): (default: ``(0.1, 0.06, 0.1)``)
        cyclist_size (tuple[float, float, float]): mean cyclist size. (default: ``(1.76, 0.6, 1.73)``)
        cyclist_size_std (tuple[float, float, float]): (default: ``(0.12, 0.05, 0.08)``)
        size_clip (float): sizes are drawn from normals truncated to
            mean :math:`\pm` ``size_clip`` standard deviations. (default: ``2.0``)
        min_points (int): objects with fewer points in the camera's field of
            view are labelled ``DontCare``. (default: ``5``)
        occlusion_thresholds (tuple[float, float]): blocked-ray fractions at which
            the occlusion level becomes 1 and 2. (default: ``(0.2, 0.6)``)
    """

    num_beams: int = 64
    beam_elevations: tuple[float, ...] | None = None
    elevation_range: tuple[float, float] = (2.0, -24.8)
    azimuth_step: float = 0.18
    azimuth_range: tuple[float, float] = (-45.0, 45.0)
    max_range: float = 80.0
    range_noise: float = 0.02
    dropout: float = 0.05
    intensity_noise: float = 0.02
    sensor_height: float = 1.73
    x_range: tuple[float, float] = (2.0, 60.0)
    y_range: tuple[float, float] = (-30.0, 30.0)
    num_cars: tuple[int, int] = (4, 12)
    num_pedestrians: tuple[int, int] = (0, 6)
    num_cyclists: tuple[int, int] = (0, 4)
    num_walls: tuple[int, int] = (2, 6)
    num_poles: tuple[int, int] = (2, 10)
    num_vegetation: tuple[int, int] = (2, 8)
    car_size: tuple[float, float, float] = (3.9, 1.6, 1.55)
    car_size_std: tuple[float, float, float] = (0.35, 0.08, 0.1)
    pedestrian_size: tuple[float, float, float] = (0.8, 0.6, 1.75)
    pedestrian_size_std: tuple[float, float, float] = (0.1, 0.06, 0.1)
    cyclist_size: tuple[float, float, float] = (1.76, 0.6, 1.73)
    cyclist_size_std: tuple[float, float, float] = (0.12, 0.05, 0.08)
    size_clip: float = 2.0
    min_points: int = 5
    occlusion_thresholds: tuple[float, float] = (0.2, 0.6)

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        def number(name: str, low: float | None = None, high: float | None = None, open_low: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
            if low is not None and (value <= low if open_low else value < low):
                raise ValueError(f"{name} must be {'>' if open_low else '>='} {low}, got {value}")
            if high is not None and value > high:
                raise ValueError(f"{name} must be <= {high}, got {value}")
            put(name, value)

        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
            put(name, int(value))

        integer("num_beams", 1)
        if self.beam_elevations is not None:
            try:
                elevations = tuple(float(v) for v in self.beam_elevations)
            except (TypeError, ValueError):
                raise ValueError(f"beam_elevations must be numbers in degrees, got {self.beam_elevations!r}") from None
            if len(elevations) != self.num_beams:
                raise ValueError(
                    f"beam_elevations must have num_beams = {self.num_beams} values, got {len(elevations)}"
                )
            if not all(math.isfinite(v) and -90 < v < 90 for v in elevations):
                raise ValueError(f"beam_elevations must lie in (-90, 90) degrees, got {elevations}")
            put("beam_elevations", elevations)
        top, bottom = _range_pair(self.elevation_range, "elevation_range", ordered=False)
        if not -90 < bottom <= top < 90:
            raise ValueError(
                f"elevation_range must be (top, bottom) with 90 > top >= bottom > -90, got {(top, bottom)}"
            )
        put("elevation_range", (top, bottom))
        number("azimuth_step", 0.0, 10.0, open_low=True)
        low, high = _range_pair(self.azimuth_range, "azimuth_range")
        if not -180 <= low < high <= 180:
            raise ValueError(f"azimuth_range must satisfy -180 <= low < high <= 180 degrees, got {(low, high)}")
        put("azimuth_range", (low, high))
        number("max_range", 0.0, open_low=True)
        number("range_noise", 0.0)
        number("dropout", 0.0, 0.99)
        number("intensity_noise", 0.0)
        number("sensor_height", 0.0, open_low=True)
        for name in ("x_range", "y_range"):
            low, high = _range_pair(getattr(self, name), name)
            if low >= high:
                raise ValueError(f"{name} must have low < high, got {(low, high)}")
            put(name, (low, high))
        for name in ("num_cars", "num_pedestrians", "num_cyclists", "num_walls", "num_poles", "num_vegetation"):
            low, high = _range_pair(getattr(self, name), name, integer=True)
            if low < 0:
                raise ValueError(f"{name} must be >= 0, got {(low, high)}")
            put(name, (low, high))
        number("size_clip", 0.0)
        for kind in ("car", "pedestrian", "cyclist"):
            mean = _triple(getattr(self, f"{kind}_size"), f"{kind}_size", positive=True)
            std = _triple(getattr(self, f"{kind}_size_std"), f"{kind}_size_std", positive=False)
            if any(m - self.size_clip * s <= 0 for m, s in zip(mean, std)):
                raise ValueError(
                    f"{kind}_size_std too large: {kind}_size - size_clip * {kind}_size_std must stay > 0, "
                    f"got {mean} and {std}"
                )
            put(f"{kind}_size", mean)
            put(f"{kind}_size_std", std)
        integer("min_points", 0)
        low, high = _range_pair(self.occlusion_thresholds, "occlusion_thresholds")
        if not 0 < low <= high <= 1:
            raise ValueError(f"occlusion_thresholds must satisfy 0 < low <= high <= 1, got {(low, high)}")
        put("occlusion_thresholds", (low, high))

    def elevations(self) -> np.ndarray:
        """The beams' elevations in degrees, ``(num_beams,)`` float64, top first."""
        if self.beam_elevations is not None:
            return np.asarray(self.beam_elevations, dtype=np.float64)
        top, bottom = self.elevation_range
        upper = self.num_beams // 2
        lower = self.num_beams - upper
        split = top + 0.385 * (bottom - top)
        if upper == 0:
            return np.array([top], dtype=np.float64)
        lower_step = (split - bottom) / lower
        return np.concatenate([np.linspace(top, split, upper), np.linspace(split - lower_step, bottom, lower)]).astype(
            np.float64
        )

    def azimuths(self) -> np.ndarray:
        """The rays' azimuths in degrees, ``(A,)`` float64 (a full turn does not repeat its end)."""
        low, high = self.azimuth_range
        steps = (high - low) / self.azimuth_step
        full_turn = high - low >= 360 - 1e-9
        count = math.floor(steps + 1e-9) + (0 if full_turn else 1)
        return low + self.azimuth_step * np.arange(count, dtype=np.float64)

    def key(self) -> dict:
        """The fields as plain JSON values (what identifies generated data)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


# ---------------------------------------------------------------------------
# Meshes
# ---------------------------------------------------------------------------


@cache
def _template(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit meshes from open3d, read-only: a box ``[-0.5, 0.5]^3``, a cylinder of
    radius 1 and height 1 along :math:`z` (centred), a UV sphere and an
    icosphere of radius 1."""
    import open3d as o3d

    if kind == "box":
        mesh = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
        vertices = np.asarray(mesh.vertices) - 0.5
    elif kind == "cylinder":
        # 12 sides: vertices at 0, 90, 180, 270 degrees, so the extents are exact.
        mesh = o3d.geometry.TriangleMesh.create_cylinder(radius=1.0, height=1.0, resolution=12, split=1)
        vertices = np.asarray(mesh.vertices)
    elif kind == "sphere":
        # A UV sphere has vertices at its poles: a head's top is exact.
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=1.0, resolution=6)
        vertices = np.asarray(mesh.vertices)
    elif kind == "icosphere":
        mesh = o3d.geometry.TriangleMesh.create_icosahedron(radius=1.0).subdivide_midpoint(2)
        vertices = np.asarray(mesh.vertices)
        vertices = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown template {kind!r}")
    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    triangles = np.ascontiguousarray(np.asarray(mesh.triangles), dtype=np.int64)
    vertices.setflags(write=False)
    triangles.setflags(write=False)
    return vertices, triangles


def _rotation_z(heading: float) -> np.ndarray:
    cos, sin = math.cos(heading), math.sin(heading)
    return np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Mesh:
    """A triangle mesh with a reflectivity per triangle.

    Args:
        vertices (np.ndarray): ``(V, 3)`` float64 positions.
        triangles (np.ndarray): ``(T, 3)`` int64 vertex indices.
        reflectivity (np.ndarray): ``(T,)`` intensity of a head-on return, in ``[0, 1]``.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    reflectivity: np.ndarray

    @classmethod
    def _from_template(cls, kind: str, linear: np.ndarray, offset: Sequence[float], reflectivity: float) -> Mesh:
        vertices, triangles = _template(kind)
        return cls(
            vertices @ linear.T + np.asarray(offset, dtype=np.float64),
            triangles,
            np.full(len(triangles), float(reflectivity)),
        )

    @classmethod
    def box(cls, low: Sequence[float], high: Sequence[float], reflectivity: float = 0.5) -> Mesh:
        """The axis-aligned box from corner ``low`` to corner ``high``.

        Args:
            low (Sequence[float]): ``(x, y, z)`` minimum corner.
            high (Sequence[float]): ``(x, y, z)`` maximum corner.
            reflectivity (float, optional): (default: ``0.5``)
        """
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        return cls._from_template("box", np.diag(high - low), (low + high) / 2, reflectivity)

    @classmethod
    def cylinder(
        cls,
        center: Sequence[float],
        radius: float | tuple[float, float],
        height: float,
        axis: str = "z",
        reflectivity: float = 0.5,
    ) -> Mesh:
        """A (possibly elliptic) 12-sided cylinder.

        Args:
            center (Sequence[float]): ``(x, y, z)`` centre.
            radius (float or tuple[float, float]): radius, or the two semi-axes
                across ``axis`` (``(x, y)`` for ``"z"``, ``(x, z)`` for ``"y"``).
            height (float): length along ``axis``.
            axis (str, optional): ``"z"`` (upright) or ``"y"`` (a wheel rolling along :math:`x`).
                (default: ``"z"``)
            reflectivity (float, optional): (default: ``0.5``)
        """
        first, second = (radius, radius) if np.isscalar(radius) else radius
        scale = np.diag([first, second, height])
        if axis == "y":
            # Rotate the z axis onto y; the second semi-axis ends up along z.
            scale = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) @ scale
        elif axis != "z":
            raise ValueError(f"axis must be 'z' or 'y', got {axis!r}")
        return cls._from_template("cylinder", scale, center, reflectivity)

    @classmethod
    def sphere(cls, center: Sequence[float], radius: float | Sequence[float], reflectivity: float = 0.5) -> Mesh:
        """A UV sphere (an ellipsoid with three radii).

        Args:
            center (Sequence[float]): ``(x, y, z)`` centre.
            radius (float or Sequence[float]): radius, or the three semi-axes.
            reflectivity (float, optional): (default: ``0.5``)
        """
        radii = np.broadcast_to(np.asarray(radius, dtype=np.float64), (3,))
        return cls._from_template("sphere", np.diag(radii), center, reflectivity)

    @classmethod
    def blob(
        cls,
        center: Sequence[float],
        radius: Sequence[float],
        rng: np.random.Generator,
        roughness: float = 0.15,
        reflectivity: float = 0.5,
    ) -> Mesh:
        """A lumpy ellipsoid (foliage): an icosphere whose vertices move radially by
        up to ``roughness`` of the radius.

        Args:
            center (Sequence[float]): ``(x, y, z)`` centre.
            radius (Sequence[float]): the three semi-axes.
            rng (np.random.Generator): draws the lumps.
            roughness (float, optional): relative radial noise. (default: ``0.15``)
            reflectivity (float, optional): (default: ``0.5``)
        """
        vertices, triangles = _template("icosphere")
        lumps = 1 + roughness * rng.uniform(-1.0, 1.0, size=(len(vertices), 1))
        return cls(
            vertices * lumps * np.asarray(radius, dtype=np.float64) + np.asarray(center, dtype=np.float64),
            triangles,
            np.full(len(triangles), float(reflectivity)),
        )

    @classmethod
    def segment(
        cls,
        start: Sequence[float],
        end: Sequence[float],
        width: float,
        thickness: float | None = None,
        reflectivity: float = 0.5,
    ) -> Mesh:
        """A box from ``start`` to ``end`` (a limb, a tube), ``width`` across it
        horizontally and ``thickness`` across it in the remaining direction.

        Args:
            start (Sequence[float]): one end.
            end (Sequence[float]): the other end.
            width (float): horizontal size across the segment.
            thickness (float, optional): the third size; ``width`` when ``None``. (default: ``None``)
            reflectivity (float, optional): (default: ``0.5``)
        """
        start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
        along = end - start
        length = float(np.linalg.norm(along))
        direction = along / length
        across = np.cross([0.0, 0.0, 1.0], direction)
        if np.linalg.norm(across) < 1e-9:
            across = np.array([0.0, 1.0, 0.0])
        across /= np.linalg.norm(across)
        third = np.cross(direction, across)
        frame = np.stack([direction, across, third], axis=1)
        sizes = np.diag([length, width, width if thickness is None else thickness])
        return cls._from_template("box", frame @ sizes, (start + end) / 2, reflectivity)

    @classmethod
    def merge(cls, meshes: Iterable[Mesh]) -> Mesh:
        """One mesh holding all of ``meshes``."""
        meshes = list(meshes)
        if not meshes:
            return cls(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), np.zeros(0))
        offsets = np.cumsum([0] + [len(mesh.vertices) for mesh in meshes[:-1]])
        return cls(
            np.concatenate([mesh.vertices for mesh in meshes]),
            np.concatenate([mesh.triangles + offset for mesh, offset in zip(meshes, offsets)]),
            np.concatenate([mesh.reflectivity for mesh in meshes]),
        )

    def transformed(self, heading: float = 0.0, translation: Sequence[float] = (0.0, 0.0, 0.0)) -> Mesh:
        """The mesh rotated by ``heading`` about :math:`z`, then translated.

        Args:
            heading (float, optional): radians, counter-clockwise seen from above. (default: ``0.0``)
            translation (Sequence[float], optional): ``(x, y, z)``. (default: ``(0, 0, 0)``)
        """
        vertices = self.vertices @ _rotation_z(heading).T + np.asarray(translation, dtype=np.float64)
        return Mesh(vertices, self.triangles, self.reflectivity)


def _fit(mesh: Mesh, length: float, width: float, height: float) -> Mesh:
    """``mesh`` scaled per axis so that its extents are exactly
    ``[-length / 2, length / 2] x [-width / 2, width / 2] x [0, height]``."""
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    scale = np.array([length, width, height]) / (high - low)
    target_low = np.array([-length / 2, -width / 2, 0.0])
    return Mesh((mesh.vertices - low) * scale + target_low, mesh.triangles, mesh.reflectivity)


def car_mesh(length: float, width: float, height: float, paint: float = 0.4) -> Mesh:
    """A car in its own frame (front along :math:`+x`, bottom at :math:`z = 0`):
    body, glass cabin with a roof, four wheels and number plates.

    Args:
        length (float): metres.
        width (float): metres.
        height (float): metres.
        paint (float, optional): reflectivity of the body and roof. (default: ``0.4``)
    """
    half_l, half_w = length / 2, width / 2
    wheel_radius = min(0.2 * height, 0.36)
    belt = 0.58 * height
    parts = [
        Mesh.box((-half_l, -half_w, 0.55 * wheel_radius), (half_l, half_w, belt), paint),
        Mesh.box((-0.33 * length, -0.43 * width, belt), (0.17 * length, 0.43 * width, height - 0.05), _GLASS),
        Mesh.box((-0.3 * length, -0.41 * width, height - 0.05), (0.13 * length, 0.41 * width, height), paint),
        Mesh.box((-half_l - 0.01, -0.26, 0.35 * height), (-half_l + 0.01, 0.26, 0.35 * height + 0.11), _PLATE),
        Mesh.box((half_l - 0.01, -0.26, 0.3 * height), (half_l + 0.01, 0.26, 0.3 * height + 0.11), _PLATE),
    ]
    for axle in (0.32 * length, -0.3 * length):
        for side in (-1, 1):
            parts.append(Mesh.cylinder((axle, side * (half_w - 0.12), wheel_radius), wheel_radius, 0.22, "y", _TYRE))
    return _fit(Mesh.merge(parts), length, width, height)


# Stands for the clothes' reflectivity in the cached shapes below.
_CLOTHES = -1.0


def _dressed(shape: Mesh, length: float, width: float, height: float, clothes: float) -> Mesh:
    fitted = _fit(shape, length, width, height)
    fitted.reflectivity = np.where(shape.reflectivity == _CLOTHES, clothes, shape.reflectivity)
    return fitted


@cache
def _pedestrian_shape() -> Mesh:
    return Mesh.merge(
        [
            Mesh.segment((0.0, 0.1, 0.9), (0.32, 0.12, 0.0), 0.14, reflectivity=_CLOTHES),
            Mesh.segment((0.0, -0.1, 0.9), (-0.32, -0.12, 0.0), 0.14, reflectivity=_CLOTHES),
            Mesh.cylinder((0.0, 0.0, 1.17), (0.13, 0.2), 0.6, reflectivity=_CLOTHES),
            Mesh.segment((0.0, 0.22, 1.43), (0.22, 0.3, 0.86), 0.09, reflectivity=_CLOTHES),
            Mesh.segment((0.0, -0.22, 1.43), (-0.22, -0.3, 0.86), 0.09, reflectivity=_CLOTHES),
            Mesh.sphere((0.02, 0.0, 1.64), 0.11, _SKIN),
        ]
    )


def pedestrian_mesh(length: float, width: float, height: float, clothes: float = 0.3) -> Mesh:
    """A walking person in its own frame (facing :math:`+x`, feet at :math:`z = 0`):
    legs mid-stride, torso, swinging arms and head, built for 1.75 m and fitted
    to the size.

    Args:
        length (float): metres (the stride and arm swing).
        width (float): metres (the shoulders and arms).
        height (float): metres.
        clothes (float, optional): reflectivity of the clothes. (default: ``0.3``)
    """
    return _dressed(_pedestrian_shape(), length, width, height, clothes)


@cache
def _cyclist_shape() -> Mesh:
    radius = 0.34
    rear, front = (-0.54, 0.0, radius), (0.54, 0.0, radius)
    crank, seat, head_tube = (0.0, 0.0, radius), (-0.15, 0.0, 0.88), (0.42, 0.0, 0.9)
    frame = 0.45
    parts = [
        Mesh.cylinder(rear, radius, 0.05, "y", _TYRE),
        Mesh.cylinder(front, radius, 0.05, "y", _TYRE),
        Mesh.segment(rear, seat, 0.04, reflectivity=frame),
        Mesh.segment(seat, head_tube, 0.04, reflectivity=frame),
        Mesh.segment(head_tube, front, 0.04, reflectivity=frame),
        Mesh.segment(head_tube, crank, 0.04, reflectivity=frame),
        Mesh.segment(crank, rear, 0.04, reflectivity=frame),
        Mesh.box((0.38, -0.3, 0.98), (0.44, 0.3, 1.02), frame),
    ]
    for side in (-1, 1):
        knee = (0.18, side * 0.14, 0.7)
        parts.append(Mesh.segment((-0.12, side * 0.11, 0.95), knee, 0.12, reflectivity=_CLOTHES))
        parts.append(Mesh.segment(knee, (0.02, side * 0.14, 0.3), 0.11, reflectivity=_CLOTHES))
        parts.append(Mesh.segment((0.14, side * 0.2, 1.42), (0.4, side * 0.26, 1.0), 0.08, reflectivity=_CLOTHES))
    parts.append(Mesh.segment((-0.12, 0.0, 0.95), (0.16, 0.0, 1.47), 0.38, 0.22, reflectivity=_CLOTHES))
    parts.append(Mesh.sphere((0.24, 0.0, 1.62), 0.11, _SKIN))
    return Mesh.merge(parts)


def cyclist_mesh(length: float, width: float, height: float, clothes: float = 0.3) -> Mesh:
    """A cyclist in its own frame (riding along :math:`+x`, wheels on :math:`z = 0`):
    bicycle (wheels, frame, handlebar) and rider, built for 1.76 x 0.6 x 1.73 m
    and fitted to the size.

    Args:
        length (float): metres.
        width (float): metres (the handlebar).
        height (float): metres.
        clothes (float, optional): reflectivity of the rider's clothes. (default: ``0.3``)
    """
    return _dressed(_cyclist_shape(), length, width, height, clothes)


_OBJECT_MESHES = {"Car": car_mesh, "Pedestrian": pedestrian_mesh, "Cyclist": cyclist_mesh}


def ground_mesh(ground_z: float, road_half_width: float = 6.0, extent: float = 150.0) -> Mesh:
    """The ground: a flat road along :math:`x` with a centre line and edge lines,
    kerb-side strips beyond it, out to ``extent`` metres each way.

    Args:
        ground_z (float): height of the ground in the LiDAR frame (``-sensor_height``).
        road_half_width (float, optional): metres from the centre line to the road's edge. (default: ``6.0``)
        extent (float, optional): half size of the square of ground. (default: ``150.0``)
    """
    line = 0.075
    edge = road_half_width - 0.3
    breaks = [-extent, -road_half_width, -edge - line, -edge + line, -line, line, edge - line, edge + line]
    breaks += [road_half_width, extent]
    materials = [_KERB_SIDE, _ROAD, _MARKING, _ROAD, _MARKING, _ROAD, _MARKING, _ROAD, _KERB_SIDE]
    parts = [
        Mesh.box((-extent, low, ground_z - 0.1), (extent, high, ground_z), material)
        for low, high, material in zip(breaks[:-1], breaks[1:], materials)
    ]
    return Mesh.merge(parts)


# ---------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Footprint:
    """A rectangle in bird's eye view: centre, half length, half width, heading."""

    x: float
    y: float
    half_length: float
    half_width: float
    heading: float

    def overlaps(self, other: _Footprint, margin: float) -> bool:
        dx, dy = other.x - self.x, other.y - self.y
        reach = math.hypot(self.half_length, self.half_width) + math.hypot(other.half_length, other.half_width)
        if math.hypot(dx, dy) > reach + margin:
            return False
        axes = []
        for footprint in (self, other):
            cos, sin = math.cos(footprint.heading), math.sin(footprint.heading)
            axes.append(((cos, sin), (-sin, cos)))
        # Separating axis theorem on the four edge directions.
        for ux, uy in (axes[0][0], axes[0][1], axes[1][0], axes[1][1]):
            extent = 0.0
            for footprint, (along, across) in zip((self, other), axes):
                extent += footprint.half_length * abs(along[0] * ux + along[1] * uy)
                extent += footprint.half_width * abs(across[0] * ux + across[1] * uy)
            if abs(dx * ux + dy * uy) > extent + margin:
                return False
        return True


@dataclass
class SimObject:
    """An object of a scene: its KITTI type, its tight oriented box and its mesh.

    Args:
        type (str): ``"Car"``, ``"Pedestrian"`` or ``"Cyclist"``.
        box (np.ndarray): ``(7,)`` LiDAR box ``(x, y, z, length, width, height, yaw)``.
        mesh (Mesh): the surface, in the LiDAR frame.
    """

    type: str
    box: np.ndarray
    mesh: Mesh

    @classmethod
    def create(
        cls,
        type: str,
        size: Sequence[float],
        x: float,
        y: float,
        heading: float,
        ground_z: float,
        reflectivity: float = 0.35,
    ) -> SimObject:
        r"""An object standing on the ground, its box centred at ``(x, y)``.

        Args:
            type (str): one of :data:`~pointkd.datasets.kitti.CLASSES`.
            size (Sequence[float]): ``(length, width, height)`` in metres: the box's size.
            x (float): box centre, metres forward.
            y (float): box centre, metres to the left.
            heading (float): yaw in radians (wrapped to :math:`[-\pi, \pi)`).
            ground_z (float): height of the ground (``-sensor_height``).
            reflectivity (float, optional): of the paint or clothes. (default: ``0.35``)
        """
        if type not in _OBJECT_MESHES:
            raise ValueError(f"type must be one of {CLASSES}, got {type!r}")
        length, width, height = (float(v) for v in size)
        if min(length, width, height) <= 0:
            raise ValueError(f"size must be positive, got {tuple(size)}")
        heading = (float(heading) + math.pi) % (2 * math.pi) - math.pi
        mesh = _OBJECT_MESHES[type](length, width, height, reflectivity).transformed(heading, (x, y, ground_z))
        box = np.array([x, y, ground_z + height / 2, length, width, height, heading], dtype=np.float64)
        return cls(type, box, mesh)


@dataclass
class SimScene:
    """What :meth:`SimLidar.scan` sees: labelled objects and unlabelled clutter
    (the ground, buildings, poles, vegetation).

    Args:
        objects (list[SimObject]): the objects to label.
        clutter (list[Mesh]): everything else, the ground included.
    """

    objects: list[SimObject]
    clutter: list[Mesh]


@dataclass
class SimLidarScan:
    """A scan of a :class:`SimScene` and what the simulator knows about it.

    Args:
        frame (KittiFrame): the frame, as :func:`~pointkd.datasets.kitti.load_kitti_frame`
            reads it back once written.
        point_object (Tensor): ``(N,)`` int64, the index in ``frame.objects`` of the
            object each point lies on, ``-1`` for clutter and unlabelled objects.
        scene_index (Tensor): ``(M,)`` int64, the index in ``scene.objects`` of
            each labelled object.
        num_points (Tensor): ``(M,)`` int64, points on each labelled object in
            camera 2's field of view.
        visible_fraction (Tensor): ``(M,)`` float64, the fraction of the rays
            through each labelled object that reach it first.
        scene (SimScene): the scene scanned.
    """

    frame: KittiFrame
    point_object: Tensor
    scene_index: Tensor
    num_points: Tensor
    visible_fraction: Tensor
    scene: SimScene


class SimLidar:
    r"""A simulated LiDAR on a street, writing KITTI-format frames (see the module docstring).

    Example::

        sim = SimLidar(seed=0)
        frame = sim.frame(7)                    # a KittiFrame, points cropped to camera 2
        root = sim.write_kitti("data/sim", 500)  # data/sim/training/{velodyne,label_2,calib,image_2}

    Args:
        config (SimLidarConfig, optional): sensor and scene; the defaults when ``None``.
            (default: ``None``)
        seed (int, optional): frame ``index`` depends only on ``(seed, index)``. (default: ``0``)
        num_threads (int, optional): ray-casting threads, 0 for all cores; the
            output does not depend on it. (default: ``0``)
    """

    def __init__(self, config: SimLidarConfig | None = None, seed: int = 0, num_threads: int = 0):
        if config is None:
            config = SimLidarConfig()
        if not isinstance(config, SimLidarConfig):
            raise TypeError(f"config must be a SimLidarConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 0:
            raise ValueError(f"num_threads must be an integer >= 0, got {num_threads!r}")
        self.config = config
        self.seed = int(seed)
        self.num_threads = num_threads
        self.calib: Calibration = kitti_default_calibration()
        self.image_size: tuple[int, int] = KITTI_IMAGE_SIZE
        elevation = np.deg2rad(config.elevations())[:, None]
        azimuth = np.deg2rad(config.azimuths())[None, :]
        directions = np.stack(
            np.broadcast_arrays(
                np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)
            ),
            axis=-1,
        )
        # (num_beams * num_azimuths, 3), beam-major: ray r is beam r // A, azimuth r % A.
        self.directions = np.ascontiguousarray(directions.reshape(-1, 3), dtype=np.float32)
        self._rays = None

    def __repr__(self) -> str:
        return f"SimLidar(seed={self.seed}, rays={len(self.directions)}, config={self.config})"

    # -- scenes --------------------------------------------------------------

    def _generators(self, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index must be an integer >= 0, got {index!r}")
        scene_seed, scan_seed = np.random.SeedSequence([self.seed, int(index)]).spawn(2)
        return np.random.default_rng(scene_seed), np.random.default_rng(scan_seed)

    def _sample_size(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        mean = np.asarray(getattr(self.config, f"{kind.lower()}_size"))
        std = np.asarray(getattr(self.config, f"{kind.lower()}_size_std"))
        draw = rng.standard_normal(3)
        for _ in range(20):
            outside = np.abs(draw) > self.config.size_clip
            if not outside.any():
                break
            draw[outside] = rng.standard_normal(int(outside.sum()))
        return mean + std * np.clip(draw, -self.config.size_clip, self.config.size_clip)

    def _inside_scan(self, x: float, y: float) -> bool:
        config = self.config
        if not (config.x_range[0] <= x <= config.x_range[1] and config.y_range[0] <= y <= config.y_range[1]):
            return False
        azimuth = math.degrees(math.atan2(y, x))
        low, high = config.azimuth_range
        return high - low >= 360 or low <= azimuth <= high

    def _sample_pose(
        self, kind: str, size: np.ndarray, road: float, sidewalk: np.ndarray, rng: np.random.Generator
    ) -> tuple[float, float, float]:
        """``(x, y, heading)`` of an object: cars mostly along the road (in lanes
        or parked at its edge), some across it or at random; pedestrians mostly
        on the sidewalks; cyclists mostly near the road's edge."""
        x = rng.uniform(*self.config.x_range)
        anywhere_y = rng.uniform(*self.config.y_range)
        side = 1 if rng.random() < 0.5 else -1
        mode = rng.random()
        if kind == "Car":
            if mode < 0.75:
                y = rng.uniform(-road + size[1] / 2 + 0.2, road - size[1] / 2 - 0.2)
                # Right-hand traffic: the right half of the road heads along +x.
                forward = (y < 0) != (rng.random() < 0.15)
                return x, y, (0.0 if forward else math.pi) + rng.normal(0.0, 0.05)
            if mode < 0.9:
                return x, anywhere_y, side * math.pi / 2 + rng.normal(0.0, 0.1)
            return x, anywhere_y, rng.uniform(-math.pi, math.pi)
        if kind == "Pedestrian":
            heading = rng.uniform(-math.pi, math.pi)
            if mode < 0.7:
                width = sidewalk[0 if side < 0 else 1]
                return x, side * rng.uniform(road + 0.4, road + max(width - 0.4, 0.5)), heading
            return x, anywhere_y, heading
        if mode < 0.8:
            y = side * rng.uniform(road - 1.8, road - 0.5)
            return x, y, (0.0 if side < 0 else math.pi) + rng.normal(0.0, 0.1)
        return x, anywhere_y, rng.uniform(-math.pi, math.pi)

    def _place(self, footprint: _Footprint, taken: list[_Footprint]) -> bool:
        if any(footprint.overlaps(other, _PLACEMENT_MARGIN) for other in taken):
            return False
        taken.append(footprint)
        return True

    def sample_scene(self, index: int) -> SimScene:
        """The random street scene of frame ``index`` (before scanning).

        Args:
            index (int): frame index, ``>= 0``.
        """
        rng, _ = self._generators(index)
        config = self.config
        ground_z = -config.sensor_height
        road = rng.uniform(4.5, 8.5)  # half width of the road
        sidewalk = rng.uniform(2.5, 5.0, size=2)  # right (y < 0) and left
        x_low, x_high = config.x_range
        clutter = [ground_mesh(ground_z, road, extent=max(150.0, config.max_range + 20))]
        # The ego vehicle: nothing may stand where it is.
        taken = [_Footprint(-0.8, 0.0, 2.6, 1.1, 0.0)]

        def count(name: str) -> int:
            low, high = getattr(config, name)
            return int(rng.integers(low, high + 1))

        for _ in range(count("num_walls")):
            side = 1 if rng.random() < 0.5 else -1
            length, depth, height = rng.uniform(5.0, 30.0), rng.uniform(0.3, 12.0), rng.uniform(2.5, 12.0)
            inner = road + sidewalk[0 if side < 0 else 1] + rng.uniform(0.0, 4.0)
            x, y, heading = rng.uniform(x_low - 10, x_high + 10), side * (inner + depth / 2), rng.normal(0.0, 0.03)
            wall = Mesh.box((-length / 2, -depth / 2, 0.0), (length / 2, depth / 2, height), rng.uniform(0.2, 0.6))
            clutter.append(wall.transformed(heading, (x, y, ground_z)))
            taken.append(_Footprint(x, y, length / 2, depth / 2, heading))
        for _ in range(count("num_poles")):
            side = 1 if rng.random() < 0.5 else -1
            x, y = rng.uniform(x_low, x_high + 10), side * (road + rng.uniform(0.3, 0.8))
            radius, height = rng.uniform(0.08, 0.2), rng.uniform(3.0, 9.0)
            if self._place(_Footprint(x, y, radius, radius, 0.0), taken):
                pole = Mesh.cylinder((x, y, ground_z + height / 2), radius, height, reflectivity=rng.uniform(0.3, 0.6))
                clutter.append(pole)
        for _ in range(count("num_vegetation")):
            side = 1 if rng.random() < 0.5 else -1
            x = rng.uniform(x_low, x_high + 10)
            y = side * (road + rng.uniform(0.5, sidewalk[0 if side < 0 else 1] + 3.0))
            reflectivity = rng.uniform(0.3, 0.7)
            if rng.random() < 0.6:  # a tree: trunk and crown
                trunk, crown = rng.uniform(1.8, 3.0), rng.uniform(1.2, 2.8)
                radii = (crown, crown * rng.uniform(0.8, 1.2), crown * rng.uniform(0.7, 1.0))
                centre = (x, y, ground_z + trunk + 0.6 * radii[2])
                parts = [
                    Mesh.cylinder((x, y, ground_z + trunk / 2), rng.uniform(0.12, 0.25), trunk, reflectivity=0.3),
                    Mesh.blob(centre, radii, rng, reflectivity=reflectivity),
                ]
            else:  # a bush
                radii = (rng.uniform(0.6, 1.8), rng.uniform(0.6, 1.8), rng.uniform(0.4, 1.0))
                parts = [Mesh.blob((x, y, ground_z + 0.6 * radii[2]), radii, rng, reflectivity=reflectivity)]
            if self._place(_Footprint(x, y, radii[0], radii[1], 0.0), taken):
                clutter.extend(parts)

        objects: list[SimObject] = []
        for kind, name in (("Car", "num_cars"), ("Pedestrian", "num_pedestrians"), ("Cyclist", "num_cyclists")):
            for _ in range(count(name)):
                size = self._sample_size(kind, rng)
                reflectivity = rng.uniform(0.1, 0.8) if kind == "Car" else rng.uniform(0.1, 0.6)
                for _ in range(_PLACEMENT_TRIES):
                    x, y, heading = self._sample_pose(kind, size, road, sidewalk, rng)
                    footprint = _Footprint(x, y, size[0] / 2, size[1] / 2, heading)
                    if self._inside_scan(x, y) and self._place(footprint, taken):
                        objects.append(SimObject.create(kind, size, x, y, heading, ground_z, reflectivity))
                        break
        return SimScene(objects, clutter)

    # -- scanning ------------------------------------------------------------

    def _ray_tensor(self):
        import open3d as o3d

        if self._rays is None:
            rays = np.concatenate([np.zeros_like(self.directions), self.directions], axis=1)
            self._rays = o3d.core.Tensor(np.ascontiguousarray(rays, dtype=np.float32))
        return self._rays

    def scan(
        self, scene: SimScene, rng: np.random.Generator | int | None = None, crop_to_fov: bool = True
    ) -> SimLidarScan:
        """Scan ``scene`` and label its objects.

        Args:
            scene (SimScene): the scene, e.g. :meth:`sample_scene` or one built by hand.
            rng (np.random.Generator or int, optional): draws the noise and the
                dropout; a seed or ``None`` (seed 0). (default: ``None``)
            crop_to_fov (bool, optional): keep only the points camera 2 sees, as
                :func:`~pointkd.datasets.kitti.load_kitti_frame` does by default.
                (default: ``True``)

        Returns:
            SimLidarScan: the frame (id ``"000000"``) and per-point / per-object details.
        """
        import open3d as o3d

        config = self.config
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(0 if rng is None else rng)
        num_objects = len(scene.objects)
        meshes = [obj.mesh for obj in scene.objects] + list(scene.clutter)
        merged = Mesh.merge(meshes)
        # Owner of each triangle: its object's index, or -1 for clutter.
        owner = np.repeat(
            np.concatenate([np.arange(num_objects), np.full(len(scene.clutter), -1)]).astype(np.int64),
            [len(mesh.triangles) for mesh in meshes],
        )
        raycaster = o3d.t.geometry.RaycastingScene(nthreads=self.num_threads)
        if len(merged.triangles):
            raycaster.add_triangles(
                o3d.core.Tensor(np.ascontiguousarray(merged.vertices, dtype=np.float32)),
                o3d.core.Tensor(np.ascontiguousarray(merged.triangles, dtype=np.uint32)),
            )
        rays = self._ray_tensor()
        cast = raycaster.cast_rays(rays, nthreads=self.num_threads)
        t_hit = cast["t_hit"].numpy()
        hit = np.flatnonzero(t_hit <= config.max_range)
        triangle = cast["primitive_ids"].numpy()[hit].astype(np.int64)
        hit_owner = owner[triangle]

        # Occlusion: of the rays that pass through an object within range, the
        # fraction whose first hit is the object itself.
        visible_rays = np.bincount(hit_owner[hit_owner >= 0], minlength=num_objects)
        through_rays = np.zeros(num_objects, dtype=np.int64)
        if num_objects:
            crossings = raycaster.list_intersections(rays, nthreads=self.num_threads)
            crossing_owner = owner[crossings["primitive_ids"].numpy().astype(np.int64)]
            on_object = (crossing_owner >= 0) & (crossings["t_hit"].numpy() <= config.max_range)
            pairs = np.unique(
                crossings["ray_ids"].numpy()[on_object].astype(np.int64) * num_objects + crossing_owner[on_object]
            )
            through_rays = np.bincount(pairs % num_objects, minlength=num_objects)
        visible_fraction = np.minimum(visible_rays / np.maximum(through_rays, 1), 1.0)

        directions = self.directions[hit].astype(np.float64)
        sigma = config.range_noise
        distance = t_hit[hit] + np.clip(rng.normal(0.0, sigma, len(hit)), -3 * sigma, 3 * sigma)
        keep = (rng.random(len(hit)) >= config.dropout) & (distance > 0) & (distance <= config.max_range)
        incidence = np.abs(np.sum(cast["primitive_normals"].numpy()[hit] * directions, axis=1))
        intensity = merged.reflectivity[triangle] * incidence + rng.normal(0.0, config.intensity_noise, len(hit))
        points = np.concatenate([directions * distance[:, None], np.clip(intensity, 0.0, 1.0)[:, None]], axis=1)
        points = torch.from_numpy(points[keep].astype(np.float32))
        point_owner = hit_owner[keep]

        in_fov = camera_fov_mask(points, self.calib, self.image_size).numpy()
        num_points = np.bincount(point_owner[in_fov & (point_owner >= 0)], minlength=num_objects)
        boxes = torch.from_numpy(np.stack([obj.box for obj in scene.objects])) if num_objects else torch.zeros(0, 7)
        low, high = config.occlusion_thresholds
        blocked = 1 - visible_fraction
        occlusion = torch.from_numpy(np.where(blocked < low, 0, np.where(blocked < high, 1, 2)).astype(np.int64))
        candidates = lidar_boxes_to_objects(
            boxes, [obj.type for obj in scene.objects], self.calib, self.image_size, occlusion=occlusion
        )
        # Label what camera 2 sees and some ray reaches; DontCare (too few points) last.
        seen = [k for k in range(num_objects) if visible_rays[k] > 0 and candidates[k].truncation < 1]
        order = [k for k in seen if num_points[k] >= config.min_points]
        order += [k for k in seen if num_points[k] < config.min_points]
        objects = [
            candidates[k] if num_points[k] >= config.min_points else dataclasses.replace(candidates[k], type="DontCare")
            for k in order
        ]
        frame_index = np.full(num_objects + 1, -1, dtype=np.int64)  # the last entry maps clutter (-1)
        frame_index[order] = np.arange(len(order))
        point_object = torch.from_numpy(frame_index[point_owner])
        if crop_to_fov:
            mask = torch.from_numpy(in_fov)
            points, point_object = points[mask], point_object[mask]
        frame = KittiFrame(
            frame_id="000000",
            points=points,
            calib=self.calib,
            objects=objects,
            boxes=boxes[order].float() if order else torch.zeros(0, 7),
            image_size=self.image_size,
        )
        return SimLidarScan(
            frame=frame,
            point_object=point_object,
            scene_index=torch.tensor(order, dtype=torch.int64),
            num_points=torch.from_numpy(num_points[order].astype(np.int64)),
            visible_fraction=torch.from_numpy(visible_fraction[order].astype(np.float64)),
            scene=scene,
        )

    def simulate(self, index: int, crop_to_fov: bool = True) -> SimLidarScan:
        """Frame ``index`` with per-point and per-object details (:class:`SimLidarScan`).

        Args:
            index (int): frame index, ``>= 0``.
            crop_to_fov (bool, optional): keep only the points camera 2 sees. (default: ``True``)
        """
        _, scan_rng = self._generators(index)
        result = self.scan(self.sample_scene(index), scan_rng, crop_to_fov=crop_to_fov)
        result.frame.frame_id = f"{index:06d}"
        return result

    def frame(self, index: int, crop_to_fov: bool = True) -> KittiFrame:
        """Frame ``index``: what :func:`~pointkd.datasets.kitti.load_kitti_frame` reads
        once :meth:`write_kitti` has written it (labels to the file's precision).

        Args:
            index (int): frame index, ``>= 0``.
            crop_to_fov (bool, optional): keep only the points camera 2 sees. (default: ``True``)
        """
        return self.simulate(index, crop_to_fov=crop_to_fov).frame

    # -- writing -------------------------------------------------------------

    def stamp(self) -> dict:
        """What identifies this generator's output: format version, seed and config."""
        return {
            "generator": "pointkd.datasets.SimLidar",
            "format": FORMAT_VERSION,
            "seed": self.seed,
            "config": self.config.key(),
        }

    def write_kitti(
        self,
        root: str | Path,
        num_frames: int,
        start: int = 0,
        split: str = "training",
        progress: bool = True,
        image_sets: Mapping[str, Iterable[int]] | None = None,
        val_every: int = 5,
        overwrite: bool = False,
    ) -> Path:
        """Write frames ``start, ..., start + num_frames - 1`` in the KITTI layout.

        ``root/split`` gets ``velodyne/NNNNNN.bin`` (the full scan, uncropped),
        ``label_2/NNNNNN.txt``, ``calib/NNNNNN.txt`` and ``image_2/NNNNNN.png``
        (a blank 1-bit image: only its size is read), and ``simlidar.json``,
        the generator's stamp (format version, seed, config); ``root/ImageSets``
        gets the frame lists. Each file is written atomically. A frame whose
        four files exist is skipped: the stamp vouches that the same generator
        wrote it, and generation is deterministic, so rerunning with more frames
        writes only the missing ones.

        Args:
            root (path): the dataset folder (holding ``training``, ``ImageSets``).
            num_frames (int): frames to write.
            start (int, optional): index of the first frame. (default: ``0``)
            split (str, optional): the split folder. (default: ``"training"``)
            progress (bool, optional): show a progress bar. (default: ``True``)
            image_sets (Mapping[str, Iterable[int]], optional): frame lists to write
                as ``ImageSets/<name>.txt``; when ``None``, the frames of
                ``0, ..., start + num_frames - 1`` present on disk: for
                ``"training"`` every ``val_every``-th one (index % val_every ==
                val_every - 1) in ``val.txt`` and the others in ``train.txt``,
                for ``"testing"`` all in ``test.txt``, otherwise all in
                ``<split>.txt``. (default: ``None``)
            val_every (int, optional): see ``image_sets``. (default: ``5``)
            overwrite (bool, optional): regenerate existing frames, and write into
                a split stamped by another generator (or holding other data).
                (default: ``False``)

        Returns:
            Path: ``root``.

        Raises:
            ValueError: bad arguments, or ``root/split`` holds frames of another
                generator (a different config, seed or format) and ``overwrite``
                is not set.
        """
        from geokd.log import progress as progress_bar

        for name, value, low in (("num_frames", num_frames, 0), ("start", start, 0), ("val_every", val_every, 2)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not split or "/" in split or "\\" in split or split in (".", ".."):
            raise ValueError(f"split must be a folder name such as 'training', got {split!r}")
        root = Path(root)
        folder = root / split
        self._claim(folder, overwrite)
        indices = range(int(start), int(start) + int(num_frames))
        iterator = progress_bar(indices, desc=f"SimLidar {split}", unit="frame") if progress else indices
        for index in iterator:
            paths = _frame_paths(folder, f"{index:06d}")
            if not overwrite and all(path.is_file() for path in paths.values()):
                continue
            result = self.simulate(index, crop_to_fov=False)
            write_calibration(paths["calib"], self.calib)
            write_bytes_atomic(paths["image"], _blank_png(*self.image_size))
            write_bytes_atomic(paths["velodyne"], result.frame.points.numpy().astype(np.float32).tobytes())
            write_labels(paths["label"], result.frame.objects)  # last: its presence marks a whole frame
        if image_sets is None:
            present = [
                index
                for index in range(int(start) + int(num_frames))
                if all(path.is_file() for path in _frame_paths(folder, f"{index:06d}").values())
            ]
            if split == "training":
                image_sets = {
                    "train": [i for i in present if i % val_every != val_every - 1],
                    "val": [i for i in present if i % val_every == val_every - 1],
                }
            else:
                image_sets = {"test" if split == "testing" else split: present}
        for name, frame_indices in image_sets.items():
            lines = "".join(f"{int(index):06d}\n" for index in frame_indices)
            write_bytes_atomic(root / "ImageSets" / f"{name}.txt", lines.encode())
        return root

    def _claim(self, folder: Path, overwrite: bool) -> None:
        """Check (or write) ``folder``'s stamp."""
        stamp_path = folder / "simlidar.json"
        stamp = self.stamp()
        if stamp_path.is_file():
            try:
                existing = json.loads(stamp_path.read_text())
            except json.JSONDecodeError:
                existing = None
            if existing == stamp:
                return
            if not overwrite:
                differ = (
                    sorted(key for key in stamp if existing.get(key) != stamp[key])
                    if isinstance(existing, dict)
                    else ["(unreadable stamp)"]
                )
                raise ValueError(
                    f"{folder} holds SimLidar frames of another generator (differs in {', '.join(differ)}); "
                    "write to another folder or pass overwrite=True"
                )
        elif (folder / "velodyne").is_dir() and any((folder / "velodyne").iterdir()) and not overwrite:
            raise ValueError(f"{folder} already holds frames not written by SimLidar; pass overwrite=True to mix them")
        write_bytes_atomic(stamp_path, (json.dumps(stamp, indent=1, sort_keys=True) + "\n").encode())


@cache
def _blank_png(height: int, width: int) -> bytes:
    """A black 1-bit PNG of the image size (a few hundred bytes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (width, height), 0).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _frame_paths(folder: Path, frame_id: str) -> dict[str, Path]:
    return {
        "calib": folder / "calib" / f"{frame_id}.txt",
        "image": folder / "image_2" / f"{frame_id}.png",
        "velodyne": folder / "velodyne" / f"{frame_id}.bin",
        "label": folder / "label_2" / f"{frame_id}.txt",
    }


def simlidar_key(config: SimLidarConfig | None = None, seed: int = 0) -> str:
    """A short hash of ``(config, seed)`` and the format version: the cache folder's name.

    Args:
        config (SimLidarConfig, optional): the defaults when ``None``. (default: ``None``)
        seed (int, optional): (default: ``0``)
    """
    stamp = SimLidar(config, seed).stamp()
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


def simlidar_root(num_frames: int, seed: int = 0, config: SimLidarConfig | None = None, progress: bool = True) -> Path:
    """A KITTI-layout folder of ``num_frames`` simulated frames, generated once.

    The folder is ``<cache_root>/simlidar/<key>`` with ``key`` a hash of
    ``(config, seed)`` (:func:`simlidar_key`); the first call writes the
    frames (holding :func:`geokd.paths.dataset_lock`, so concurrent processes
    wait rather than write twice), later calls find them and write only those
    missing. Its ``ImageSets`` list frames ``0 ... num_frames - 1`` (see
    :meth:`SimLidar.write_kitti`).

    Args:
        num_frames (int): frames in ``training``.
        seed (int, optional): (default: ``0``)
        config (SimLidarConfig, optional): the defaults when ``None``. (default: ``None``)
        progress (bool, optional): show a progress bar while generating. (default: ``True``)

    Returns:
        Path: the folder (pass it to :func:`~pointkd.datasets.kitti.load_kitti_frame`).
    """
    from geokd.paths import cache_root, dataset_lock

    sim = SimLidar(config, seed)
    root = cache_root() / "simlidar" / simlidar_key(sim.config, seed)
    with dataset_lock(root):
        sim.write_kitti(root, num_frames, progress=progress)
    return root
