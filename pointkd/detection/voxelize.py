r"""Points to voxels for pillar and sparse-convolution detectors.

`PointPillars <https://arxiv.org/abs/1812.05784>`_ and
`SECOND <https://www.mdpi.com/1424-8220/18/10/3337>`_ gather the points of a
scan into a regular grid over ``point_cloud_range`` with cells of
``voxel_size``. Point :math:`p` falls into the voxel

.. math::
    (i_x, i_y, i_z) = \left\lfloor \frac{p_{xyz} - r_{\min}}{s} \right\rfloor,
    \qquad 0 \le i_k < n_k = \frac{r_{\max,k} - r_{\min,k}}{s_k},

and each non-empty voxel keeps at most ``max_points_per_voxel`` of its points.
The output layout is OpenPCDet's and spconv's: a dense ``(V, P, C)`` block of
zero-padded points, ``(V, 3)`` coordinates ordered ``(z, y, x)`` and the number
of real points per voxel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

# How far (range / size) may be from a whole number of cells.
_GRID_TOLERANCE = 1e-4


@dataclass(frozen=True)
class VoxelGrid:
    r"""A regular grid over an axis-aligned box of the LiDAR frame.

    Args:
        point_cloud_range (sequence of float): ``(x0, y0, z0, x1, y1, z1)``;
            the grid covers :math:`[x_0, x_1) \times [y_0, y_1) \times [z_0, z_1)`.
        voxel_size (sequence of float): ``(vx, vy, vz)``, positive; each extent
            :math:`(x_1 - x_0) / v_x` etc. must be a whole number (up to
            :math:`10^{-4}`).

    Example::

        # OpenPCDet's KITTI PointPillars grid: 432 x 496 x 1 pillars.
        grid = VoxelGrid((0, -39.68, -3, 69.12, 39.68, 1), (0.16, 0.16, 4))

    Raises:
        ValueError: naming ``point_cloud_range`` or ``voxel_size`` when a value
            is missing, not finite, not positive, or does not divide the range.
    """

    point_cloud_range: tuple[float, float, float, float, float, float]
    voxel_size: tuple[float, float, float]

    def __post_init__(self) -> None:
        point_cloud_range = _float_tuple(self.point_cloud_range, 6, "point_cloud_range")
        voxel_size = _float_tuple(self.voxel_size, 3, "voxel_size")
        if not all(size > 0 for size in voxel_size):
            raise ValueError(f"voxel_size must be positive, got {voxel_size}")
        lower, upper = point_cloud_range[:3], point_cloud_range[3:]
        if not all(high > low for low, high in zip(lower, upper)):
            raise ValueError(f"point_cloud_range must have x1 > x0, y1 > y0, z1 > z0, got {point_cloud_range}")
        for axis, low, high, size in zip("xyz", lower, upper, voxel_size):
            cells = (high - low) / size
            if abs(cells - round(cells)) > _GRID_TOLERANCE:
                raise ValueError(
                    f"voxel_size {size} does not divide the {axis} extent {high - low} of point_cloud_range "
                    f"({cells:.6f} cells); point_cloud_range / voxel_size must be whole numbers"
                )
        object.__setattr__(self, "point_cloud_range", point_cloud_range)
        object.__setattr__(self, "voxel_size", voxel_size)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Cells ``(nx, ny, nz)`` along x, y and z."""
        lower, upper = self.point_cloud_range[:3], self.point_cloud_range[3:]
        return tuple(round((high - low) / size) for low, high, size in zip(lower, upper, self.voxel_size))


