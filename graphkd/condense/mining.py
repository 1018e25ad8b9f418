r"""Frequent itemset mining with FP-growth (`Han, Pei and Yin, SIGMOD 2000
<https://doi.org/10.1145/342009.335372>`_).

Mirage mines, per class, the sets of computation trees that occur together in
many training graphs: each graph is a *transaction* (the set of its tree ids),
and an itemset :math:`I` is frequent when its support

.. math::
    \operatorname{supp}(I) = \left|\{\, t \in \mathcal{T} : I \subseteq t \,\}\right|

reaches the threshold. FP-growth finds *all* of them (it is exact, unlike
samplers or the ``pyfpgrowth`` package, which drops itemsets): transactions are
compressed into a prefix tree ordered by item frequency, and each item's
conditional tree is mined recursively.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence


class TooManyItemsetsError(ValueError):
    """Mining stopped: more frequent itemsets than allowed (their number grows exponentially as the
    threshold falls, and would exhaust memory long before finishing)."""


class _Node:
    __slots__ = ("children", "count", "item", "next", "parent")

    def __init__(self, item: int, parent: _Node | None):
        self.item = item
        self.count = 0
        self.parent = parent
        self.children: dict[int, _Node] = {}
        self.next: _Node | None = None  # next node holding the same item


def resolve_min_support(min_support: float, num_transactions: int) -> int:
    """An absolute count from an absolute (int >= 1) or relative (float in (0, 1]) threshold."""
    if isinstance(min_support, bool):
        raise TypeError("min_support must be an int count or a float fraction, got a bool")
    if isinstance(min_support, int):
        if min_support < 1:
            raise ValueError(f"min_support as a count must be >= 1, got {min_support}")
        return min_support
    if isinstance(min_support, float):
        if not 0.0 < min_support <= 1.0:
            raise ValueError(f"min_support as a fraction must lie in (0, 1], got {min_support}")
        # The smallest count that is at least the fraction (exact for fractions like 0.3 * 10).
        count = int(round(min_support * num_transactions, 9) + 0.999999999)
        return max(1, count)
    raise TypeError(f"min_support must be an int count or a float fraction, got {type(min_support).__name__}")


def _build_tree(weighted: Iterable[tuple[Sequence[int], int]], min_count: int):
    counts: dict[int, int] = defaultdict(int)
    weighted = list(weighted)
    for items, weight in weighted:
        for item in items:
            counts[item] += weight
    frequent = {item: count for item, count in counts.items() if count >= min_count}
    # Most frequent first (ties by item id): long shared prefixes, small trees.
    order = {item: rank for rank, item in enumerate(sorted(frequent, key=lambda i: (-frequent[i], i)))}
    root = _Node(-1, None)
    heads: dict[int, _Node] = {}
    tails: dict[int, _Node] = {}
    for items, weight in weighted:
        path = sorted((item for item in items if item in order), key=order.__getitem__)
        node = root
        for item in path:
            child = node.children.get(item)
            if child is None:
                child = node.children[item] = _Node(item, node)
                if item in tails:
                    tails[item].next = child
                else:
                    heads[item] = child
                tails[item] = child
            child.count += weight
            node = child
    return frequent, order, heads


def _mine(weighted, min_count: int, suffix: tuple[int, ...], out: dict, max_length: int | None,
          max_itemsets: int | None) -> None:
    frequent, order, heads = _build_tree(weighted, min_count)
    # Least frequent first, as in the original algorithm.
    for item in sorted(frequent, key=order.__getitem__, reverse=True):
        itemset = (item,) + suffix
        out[frozenset(itemset)] = frequent[item]
        if max_itemsets is not None and len(out) > max_itemsets:
            raise TooManyItemsetsError(
                f"more than max_itemsets={max_itemsets} frequent itemsets at support >= {min_count}; raise "
                f"min_support or set max_length"
            )
        if max_length is not None and len(itemset) >= max_length:
            continue
        conditional = []
        node = heads[item]
        while node is not None:
            path = []
            parent = node.parent
            while parent is not None and parent.item != -1:
                path.append(parent.item)
                parent = parent.parent
            if path:
                conditional.append((path, node.count))
            node = node.next
        if conditional:
            _mine(conditional, min_count, itemset, out, max_length, max_itemsets)


def fpgrowth(
    transactions: Sequence[Iterable[int]],
    min_support: float,
    max_length: int | None = None,
    max_itemsets: int | None = None,
) -> dict[frozenset, int]:
    r"""All frequent itemsets of ``transactions`` with their supports.

    Args:
        transactions (Sequence[Iterable[int]]): the transactions; an item
            listed twice in one transaction counts once.
        min_support (int or float): an absolute count (``int >= 1``) or a
            fraction of the transactions (``float`` in ``(0, 1]``).
        max_length (int, optional): longest itemset reported. (default: ``None``, no limit)
        max_itemsets (int, optional): stop with :class:`TooManyItemsetsError` beyond this many
            itemsets. (default: ``None``, no limit)

    Returns:
        dict[frozenset, int]: every itemset :math:`I \neq \emptyset` with
        :math:`\operatorname{supp}(I) \ge` the threshold, mapped to its support.
    """
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length must be an int >= 1 or None, got {max_length!r}")
    if max_itemsets is not None and (isinstance(max_itemsets, bool) or not isinstance(max_itemsets, int)
                                     or max_itemsets < 1):
        raise ValueError(f"max_itemsets must be an int >= 1 or None, got {max_itemsets!r}")
    transactions = [tuple(set(t)) for t in transactions]
    min_count = resolve_min_support(min_support, len(transactions))
    out: dict[frozenset, int] = {}
    _mine([(t, 1) for t in transactions], min_count, (), out, max_length, max_itemsets)
    return out


def _brute_force_frequent_itemsets(transactions, min_support, max_length=None) -> dict[frozenset, int]:
    """Ground truth for tests: the support of every subset of the items, by enumeration."""
    from itertools import combinations

    transactions = [frozenset(t) for t in transactions]
    min_count = resolve_min_support(min_support, len(transactions))
    items = sorted(set().union(*transactions)) if transactions else []
    out = {}
    for length in range(1, (max_length or len(items)) + 1):
        for candidate in combinations(items, length):
            support = sum(1 for t in transactions if t.issuperset(candidate))
            if support >= min_count:
                out[frozenset(candidate)] = support
    return out
