"""Point-cloud datasets: the KITTI 3D-object layout, point-cloud files and a simulated LiDAR."""

from pointkd.datasets.io import read_points, write_points
from pointkd.datasets.kitti import (
    CLASSES,
    Calibration,
    KittiFrame,
    KittiObject,
    kitti_default_calibration,
    lidar_boxes_to_objects,
    load_kitti_frame,
    objects_to_lidar_boxes,
    points_in_boxes,
    read_labels,
    read_velodyne,
    write_calibration,
    write_labels,
)
from pointkd.datasets.simlidar import SimLidar, SimLidarConfig, SimLidarScan, SimObject, SimScene, simlidar_root

__all__ = [
    "CLASSES",
    "Calibration",
    "KittiFrame",
    "KittiObject",
    "SimLidar",
    "SimLidarConfig",
    "SimLidarScan",
    "SimObject",
    "SimScene",
    "kitti_default_calibration",
    "lidar_boxes_to_objects",
    "load_kitti_frame",
    "objects_to_lidar_boxes",
    "points_in_boxes",
    "read_labels",
    "read_points",
    "read_velodyne",
    "simlidar_root",
    "write_calibration",
    "write_labels",
    "write_points",
]
