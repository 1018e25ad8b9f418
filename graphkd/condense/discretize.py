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
    if callable(strategy):
        labels = strategy(features, edge_index, num_nodes)
        if not isinstance(labels, Tensor) or labels.dtype != torch.long or labels.dim() != 1:
            raise TypeError("a discretization function must return a 1-D int64 tensor")
        return labels
    if not is_strategy(strategy):
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
        return torch.zeros(count, dtype=torch.long)
    if strategy == "degree":
        if what != "nodes":
            raise ValueError("strategy 'degree' applies to nodes only")
        return torch.bincount(edge_index[1], minlength=num_nodes).long()
    if features is None:
        raise ValueError(f"strategy {strategy!r} needs {what} features, and there are none")
    if features.shape[0] != count:
        raise ValueError(f"{what} features have {features.shape[0]} rows, expected {count}")
    if strategy == "argmax":
        if features.dim() != 2 or not _is_one_hot(features):
            raise ValueError(f"strategy 'argmax' needs one-hot {what} features (one 1 per row)")
        return features.argmax(dim=1)
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
    rows = rows.long()
    return _row_ids(rows) if count else torch.zeros(0, dtype=torch.long)


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
