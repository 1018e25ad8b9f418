r"""Reading the `KITTI 3D object <https://www.cvlibs.net/datasets/kitti/eval_object.php>`_ layout.

A frame ``NNNNNN`` of a split folder (``training`` or ``testing``) is

- ``velodyne/NNNNNN.bin``: float32 ``(x, y, z, reflectance)`` rows in the LiDAR
  frame (x forward, y left, z up);
- ``calib/NNNNNN.txt``: ``P2`` (3x4 projection of the left colour camera in
  rectified coordinates), ``R0_rect`` (3x3 rectifying rotation),
  ``Tr_velo_to_cam`` (3x4 LiDAR to reference camera);
- ``label_2/NNNNNN.txt``: one object per line, 15 values (16 with a score):
  type, truncation, occlusion, alpha, 2D box (left, top, right, bottom),
  dimensions (height, width, length), location (x, y, z of the bottom centre
  in rectified camera coordinates: x right, y down, z forward), rotation_y;
- ``image_2/NNNNNN.png``: the left colour image (only its size is used here).

LiDAR boxes are ``(x, y, z, length, width, height, yaw)`` with ``(x, y, z)``
the box centre in the LiDAR frame and ``yaw`` the heading about the LiDAR
:math:`z` axis, :math:`\text{yaw} = -\text{rotation\_y} - \pi / 2`, the
convention of OpenPCDet.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from pointkd.datasets.io import read_points

CLASSES = ("Car", "Pedestrian", "Cyclist")

# KITTI's difficulty levels: minimum 2D box height in pixels, maximum
# occlusion level, maximum truncation (the official devkit's thresholds).
DIFFICULTY_MIN_HEIGHT = (40.0, 25.0, 25.0)
DIFFICULTY_MAX_OCCLUSION = (0, 1, 2)
DIFFICULTY_MAX_TRUNCATION = (0.15, 0.30, 0.50)
DIFFICULTY_NAMES = ("easy", "moderate", "hard")


def read_velodyne(path: str | Path) -> Tensor:
    """Points of a KITTI ``.bin`` scan, ``(N, 4)`` float32 ``(x, y, z, reflectance)``:
    :func:`pointkd.datasets.io.read_points` with 4 values per row (same errors)."""
    return read_points(path, num_features=4)


def _parse_matrix(path: Path, key: str, values: list[str], shape: tuple[int, int]) -> Tensor:
    try:
        numbers = [float(value) for value in values]
    except ValueError as error:
        raise ValueError(f"{path}: {key} holds a non-number ({error})") from None
    if len(numbers) != shape[0] * shape[1]:
        raise ValueError(f"{path}: {key} must have {shape[0] * shape[1]} values, got {len(numbers)}")
    return torch.tensor(numbers, dtype=torch.float64).view(shape)


@dataclass(frozen=True)
class Calibration:
    """The matrices of a KITTI ``calib`` file that LiDAR-camera geometry needs.

    Args:
        P2 (Tensor): ``(3, 4)`` projection of rectified camera coordinates to image 2 pixels.
        R0_rect (Tensor): ``(3, 3)`` rectifying rotation.
        Tr_velo_to_cam (Tensor): ``(3, 4)`` LiDAR to (unrectified) camera.
    """

    P2: Tensor
    R0_rect: Tensor
    Tr_velo_to_cam: Tensor

    @classmethod
    def from_file(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {path} does not exist")
        entries: dict[str, list[str]] = {}
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, rest = line.partition(":")
            if not sep:
                raise ValueError(f"{path}:{number}: expected 'KEY: values', got {line[:60]!r}")
            entries[key.strip()] = rest.split()
        shapes = {"P2": (3, 4), "R0_rect": (3, 3), "Tr_velo_to_cam": (3, 4)}
        missing = [key for key in shapes if key not in entries]
        if missing:
            raise ValueError(f"{path}: missing {', '.join(missing)}")
        return cls(**{key: _parse_matrix(path, key, entries[key], shape) for key, shape in shapes.items()})

    @property
    def velo_to_rect(self) -> Tensor:
        """``(4, 4)`` LiDAR to rectified camera coordinates."""
        transform = torch.eye(4, dtype=torch.float64)
        transform[:3, :4] = self.R0_rect @ self.Tr_velo_to_cam
        return transform

    def lidar_to_rect(self, points: Tensor) -> Tensor:
        """``(N, 3)`` LiDAR points to rectified camera coordinates."""
        transform = self.velo_to_rect.to(points.dtype)
        return points[:, :3] @ transform[:3, :3].T + transform[:3, 3]

    def rect_to_lidar(self, points: Tensor) -> Tensor:
        """``(N, 3)`` rectified camera points to the LiDAR frame."""
        transform = torch.linalg.inv(self.velo_to_rect).to(points.dtype)
        return points[:, :3] @ transform[:3, :3].T + transform[:3, 3]

    def rect_to_image(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Pixels ``(N, 2)`` of rectified camera points and their depth ``(N,)``."""
        projection = self.P2.to(points.dtype)
        homogeneous = points[:, :3] @ projection[:, :3].T + projection[:, 3]
        depth = homogeneous[:, 2]
        return homogeneous[:, :2] / depth[:, None], depth


