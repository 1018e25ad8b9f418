"""Graph dataset condensation: a tiny training set that any GNN can learn from."""

from graphkd.condense.coreset import herding, kcenter, select_per_class
from graphkd.condense.discretize import category_keys, discretize
from graphkd.condense.doscond import doscond, matching_distance
from graphkd.condense.kidd import GraphSide, kidd, krr_predict, lite_gntk
from graphkd.condense.mining import TooManyItemsetsError, fpgrowth, resolve_min_support
from graphkd.condense.mirage import (CondensedDataset, CondensedFileError, EmptyClassError, condense, training_set,
                                     tree_readout)

__all__ = [
    "CondensedDataset",
    "CondensedFileError",
    "EmptyClassError",
    "GraphSide",
    "TooManyItemsetsError",
    "category_keys",
    "condense",
    "discretize",
    "doscond",
    "fpgrowth",
    "herding",
    "kcenter",
    "kidd",
    "krr_predict",
    "lite_gntk",
    "matching_distance",
    "resolve_min_support",
    "select_per_class",
    "training_set",
    "tree_readout",
]
