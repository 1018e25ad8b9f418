r"""Rotated box overlaps: bird's-eye-view (BEV) and 3D IoU, rotated NMS.

Boxes follow OpenPCDet's LiDAR convention: a float tensor ``(N, 7)`` of rows
:math:`(x, y, z, d_x, d_y, d_z, \theta)`, the box centre, its length along the
heading :math:`d_x`, its width :math:`d_y`, its height :math:`d_z`, and the
heading :math:`\theta`, a counter-clockwise rotation about :math:`+z` measured
from :math:`+x`. The BEV footprint of a box is the rectangle

.. math::
    \{c + R(\theta)\,(u, v) : |u| \le d_x / 2,\ |v| \le d_y / 2\},

and two footprints intersect in a convex polygon whose vertices are the corners
of either rectangle that lie inside the other and the crossings of their edges.
The area of that polygon is exact up to float64 rounding (the points are
ordered by angle about their centroid and measured with the shoelace formula).

KITTI labels are in rectified camera coordinates (:math:`x` right, :math:`y`
down, :math:`z` forward) with rows :math:`(x, y, z, l, h, w, r_y)`, the
location being the bottom centre of the box and :math:`r_y` the rotation about
:math:`y`, so that the heading points along :math:`(\cos r_y, 0, -\sin r_y)`.
:func:`camera_to_lidar_convention` maps them to the rows above with the rigid
rotation :math:`(x, y, z) \mapsto (z, -x, -y)`, which preserves every overlap;
:func:`kitti_bev_iou` and :func:`kitti_3d_iou` are the LiDAR functions on the
mapped boxes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

# Pairs of boxes whose polygons are intersected at once (about 2 KiB of
# temporaries per pair), and candidate pairs gathered at once from an N x M grid.
_POLYGON_CHUNK = 1 << 15
_CANDIDATE_CHUNK = 1 << 18

# Slack of the inside / on-segment tests, relative to the boxes' size: accepts
# the corners that rounding puts a hair outside the other box (shared corners,
# touching edges); a point accepted wrongly moves the area by about this much.
_RELATIVE_TOLERANCE = 1e-9

_CORNER_SIGNS = ((0.5, 0.5), (-0.5, 0.5), (-0.5, -0.5), (0.5, -0.5))  # counter-clockwise


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {tuple(value.shape)}"
    return type(value).__name__


def _check_boxes(boxes: Tensor, name: str) -> None:
    if not isinstance(boxes, Tensor) or not boxes.is_floating_point() or boxes.dim() != 2 or boxes.shape[1] != 7:
        raise ValueError(
            f"{name} must be a floating tensor of shape (N, 7) (x, y, z, dx, dy, dz, heading), got {_describe(boxes)}"
        )
    if not bool(torch.isfinite(boxes).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    if bool((boxes[:, 3:6] < 0).any()):
        raise ValueError(f"{name} must have non-negative sizes (columns 3 to 5)")


def _check_pair(boxes_a: Tensor, boxes_b: Tensor, aligned: bool) -> torch.dtype:
    _check_boxes(boxes_a, "boxes_a")
    _check_boxes(boxes_b, "boxes_b")
    if boxes_a.device != boxes_b.device:
        raise ValueError(f"boxes_a and boxes_b must be on one device, got {boxes_a.device} and {boxes_b.device}")
    if aligned and boxes_a.shape[0] != boxes_b.shape[0]:
        raise ValueError(
            f"aligned=True needs as many boxes_b as boxes_a, got {boxes_a.shape[0]} and {boxes_b.shape[0]}"
        )
    return torch.promote_types(boxes_a.dtype, boxes_b.dtype)


def box_corners_bev(boxes: Tensor) -> Tensor:
    r"""The four BEV corners of each box, counter-clockwise.

    Args:
        boxes (Tensor): boxes :math:`(x, y, z, d_x, d_y, d_z, \theta)`.

    Shapes:
        - boxes: :math:`(N, 7)`
        - output: :math:`(N, 4, 2)`, in the dtype of ``boxes``; the first
          corner is front-left, :math:`c + R(\theta)\,(d_x / 2, d_y / 2)`.
    """
    _check_boxes(boxes, "boxes")
    return _corners(boxes)


def _corners(boxes: Tensor) -> Tensor:
    signs = torch.tensor(_CORNER_SIGNS, dtype=boxes.dtype, device=boxes.device)
    local = boxes[:, None, 3:5] * signs  # (N, 4, 2)
    cos, sin = torch.cos(boxes[:, 6])[:, None], torch.sin(boxes[:, 6])[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin
    y = local[..., 0] * sin + local[..., 1] * cos
    return torch.stack([x, y], dim=-1) + boxes[:, None, :2]


def _cross(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _polygon_overlap(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Intersection areas ``(K,)`` of the BEV footprints of paired float64 boxes ``(K, 7)``."""
    # Work relative to a's centre: the corners then carry no large offsets.
    origin = boxes_a[:, None, :2]
    corners_a = _corners(boxes_a) - origin
    corners_b = _corners(boxes_b) - origin
    scale = torch.maximum(boxes_a[:, 3:5].amax(1), boxes_b[:, 3:5].amax(1))
    tolerance = _RELATIVE_TOLERANCE * scale[:, None]

    def inside(points: Tensor, boxes: Tensor, centres: Tensor) -> Tensor:
        offset = points - centres[:, None]
        cos, sin = torch.cos(boxes[:, 6])[:, None], torch.sin(boxes[:, 6])[:, None]
        along = offset[..., 0] * cos + offset[..., 1] * sin
        across = -offset[..., 0] * sin + offset[..., 1] * cos
        return (along.abs() <= boxes[:, 3:4] / 2 + tolerance) & (across.abs() <= boxes[:, 4:5] / 2 + tolerance)

    a_in_b = inside(corners_a, boxes_b, boxes_b[:, :2] - boxes_a[:, :2])
    b_in_a = inside(corners_b, boxes_a, torch.zeros_like(boxes_a[:, :2]))

    # Edge i of a, p + t r, against edge j of b, q + u s: (K, 4, 4).
    start_a, start_b = corners_a[:, :, None], corners_b[:, None]
    edge_a = (torch.roll(corners_a, -1, dims=1) - corners_a)[:, :, None]
    edge_b = (torch.roll(corners_b, -1, dims=1) - corners_b)[:, None]
    denominator = _cross(edge_a, edge_b)
    lengths = edge_a.norm(dim=-1) * edge_b.norm(dim=-1)
    # Parallel (and zero-length) edges add no crossing: their shared stretch
    # starts and ends at corners that the inside tests already keep.
    crossing = denominator.abs() > 1e-12 * lengths
    safe = torch.where(crossing, denominator, torch.ones_like(denominator))
    between = start_b - start_a
    t = _cross(between, edge_b) / safe
    u = _cross(between, edge_a) / safe
    slack = _RELATIVE_TOLERANCE
    crossing &= (t >= -slack) & (t <= 1 + slack) & (u >= -slack) & (u <= 1 + slack)
    crossings = start_a + t[..., None] * edge_a

    points = torch.cat([corners_a, corners_b, crossings.flatten(1, 2)], dim=1)  # (K, 24, 2)
    valid = torch.cat([a_in_b, b_in_a, crossing.flatten(1, 2)], dim=1)
    count = valid.sum(1)
    weights = valid.to(points.dtype)[..., None]
    centroid = (points * weights).sum(1) / count.clamp(min=1)[:, None].to(points.dtype)
    relative = points - centroid[:, None]
    angle = torch.atan2(relative[..., 1], relative[..., 0])
    angle = torch.where(valid, angle, torch.full_like(angle, 4.0))  # past pi: invalid points sort last
    order = angle.argsort(dim=1)
    relative = relative.gather(1, order[..., None].expand(-1, -1, 2))
    valid = valid.gather(1, order)
    # Invalid slots repeat the first point: the closing edges they add are empty.
    relative = torch.where(valid[..., None], relative, relative[:, :1])
    area = 0.5 * _cross(relative, torch.roll(relative, -1, dims=1)).sum(1)
    area = torch.where(count >= 3, area.clamp(min=0), torch.zeros_like(area))
    area_a = boxes_a[:, 3] * boxes_a[:, 4]
    area_b = boxes_b[:, 3] * boxes_b[:, 4]
    return torch.minimum(area, torch.minimum(area_a, area_b))


