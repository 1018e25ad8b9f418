"""Point-cloud files: raw float32 ``.bin`` scans (KITTI, nuScenes) and ``.pcd`` / ``.ply`` through open3d.

Points are ``(N, C)`` float32 tensors, ``(x, y, z)`` first and, where the file
has it, ``intensity`` as the fourth column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

SUFFIXES = (".bin", ".pcd", ".ply")


def read_points(path: str | Path, num_features: int = 4) -> Tensor:
    """Read a point cloud.

    Args:
        path (path): a ``.bin`` file of float32 rows (KITTI: 4 values per point,
            nuScenes sweeps: 5), or a ``.pcd`` / ``.ply`` file.
        num_features (int, optional): values per row of a ``.bin`` file.
            (default: ``4``)

    Returns:
        Tensor: ``(N, num_features)`` for ``.bin``; ``(N, 3)`` or ``(N, 4)``
        (with intensity) for ``.pcd`` / ``.ply``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, a ``.bin`` size that is not whole rows,
            or NaN / inf coordinates (the row is named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point cloud {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".bin":
        if num_features < 3:
            raise ValueError(f"num_features must be >= 3, got {num_features}")
        size = path.stat().st_size
        if size % (4 * num_features):
            raise ValueError(f"{path}: {size} bytes is not a whole number of rows of {num_features} float32 values")
        points = torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(-1, num_features))
    elif suffix in (".pcd", ".ply"):
        import open3d as o3d

        cloud = o3d.t.io.read_point_cloud(str(path))
        if "positions" not in cloud.point:
            points = torch.zeros(0, 3)
        else:
            columns = [cloud.point.positions.numpy().astype(np.float32).reshape(-1, 3)]
            if "intensity" in cloud.point:
                columns.append(cloud.point.intensity.numpy().astype(np.float32).reshape(-1, 1))
            points = torch.from_numpy(np.concatenate(columns, axis=1))
    else:
        raise ValueError(f"{path}: unknown point-cloud suffix {suffix!r}, expected one of {', '.join(SUFFIXES)}")
    bad = ~torch.isfinite(points).all(dim=1)
    if bad.any():
        raise ValueError(f"{path}: row {int(bad.nonzero()[0])} holds NaN or inf ({int(bad.sum())} such rows)")
    return points


def write_points(path: str | Path, points: Tensor) -> None:
    """Write ``(N, 3)`` or ``(N, 4)`` points (the fourth column as intensity) to ``.bin``, ``.pcd`` or ``.ply``."""
    path = Path(path)
    if not isinstance(points, Tensor) or points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be a tensor of shape (N, >= 3), got {getattr(points, 'shape', type(points))}")
    array = points.detach().cpu().numpy().astype(np.float32)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".bin":
        array.tofile(path)
        return
    if suffix not in (".pcd", ".ply"):
        raise ValueError(f"{path}: unknown point-cloud suffix {suffix!r}, expected one of {', '.join(SUFFIXES)}")
    if points.shape[1] > 4:
        raise ValueError(f".pcd / .ply keep (x, y, z) and intensity only, got {points.shape[1]} columns")
    import open3d as o3d

    cloud = o3d.t.geometry.PointCloud()
    cloud.point.positions = o3d.core.Tensor(np.ascontiguousarray(array[:, :3]))
    if array.shape[1] == 4:
        cloud.point.intensity = o3d.core.Tensor(np.ascontiguousarray(array[:, 3:4]))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise OSError(f"open3d could not write {path}")
