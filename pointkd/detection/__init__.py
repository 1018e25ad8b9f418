"""3D object detection: boxes, anchors, heads, detectors, evaluation.

The pieces of a LiDAR detector as plain modules and functions:

- :mod:`~pointkd.detection.voxelize` and :mod:`~pointkd.detection.augment`: points to
  voxels or pillars; flips, rotations, scaling and ground-truth sampling;
- :mod:`~pointkd.detection.pointpillars`, :mod:`~pointkd.detection.backbone3d` (on the
  :mod:`~pointkd.detection.sparse` spconv shim) and :mod:`~pointkd.detection.anchor_head`:
  the encoders, backbones and the anchor head, wired by :class:`Detector`;
- :mod:`~pointkd.detection.iou` and :mod:`~pointkd.detection.kitti_eval`: rotated IoU,
  NMS and KITTI AP;
- :mod:`~pointkd.detection.train`: training, evaluation and the saved-model format.
"""

from pointkd.detection.anchor_head import AnchorConfig, AnchorHead
from pointkd.detection.augment import AugmentConfig, GroundTruthSampler
from pointkd.detection.detector import (
    DETECTORS,
    Detector,
    DetectorConfig,
    build_detector,
    kitti_config,
    simlidar_config,
)
from pointkd.detection.iou import boxes_iou3d, boxes_iou_bev, nms_bev
from pointkd.detection.kitti_eval import evaluate_kitti, format_kitti_results
from pointkd.detection.train import (
    DetectorTrainConfig,
    evaluate_detector,
    load_detector,
    save_detector,
    train_detector,
)
from pointkd.detection.voxelize import VoxelGrid, Voxels, voxelize

__all__ = [
    "DETECTORS",
    "AnchorConfig",
    "AnchorHead",
    "AugmentConfig",
    "Detector",
    "DetectorConfig",
    "DetectorTrainConfig",
    "GroundTruthSampler",
    "VoxelGrid",
    "Voxels",
    "boxes_iou3d",
    "boxes_iou_bev",
    "build_detector",
    "evaluate_detector",
    "evaluate_kitti",
    "format_kitti_results",
    "kitti_config",
    "load_detector",
    "nms_bev",
    "save_detector",
    "simlidar_config",
    "train_detector",
    "voxelize",
]
