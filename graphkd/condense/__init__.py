"""Graph dataset condensation: a tiny training set that any GNN can learn from."""

from graphkd.condense.discretize import discretize
from graphkd.condense.mining import fpgrowth, resolve_min_support
from graphkd.condense.mirage import CondensedDataset, CondensedFileError, EmptyClassError, condense, training_set

__all__ = [
    "CondensedDataset",
    "CondensedFileError",
    "EmptyClassError",
    "condense",
    "discretize",
    "fpgrowth",
    "resolve_min_support",
    "training_set",
]
