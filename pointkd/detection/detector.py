r"""PointPillars and SECOND as plain modules: voxelize, encode, BEV backbone, anchor head.

Both detectors share the anchor head (:mod:`pointkd.detection.anchor_head`) and
the 2D backbone; they differ in how points become a bird's-eye-view map:

- ``pointpillars`` (`Lang et al. <https://arxiv.org/abs/1812.05784>`_): pillars
  encoded by a PointNet (:class:`~pointkd.detection.pointpillars.PillarFeatureNet`)
  and scattered to a pseudo-image;
- ``second`` (`Yan et al. <https://www.mdpi.com/1424-8220/18/10/3337>`_): mean
  point features per voxel and a sparse 3D convolutional backbone
  (:class:`~pointkd.detection.backbone3d.VoxelBackBone8x`) whose output is
  flattened over height.

``width`` multiplies every channel count (rounded to a multiple of 8) to build
the compressed students of PointDistiller (``0.5`` and ``0.25`` are its 4x and
16x students).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor, nn

from pointkd.detection.anchor_head import KITTI_ANCHORS, AnchorConfig, AnchorHead
from pointkd.detection.pointpillars import BEVBackbone, PillarFeatureNet, scaled_channels, scatter_to_bev
from pointkd.detection.voxelize import VoxelGrid, collate_voxels, voxelize

DETECTORS = ("pointpillars", "second")

# Anchors for SimLidar scenes: the same classes and sizes as KITTI's, resting on
# the simulated ground (sensor 1.73 m above it).
SIMLIDAR_ANCHORS = (
    AnchorConfig("Car", (3.9, 1.6, 1.56), -1.73, matched_threshold=0.6, unmatched_threshold=0.45),
    AnchorConfig("Pedestrian", (0.8, 0.6, 1.73), -1.73, matched_threshold=0.5, unmatched_threshold=0.35),
    AnchorConfig("Cyclist", (1.76, 0.6, 1.73), -1.73, matched_threshold=0.5, unmatched_threshold=0.35),
)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that defines a detector's architecture and its decoding.

    Args:
        detector (str): ``"pointpillars"`` or ``"second"``.
        width (float): channel multiplier. (default: ``1.0``)
        anchors (tuple[AnchorConfig]): classes in label order and their anchors.
        point_cloud_range (tuple): ``(x0, y0, z0, x1, y1, z1)`` metres.
        voxel_size (tuple): ``(vx, vy, vz)``; a pillar spans the whole z range.
        max_points_per_voxel (int): points kept per voxel.
        max_voxels (tuple[int, int]): voxels kept when training and when testing.
        score_threshold (float): detections below are dropped. (default: ``0.1``)
        nms_iou (float): rotated BEV IoU above which the lower-scored box is suppressed. (default: ``0.01``)
        nms_pre (int): top-scoring boxes entering NMS. (default: ``4096``)
        max_detections (int): boxes kept per frame after NMS. (default: ``100``)
    """

    detector: str = "pointpillars"
    width: float = 1.0
    anchors: tuple[AnchorConfig, ...] = SIMLIDAR_ANCHORS
    point_cloud_range: tuple[float, ...] = (0.0, -25.6, -3.0, 51.2, 25.6, 1.0)
    voxel_size: tuple[float, float, float] = (0.32, 0.32, 4.0)
    max_points_per_voxel: int = 32
    max_voxels: tuple[int, int] = (16000, 40000)
    score_threshold: float = 0.1
    nms_iou: float = 0.01
    nms_pre: int = 4096
    max_detections: int = 100

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if not self.anchors:
            raise ValueError("anchors must name at least one class")
        if self.max_points_per_voxel < 1 or min(self.max_voxels) < 1:
            raise ValueError("max_points_per_voxel and max_voxels must be positive")
        VoxelGrid(self.point_cloud_range, self.voxel_size)  # validates range and sizes

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(anchor.name for anchor in self.anchors)

    @property
    def grid(self) -> VoxelGrid:
        return VoxelGrid(self.point_cloud_range, self.voxel_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> DetectorConfig:
        values = dict(values)
        values["anchors"] = tuple(
            AnchorConfig(**{**anchor, "size": tuple(anchor["size"]), "rotations": tuple(anchor["rotations"])})
            for anchor in values["anchors"]
        )
        for key in ("point_cloud_range", "voxel_size", "max_voxels"):
            values[key] = tuple(values[key])
        return cls(**values)


def simlidar_config(detector: str = "pointpillars", width: float = 1.0) -> DetectorConfig:
    """The configuration for SimLidar scenes: 51.2 m ahead, 25.6 m to each side, a BEV head at 0.64 m.

    PointPillars uses 0.32 m pillars (160 x 160); SECOND 0.08 x 0.08 x 0.1 m voxels
    (640 x 640 x 40). Both heads see an 80 x 80 map, small enough to train on two
    CPU cores in an hour.
    """
    if detector == "second":
        return DetectorConfig(detector="second", width=width, voxel_size=(0.08, 0.08, 0.1), max_points_per_voxel=5)
    return DetectorConfig(detector=detector, width=width)


def kitti_config(detector: str = "pointpillars", width: float = 1.0) -> DetectorConfig:
    """OpenPCDet's KITTI configuration (``kitti_models/pointpillar.yaml`` and ``second.yaml``)."""
    if detector == "second":
        return DetectorConfig(
            detector="second",
            width=width,
            anchors=KITTI_ANCHORS,
            point_cloud_range=(0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
            voxel_size=(0.05, 0.05, 0.1),
            max_points_per_voxel=5,
            max_voxels=(16000, 40000),
        )
    return DetectorConfig(
        detector=detector,
        width=width,
        anchors=KITTI_ANCHORS,
        point_cloud_range=(0.0, -39.68, -3.0, 69.12, 39.68, 1.0),
        voxel_size=(0.16, 0.16, 4.0),
        max_points_per_voxel=32,
        max_voxels=(16000, 40000),
    )


class Detector(nn.Module):
    r"""A single-stage anchor-based LiDAR detector (PointPillars or SECOND).

    Args:
        config (DetectorConfig): architecture and decoding settings.
        in_channels (int): point features: ``4`` for ``(x, y, z, intensity)``. (default: ``4``)

    Example::

        model = Detector(simlidar_config("pointpillars", width=0.5))
        batch = model.prepare([points_a, points_b])
        predictions = model(batch)
        detections = model.detect(predictions)   # per frame: boxes, scores, labels
    """

    def __init__(self, config: DetectorConfig, in_channels: int = 4):
        super().__init__()
        self.config = config
        self.in_channels = in_channels
        grid = config.grid
        nx, ny, nz = grid.grid_size
        width = config.width
        if config.detector == "pointpillars":
            if nz != 1:
                raise ValueError(f"pointpillars needs one voxel in z (pillars), got {nz} from voxel_size")
            self.vfe = PillarFeatureNet(
                in_channels, config.voxel_size, config.point_cloud_range, scaled_channels(64, width)
            )
            self.backbone_3d = None
            bev_channels = self.vfe.out_channels
            self.backbone_2d = BEVBackbone(
                bev_channels,
                layers=(3, 5, 5),
                strides=(2, 2, 2),
                channels=tuple(scaled_channels(c, width) for c in (64, 128, 256)),
                upsample=(1, 2, 4),
                upsample_channels=tuple(scaled_channels(c, width) for c in (128, 128, 128)),
            )
            bev_stride = 1
        else:
            from pointkd.detection.backbone3d import MeanVFE, VoxelBackBone8x

            self.vfe = MeanVFE(in_channels)
            self.backbone_3d = VoxelBackBone8x(in_channels, grid.grid_size, width=width)
            bev_channels = self.backbone_3d.num_bev_features
            self.backbone_2d = BEVBackbone(
                bev_channels,
                layers=(5, 5),
                strides=(1, 2),
                channels=tuple(scaled_channels(c, width) for c in (128, 256)),
                upsample=(1, 2),
                upsample_channels=tuple(scaled_channels(c, width) for c in (256, 256)),
            )
            bev_stride = 8
        stride = bev_stride * self.backbone_2d.stride
        # Every stage must halve the map exactly for the upsampled maps to line up.
        coarsest = bev_stride * math.prod(self.backbone_2d.strides)
        if nx % coarsest or ny % coarsest:
            raise ValueError(
                f"the {nx}x{ny} voxel grid must be divisible by {coarsest} (the backbone's total stride); "
                "adjust point_cloud_range or voxel_size"
            )
        self.feature_size = (ny // stride, nx // stride)
        self.head = AnchorHead(
            self.backbone_2d.out_channels, config.anchors, config.point_cloud_range, self.feature_size
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    def prepare(self, points: list[Tensor]) -> dict[str, Tensor | int]:
        """Voxelize each frame's points ``(N, C)`` and batch the voxels."""
        for index, frame in enumerate(points):
            if not isinstance(frame, Tensor) or frame.dim() != 2 or frame.shape[1] != self.in_channels:
                shape = tuple(frame.shape) if isinstance(frame, Tensor) else type(frame).__name__
                raise ValueError(
                    f"points[{index}] must be a (N, {self.in_channels}) tensor (x, y, z, intensity), got {shape}"
                )
        grid = self.config.grid
        max_voxels = self.config.max_voxels[0 if self.training else 1]
        device = next(self.parameters()).device
        frames = [voxelize(frame.to(device), grid, self.config.max_points_per_voxel, max_voxels) for frame in points]
        voxels, voxel_coords, num_points = collate_voxels(frames)
        return {"voxels": voxels, "voxel_coords": voxel_coords, "num_points": num_points, "batch_size": len(points)}

    def bev_features(self, batch: dict) -> dict[str, Tensor]:
        """The BEV feature map and intermediate features (what distillation taps)."""
        voxels, coords, num_points = batch["voxels"], batch["voxel_coords"], batch["num_points"]
        outputs: dict = {}
        if self.backbone_3d is None:
            pillar_features = self.vfe(voxels, num_points, coords)
            nx, ny, _ = self.config.grid.grid_size
            spatial = scatter_to_bev(pillar_features, coords, batch["batch_size"], (nx, ny))
            outputs["voxel_features"] = pillar_features
        else:
            voxel_features = self.vfe(voxels, num_points)
            sparse = self.backbone_3d(voxel_features, coords, batch["batch_size"])
            spatial = sparse["spatial_features"]
            outputs["voxel_features"] = voxel_features
            outputs["multi_scale_3d_features"] = sparse.get("multi_scale_3d_features")
        outputs["spatial_features"] = spatial
        outputs.update(self.backbone_2d(spatial))
        return outputs

    def forward(self, batch: dict) -> dict[str, Tensor]:
        features = self.bev_features(batch)
        predictions = self.head(features["spatial_features_2d"])
        predictions["features"] = features
        return predictions

    def loss(self, predictions: dict, gt_boxes: list[Tensor], gt_labels: list[Tensor]) -> dict[str, Tensor]:
        return self.head.loss(predictions, self.head.targets(gt_boxes, gt_labels))

    @torch.no_grad()
    def detect(self, predictions: dict) -> list[dict[str, Tensor]]:
        """Per frame ``{"boxes": (K, 7), "scores": (K,), "labels": (K,) 1-based}`` after class-agnostic rotated NMS."""
        from pointkd.detection.iou import nms_bev

        config = self.config
        boxes, scores, labels = self.head.decode(predictions)
        results = []
        for frame_boxes, frame_scores, frame_labels in zip(boxes, scores, labels):
            best = frame_scores.max(dim=-1).values
            keep = best >= config.score_threshold
            frame_boxes, best, frame_labels = frame_boxes[keep], best[keep], frame_labels[keep]
            if best.numel() > config.nms_pre:
                top = best.topk(config.nms_pre).indices
                frame_boxes, best, frame_labels = frame_boxes[top], best[top], frame_labels[top]
            kept = nms_bev(frame_boxes, best, config.nms_iou, max_output=config.max_detections)
            results.append({"boxes": frame_boxes[kept], "scores": best[kept], "labels": frame_labels[kept]})
        return results


def build_detector(detector: str = "pointpillars", width: float = 1.0, data: str = "simlidar", **overrides) -> Detector:
    """A :class:`Detector` with the preset for ``data`` (``"simlidar"`` or ``"kitti"``), fields overridden by ``overrides``."""
    if data not in ("simlidar", "kitti"):
        raise ValueError(f"data must be 'simlidar' or 'kitti', got {data!r}")
    config = (simlidar_config if data == "simlidar" else kitti_config)(detector, width)
    return Detector(replace(config, **overrides))


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


__all__ = [
    "DETECTORS",
    "SIMLIDAR_ANCHORS",
    "Detector",
    "DetectorConfig",
    "build_detector",
    "count_parameters",
    "kitti_config",
    "simlidar_config",
]
