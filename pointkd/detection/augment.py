r"""Training-time augmentation of LiDAR scans and their boxes, as in OpenPCDet.

`SECOND <https://www.mdpi.com/1424-8220/18/10/3337>`_ introduced the recipe
that `PointPillars <https://arxiv.org/abs/1812.05784>`_ and most LiDAR
detectors train with, in this order:

1. ground-truth sampling (:class:`GroundTruthSampler`): paste objects cropped
   from other scans, where they do not collide with the scene's boxes;
2. a random flip across the x axis (:func:`random_flip_x`);
3. a random rotation about z (:func:`global_rotation`);
4. a random scaling (:func:`global_scaling`).

:class:`AugmentConfig` applies them in that order. Points are ``(N, C)`` with
columns ``x, y, z`` then features; boxes are ``(M, 7)``
``(x, y, z, dx, dy, dz, heading)`` (centre, sizes, heading about :math:`+z`
from :math:`+x`), or ``(M, 9)`` with velocities ``(vx, vy)`` appended as
nuScenes' boxes. Every function draws its randomness from the
``torch.Generator`` it is given (one draw per call, whether or not it changes
anything), so a seeded generator replays the same augmentation, and returns
new tensors, leaving its inputs untouched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from geokd.checkpoint import atomic_save
from pointkd.datasets.kitti import points_in_boxes
from pointkd.detection.box_coder import limit_period
from pointkd.detection.iou import boxes_iou_bev

DEFAULT_SAMPLE_GROUPS = {"Car": 15, "Pedestrian": 10, "Cyclist": 10}

# Saved databases carry this marker and version; load refuses newer versions.
DATABASE_FORMAT = "pointkd.gt_database"
DATABASE_VERSION = 1


def _check_matrix(value: Tensor, name: str, columns: Collection[int] | None = None, min_columns: int = 3) -> None:
    """``value`` must be a 2-D tensor with ``columns`` (or at least ``min_columns``) columns."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    if value.dim() != 2 or (value.shape[1] not in columns if columns else value.shape[1] < min_columns):
        expected = " or ".join(f"(*, {count})" for count in columns) if columns else f"(*, >= {min_columns})"
        raise ValueError(f"{name} must have shape {expected}, got {list(value.shape)}")


def _check_scene(points: Tensor, boxes: Tensor) -> None:
    _check_matrix(points, "points")
    _check_matrix(boxes, "boxes", columns=(7, 9))


def _check_names(boxes: Tensor, names: Sequence[str]) -> list[str]:
    names = list(names)
    if len(names) != boxes.shape[0]:
        raise ValueError(f"names must hold one class name per box: {len(names)} names for {boxes.shape[0]} boxes")
    return names


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    draw = torch.rand((), generator=generator, dtype=torch.float64, device=generator.device).item()
    return low + (high - low) * draw


def _check_range(values: Sequence[float], name: str, positive: bool = False) -> tuple[float, float]:
    low, high = (float(value) for value in values)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high) or (positive and low <= 0):
        condition = "0 < low <= high" if positive else "low <= high"
        raise ValueError(f"{name} must be finite (low, high) with {condition}, got {tuple(values)}")
    return low, high


def random_flip_x(
    points: Tensor, boxes: Tensor, generator: torch.Generator, probability: float = 0.5
) -> tuple[Tensor, Tensor]:
    r"""With probability ``probability``, mirror the scene across the x axis (OpenPCDet's flip along x).

    .. math::
        (x, y, z) \mapsto (x, -y, z), \qquad \theta \mapsto \operatorname{wrap}(-\theta),\qquad
        (v_x, v_y) \mapsto (v_x, -v_y),

    with :math:`\operatorname{wrap}` into :math:`[-\pi, \pi)`.

    Args:
        points (Tensor): the scan.
        boxes (Tensor): its boxes.
        generator (torch.Generator): the source of the one coin toss.
        probability (float): chance of flipping. (default: ``0.5``)

    Shapes:
        - points: :math:`(N, C)`, :math:`C \ge 3`.
        - boxes: :math:`(M, 7)` or :math:`(M, 9)`.
        - output: ``(points, boxes)``, same shapes.
    """
    _check_scene(points, boxes)
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    points, boxes = points.clone(), boxes.clone()
    if _uniform(generator, 0.0, 1.0) < probability:
        points[:, 1] = -points[:, 1]
        boxes[:, 1] = -boxes[:, 1]
        boxes[:, 6] = limit_period(-boxes[:, 6])
        if boxes.shape[1] == 9:
            boxes[:, 8] = -boxes[:, 8]
    return points, boxes


