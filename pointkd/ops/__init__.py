"""Compiled point-cloud and volume ops (``torch.ops.pointkd``) with their pure-torch references."""

from pointkd.ops.composite import CompositeOutput, composite
from pointkd.ops.grid_sample import grid_sample3d
from pointkd.ops.hash_grid import HashGridConfig, hash_grid_encode
from pointkd.ops.morton import morton_encode
from pointkd.ops.ray_march import RayMarchOutput, ray_march
from pointkd.ops.resample import evaluate_on_grid, resample_volume

__all__ = [
    "CompositeOutput",
    "HashGridConfig",
    "RayMarchOutput",
    "composite",
    "evaluate_on_grid",
    "grid_sample3d",
    "hash_grid_encode",
    "morton_encode",
    "ray_march",
    "resample_volume",
]
