"""Discrete node and edge labels for computation-tree hashing.

Trees are compared by their labels, so continuous features must be mapped to
categories first. The strategies, chosen per dataset:

* ``"argmax"``: one-hot features (TU node labels, MUTAG's bond types);
* ``"categorical"``: integer columns, one category per distinct row (OGB's
  atom and bond features);
* ``"columns:I,J,..."``: as ``"categorical"`` on the listed columns only
  (``"columns:0"`` labels OGB atoms by element and bonds by bond type: coarser
  categories make computation trees shared by more graphs);
* ``"degree"``: the in-degree, for graphs without node features (IMDB-BINARY);
* ``"auto"``: the first of these that fits the data;
* a callable ``fn(features, edge_index, num_nodes) -> LongTensor``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Strategy = str | Callable[[Tensor | None, Tensor, int], Tensor]
NAMED_STRATEGIES = ("auto", "argmax", "categorical", "degree")
STRATEGIES = (*NAMED_STRATEGIES, "columns:I,J,...")  # as messages list them


def parse_columns(strategy: str) -> list[int]:
    """The column indices of a ``"columns:I,J,..."`` strategy (distinct, non-negative, in the given order)."""
    text = strategy[len("columns:"):]
    try:
        columns = [int(part) for part in text.split(",")]
    except ValueError:
        columns = []
    if not columns or any(column < 0 for column in columns) or len(set(columns)) != len(columns):
        raise ValueError(
            f"strategy {strategy!r}: expected 'columns:' and distinct non-negative column indices separated by "
            "commas, e.g. 'columns:0' or 'columns:0,7'"
        )
    return columns


def is_strategy(strategy) -> bool:
    """Whether ``strategy`` names a strategy :func:`discretize` knows (or is a callable); a malformed
    ``"columns:..."`` raises :class:`ValueError` saying what was expected."""
    if callable(strategy):
        return True
    if isinstance(strategy, str) and strategy.startswith("columns:"):
        parse_columns(strategy)
        return True
    return strategy in NAMED_STRATEGIES


def _is_one_hot(features: Tensor) -> bool:
    return bool(
        features.dim() == 2
        and features.shape[0] > 0
        and ((features == 0) | (features == 1)).all()
        and (features.sum(dim=1) == 1).all()
    )


def _is_integral(features: Tensor) -> bool:
    return bool(features.dim() in (1, 2) and (features.numel() == 0 or (features == features.round()).all()))


def discretize(
    features: Tensor | None, edge_index: Tensor, num_nodes: int, strategy: Strategy = "auto", what: str = "nodes"
) -> Tensor:
    r"""One non-negative int64 category per row of ``features``.

    Args:
        features (Tensor or None): node features :math:`(N, F)` or edge features
            :math:`(E, F)`; ``None`` for none.
        edge_index (Tensor): the edges :math:`(2, E)` (for ``"degree"``).
        num_nodes (int): :math:`N`.
        strategy (str or callable): see the module docstring. (default: ``"auto"``)
        what (str): ``"nodes"`` or ``"edges"`` (edges have no degree). (default: ``"nodes"``)

    Returns:
        Tensor: int64 categories, one per node (or edge), values in :math:`[0, 2^{31})`.
    """
    return categories_of_keys(*category_keys(features, edge_index, num_nodes, strategy, what))


def categories_of_keys(keys: Tensor, strategy: str | Callable) -> Tensor:
    """The categories :func:`discretize` gives rows with these :func:`category_keys` under ``strategy``
    (resolved): the ranks of the distinct key rows for categorical columns, else the one key column."""
    if isinstance(strategy, str) and (strategy == "categorical" or strategy.startswith("columns:")):
        return _row_ids(keys) if keys.shape[0] else torch.zeros(0, dtype=torch.long)
    return keys[:, 0]


def category_keys(
    features: Tensor | None, edge_index: Tensor, num_nodes: int, strategy: Strategy = "auto", what: str = "nodes"
) -> tuple[Tensor, str | Callable]:
    r"""What each row's category stands for, the same in every call: a row of int64 keys per node (or
    edge), and the strategy ``"auto"`` resolved to.

    :func:`discretize` returns these keys as they are for ``"argmax"`` (the hot column), ``"degree"``
    and functions (one column), and ranks the distinct rows of the chosen integer columns for
    ``"categorical"`` and ``"columns:..."``: those ranks depend on which rows a call sees, the keys do
    not, so categories of different calls are matched through their keys.

    Returns:
        tuple: keys :math:`(N, K)` (or :math:`(E, K)`) and the resolved strategy (a name, or the callable).
    """
    if callable(strategy):
        labels = strategy(features, edge_index, num_nodes)
        if not isinstance(labels, Tensor) or labels.dtype != torch.long or labels.dim() != 1:
            raise TypeError("a discretization function must return a 1-D int64 tensor")
        return labels.view(-1, 1), strategy
    # "none" (one category for all) is what "auto" resolves to for edges without features.
    if strategy != "none" and not is_strategy(strategy):
        raise ValueError(f"strategy must be one of {STRATEGIES} or a callable, got {strategy!r}")
    count = num_nodes if what == "nodes" else edge_index.shape[1]
    if strategy == "auto":
        if features is None or (features.numel() == 0 and count > 0):
            strategy = "degree" if what == "nodes" else "none"
        elif _is_one_hot(features):
            strategy = "argmax"
        elif _is_integral(features):
            strategy = "categorical"
        else:
            raise ValueError(
                f"cannot discretize continuous {what} features automatically (shape {tuple(features.shape)}): "
                "pass a function fn(features, edge_index, num_nodes) -> LongTensor, or drop the columns"
            )
    if strategy == "none":
        return torch.zeros(count, 1, dtype=torch.long), strategy
    if strategy == "degree":
        if what != "nodes":
            raise ValueError("strategy 'degree' applies to nodes only")
        return torch.bincount(edge_index[1], minlength=num_nodes).long().view(-1, 1), strategy
    if features is None:
        raise ValueError(f"strategy {strategy!r} needs {what} features, and there are none")
    if features.shape[0] != count:
        raise ValueError(f"{what} features have {features.shape[0]} rows, expected {count}")
    if strategy == "argmax":
        if features.dim() != 2 or not _is_one_hot(features):
            raise ValueError(f"strategy 'argmax' needs one-hot {what} features (one 1 per row)")
        return features.argmax(dim=1).view(-1, 1), strategy
    # categorical: one category per distinct row (of the chosen columns).
    rows = features.reshape(count, -1)
    if strategy.startswith("columns:"):
        columns = parse_columns(strategy)
        if max(columns) >= rows.shape[1]:
            raise ValueError(
                f"strategy {strategy!r}: column {max(columns)} is out of range for {what} features with "
                f"{rows.shape[1]} columns"
            )
        rows = rows[:, columns]
    if not _is_integral(rows):
        raise ValueError(f"strategy {strategy!r} needs integer-valued {what} features")
    return rows.long(), strategy


def _row_ids(rows: Tensor) -> Tensor:
    r"""Dense ids of the distinct rows of an int64 matrix, in lexicographic row order.

    Equal to ``torch.unique(rows, dim=0, return_inverse=True)[1]``, which sorts whole rows and
    is slow (seconds for a million atoms); here each column is ranked on its own and the ranks
    are combined in mixed radix, re-ranking whenever the next column would overflow int64.
    Ranks preserve order, so the ids are the same.
    """
    combined = torch.zeros(rows.shape[0], dtype=torch.long)
    radix = 1
    for column in rows.unbind(dim=1):
        values, ranks = torch.unique(column, return_inverse=True)
        if radix * values.numel() >= 2**62:
            kept, combined = torch.unique(combined, return_inverse=True)
            radix = kept.numel()
        combined = combined * values.numel() + ranks
        radix *= values.numel()
    return torch.unique(combined, return_inverse=True)[1]