def _rotate_z(xy: Tensor, angle: float) -> Tensor:
    cos, sin = math.cos(angle), math.sin(angle)
    return torch.stack([xy[:, 0] * cos - xy[:, 1] * sin, xy[:, 0] * sin + xy[:, 1] * cos], dim=1)


def global_rotation(
    points: Tensor,
    boxes: Tensor,
    generator: torch.Generator,
    angle_range: tuple[float, float] = (-math.pi / 4, math.pi / 4),
) -> tuple[Tensor, Tensor]:
    r"""Rotate the scene about the :math:`z` axis by :math:`\alpha \sim U(\text{angle\_range})`.

    .. math::
        \begin{pmatrix} x \\ y \end{pmatrix} \mapsto
        \begin{pmatrix} \cos\alpha & -\sin\alpha \\ \sin\alpha & \cos\alpha \end{pmatrix}
        \begin{pmatrix} x \\ y \end{pmatrix},
        \qquad \theta \mapsto \operatorname{wrap}(\theta + \alpha) \in [-\pi, \pi),

    for points, box centres and (for 9-column boxes) velocities.

    Args:
        points (Tensor): the scan.
        boxes (Tensor): its boxes.
        generator (torch.Generator): the source of the angle.
        angle_range (tuple[float, float]): ``(low, high)`` in radians.
            (default: ``(-pi / 4, pi / 4)``)

    Shapes:
        - points: :math:`(N, C)`, :math:`C \ge 3`.
        - boxes: :math:`(M, 7)` or :math:`(M, 9)`.
        - output: ``(points, boxes)``, same shapes.
    """
    _check_scene(points, boxes)
    low, high = _check_range(angle_range, "angle_range")
    angle = _uniform(generator, low, high)
    points, boxes = points.clone(), boxes.clone()
    points[:, :2] = _rotate_z(points[:, :2], angle)
    boxes[:, :2] = _rotate_z(boxes[:, :2], angle)
    boxes[:, 6] = limit_period(boxes[:, 6] + angle)
    if boxes.shape[1] == 9:
        boxes[:, 7:9] = _rotate_z(boxes[:, 7:9], angle)
    return points, boxes


def global_scaling(
    points: Tensor,
    boxes: Tensor,
    generator: torch.Generator,
    scale_range: tuple[float, float] = (0.95, 1.05),
) -> tuple[Tensor, Tensor]:
    r"""Scale the scene about the origin by :math:`s \sim U(\text{scale\_range})`.

    .. math::
        (x, y, z) \mapsto s\,(x, y, z),\qquad (dx, dy, dz) \mapsto s\,(dx, dy, dz),\qquad
        (v_x, v_y) \mapsto s\,(v_x, v_y).

    Args:
        points (Tensor): the scan.
        boxes (Tensor): its boxes.
        generator (torch.Generator): the source of the scale.
        scale_range (tuple[float, float]): ``(low, high)``, positive.
            (default: ``(0.95, 1.05)``)

    Shapes:
        - points: :math:`(N, C)`, :math:`C \ge 3`.
        - boxes: :math:`(M, 7)` or :math:`(M, 9)`.
        - output: ``(points, boxes)``, same shapes.
    """
    _check_scene(points, boxes)
    low, high = _check_range(scale_range, "scale_range", positive=True)
    scale = _uniform(generator, low, high)
    points, boxes = points.clone(), boxes.clone()
    points[:, :3] *= scale
    boxes[:, :6] *= scale
    if boxes.shape[1] == 9:
        boxes[:, 7:9] *= scale
    return points, boxes


