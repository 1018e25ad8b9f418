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