@dataclass(frozen=True)
class KittiObject:
    """One line of a ``label_2`` file (see the module docstring for the fields)."""

    type: str
    truncation: float
    occlusion: int
    alpha: float
    box2d: tuple[float, float, float, float]
    dimensions: tuple[float, float, float]  # height, width, length
    location: tuple[float, float, float]
    rotation_y: float
    score: float | None = None

    @property
    def box2d_height(self) -> float:
        return self.box2d[3] - self.box2d[1]

    @property
    def difficulty(self) -> int:
        """0 (easy), 1 (moderate), 2 (hard), or -1 when it meets none of the levels."""
        for level in range(3):
            if (
                self.box2d_height >= DIFFICULTY_MIN_HEIGHT[level]
                and self.occlusion <= DIFFICULTY_MAX_OCCLUSION[level]
                and self.truncation <= DIFFICULTY_MAX_TRUNCATION[level]
            ):
                return level
        return -1


def parse_label_line(line: str, where: str = "label") -> KittiObject:
    """A :class:`KittiObject` from one ``label_2`` line; ``where`` names it in errors."""
    values = line.split()
    if len(values) not in (15, 16):
        raise ValueError(f"{where}: expected 15 values (16 with a score), got {len(values)}: {line[:80]!r}")
    try:
        numbers = [float(value) for value in values[1:]]
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    if not all(math.isfinite(number) for number in numbers):
        raise ValueError(f"{where}: non-finite value in {line[:80]!r}")
    return KittiObject(
        type=values[0],
        truncation=numbers[0],
        occlusion=int(numbers[1]),
        alpha=numbers[2],
        box2d=tuple(numbers[3:7]),
        dimensions=tuple(numbers[7:10]),
        location=tuple(numbers[10:13]),
        rotation_y=numbers[13],
        score=numbers[14] if len(numbers) == 15 else None,
    )


