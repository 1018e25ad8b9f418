r"""Anchors, their training targets, the single-stage anchor head and its losses.

The head of `SECOND <https://www.mdpi.com/1424-8220/18/10/3337>`_ and
`PointPillars <https://arxiv.org/abs/1812.05784>`_: a bird's-eye-view feature
map predicts, at every cell and for every anchor (one per class, size and
rotation), class scores, a box residual (:mod:`pointkd.detection.box_coder`) and
a direction bin. The loss is

.. math::
    \mathcal{L} = \frac{1}{N_\text{pos}}\Big(
        w_\text{cls} \sum_\text{anchors} \text{FL}(p, y)
        + w_\text{box} \sum_\text{pos} \text{SmoothL1}_\beta(\Delta)
        + w_\text{dir} \sum_\text{pos} \text{CE}(q, d)\Big),

with the sigmoid focal loss :math:`\text{FL} = -\alpha_t (1 - p_t)^\gamma \log p_t`
(:math:`\alpha = 0.25, \gamma = 2`) over positive and negative anchors
(anchors between the two IoU thresholds are ignored), the smooth-L1 loss
(:math:`\beta = 1/9`) on residuals whose heading code goes through
:func:`~pointkd.detection.box_coder.sin_difference`, and cross-entropy on the
direction bin, with OpenPCDet's weights :math:`w = (1, 2, 0.2)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pointkd.detection.box_coder import (
    BOX_CODE_SIZE,
    apply_direction,
    decode_boxes,
    direction_targets,
    encode_boxes,
    limit_period,
    sin_difference,
)


@dataclass(frozen=True)
class AnchorConfig:
    """Anchors and matching thresholds of one class.

    Args:
        name (str): the class name, as in the labels.
        size (tuple): anchor ``(dx, dy, dz)`` in metres.
        bottom_z (float): height of the anchor's bottom face in the LiDAR frame.
        rotations (tuple): anchor headings. (default: ``(0, pi/2)``)
        matched_threshold (float): nearest-BEV IoU at or above which an anchor is positive.
        unmatched_threshold (float): IoU below which an anchor is negative.
    """

    name: str
    size: tuple[float, float, float]
    bottom_z: float
    rotations: tuple[float, ...] = (0.0, math.pi / 2)
    matched_threshold: float = 0.6
    unmatched_threshold: float = 0.45

    def __post_init__(self) -> None:
        if len(self.size) != 3 or min(self.size) <= 0:
            raise ValueError(f"AnchorConfig.size must be three positive lengths, got {self.size}")
        if not self.rotations:
            raise ValueError("AnchorConfig.rotations must not be empty")
        if not 0 <= self.unmatched_threshold <= self.matched_threshold <= 1:
            raise ValueError(
                "AnchorConfig needs 0 <= unmatched_threshold <= matched_threshold <= 1, got "
                f"{self.unmatched_threshold} and {self.matched_threshold}"
            )


# OpenPCDet's KITTI anchors (kitti_models/pointpillar.yaml).
KITTI_ANCHORS = (
    AnchorConfig("Car", (3.9, 1.6, 1.56), -1.78, matched_threshold=0.6, unmatched_threshold=0.45),
    AnchorConfig("Pedestrian", (0.8, 0.6, 1.73), -0.6, matched_threshold=0.5, unmatched_threshold=0.35),
    AnchorConfig("Cyclist", (1.76, 0.6, 1.73), -0.6, matched_threshold=0.5, unmatched_threshold=0.35),
)


def generate_anchors(
    anchor_configs: tuple[AnchorConfig, ...], point_cloud_range: tuple[float, ...], feature_size: tuple[int, int]
) -> list[Tensor]:
    """Anchors of every class at the centres of the feature map's cells.

    Returns one tensor per class of shape ``(H, W, R, 7)`` (``R`` rotations), the
    cell ``(i, j)`` centred at ``x = x0 + (j + 0.5) * cell_x``, ``y = y0 + (i + 0.5) * cell_y``.
    """
    x0, y0, _, x1, y1, _ = point_cloud_range
    height, width = feature_size
    cell_x, cell_y = (x1 - x0) / width, (y1 - y0) / height
    xs = x0 + (torch.arange(width, dtype=torch.float32) + 0.5) * cell_x
    ys = y0 + (torch.arange(height, dtype=torch.float32) + 0.5) * cell_y
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    anchors = []
    for config in anchor_configs:
        rotations = torch.tensor(config.rotations, dtype=torch.float32)
        count = len(config.rotations)
        centre_z = config.bottom_z + config.size[2] / 2
        per_class = torch.empty(height, width, count, 7)
        per_class[..., 0] = grid_x[..., None]
        per_class[..., 1] = grid_y[..., None]
        per_class[..., 2] = centre_z
        per_class[..., 3:6] = torch.tensor(config.size)
        per_class[..., 6] = rotations
        anchors.append(per_class)
    return anchors


def nearest_bev_boxes(boxes: Tensor) -> Tensor:
    """Axis-aligned BEV boxes ``(M, 4)`` ``(x1, y1, x2, y2)``: each box turned to the nearer of 0 and 90 degrees."""
    heading = limit_period(boxes[:, 6], 0.5, math.pi).abs()
    dims = torch.where((heading < math.pi / 4)[:, None], boxes[:, 3:5], boxes[:, [4, 3]])
    return torch.cat([boxes[:, :2] - dims / 2, boxes[:, :2] + dims / 2], dim=1)


def axis_aligned_iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """IoU ``(N, M)`` of axis-aligned boxes ``(x1, y1, x2, y2)``."""
    low = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    high = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (high - low).clamp(min=0).prod(dim=-1)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(dim=-1)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(dim=-1)
    union = area_a[:, None] + area_b[None, :] - intersection
    return intersection / union.clamp(min=1e-8)


@dataclass
class Targets:
    """Training targets of a batch, flattened over ``(H, W, anchors per cell)``.

    ``labels`` holds 1-based class ids for positive anchors, 0 for negatives and
    -1 for ignored ones; ``box_targets`` and ``direction`` are meaningful where
    ``labels > 0``.
    """

    labels: Tensor  # (B, A) long
    box_targets: Tensor  # (B, A, 7)
    direction: Tensor  # (B, A) long


def assign_targets(
    anchors: list[Tensor],
    anchor_configs: tuple[AnchorConfig, ...],
    gt_boxes: list[Tensor],
    gt_labels: list[Tensor],
    direction_offset: float = math.pi / 4,
    num_direction_bins: int = 2,
) -> Targets:
    """Match anchors to ground truth, class by class, by nearest-BEV IoU (SECOND's assigner).

    An anchor is positive when its IoU with a box of its class reaches the
    class's ``matched_threshold``, or when it is the best anchor of some box (a
    box always gets at least one anchor if any overlaps it); negative below
    ``unmatched_threshold``; ignored in between.

    Args:
        anchors (list[Tensor]): per class, ``(H, W, R, 7)`` from :func:`generate_anchors`.
        anchor_configs (tuple[AnchorConfig]): the classes, in label order (label ``k + 1``).
        gt_boxes (list[Tensor]): per frame, ``(M, 7)`` boxes.
        gt_labels (list[Tensor]): per frame, ``(M,)`` 1-based class ids.
    """
    height, width = anchors[0].shape[:2]
    device = gt_boxes[0].device if gt_boxes else anchors[0].device
    batch_labels, batch_boxes, batch_direction = [], [], []
    for boxes, labels in zip(gt_boxes, gt_labels):
        class_labels, class_boxes, class_direction = [], [], []
        for index, (class_anchors, config) in enumerate(zip(anchors, anchor_configs)):
            flat = class_anchors.to(device).reshape(-1, 7)
            count = flat.shape[0]
            target_label = torch.zeros(count, dtype=torch.long, device=device)
            target_box = torch.zeros(count, 7, device=device)
            target_direction = torch.zeros(count, dtype=torch.long, device=device)
            mine = labels == index + 1
            boxes_of_class = boxes[mine]
            if boxes_of_class.shape[0] > 0:
                iou = axis_aligned_iou(nearest_bev_boxes(flat), nearest_bev_boxes(boxes_of_class))  # (A, M)
                best_iou, best_gt = iou.max(dim=1)
                gt_best = iou.max(dim=0).values  # (M,)
                forced = (iou == gt_best[None, :]) & (gt_best[None, :] > 0)
                forced_anchor = forced.any(dim=1)
                # A forced anchor is matched to the box it is best for.
                forced_gt = torch.where(forced, iou, torch.full_like(iou, -1.0)).argmax(dim=1)
                matched_gt = torch.where(forced_anchor, forced_gt, best_gt)
                positive = forced_anchor | (best_iou >= config.matched_threshold)
                ignored = ~positive & (best_iou >= config.unmatched_threshold)
                target_label[ignored] = -1
                target_label[positive] = index + 1
                matched_boxes = boxes_of_class[matched_gt[positive]]
                target_box[positive] = encode_boxes(matched_boxes, flat[positive])
                target_direction[positive] = direction_targets(
                    matched_boxes[:, 6], direction_offset, num_direction_bins
                )
            class_labels.append(target_label.view(height, width, -1))
            class_boxes.append(target_box.view(height, width, -1, 7))
            class_direction.append(target_direction.view(height, width, -1))
        batch_labels.append(torch.cat(class_labels, dim=2).reshape(-1))
        batch_boxes.append(torch.cat(class_boxes, dim=2).reshape(-1, 7))
        batch_direction.append(torch.cat(class_direction, dim=2).reshape(-1))
    return Targets(torch.stack(batch_labels), torch.stack(batch_boxes), torch.stack(batch_direction))


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise sigmoid focal loss (`Lin et al. <https://arxiv.org/abs/1708.02002>`_) of ``logits``."""
    probability = torch.sigmoid(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = targets * probability + (1 - targets) * (1 - probability)
    alpha_t = targets * alpha + (1 - targets) * (1 - alpha)
    return alpha_t * (1 - p_t) ** gamma * cross_entropy


def smooth_l1(difference: Tensor, beta: float = 1.0 / 9.0) -> Tensor:
    """Element-wise smooth-L1 of ``difference`` with transition at ``beta``."""
    absolute = difference.abs()
    return torch.where(absolute < beta, 0.5 * absolute**2 / beta, absolute - 0.5 * beta)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three loss terms (OpenPCDet's defaults)."""

    classification: float = 1.0
    box: float = 2.0
    direction: float = 0.2
    code_weights: tuple[float, ...] = field(default=(1.0,) * BOX_CODE_SIZE)


class AnchorHead(nn.Module):
    r"""1x1 convolutions predicting class scores, box residuals and direction bins per anchor.

    Args:
        in_channels (int): channels of the BEV feature map.
        anchor_configs (tuple[AnchorConfig]): the classes and their anchors.
        point_cloud_range (tuple): ``(x0, y0, z0, x1, y1, z1)`` the feature map covers.
        feature_size (tuple[int, int]): ``(H, W)`` of the feature map.
        num_direction_bins (int): direction classes. (default: ``2``)
        direction_offset (float): heading where the first bin starts. (default: ``pi/4``)
        loss_weights (LossWeights): loss weights. (default: OpenPCDet's)

    Shapes:
        - input: ``(B, in_channels, H, W)``
        - output: dict of ``cls`` ``(B, A, C)``, ``box`` ``(B, A, 7)``, ``direction``
          ``(B, A, bins)`` with ``A = H * W * anchors per cell``.
    """

    def __init__(
        self,
        in_channels: int,
        anchor_configs: tuple[AnchorConfig, ...],
        point_cloud_range: tuple[float, ...],
        feature_size: tuple[int, int],
        num_direction_bins: int = 2,
        direction_offset: float = math.pi / 4,
        loss_weights: LossWeights | None = None,
    ):
        super().__init__()
        self.anchor_configs = tuple(anchor_configs)
        self.num_classes = len(self.anchor_configs)
        self.num_direction_bins = num_direction_bins
        self.direction_offset = direction_offset
        self.loss_weights = loss_weights or LossWeights()
        anchors = generate_anchors(self.anchor_configs, point_cloud_range, feature_size)
        self.anchors_per_class = anchors
        self.anchors_per_cell = sum(len(config.rotations) for config in self.anchor_configs)
        self.register_buffer("anchors", torch.cat(anchors, dim=2).reshape(-1, 7), persistent=False)
        self.conv_cls = nn.Conv2d(in_channels, self.anchors_per_cell * self.num_classes, 1)
        self.conv_box = nn.Conv2d(in_channels, self.anchors_per_cell * BOX_CODE_SIZE, 1)
        self.conv_dir = nn.Conv2d(in_channels, self.anchors_per_cell * num_direction_bins, 1)
        # Start from the background prior p = 0.01 so the focal loss does not swamp early training.
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.normal_(self.conv_box.weight, mean=0.0, std=0.001)
        nn.init.zeros_(self.conv_box.bias)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        batch = features.shape[0]

        def per_anchor(output: Tensor, size: int) -> Tensor:
            # (B, A*size, H, W) -> (B, H, W, A, size) -> (B, H*W*A, size), the anchors' order.
            return output.permute(0, 2, 3, 1).reshape(batch, -1, size)

        return {
            "cls": per_anchor(self.conv_cls(features), self.num_classes),
            "box": per_anchor(self.conv_box(features), BOX_CODE_SIZE),
            "direction": per_anchor(self.conv_dir(features), self.num_direction_bins),
        }

    def targets(self, gt_boxes: list[Tensor], gt_labels: list[Tensor]) -> Targets:
        anchors = [anchor.to(self.anchors.device) for anchor in self.anchors_per_class]
        return assign_targets(
            anchors, self.anchor_configs, gt_boxes, gt_labels, self.direction_offset, self.num_direction_bins
        )

    def loss(self, predictions: dict[str, Tensor], targets: Targets) -> dict[str, Tensor]:
        """The three loss terms and their weighted sum ``"loss"``, each normalised by the positives per frame."""
        weights = self.loss_weights
        labels = targets.labels
        positive = labels > 0
        cared = labels >= 0
        normaliser = positive.sum(dim=1, keepdim=True).clamp(min=1).to(predictions["cls"].dtype)

        one_hot = F.one_hot(labels.clamp(min=0), self.num_classes + 1)[..., 1:].to(predictions["cls"].dtype)
        focal = sigmoid_focal_loss(predictions["cls"], one_hot).sum(dim=-1)
        cls_loss = (focal * cared / normaliser).sum() / labels.shape[0]

        predicted_box, target_box = sin_difference(predictions["box"], targets.box_targets)
        code_weights = predicted_box.new_tensor(weights.code_weights)
        box_elementwise = smooth_l1(predicted_box - target_box) * code_weights
        box_loss = (box_elementwise.sum(dim=-1) * positive / normaliser).sum() / labels.shape[0]

        direction_ce = F.cross_entropy(
            predictions["direction"].reshape(-1, self.num_direction_bins),
            targets.direction.reshape(-1),
            reduction="none",
        ).view_as(labels)
        direction_loss = (direction_ce * positive / normaliser).sum() / labels.shape[0]

        total = weights.classification * cls_loss + weights.box * box_loss + weights.direction * direction_loss
        return {"loss": total, "cls_loss": cls_loss, "box_loss": box_loss, "direction_loss": direction_loss}

    @torch.no_grad()
    def decode(self, predictions: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Boxes ``(B, A, 7)`` with direction applied, class scores ``(B, A, C)`` (sigmoid) and ``(B, A)`` labels."""
        boxes = decode_boxes(predictions["box"], self.anchors[None])
        direction = predictions["direction"].argmax(dim=-1)
        heading = apply_direction(boxes[..., 6], direction, self.direction_offset, self.num_direction_bins)
        boxes = torch.cat([boxes[..., :6], limit_period(heading, 0.5, 2 * math.pi)[..., None]], dim=-1)
        scores = torch.sigmoid(predictions["cls"])
        return boxes, scores, scores.argmax(dim=-1) + 1
