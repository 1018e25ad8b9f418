"""Compiled point-cloud and volume ops (``torch.ops.pointkd``) with their pure-torch references."""

from pointkd.ops.grid_sample import grid_sample3d
from pointkd.ops.hash_grid import HashGridConfig, hash_grid_encode
from pointkd.ops.morton import morton_encode

__all__ = ["HashGridConfig", "grid_sample3d", "hash_grid_encode", "morton_encode"]