def read_labels(path: str | Path) -> list[KittiObject]:
    """All objects of a ``label_2`` file (an empty file is a frame without objects)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} does not exist")
    return [
        parse_label_line(line, f"{path}:{number}")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.strip()
    ]


def objects_to_lidar_boxes(objects: list[KittiObject], calib: Calibration) -> Tensor:
    """LiDAR boxes ``(M, 7)`` ``(x, y, z, length, width, height, yaw)`` of the objects, float32."""
    if not objects:
        return torch.zeros(0, 7)
    dimensions = torch.tensor([obj.dimensions for obj in objects], dtype=torch.float64)  # h, w, l
    location = torch.tensor([obj.location for obj in objects], dtype=torch.float64)
    rotation_y = torch.tensor([obj.rotation_y for obj in objects], dtype=torch.float64)
    height, width, length = dimensions.unbind(1)
    bottom = calib.rect_to_lidar(location)
    centre = bottom + torch.stack([torch.zeros_like(height), torch.zeros_like(height), height / 2], dim=1)
    yaw = -rotation_y - math.pi / 2
    return torch.cat([centre, torch.stack([length, width, height, yaw], dim=1)], dim=1).float()


def lidar_box_corners(boxes: Tensor) -> Tensor:
    """The 8 corners ``(M, 8, 3)`` of LiDAR boxes ``(M, 7)``."""
    signs = torch.tensor(
        [[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1], [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]],
        dtype=boxes.dtype,
    )
    half = boxes[:, None, 3:6] / 2 * signs
    cos, sin = torch.cos(boxes[:, 6])[:, None], torch.sin(boxes[:, 6])[:, None]
    x = half[..., 0] * cos - half[..., 1] * sin
    y = half[..., 0] * sin + half[..., 1] * cos
    return torch.stack([x, y, half[..., 2]], dim=-1) + boxes[:, None, :3]


def points_in_boxes(points: Tensor, boxes: Tensor) -> Tensor:
    """Boolean ``(N, M)``: whether LiDAR point ``n`` lies inside box ``m``."""
    offset = points[:, None, :3] - boxes[None, :, :3]
    cos, sin = torch.cos(boxes[:, 6]), torch.sin(boxes[:, 6])
    local_x = offset[..., 0] * cos + offset[..., 1] * sin
    local_y = -offset[..., 0] * sin + offset[..., 1] * cos
    return (
        (local_x.abs() <= boxes[:, 3] / 2)
        & (local_y.abs() <= boxes[:, 4] / 2)
        & (offset[..., 2].abs() <= boxes[:, 5] / 2)
    )


def camera_fov_mask(points: Tensor, calib: Calibration, image_size: tuple[int, int]) -> Tensor:
    """Points in front of camera 2 whose projection falls inside the image ``(height, width)``."""
    pixels, depth = calib.rect_to_image(calib.lidar_to_rect(points[:, :3].double()))
    height, width = image_size
    return (depth > 0) & (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)


@dataclass
class KittiFrame:
    """One frame: points (camera-FOV cropped when asked), calibration, objects and LiDAR boxes."""

    frame_id: str
    points: Tensor
    calib: Calibration
    objects: list[KittiObject]
    boxes: Tensor
    image_size: tuple[int, int] | None


def load_kitti_frame(root: str | Path, frame_id: str, split: str = "training", crop_to_fov: bool = True) -> KittiFrame:
    """Read frame ``frame_id`` of ``root/split`` (labels are optional, e.g. in ``testing``).

    With ``crop_to_fov`` the points are kept only where camera 2 sees them (the
    KITTI benchmark's convention); the image size comes from ``image_2``, and
    the crop needs it.
    """
    folder = Path(root) / split
    points = read_velodyne(folder / "velodyne" / f"{frame_id}.bin")
    calib = Calibration.from_file(folder / "calib" / f"{frame_id}.txt")
    label_path = folder / "label_2" / f"{frame_id}.txt"
    objects = read_labels(label_path) if label_path.is_file() else []
    image_path = folder / "image_2" / f"{frame_id}.png"
    image_size = None
    if image_path.is_file():
        from PIL import Image

        with Image.open(image_path) as image:
            image_size = (image.height, image.width)
    if crop_to_fov:
        if image_size is None:
            raise FileNotFoundError(
                f"{image_path} is needed to crop frame {frame_id} to the camera's field of view "
                "(pass crop_to_fov=False to keep the full scan)"
            )
        points = points[camera_fov_mask(points, calib, image_size)]
    return KittiFrame(frame_id, points, calib, objects, objects_to_lidar_boxes(objects, calib), image_size)


# ---------------------------------------------------------------------------
# Writing the layout: labels from LiDAR boxes, label and calibration files.
# ---------------------------------------------------------------------------

# Boxes are clipped to this depth (metres in front of the rectified camera)
# before projection: corners behind the camera have no meaningful pixel.
NEAR_PLANE = 0.1

# The 12 edges of a box, as pairs of corners in lidar_box_corners' order.
_BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))

# KITTI's stereo baseline (camera 0 to camera 1, camera 2 to camera 3), metres.
_STEREO_BASELINE = 0.537


def _wrap_angle(angle: Tensor) -> Tensor:
    r"""Angles wrapped to :math:`[-\pi, \pi)`."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def image_boxes(boxes: Tensor, calib: Calibration, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    r"""2D boxes of LiDAR boxes in image 2 and the fraction of each outside the image.

    The box is first clipped to the near plane (depth :data:`NEAR_PLANE` in
    rectified camera coordinates: the corners behind it are replaced by the
    points where the box's edges cross it), then its corners are projected
    with ``P2``. The projected extent :math:`B` is clipped to the image
    :math:`I = [0, W - 1] \times [0, H - 1]`, and

    .. math::
        \text{truncation} = 1 - \frac{|B \cap I|}{|B|}.

    A box wholly behind the near plane gets ``(0, 0, 0, 0)``; one wholly beside
    the image gets a zero-area box on the image border. Both have truncation 1.

    Args:
        boxes (Tensor): LiDAR boxes ``(x, y, z, length, width, height, yaw)``.
        calib (Calibration): the frame's calibration.
        image_size (tuple[int, int]): ``(height, width)`` of image 2.

    Returns:
        tuple[Tensor, Tensor]: ``(left, top, right, bottom)`` pixels and truncation in ``[0, 1]``, float64.

    Shapes:
        ``boxes``: ``(M, 7)``; returns ``(M, 4)`` and ``(M,)``.
    """
    boxes = torch.as_tensor(boxes).double()
    if boxes.dim() != 2 or boxes.shape[1] != 7:
        raise ValueError(f"boxes must have shape (M, 7), got {tuple(boxes.shape)}")
    height, width = image_size
    num_boxes = boxes.shape[0]
    corners = calib.lidar_to_rect(lidar_box_corners(boxes).reshape(-1, 3)).reshape(num_boxes, 8, 3)
    start = corners[:, [edge[0] for edge in _BOX_EDGES]]
    end = corners[:, [edge[1] for edge in _BOX_EDGES]]
    start_depth, end_depth = start[..., 2] - NEAR_PLANE, end[..., 2] - NEAR_PLANE
    crossing = start_depth * end_depth < 0
    fraction = start_depth / torch.where(crossing, start_depth - end_depth, torch.ones_like(start_depth))
    crossings = start + fraction[..., None] * (end - start)
    candidates = torch.cat([corners, crossings], dim=1)  # (M, 20, 3)
    valid = torch.cat([corners[..., 2] >= NEAR_PLANE, crossing], dim=1)
    # Keep the projection finite for the invalid candidates; they are masked below.
    candidates = torch.where(valid[..., None], candidates, torch.ones_like(candidates))
    pixels, _ = calib.rect_to_image(candidates.reshape(-1, 3))
    pixels = pixels.reshape(num_boxes, -1, 2)
    inf = torch.full_like(pixels[..., 0], math.inf)
    u_min = torch.where(valid, pixels[..., 0], inf).amin(dim=1)
    v_min = torch.where(valid, pixels[..., 1], inf).amin(dim=1)
    u_max = torch.where(valid, pixels[..., 0], -inf).amax(dim=1)
    v_max = torch.where(valid, pixels[..., 1], -inf).amax(dim=1)
    visible = valid.any(dim=1)
    full_area = (u_max - u_min) * (v_max - v_min)
    left, right = u_min.clamp(0, width - 1), u_max.clamp(0, width - 1)
    top, bottom = v_min.clamp(0, height - 1), v_max.clamp(0, height - 1)
    clipped_area = (right - left) * (bottom - top)
    has_area = visible & (full_area > 0)
    truncation = torch.where(
        has_area, 1 - clipped_area / torch.where(has_area, full_area, torch.ones_like(full_area)), 1.0
    )
    box2d = torch.stack([left, top, right, bottom], dim=1)
    box2d = torch.where(visible[:, None], box2d, torch.zeros_like(box2d))
    return box2d, truncation.clamp(0, 1)


def lidar_boxes_to_objects(
    boxes: Tensor,
    types: list[str] | tuple[str, ...],
    calib: Calibration,
    image_size: tuple[int, int],
    truncation: Tensor | None = None,
    occlusion: Tensor | None = None,
    scores: Tensor | None = None,
) -> list[KittiObject]:
    r"""KITTI objects of LiDAR boxes: the inverse of :func:`objects_to_lidar_boxes`.

    The location is the box's bottom centre in rectified camera coordinates,
    the dimensions ``(height, width, length)``, and

    .. math::
        \text{rotation\_y} = \operatorname{wrap}(-\text{yaw} - \pi / 2), \qquad
        \alpha = \operatorname{wrap}(\text{rotation\_y} - \operatorname{atan2}(x, z)),

    with :math:`(x, z)` the location's rectified camera coordinates (KITTI's
    observation angle) and wrap to :math:`[-\pi, \pi)`. The 2D box is the
    box's projection clipped to the image (:func:`image_boxes`): a box wholly
    behind the camera gets ``(0, 0, 0, 0)`` and truncation 1.

    Args:
        boxes (Tensor): LiDAR boxes ``(x, y, z, length, width, height, yaw)``.
        types (list[str]): object type of each box (``"Car"``, ...).
        calib (Calibration): the frame's calibration.
        image_size (tuple[int, int]): ``(height, width)`` of image 2.
        truncation (Tensor, optional): truncation per box; computed from the
            projection when ``None``. (default: ``None``)
        occlusion (Tensor, optional): occlusion level per box; 0 when ``None``.
            (default: ``None``)
        scores (Tensor, optional): detection scores (written as a 16th value);
            none when ``None``. (default: ``None``)

    Returns:
        list[KittiObject]: one object per box, in order.

    Shapes:
        ``boxes``: ``(M, 7)``; ``truncation``, ``occlusion``, ``scores``: ``(M,)``.
    """
    boxes = torch.as_tensor(boxes).double()
    if boxes.dim() != 2 or boxes.shape[1] != 7:
        raise ValueError(f"boxes must have shape (M, 7), got {tuple(boxes.shape)}")
    num_boxes = boxes.shape[0]
    if len(types) != num_boxes:
        raise ValueError(f"types must have one entry per box ({num_boxes}), got {len(types)}")
    for name, values in (("truncation", truncation), ("occlusion", occlusion), ("scores", scores)):
        if values is not None and len(values) != num_boxes:
            raise ValueError(f"{name} must have one entry per box ({num_boxes}), got {len(values)}")
    if num_boxes == 0:
        return []
    bottom = boxes[:, :3].clone()
    bottom[:, 2] -= boxes[:, 5] / 2
    location = calib.lidar_to_rect(bottom)
    rotation_y = _wrap_angle(-boxes[:, 6] - math.pi / 2)
    alpha = _wrap_angle(rotation_y - torch.atan2(location[:, 0], location[:, 2]))
    box2d, computed_truncation = image_boxes(boxes, calib, image_size)
    truncation = computed_truncation if truncation is None else torch.as_tensor(truncation).double()
    occlusion = torch.zeros(num_boxes, dtype=torch.int64) if occlusion is None else torch.as_tensor(occlusion)
    return [
        KittiObject(
            type=str(types[index]),
            truncation=float(truncation[index]),
            occlusion=int(occlusion[index]),
            alpha=float(alpha[index]),
            box2d=tuple(float(value) for value in box2d[index]),
            dimensions=(float(boxes[index, 5]), float(boxes[index, 4]), float(boxes[index, 3])),
            location=tuple(float(value) for value in location[index]),
            rotation_y=float(rotation_y[index]),
            score=None if scores is None else float(scores[index]),
        )
        for index in range(num_boxes)
    ]


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so that readers
    never see a half-written file (the parent folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def format_label_line(obj: KittiObject) -> str:
    """One ``label_2`` line: KITTI's 15 values with 2 decimals, a 16th (the score) with 4."""
    if not obj.type or any(char.isspace() for char in obj.type):
        raise ValueError(f"object type must be a non-empty word, got {obj.type!r}")
    numbers = (obj.truncation, obj.alpha, *obj.box2d, *obj.dimensions, *obj.location, obj.rotation_y)
    if not all(math.isfinite(number) for number in numbers) or (obj.score is not None and not math.isfinite(obj.score)):
        raise ValueError(f"{obj.type} object holds a non-finite value: {obj}")
    line = f"{obj.type} {obj.truncation:.2f} {int(obj.occlusion)} {obj.alpha:.2f} " + " ".join(
        f"{value:.2f}" for value in (*obj.box2d, *obj.dimensions, *obj.location, obj.rotation_y)
    )
    return line if obj.score is None else f"{line} {obj.score:.4f}"


def write_labels(path: str | Path, objects: list[KittiObject]) -> None:
    """Write a ``label_2`` file (atomically; no objects gives an empty file) that
    :func:`read_labels` reads back to the written precision.

    Args:
        path (path): the ``.txt`` file.
        objects (list[KittiObject]): the objects, one line each, in order (KITTI,
            and tools such as OpenPCDet that rely on it, put ``DontCare`` last).
    """
    write_bytes_atomic(path, "".join(format_label_line(obj) + "\n" for obj in objects).encode())


def _matrix_line(key: str, matrix: Tensor) -> str:
    return f"{key}: " + " ".join(f"{float(value):.12e}" for value in matrix.reshape(-1))


def write_calibration(path: str | Path, calib: Calibration) -> None:
    """Write a KITTI ``calib`` file (atomically) that :meth:`Calibration.from_file` reads back.

    Besides ``P2``, ``R0_rect`` and ``Tr_velo_to_cam``, KITTI files hold
    ``P0``, ``P1``, ``P3`` and ``Tr_imu_to_velo``, which some tools expect;
    :class:`Calibration` does not keep them, so they are written from ``P2``'s
    intrinsics with KITTI's nominal rig: ``P0 = K [I | 0]``, cameras 1 and 3
    0.537 m to the right of cameras 0 and 2, and the IMU about 0.8 m behind and
    below the LiDAR.

    Args:
        path (path): the ``.txt`` file.
        calib (Calibration): the calibration.
    """
    intrinsics = calib.P2[:, :3].double()
    focal = float(intrinsics[0, 0])
    p0 = torch.cat([intrinsics, torch.zeros(3, 1, dtype=torch.float64)], dim=1)
    p1 = p0.clone()
    p1[0, 3] = -focal * _STEREO_BASELINE
    p3 = calib.P2.double().clone()
    p3[0, 3] -= focal * _STEREO_BASELINE
    imu_to_velo = torch.tensor(
        [[1.0, 0.0, 0.0, -0.81], [0.0, 1.0, 0.0, 0.32], [0.0, 0.0, 1.0, -0.80]], dtype=torch.float64
    )
    lines = [
        _matrix_line("P0", p0),
        _matrix_line("P1", p1),
        _matrix_line("P2", calib.P2),
        _matrix_line("P3", p3),
        _matrix_line("R0_rect", calib.R0_rect),
        _matrix_line("Tr_velo_to_cam", calib.Tr_velo_to_cam),
        _matrix_line("Tr_imu_to_velo", imu_to_velo),
    ]
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())


