"""Bird's-eye-view pictures of point clouds with ground-truth and predicted boxes."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from pointkd.datasets.kitti import lidar_box_corners


def draw_bev(
    path: str | Path,
    points: Tensor,
    gt_boxes: Tensor,
    pred_boxes: Tensor | None = None,
    pred_scores: Tensor | None = None,
    point_cloud_range: tuple[float, ...] | None = None,
    score_threshold: float = 0.3,
) -> None:
    """Write a PNG: points from above (shaded by height), ground truth in green, predictions in red.

    Args:
        path (path): the PNG to write.
        points (Tensor): ``(N, >=3)`` LiDAR points.
        gt_boxes (Tensor): ``(M, 7)`` ground-truth boxes.
        pred_boxes (Tensor, optional): ``(K, 7)`` predicted boxes.
        pred_scores (Tensor, optional): ``(K,)`` their scores (drawn above ``score_threshold``).
        point_cloud_range (tuple, optional): the area shown (default: the points' extent).
        score_threshold (float): predictions below are not drawn. (default: ``0.3``)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 7))
    xyz = points[:, :3].detach().cpu().float()
    # x forward drawn upwards, y left drawn to the left: the view from above the car.
    axis.scatter(-xyz[:, 1], xyz[:, 0], s=0.3, c=xyz[:, 2], cmap="viridis", linewidths=0)

    def outline(boxes: Tensor, color: str, labels: Tensor | None = None) -> None:
        if boxes is None or boxes.shape[0] == 0:
            return
        corners = lidar_box_corners(boxes.detach().cpu().double())[:, :4, :2]
        for index, box in enumerate(corners):
            loop = torch.cat([box, box[:1]])
            axis.plot(-loop[:, 1], loop[:, 0], color=color, linewidth=1.0)
            # The front edge (corners 0-1) drawn thicker shows the heading.
            axis.plot(-box[:2, 1], box[:2, 0], color=color, linewidth=2.5)
            if labels is not None:
                axis.text(-box[0, 1], box[0, 0], f"{float(labels[index]):.2f}", color=color, fontsize=6)

    outline(gt_boxes, "limegreen")
    if pred_boxes is not None:
        scores = pred_scores if pred_scores is not None else torch.ones(pred_boxes.shape[0])
        shown = scores.detach().cpu() >= score_threshold
        outline(pred_boxes.detach().cpu()[shown], "red", scores.detach().cpu()[shown])
    if point_cloud_range is not None:
        x0, y0, _, x1, y1, _ = point_cloud_range
        axis.set_xlim(-y1, -y0)
        axis.set_ylim(x0, x1)
    axis.set_aspect("equal")
    axis.set_xlabel("-y (m)")
    axis.set_ylabel("x (m)")
    axis.set_title("ground truth (green), predictions (red)")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
