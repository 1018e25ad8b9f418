"""Point-cloud datasets: the KITTI 3D-object layout and point-cloud files."""

from pointkd.datasets.io import read_points, write_points
from pointkd.datasets.kitti import (
    CLASSES,
    Calibration,
    KittiFrame,
    KittiObject,
    load_kitti_frame,
    objects_to_lidar_boxes,
    points_in_boxes,
    read_labels,
    read_velodyne,
)

__all__ = [
    "CLASSES",
    "Calibration",
    "KittiFrame",
    "KittiObject",
    "load_kitti_frame",
    "objects_to_lidar_boxes",
    "points_in_boxes",
    "read_labels",
    "read_points",
    "read_velodyne",
    "write_points",
]