def _float_tuple(values: Sequence[float], length: int, name: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be {length} numbers, got {values!r} ({error})") from None
    if len(numbers) != length:
        raise ValueError(f"{name} must be {length} numbers, got {len(numbers)}: {numbers}")
    if not all(math.isfinite(number) for number in numbers):
        raise ValueError(f"{name} must be finite, got {numbers}")
    return numbers


class Voxels(NamedTuple):
    """Voxelized points (see :func:`voxelize` and :func:`collate_voxels`).

    Shapes:
        - voxels: :math:`(V, P, C)`, the points' dtype; rows past
          ``num_points`` are zero.
        - voxel_coords: :math:`(V, 3)` int32 ``(z, y, x)``, or :math:`(V, 4)`
          ``(batch, z, y, x)`` after :func:`collate_voxels`.
        - num_points: :math:`(V,)` int32, in :math:`[1, P]`.
    """

    voxels: Tensor
    voxel_coords: Tensor
    num_points: Tensor


def _check_points(points: Tensor) -> None:
    if not isinstance(points, Tensor):
        raise TypeError(f"points must be a Tensor, got {type(points).__name__}")
    if points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be (N, C) with C >= 3 (x, y, z first), got shape {list(points.shape)}")
    if not points.is_floating_point():
        raise ValueError(f"points must be a floating-point tensor, got {points.dtype}")
    if not bool(torch.isfinite(points).all()):
        bad = int((~torch.isfinite(points)).any(dim=1).nonzero()[0])
        raise ValueError(f"points must be finite: row {bad} holds NaN or inf ({points[bad].tolist()})")


def _check_limits(max_points_per_voxel: int, max_voxels: int) -> None:
    for name, value in (("max_points_per_voxel", max_points_per_voxel), ("max_voxels", max_voxels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _voxel_indices(points: Tensor, grid: VoxelGrid) -> tuple[Tensor, Tensor]:
    """Linear voxel index ``(z * ny + y) * nx + x`` of the points inside the grid, and their rows."""
    lower = points.new_tensor(grid.point_cloud_range[:3])
    upper = points.new_tensor(grid.point_cloud_range[3:])
    xyz = points[:, :3]
    rows = ((xyz >= lower) & (xyz < upper)).all(dim=1).nonzero().squeeze(1)
    nx, ny, nz = grid.grid_size
    cells = torch.floor((xyz[rows] - lower) / points.new_tensor(grid.voxel_size)).long()
    # A point just below the upper bound can round up to cell n in float32; the
    # range test above is what decides membership, so clamp it back.
    cells = torch.minimum(cells.clamp_(min=0), cells.new_tensor([nx - 1, ny - 1, nz - 1]))
    return (cells[:, 2] * ny + cells[:, 1]) * nx + cells[:, 0], rows


def _decode(linear: Tensor, grid: VoxelGrid) -> Tensor:
    """``(V, 3)`` int32 ``(z, y, x)`` of linear voxel indices."""
    nx, ny, _ = grid.grid_size
    return torch.stack([linear // (nx * ny), (linear // nx) % ny, linear % nx], dim=1).int()


def voxelize(points: Tensor, grid: VoxelGrid, max_points_per_voxel: int, max_voxels: int) -> Voxels:
    r"""Group points into the voxels of ``grid``, as spconv's ``Point2Voxel``.

    Points outside the half-open range
    :math:`[x_0, x_1) \times [y_0, y_1) \times [z_0, z_1)` are dropped.
    The result is deterministic:

    - voxels are ordered by their **first appearance**: the voxel holding the
      earliest point (in input order) comes first, as in spconv's
      ``Point2Voxel`` and OpenPCDet's ``VoxelGeneratorWrapper``, so the same
      scan always yields the same voxel list;
    - each voxel keeps its first ``max_points_per_voxel`` points in input order;
    - when more than ``max_voxels`` voxels are occupied, the first
      ``max_voxels`` of that order are kept and the others' points dropped.

    It is pure vectorised torch (one stable sort of the points, one sort of the
    voxels), on the device of ``points``.

    Args:
        points (Tensor): floating-point points, ``x, y, z`` then any features.
        grid (VoxelGrid): range and voxel size.
        max_points_per_voxel (int): :math:`P`, points kept per voxel.
        max_voxels (int): voxels kept at most.

    Shapes:
        - points: :math:`(N, C)`, :math:`C \ge 3`.
        - output: :class:`Voxels` with voxels :math:`(V, P, C)`, voxel_coords
          :math:`(V, 3)` int32 ``(z, y, x)``, num_points :math:`(V,)` int32,
          :math:`V \le` ``max_voxels``.

    Raises:
        TypeError: if ``points`` is not a tensor or ``grid`` not a :class:`VoxelGrid`.
        ValueError: naming ``points`` when it is not a floating-point
            :math:`(N, C \ge 3)` tensor or holds NaN/inf, or naming a limit that
            is not a positive int.
    """
    _check_points(points)
    _check_limits(max_points_per_voxel, max_voxels)
    if not isinstance(grid, VoxelGrid):
        raise TypeError(f"grid must be a VoxelGrid, got {type(grid).__name__}")
    num_features = points.shape[1]
    linear, rows = _voxel_indices(points, grid)
    if rows.numel() == 0:
        return Voxels(
            points.new_zeros((0, max_points_per_voxel, num_features)),
            torch.zeros((0, 3), dtype=torch.int32, device=points.device),
            torch.zeros((0,), dtype=torch.int32, device=points.device),
        )

    # Stable: within a voxel the points stay in input order.
    sorted_linear, order = torch.sort(linear, stable=True)
    is_start = torch.ones_like(sorted_linear, dtype=torch.bool)
    is_start[1:] = sorted_linear[1:] != sorted_linear[:-1]
    starts = is_start.nonzero().squeeze(1)
    segment = torch.cumsum(is_start, dim=0) - 1  # voxel of each sorted point, in linear order
    counts = torch.diff(starts, append=starts.new_tensor([sorted_linear.numel()]))
    rank = torch.arange(sorted_linear.numel(), device=points.device) - starts[segment]

    # order[starts] is each voxel's first point (the sort is stable), so sorting
    # voxels by it gives the order of first appearance.
    by_appearance = torch.argsort(order[starts])[:max_voxels]
    slot = torch.full_like(starts, max_voxels)
    slot[by_appearance] = torch.arange(by_appearance.numel(), device=points.device)

    point_slot = slot[segment]
    keep = (point_slot < max_voxels) & (rank < max_points_per_voxel)
    voxels = points.new_zeros((by_appearance.numel(), max_points_per_voxel, num_features))
    voxels[point_slot[keep], rank[keep]] = points[rows[order[keep]]]
    return Voxels(
        voxels,
        _decode(sorted_linear[starts[by_appearance]], grid),
        counts[by_appearance].clamp(max=max_points_per_voxel).int(),
    )


def collate_voxels(samples: Sequence[Voxels]) -> Voxels:
    r"""Concatenate the voxels of a batch, prepending the sample index to the coordinates.

    Args:
        samples (sequence of Voxels): one :func:`voxelize` output per sample,
            all with the same :math:`P`, :math:`C`, dtype and device.

    Shapes:
        - output: :class:`Voxels` with voxels :math:`(\sum V_b, P, C)`,
          voxel_coords :math:`(\sum V_b, 4)` int32 ``(batch, z, y, x)``,
          num_points :math:`(\sum V_b,)` int32.

    Raises:
        ValueError: on an empty batch or samples that do not match.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("samples must hold at least one Voxels")
    first = samples[0].voxels
    for index, sample in enumerate(samples):
        if not isinstance(sample, Voxels):
            raise TypeError(f"samples[{index}] must be Voxels, got {type(sample).__name__}")
        if sample.voxel_coords.dim() != 2 or sample.voxel_coords.shape[1] != 3:
            raise ValueError(f"samples[{index}].voxel_coords must be (V, 3), got {list(sample.voxel_coords.shape)}")
        if (
            sample.voxels.shape[1:] != first.shape[1:]
            or sample.voxels.dtype != first.dtype
            or sample.voxels.device != first.device
        ):
            raise ValueError(
                f"samples[{index}].voxels is {sample.voxels.dtype} {list(sample.voxels.shape)} on "
                f"{sample.voxels.device}, samples[0].voxels is {first.dtype} {list(first.shape)} on {first.device}"
            )
    coords = torch.cat([sample.voxel_coords for sample in samples])
    batch = torch.repeat_interleave(
        torch.arange(len(samples), dtype=torch.int32, device=coords.device),
        torch.tensor([sample.voxel_coords.shape[0] for sample in samples], device=coords.device),
    )
    return Voxels(
        torch.cat([sample.voxels for sample in samples]),
        torch.cat([batch[:, None], coords], dim=1),
        torch.cat([sample.num_points for sample in samples]),
    )


def _voxelize_reference(points: Tensor, grid: VoxelGrid, max_points_per_voxel: int, max_voxels: int) -> Voxels:
    """Pure-Python ground truth of :func:`voxelize`: a dict from voxel to its points, one point at a time."""
    nx, ny, nz = grid.grid_size
    lower = points.new_tensor(grid.point_cloud_range[:3])
    upper = points.new_tensor(grid.point_cloud_range[3:])
    size = points.new_tensor(grid.voxel_size)
    buckets: dict[tuple[int, int, int], list[Tensor]] = {}  # insertion order = first appearance
    for point in points:
        xyz = point[:3]
        if not bool(((xyz >= lower) & (xyz < upper)).all()):
            continue
        x, y, z = torch.floor((xyz - lower) / size).long().tolist()
        key = (min(max(z, 0), nz - 1), min(max(y, 0), ny - 1), min(max(x, 0), nx - 1))
        if key not in buckets:
            if len(buckets) == max_voxels:
                continue
            buckets[key] = []
        if len(buckets[key]) < max_points_per_voxel:
            buckets[key].append(point)
    voxels = points.new_zeros((len(buckets), max_points_per_voxel, points.shape[1]))
    for index, kept in enumerate(buckets.values()):
        voxels[index, : len(kept)] = torch.stack(kept)
    return Voxels(
        voxels,
        torch.tensor(list(buckets), dtype=torch.int32).view(-1, 3),
        torch.tensor([len(kept) for kept in buckets.values()], dtype=torch.int32),
    )