def _paired_overlap(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """BEV intersection areas ``(K,)`` of paired float64 boxes, skipping pairs that cannot meet."""
    overlap = boxes_a.new_zeros(boxes_a.shape[0])
    radius_a = boxes_a[:, 3:5].norm(dim=1) / 2
    radius_b = boxes_b[:, 3:5].norm(dim=1) / 2
    distance = (boxes_a[:, :2] - boxes_b[:, :2]).norm(dim=1)
    # Footprints whose circumscribed circles are apart, and empty footprints, have no overlap.
    candidates = (distance < radius_a + radius_b) & (boxes_a[:, 3] * boxes_a[:, 4] > 0)
    candidates &= boxes_b[:, 3] * boxes_b[:, 4] > 0
    index = candidates.nonzero().flatten()
    for start in range(0, index.numel(), _POLYGON_CHUNK):
        chunk = index[start : start + _POLYGON_CHUNK]
        overlap[chunk] = _polygon_overlap(boxes_a[chunk], boxes_b[chunk])
    return overlap


def _near_pairs(boxes_a: Tensor, boxes_b: Tensor, upper: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Chunks of the index pairs ``(n, m)`` whose circumscribed circles overlap (``n < m`` if ``upper``)."""
    num_b = boxes_b.shape[0]
    radius_a = boxes_a[:, 3:5].norm(dim=1) / 2
    radius_b = boxes_b[:, 3:5].norm(dim=1) / 2
    rows = max(1, _CANDIDATE_CHUNK // max(1, num_b))
    for start in range(0, boxes_a.shape[0], rows):
        stop = min(start + rows, boxes_a.shape[0])
        # Direct differences: the matrix-product form of cdist loses digits far from the origin.
        distance = torch.cdist(boxes_a[start:stop, :2], boxes_b[:, :2], compute_mode="donot_use_mm_for_euclid_dist")
        near = distance < radius_a[start:stop, None] + radius_b[None]
        if upper:
            index = torch.arange(num_b, device=boxes_b.device)
            near &= index[start:stop, None] < index[None]
        index_a, index_b = near.nonzero(as_tuple=True)
        yield index_a + start, index_b


def _overlap_grid(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """BEV intersection areas ``(N, M)`` of all pairs of float64 boxes, in bounded memory."""
    overlap = boxes_a.new_zeros(boxes_a.shape[0], boxes_b.shape[0])
    for index_a, index_b in _near_pairs(boxes_a, boxes_b):
        overlap[index_a, index_b] = _paired_overlap(boxes_a[index_a], boxes_b[index_b])
    return overlap


def _overlap(boxes_a: Tensor, boxes_b: Tensor, aligned: bool) -> Tensor:
    if aligned:
        return _paired_overlap(boxes_a, boxes_b)
    return _overlap_grid(boxes_a, boxes_b)


def boxes_overlap_bev(boxes_a: Tensor, boxes_b: Tensor, aligned: bool = False) -> Tensor:
    r"""Areas of the intersections of the BEV footprints of rotated boxes.

    .. math::
        A_{nm} = \operatorname{area}(F(a_n) \cap F(b_m)),

    with :math:`F` the footprint rectangle (see the module docstring), computed
    in float64 in chunks, so that memory stays bounded for large :math:`N M`.

    Args:
        boxes_a (Tensor): boxes :math:`(x, y, z, d_x, d_y, d_z, \theta)`.
        boxes_b (Tensor): boxes in the same convention.
        aligned (bool, optional): if :obj:`True`, only the pairs
            :math:`(a_n, b_n)` (mmdetection's ``aligned``). (default: :obj:`False`)

    Shapes:
        - boxes_a: :math:`(N, 7)`
        - boxes_b: :math:`(M, 7)` (:math:`(N, 7)` when aligned)
        - output: :math:`(N, M)` (:math:`(N,)` when aligned), in the promoted
          dtype of the inputs.
    """
    dtype = _check_pair(boxes_a, boxes_b, aligned)
    return _overlap(boxes_a.double(), boxes_b.double(), aligned).to(dtype)


def _union_ratio(intersection: Tensor, size_a: Tensor, size_b: Tensor) -> Tensor:
    union = size_a + size_b - intersection
    # Empty boxes have a zero union: their IoU is 0, not NaN.
    ratio = intersection / torch.where(union > 0, union, torch.ones_like(union))
    return torch.where(union > 0, ratio, torch.zeros_like(ratio)).clamp(0, 1)


def boxes_iou_bev(boxes_a: Tensor, boxes_b: Tensor, aligned: bool = False) -> Tensor:
    r"""Rotated IoU of the BEV footprints.

    .. math::
        \text{IoU}_{nm} = \frac{A_{nm}}{d_x^{(n)} d_y^{(n)} + d_x^{(m)} d_y^{(m)} - A_{nm}},

    with :math:`A` from :func:`boxes_overlap_bev`; 0 where both footprints are
    empty.

    Args:
        boxes_a (Tensor): boxes :math:`(x, y, z, d_x, d_y, d_z, \theta)`.
        boxes_b (Tensor): boxes in the same convention.
        aligned (bool, optional): if :obj:`True`, only the pairs
            :math:`(a_n, b_n)`. (default: :obj:`False`)

    Shapes:
        - boxes_a: :math:`(N, 7)`
        - boxes_b: :math:`(M, 7)` (:math:`(N, 7)` when aligned)
        - output: :math:`(N, M)` (:math:`(N,)` when aligned), in the promoted
          dtype of the inputs.
    """
    dtype = _check_pair(boxes_a, boxes_b, aligned)
    boxes_a, boxes_b = boxes_a.double(), boxes_b.double()
    area_a = boxes_a[:, 3] * boxes_a[:, 4]
    area_b = boxes_b[:, 3] * boxes_b[:, 4]
    if not aligned:
        area_a, area_b = area_a[:, None], area_b[None]
    return _union_ratio(_overlap(boxes_a, boxes_b, aligned), area_a, area_b).to(dtype)


def boxes_iou3d(boxes_a: Tensor, boxes_b: Tensor, aligned: bool = False) -> Tensor:
    r"""Rotated 3D IoU of boxes that rotate about :math:`z` only.

    .. math::
        \text{IoU}^{3D}_{nm} = \frac{A_{nm} h_{nm}}{V_n + V_m - A_{nm} h_{nm}},
        \qquad h_{nm} = \max\bigl(0,\ \min(z^+_n, z^+_m) - \max(z^-_n, z^-_m)\bigr),

    with :math:`A` from :func:`boxes_overlap_bev`, :math:`z^\pm = z \pm d_z / 2`
    and :math:`V = d_x d_y d_z`; 0 where both boxes are empty.

    Args:
        boxes_a (Tensor): boxes :math:`(x, y, z, d_x, d_y, d_z, \theta)`.
        boxes_b (Tensor): boxes in the same convention.
        aligned (bool, optional): if :obj:`True`, only the pairs
            :math:`(a_n, b_n)`. (default: :obj:`False`)

    Shapes:
        - boxes_a: :math:`(N, 7)`
        - boxes_b: :math:`(M, 7)` (:math:`(N, 7)` when aligned)
        - output: :math:`(N, M)` (:math:`(N,)` when aligned), in the promoted
          dtype of the inputs.
    """
    dtype = _check_pair(boxes_a, boxes_b, aligned)
    boxes_a, boxes_b = boxes_a.double(), boxes_b.double()
    top_a, bottom_a = boxes_a[:, 2] + boxes_a[:, 5] / 2, boxes_a[:, 2] - boxes_a[:, 5] / 2
    top_b, bottom_b = boxes_b[:, 2] + boxes_b[:, 5] / 2, boxes_b[:, 2] - boxes_b[:, 5] / 2
    volume_a = boxes_a[:, 3:6].prod(1)
    volume_b = boxes_b[:, 3:6].prod(1)
    if not aligned:
        top_a, bottom_a, volume_a = top_a[:, None], bottom_a[:, None], volume_a[:, None]
        top_b, bottom_b, volume_b = top_b[None], bottom_b[None], volume_b[None]
    height = (torch.minimum(top_a, top_b) - torch.maximum(bottom_a, bottom_b)).clamp(min=0)
    intersection = _overlap(boxes_a, boxes_b, aligned) * height
    return _union_ratio(intersection, volume_a, volume_b).to(dtype)


def nms_bev(boxes: Tensor, scores: Tensor, iou_threshold: float, max_output: int | None = None) -> Tensor:
    r"""Greedy non-maximum suppression with rotated BEV IoU.

    Visits the boxes by descending score (equal scores by index) and keeps a
    box unless its :func:`boxes_iou_bev` with a box kept before is greater
    than ``iou_threshold``.

    Args:
        boxes (Tensor): boxes :math:`(x, y, z, d_x, d_y, d_z, \theta)`.
        scores (Tensor): one score per box.
        iou_threshold (float): boxes overlapping a kept box by more are dropped.
        max_output (int, optional): stop after keeping this many boxes.
            (default: :obj:`None`, no limit)

    Shapes:
        - boxes: :math:`(N, 7)`
        - scores: :math:`(N,)`
        - output: :math:`(K,)` int64 indices into ``boxes``, by descending score.
    """
    _check_boxes(boxes, "boxes")
    if not isinstance(scores, Tensor) or not scores.is_floating_point() or scores.shape != (boxes.shape[0],):
        raise ValueError(
            f"scores must be a floating tensor of shape ({boxes.shape[0]},) (one per box), got {_describe(scores)}"
        )
    if scores.device != boxes.device:
        raise ValueError(f"scores must be on the device of boxes ({boxes.device}), got {scores.device}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores must be finite, got NaN or infinite values")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)) or math.isnan(iou_threshold):
        raise ValueError(f"iou_threshold must be a number, got {iou_threshold!r}")
    if max_output is not None and (isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 0):
        raise ValueError(f"max_output must be None or a non-negative int, got {max_output!r}")
    limit = boxes.shape[0] if max_output is None else min(max_output, boxes.shape[0])
    if limit == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    if iou_threshold < 0:  # every pair overlaps by more, disjoint boxes included
        return order[:1]
    # Greedy, computing overlaps only between the box just kept and the boxes still
    # alive after it: with clustered candidates (thousands of boxes on a few objects)
    # this is far fewer pairs than all overlapping pairs, since every kept box
    # removes its whole cluster at once.
    sorted_boxes = boxes[order].double()
    area = sorted_boxes[:, 3] * sorted_boxes[:, 4]
    radius = sorted_boxes[:, 3:5].norm(dim=1) / 2
    alive = torch.ones(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep: list[int] = []
    index = 0
    while index < boxes.shape[0]:
        keep.append(index)
        if len(keep) == limit:
            break
        rest = alive[index + 1 :].nonzero().flatten() + index + 1
        if rest.numel():
            distance = (sorted_boxes[rest, :2] - sorted_boxes[index, :2]).norm(dim=1)
            near = rest[distance < radius[rest] + radius[index]]
            if near.numel():
                overlap = _paired_overlap(sorted_boxes[index].expand(near.numel(), 7), sorted_boxes[near])
                suppressed = near[_union_ratio(overlap, area[index], area[near]) > iou_threshold]
                alive[suppressed] = False
        following = alive[index + 1 :].nonzero()
        if following.numel() == 0:
            break
        index = int(following[0]) + index + 1
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def _check_camera_boxes(boxes: Tensor, name: str) -> None:
    if not isinstance(boxes, Tensor) or not boxes.is_floating_point() or boxes.dim() != 2 or boxes.shape[1] != 7:
        raise ValueError(
            f"{name} must be a floating tensor of shape (N, 7) (x, y, z, l, h, w, ry) in camera coordinates, "
            f"got {_describe(boxes)}"
        )


def camera_to_lidar_convention(boxes: Tensor) -> Tensor:
    r"""KITTI camera-frame boxes in this module's box convention.

    The rows :math:`(x, y, z, l, h, w, r_y)` (bottom centre, rectified camera
    coordinates) become

    .. math::
        (z,\ -x,\ -y + h / 2,\ l,\ w,\ h,\ -r_y - \pi / 2),

    the same box seen in axes rotated so that :math:`z` points up: the camera's
    BEV plane :math:`(x, z)` becomes the :math:`(x, y)` plane and the height
    interval :math:`[y - h, y]` becomes :math:`[-y, -y + h]`. The map is a
    rotation, so all areas, volumes and overlaps are kept. It is not the
    calibrated LiDAR frame (see :func:`pointkd.datasets.kitti.objects_to_lidar_boxes`).

    Args:
        boxes (Tensor): camera-frame boxes :math:`(x, y, z, l, h, w, r_y)`.

    Shapes:
        - boxes: :math:`(N, 7)`
        - output: :math:`(N, 7)`, in the dtype of ``boxes``.
    """
    _check_camera_boxes(boxes, "boxes")
    x, y, z, length, height, width, rotation_y = boxes.unbind(1)
    return torch.stack([z, -x, height / 2 - y, length, width, height, -rotation_y - math.pi / 2], dim=1)


def _camera_pair(boxes_a: Tensor, boxes_b: Tensor) -> tuple[Tensor, Tensor]:
    _check_camera_boxes(boxes_a, "boxes_a")
    _check_camera_boxes(boxes_b, "boxes_b")
    return camera_to_lidar_convention(boxes_a), camera_to_lidar_convention(boxes_b)


def kitti_bev_iou(boxes_a: Tensor, boxes_b: Tensor, aligned: bool = False) -> Tensor:
    r"""BEV IoU of KITTI camera-frame boxes, on the :math:`(x, z)` plane (the
    official devkit's ground-plane overlap).

    Args:
        boxes_a (Tensor): camera-frame boxes :math:`(x, y, z, l, h, w, r_y)`.
        boxes_b (Tensor): camera-frame boxes in the same convention.
        aligned (bool, optional): if :obj:`True`, only the pairs
            :math:`(a_n, b_n)`. (default: :obj:`False`)

    Shapes:
        - boxes_a: :math:`(N, 7)`
        - boxes_b: :math:`(M, 7)` (:math:`(N, 7)` when aligned)
        - output: :math:`(N, M)` (:math:`(N,)` when aligned).
    """
    return boxes_iou_bev(*_camera_pair(boxes_a, boxes_b), aligned=aligned)


def kitti_3d_iou(boxes_a: Tensor, boxes_b: Tensor, aligned: bool = False) -> Tensor:
    r"""3D IoU of KITTI camera-frame boxes: BEV intersection on :math:`(x, z)`
    times the overlap of the height intervals :math:`[y - h, y]`.

    Args:
        boxes_a (Tensor): camera-frame boxes :math:`(x, y, z, l, h, w, r_y)`.
        boxes_b (Tensor): camera-frame boxes in the same convention.
        aligned (bool, optional): if :obj:`True`, only the pairs
            :math:`(a_n, b_n)`. (default: :obj:`False`)

    Shapes:
        - boxes_a: :math:`(N, 7)`
        - boxes_b: :math:`(M, 7)` (:math:`(N, 7)` when aligned)
        - output: :math:`(N, M)` (:math:`(N,)` when aligned).
    """
    return boxes_iou3d(*_camera_pair(boxes_a, boxes_b), aligned=aligned)


__all__ = [
    "box_corners_bev",
    "boxes_iou3d",
    "boxes_iou_bev",
    "boxes_overlap_bev",
    "camera_to_lidar_convention",
    "kitti_3d_iou",
    "kitti_bev_iou",
    "nms_bev",
]