def _range_bounds(point_cloud_range: Sequence[float], like: Tensor) -> tuple[Tensor, Tensor]:
    values = [float(value) for value in point_cloud_range]
    if len(values) != 6:
        raise ValueError(f"point_cloud_range must be (x0, y0, z0, x1, y1, z1), got {tuple(point_cloud_range)}")
    return like.new_tensor(values[:3]), like.new_tensor(values[3:])


def filter_points_in_range(points: Tensor, point_cloud_range: Sequence[float]) -> Tensor:
    r"""The points inside the half-open range :math:`[x_0, x_1) \times [y_0, y_1) \times [z_0, z_1)`.

    The same test as :func:`~pointkd.detection.voxelize.voxelize`, so every
    point kept lands in a voxel.

    Args:
        points (Tensor): the scan.
        point_cloud_range (sequence of float): ``(x0, y0, z0, x1, y1, z1)``.

    Shapes:
        - points: :math:`(N, C)`, :math:`C \ge 3`.
        - output: :math:`(N', C)`, the kept rows in input order.
    """
    _check_matrix(points, "points")
    lower, upper = _range_bounds(point_cloud_range, points)
    inside = ((points[:, :3] >= lower) & (points[:, :3] < upper)).all(dim=1)
    return points[inside]


def filter_boxes_in_range(
    boxes: Tensor, names: Sequence[str], point_cloud_range: Sequence[float]
) -> tuple[Tensor, list[str]]:
    r"""The boxes whose centre lies in the range in x and y (half-open, :math:`[x_0, x_1) \times [y_0, y_1)`).

    Args:
        boxes (Tensor): the boxes.
        names (sequence of str): their class names.
        point_cloud_range (sequence of float): ``(x0, y0, z0, x1, y1, z1)``; z is ignored.

    Shapes:
        - boxes: :math:`(M, 7)` or :math:`(M, 9)`.
        - output: ``(boxes, names)`` with :math:`(M', 7)` boxes, in input order.
    """
    _check_matrix(boxes, "boxes", min_columns=7)
    names = _check_names(boxes, names)
    lower, upper = _range_bounds(point_cloud_range, boxes)
    inside = ((boxes[:, :2] >= lower[:2]) & (boxes[:, :2] < upper[:2])).all(dim=1)
    return boxes[inside], [name for name, keep in zip(names, inside.tolist()) if keep]


def _enlarge(boxes: Tensor, extra_width: Sequence[float]) -> Tensor:
    enlarged = boxes[:, :7].clone()
    enlarged[:, 3:6] += enlarged.new_tensor([float(width) for width in extra_width])
    return enlarged


