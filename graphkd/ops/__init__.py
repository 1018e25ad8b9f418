"""Compiled graph ops (``torch.ops.graphkd``) with their pure-torch references."""

from graphkd.ops.index_to_ptr import index_to_ptr
from graphkd.ops.tree_hash import TreeVocabulary, tree_hash

__all__ = ["TreeVocabulary", "index_to_ptr", "tree_hash"]
