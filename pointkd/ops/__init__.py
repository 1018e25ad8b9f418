"""Compiled point-cloud and volume ops (``torch.ops.pointkd``) with their pure-torch references."""

from pointkd.ops.composite import CompositeOutput, composite
from pointkd.ops.grid_sample import grid_sample3d
from pointkd.ops.hash_grid import HashGridConfig, hash_grid_encode
from pointkd.ops.morton import morton_encode
from pointkd.ops.ray_march import RayMarchOutput, ray_march

__all__ = [
    "CompositeOutput",
    "HashGridConfig",
    "RayMarchOutput",
    "composite",
    "grid_sample3d",
    "hash_grid_encode",
    "morton_encode",
    "ray_march",
]
