"""Compiled point-cloud and volume ops (``torch.ops.pointkd``) with their pure-torch references."""

from pointkd.ops.morton import morton_encode

__all__ = ["morton_encode"]