class GroundTruthSampler:
    r"""Ground-truth sampling ("database sampling") of `SECOND <https://www.mdpi.com/1424-8220/18/10/3337>`_.

    A database of objects cropped from labelled scans (:meth:`build`): for each
    object, the points inside its box, stored relative to the box centre, the
    box, its class name and difficulty. :meth:`sample` pastes database objects
    into a scene so that each class reaches a target count, as OpenPCDet's
    ``DataBaseSampler``: objects keep their original location (no re-placement),
    candidates that collide in bird's-eye view with a scene box or an earlier
    pasted box (rotated BEV IoU :math:`> 0`) are dropped, and the scene's points
    inside the pasted boxes are removed before the object's points are added.

    Prefer :meth:`build` and :meth:`load` to the constructor.

    Args:
        object_points (Tensor): every object's points, concatenated, with
            ``x, y, z`` relative to the object's box centre.
        point_offsets (Tensor): int64; object ``i`` owns rows
            ``point_offsets[i]:point_offsets[i + 1]``.
        boxes (Tensor): the objects' boxes in their scan's frame.
        names (sequence of str): the objects' class names.
        difficulty (Tensor, optional): int64 per object (KITTI's 0 easy,
            1 moderate, 2 hard, -1 none). (default: all ``0``)
        frame_index (Tensor, optional): int64, the scan each object came from.
            (default: all ``-1``)

    Shapes:
        - object_points: :math:`(\sum_i K_i, C)`.
        - point_offsets: :math:`(O + 1,)`.
        - boxes: :math:`(O, 7)` or :math:`(O, 9)`.
        - difficulty, frame_index: :math:`(O,)`.

    Example::

        frames = ((f.points, f.boxes, [o.type for o in f.objects]) for f in kitti_frames)
        sampler = GroundTruthSampler.build(frames, min_points={"Car": 5, "Pedestrian": 5, "Cyclist": 5})
        sampler.save("kitti_dbinfos.pt")
        points, boxes, names = sampler.sample(points, boxes, names, generator)
    """

    def __init__(
        self,
        object_points: Tensor,
        point_offsets: Tensor,
        boxes: Tensor,
        names: Sequence[str],
        difficulty: Tensor | None = None,
        frame_index: Tensor | None = None,
    ):
        _check_matrix(boxes, "boxes", columns=(7, 9))
        count = boxes.shape[0]
        names = _check_names(boxes, names)
        _check_matrix(object_points, "object_points")
        point_offsets = torch.as_tensor(point_offsets, dtype=torch.int64)
        if (
            point_offsets.shape != (count + 1,)
            or int(point_offsets[0]) != 0
            or int(point_offsets[-1]) != object_points.shape[0]
            or bool((point_offsets.diff() < 0).any())
        ):
            raise ValueError(
                f"point_offsets must be ({count + 1},) non-decreasing from 0 to {object_points.shape[0]}, "
                f"got shape {list(point_offsets.shape)}"
            )
        difficulty = torch.zeros(count, dtype=torch.int64) if difficulty is None else torch.as_tensor(difficulty)
        frame_index = (
            torch.full((count,), -1, dtype=torch.int64) if frame_index is None else torch.as_tensor(frame_index)
        )
        for name, values in (("difficulty", difficulty), ("frame_index", frame_index)):
            if values.shape != (count,):
                raise ValueError(f"{name} must be ({count},), got {list(values.shape)}")
        self.object_points = object_points
        self.point_offsets = point_offsets
        self.boxes = boxes
        self.names = names
        self.difficulty = difficulty.to(torch.int64)
        self.frame_index = frame_index.to(torch.int64)
        by_class: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            by_class.setdefault(name, []).append(index)
        self._class_indices = {name: torch.tensor(indices) for name, indices in by_class.items()}

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} objects: {self.class_counts()})"

    def class_counts(self) -> dict[str, int]:
        """Objects per class name, in order of first appearance."""
        counts: dict[str, int] = {}
        for name in self.names:
            counts[name] = counts.get(name, 0) + 1
        return counts

    @property
    def num_points(self) -> Tensor:
        """``(O,)`` int64, the points of each object."""
        return self.point_offsets.diff()

    def object(self, index: int) -> tuple[Tensor, Tensor, str]:
        """Object ``index``'s points in its scan's frame ``(K, C)``, its box and its name."""
        points = self.object_points[self.point_offsets[index] : self.point_offsets[index + 1]].clone()
        points[:, :3] += self.boxes[index, :3].to(points.dtype)
        return points, self.boxes[index].clone(), self.names[index]

    @classmethod
    def build(
        cls,
        frames: Iterable[tuple],
        min_points: Mapping[str, int] | None = None,
        exclude_difficulties: Collection[int] = (),
        classes: Collection[str] | None = None,
    ) -> GroundTruthSampler:
        r"""Crop every labelled object of ``frames`` into a database.

        Args:
            frames (iterable): ``(points, boxes, names)`` or
                ``(points, boxes, names, difficulty)`` per scan, with points
                :math:`(N, C)`, boxes :math:`(M, 7)`, names a list of :math:`M`
                class names and difficulty :math:`M` ints (default ``0``).
                A point inside several boxes goes to each of their objects.
            min_points (mapping, optional): class name to the fewest points an
                object must hold to be kept (OpenPCDet's
                ``filter_by_min_points``); other classes keep every object.
                (default: ``None``, keep all)
            exclude_difficulties (collection of int): difficulties to drop
                (OpenPCDet's ``filter_by_difficulty``, e.g. ``(-1,)``).
                (default: ``()``)
            classes (collection of str, optional): the class names to keep,
                e.g. to leave out KITTI's ``DontCare``. (default: ``None``, all)

        Raises:
            ValueError: a frame of the wrong shape, or names not matching boxes.
        """
        crops: list[Tensor] = []
        all_boxes: list[Tensor] = []
        all_names: list[str] = []
        difficulties: list[int] = []
        frame_indices: list[int] = []
        num_features = None
        for index, frame in enumerate(frames):
            if len(frame) not in (3, 4):
                raise ValueError(
                    f"frames[{index}] must be (points, boxes, names[, difficulty]), got {len(frame)} items"
                )
            points, boxes, names = frame[:3]
            _check_scene(points, boxes)
            names = _check_names(boxes, names)
            difficulty = [0] * len(names) if len(frame) == 3 else [int(level) for level in frame[3]]
            if len(difficulty) != len(names):
                raise ValueError(f"frames[{index}] has {len(difficulty)} difficulties for {len(names)} boxes")
            if num_features is None:
                num_features = points.shape[1]
            elif points.shape[1] != num_features:
                raise ValueError(
                    f"frames[{index}] has {points.shape[1]} point features, the first frame {num_features}"
                )
            points, boxes = points.detach().cpu(), boxes.detach().cpu()
            inside = points_in_boxes(points, boxes) if len(names) else None
            for box_index, name in enumerate(names):
                if classes is not None and name not in classes:
                    continue
                crop = points[inside[:, box_index]].clone()
                crop[:, :3] -= boxes[box_index, :3].to(crop.dtype)
                crops.append(crop)
                all_boxes.append(boxes[box_index])
                all_names.append(name)
                difficulties.append(difficulty[box_index])
                frame_indices.append(index)
        num_features = 4 if num_features is None else num_features
        offsets = torch.zeros(len(crops) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(torch.tensor([crop.shape[0] for crop in crops], dtype=torch.int64), dim=0)
        database = cls(
            torch.cat(crops) if crops else torch.zeros(0, num_features),
            offsets,
            torch.stack(all_boxes) if all_boxes else torch.zeros(0, 7),
            all_names,
            torch.tensor(difficulties, dtype=torch.int64),
            torch.tensor(frame_indices, dtype=torch.int64),
        )
        return database.filter(min_points=min_points, exclude_difficulties=exclude_difficulties)

    def filter(
        self,
        min_points: Mapping[str, int] | None = None,
        exclude_difficulties: Collection[int] = (),
        classes: Collection[str] | None = None,
    ) -> GroundTruthSampler:
        """A database of the objects that pass the filters (arguments as in :meth:`build`)."""
        min_points = dict(min_points or {})
        excluded = {int(level) for level in exclude_difficulties}
        num_points = self.num_points.tolist()
        difficulty = self.difficulty.tolist()
        keep = [
            index
            for index, name in enumerate(self.names)
            if num_points[index] >= min_points.get(name, 0)
            and difficulty[index] not in excluded
            and (classes is None or name in classes)
        ]
        keep_tensor = torch.tensor(keep, dtype=torch.int64)
        starts, ends = self.point_offsets[:-1][keep_tensor], self.point_offsets[1:][keep_tensor]
        lengths = ends - starts
        offsets = torch.zeros(len(keep) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, dim=0)
        # Row r of the result comes from row starts[object] + (r - offsets[object]) of this database.
        owner = torch.repeat_interleave(torch.arange(len(keep)), lengths)
        rows = starts[owner] + torch.arange(int(offsets[-1])) - offsets[:-1][owner]
        return type(self)(
            self.object_points[rows],
            offsets,
            self.boxes[keep_tensor],
            [self.names[index] for index in keep],
            self.difficulty[keep_tensor],
            self.frame_index[keep_tensor],
        )

    def sample(
        self,
        points: Tensor,
        boxes: Tensor,
        names: Sequence[str],
        generator: torch.Generator,
        sample_groups: Mapping[str, int] | None = None,
        remove_extra_width: Sequence[float] = (0.0, 0.0, 0.0),
    ) -> tuple[Tensor, Tensor, list[str]]:
        r"""Paste database objects into a scene until each class reaches its target count.

        For each class of ``sample_groups`` in turn, with :math:`n_c` boxes of
        that class already in the scene, :math:`\max(0, \text{target}_c - n_c)`
        distinct objects of the class are drawn uniformly from the database;
        each is kept, in draw order, if its box has rotated BEV IoU :math:`0`
        with every scene box and every object kept so far. As in OpenPCDet a
        colliding draw is not replaced, so a crowded scene can end below the
        target. Then the scene points inside the kept boxes (enlarged by
        ``remove_extra_width``) are removed and the objects' points added at
        their recorded place.

        Args:
            points (Tensor): the scan; the database must have at least its
                :math:`C` features (extra ones are cut).
            boxes (Tensor): its boxes; all count as obstacles (boxes with
                negative sizes, such as KITTI's ``DontCare``, as empty ones).
            names (sequence of str): their class names.
            generator (torch.Generator): the source of the draws.
            sample_groups (mapping, optional): class name to the count to reach.
                (default: ``{"Car": 15, "Pedestrian": 10, "Cyclist": 10}``)
            remove_extra_width (sequence of float): ``(dx, dy, dz)`` added to the
                pasted boxes' sizes when removing scene points. (default: ``(0, 0, 0)``)

        Shapes:
            - points: :math:`(N, C)`.
            - boxes: :math:`(M, 7)` (or :math:`(M, 9)`, like the database's).
            - output: ``(points, boxes, names)``: the pasted objects' points
              first, then the remaining scene points :math:`(N', C)`; the scene's
              boxes then the pasted ones :math:`(M + S, 7)`; their names.
        """
        _check_scene(points, boxes)
        names = _check_names(boxes, names)
        sample_groups = DEFAULT_SAMPLE_GROUPS if sample_groups is None else sample_groups
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if boxes.shape[1] != self.boxes.shape[1]:
            raise ValueError(f"boxes has {boxes.shape[1]} columns, the database's boxes {self.boxes.shape[1]}")
        if len(self) and self.object_points.shape[1] < points.shape[1]:
            raise ValueError(
                f"points has {points.shape[1]} features, the database's objects only {self.object_points.shape[1]}"
            )
        if len(remove_extra_width) != 3:
            raise ValueError(f"remove_extra_width must be (dx, dy, dz), got {tuple(remove_extra_width)}")
        occupied = boxes[:, :7].detach().cpu().float()
        # Placeholder boxes with negative sizes (KITTI's DontCare) occupy no area.
        occupied[:, 3:6] = occupied[:, 3:6].clamp(min=0)
        kept: list[int] = []
        for name, target in sample_groups.items():
            candidates = self._class_indices.get(name, torch.zeros(0, dtype=torch.int64))
            wanted = min(int(target) - names.count(name), candidates.numel())
            if wanted <= 0:
                continue
            candidates = candidates[torch.randperm(candidates.numel(), generator=generator)[:wanted]]
            candidate_boxes = self.boxes[candidates, :7].float()
            free = torch.ones(wanted, dtype=torch.bool)
            if occupied.shape[0]:
                free = boxes_iou_bev(candidate_boxes, occupied).amax(dim=1) <= 0
            overlaps = boxes_iou_bev(candidate_boxes, candidate_boxes) > 0
            accepted: list[int] = []
            for index in range(wanted):
                if free[index] and not bool(overlaps[index, accepted].any()):
                    accepted.append(index)
            kept.extend(candidates[accepted].tolist())
            occupied = torch.cat([occupied, candidate_boxes[accepted]])

        if not kept:
            return points.clone(), boxes.clone(), names
        kept_tensor = torch.tensor(kept, dtype=torch.int64)
        new_boxes = self.boxes[kept_tensor].to(boxes)
        pasted = [self.object(index)[0][:, : points.shape[1]] for index in kept]
        pasted_points = torch.cat(pasted).to(points)
        covered = points_in_boxes(points, _enlarge(new_boxes, remove_extra_width)).any(dim=1)
        return (
            torch.cat([pasted_points, points[~covered]]),
            torch.cat([boxes, new_boxes]),
            names + [self.names[index] for index in kept],
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the database to ``path`` atomically (``torch.save`` of plain tensors and lists); returns the path."""
        payload = {
            "format": DATABASE_FORMAT,
            "version": DATABASE_VERSION,
            "object_points": self.object_points,
            "point_offsets": self.point_offsets,
            "boxes": self.boxes,
            "names": list(self.names),
            "difficulty": self.difficulty,
            "frame_index": self.frame_index,
        }
        return atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GroundTruthSampler:
        """Read a database written by :meth:`save` (``weights_only``: no code runs).

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is unreadable, not a database, or of a newer format version.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ground-truth database {path} does not exist")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for a damaged file
            raise ValueError(f"ground-truth database {path} is unreadable ({type(error).__name__}: {error})") from error
        if not isinstance(payload, dict) or payload.get("format") != DATABASE_FORMAT:
            raise ValueError(f"{path} is not a ground-truth database")
        if payload["version"] > DATABASE_VERSION:
            raise ValueError(
                f"{path} has database format {payload['version']}; this pointkd reads up to {DATABASE_VERSION}"
            )
        return cls(
            payload["object_points"],
            payload["point_offsets"],
            payload["boxes"],
            payload["names"],
            payload["difficulty"],
            payload["frame_index"],
        )


@dataclass
class AugmentConfig:
    r"""OpenPCDet's training augmentation for KITTI, as one object.

    :meth:`apply` runs ground-truth sampling (when given a sampler), then
    :func:`random_flip_x`, :func:`global_rotation` and :func:`global_scaling`.
    A step is a no-op with ``flip_probability=0``, ``rotation_range=(0, 0)`` or
    ``scale_range=(1, 1)`` (it still draws its number, so the other steps'
    draws do not move).

    Args:
        sample_groups (dict): class name to the count ground-truth sampling
            reaches. (default: ``{"Car": 15, "Pedestrian": 10, "Cyclist": 10}``)
        remove_extra_width (tuple): see :meth:`GroundTruthSampler.sample`.
            (default: ``(0, 0, 0)``)
        flip_probability (float): see :func:`random_flip_x`. (default: ``0.5``)
        rotation_range (tuple): see :func:`global_rotation`. (default: ``(-pi / 4, pi / 4)``)
        scale_range (tuple): see :func:`global_scaling`. (default: ``(0.95, 1.05)``)
    """

    sample_groups: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SAMPLE_GROUPS))
    remove_extra_width: tuple[float, float, float] = (0.0, 0.0, 0.0)
    flip_probability: float = 0.5
    rotation_range: tuple[float, float] = (-math.pi / 4, math.pi / 4)
    scale_range: tuple[float, float] = (0.95, 1.05)

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}")
        _check_range(self.rotation_range, "rotation_range")
        _check_range(self.scale_range, "scale_range", positive=True)
        if len(self.remove_extra_width) != 3:
            raise ValueError(f"remove_extra_width must be (dx, dy, dz), got {tuple(self.remove_extra_width)}")

    def apply(
        self,
        points: Tensor,
        boxes: Tensor,
        names: Sequence[str],
        generator: torch.Generator,
        sampler: GroundTruthSampler | None = None,
    ) -> tuple[Tensor, Tensor, list[str]]:
        r"""Augment one training scan.

        Args:
            points (Tensor): the scan.
            boxes (Tensor): its boxes.
            names (sequence of str): their class names.
            generator (torch.Generator): the source of every draw.
            sampler (GroundTruthSampler, optional): the database to paste
                objects from. (default: ``None``, no ground-truth sampling)

        Shapes:
            - points: :math:`(N, C)`.
            - boxes: :math:`(M, 7)`.
            - output: ``(points, boxes, names)``, :math:`(N', C)` and
              :math:`(M', 7)` with :math:`M' \ge M`.
        """
        _check_scene(points, boxes)
        names = _check_names(boxes, names)
        if sampler is not None and self.sample_groups:
            points, boxes, names = sampler.sample(
                points, boxes, names, generator, self.sample_groups, self.remove_extra_width
            )
        points, boxes = random_flip_x(points, boxes, generator, self.flip_probability)
        points, boxes = global_rotation(points, boxes, generator, self.rotation_range)
        points, boxes = global_scaling(points, boxes, generator, self.scale_range)
        return points, boxes, names
