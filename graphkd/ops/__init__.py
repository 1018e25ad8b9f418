"""Compiled graph ops (``torch.ops.graphkd``) with their pure-torch references."""

from graphkd.ops.index_to_ptr import index_to_ptr

__all__ = ["index_to_ptr"]
