"""Compiled point-cloud and volume ops (``torch.ops.pointkd``) with their pure-torch references."""

from pointkd.ops.grid_sample import grid_sample3d
from pointkd.ops.morton import morton_encode

__all__ = ["grid_sample3d", "morton_encode"]