# Image 2 size (height, width) of the KITTI recordings of 2011-09-26.
KITTI_IMAGE_SIZE = (375, 1242)


def kitti_default_calibration() -> Calibration:
    """The calibration of the KITTI recordings of 2011-09-26 (most object-benchmark
    frames): focal length 721.5 px, principal point (609.6, 172.9), camera 0
    about 0.27 m ahead of and 0.08 m below the LiDAR; image 2 is
    :data:`KITTI_IMAGE_SIZE` ``(375, 1242)``.

    The values have 7 significant digits, so they survive
    :func:`write_calibration` and :meth:`Calibration.from_file` exactly.
    """
    p2 = [
        [7.215377e02, 0.0, 6.095593e02, 4.485728e01],
        [0.0, 7.215377e02, 1.728540e02, 2.163791e-01],
        [0.0, 0.0, 1.0, 2.745884e-03],
    ]
    r0_rect = [
        [9.999239e-01, 9.837760e-03, -7.445048e-03],
        [-9.869795e-03, 9.999421e-01, -4.278459e-03],
        [7.402527e-03, 4.351614e-03, 9.999631e-01],
    ]
    velo_to_cam = [
        [7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
        [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
        [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01],
    ]
    return Calibration(
        P2=torch.tensor(p2, dtype=torch.float64),
        R0_rect=torch.tensor(r0_rect, dtype=torch.float64),
        Tr_velo_to_cam=torch.tensor(velo_to_cam, dtype=torch.float64),
    )
