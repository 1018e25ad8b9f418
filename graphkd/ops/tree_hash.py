"""Exact computation-tree ids: ``torch.ops.graphkd.tree_hash`` and a vocabulary to share ids across calls."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from graphkd._ext import library


def tree_hash(
    edge_index: Tensor,
    node_labels: Tensor,
    num_hops: int,
    edge_labels: Tensor | None = None,
    vocabulary: TreeVocabulary | None = None,
) -> Tensor:
    r"""Ids of every node's computation trees of depth :math:`0, \dots, L`.

    An :math:`L`-layer message-passing GNN sees node :math:`v` through its
    depth-:math:`L` computation tree: the root is labelled :math:`x_v` and its
    children are the depth-:math:`(L-1)` trees of the senders :math:`u` of every
    edge :math:`u \to v` (``edge_index[0] -> edge_index[1]``, PyG's flow), each
    attached by an edge labelled :math:`e_{uv}`:

    .. math::
        T_0(v) = x_v, \qquad
        T_l(v) = \bigl(x_v,\ \{\!\{ (e_{uv}, T_{l-1}(u)) : (u, v) \in E \}\!\}\bigr).

    ``ids[l, u] == ids[l, v]`` if and only if :math:`T_l(u) \cong T_l(v)`, for
    any two nodes of the input (a PyG batch of many graphs is one call). The
    refinement runs in :math:`O(L (E \log d + N))`; trees are never unrolled.
    Ids are exact: hashes only propose candidates, full signatures decide.

    Without ``vocabulary`` the ids of each depth are dense, numbered in order
    of the first node holding each tree. With a :class:`TreeVocabulary` they
    are the vocabulary's ids, shared by every call that uses it (e.g. training
    and test graphs).

    Args:
        edge_index (Tensor): int64 edges, sources in row 0, targets in row 1.
        node_labels (Tensor): int64 node labels (any values).
        num_hops (int): the depth :math:`L \ge 0`.
        edge_labels (Tensor, optional): int64 edge labels in
            :math:`[0, 2^{31})`. (default: ``None``, all edges alike)
        vocabulary (TreeVocabulary, optional): maps trees to ids shared across
            calls; grows with unseen trees unless frozen. (default: ``None``)

    Shapes:
        - edge_index: :math:`(2, E)`
        - node_labels: :math:`(N,)`
        - edge_labels: :math:`(E,)`
        - output: :math:`(L + 1, N)`, int64.
    """
    for name, value in (("edge_index", edge_index), ("node_labels", node_labels)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    if edge_labels is not None and not isinstance(edge_labels, Tensor):
        raise TypeError(f"edge_labels must be a Tensor or None, got {type(edge_labels).__name__}")
    if isinstance(num_hops, bool) or not isinstance(num_hops, int):
        raise TypeError(f"num_hops must be an int, got {type(num_hops).__name__}")
    ids = library.op("tree_hash")(edge_index, node_labels, num_hops, edge_labels)
    if vocabulary is not None:
        ids = vocabulary.encode(ids, edge_index, node_labels, edge_labels)
    return ids


class TreeVocabulary:
    r"""Ids of computation trees that stay the same across calls of :func:`tree_hash`.

    Each depth :math:`l` keeps a table from a tree's signature, written with
    the vocabulary's own ids of the depth-:math:`(l-1)` subtrees, to its id.
    Hash the training graphs with a vocabulary, then the test graphs with the
    same vocabulary, and equal trees get equal ids in both. A frozen
    vocabulary gives unseen trees the id ``-1`` instead of growing.

    Args:
        num_hops (int): the deepest level kept (calls may ask for fewer hops).
    """

    def __init__(self, num_hops: int):
        if isinstance(num_hops, bool) or not isinstance(num_hops, int) or num_hops < 0:
            raise ValueError(f"num_hops must be an int >= 0, got {num_hops!r}")
        self.num_hops = num_hops
        self.tables: list[dict] = [{} for _ in range(num_hops + 1)]
        self.frozen = False

    def __len__(self) -> int:
        return sum(len(table) for table in self.tables)

    def sizes(self) -> list[int]:
        """Number of distinct trees known at each depth."""
        return [len(table) for table in self.tables]

    def freeze(self) -> TreeVocabulary:
        self.frozen = True
        return self

    def _lookup(self, table: dict, signature) -> int:
        found = table.get(signature)
        if found is None:
            if self.frozen:
                return -1
            found = table[signature] = len(table)
        return found

    def encode(
        self, local_ids: Tensor, edge_index: Tensor, node_labels: Tensor, edge_labels: Tensor | None = None
    ) -> Tensor:
        """Vocabulary ids for the dense ids ``local_ids`` returned by :func:`tree_hash` on this graph."""
        num_levels, num_nodes = local_ids.shape
        if num_levels - 1 > self.num_hops:
            raise ValueError(f"the vocabulary keeps {self.num_hops} hops, the ids have {num_levels - 1}")
        device = local_ids.device
        local_ids, edge_index, node_labels = local_ids.cpu(), edge_index.cpu(), node_labels.cpu()
        sources, targets = edge_index[0], edge_index[1]
        edge_keys = edge_labels.cpu() << 32 if edge_labels is not None else torch.zeros_like(sources)
        labels = node_labels.tolist()
        node_range = torch.arange(num_nodes)
        out = torch.empty_like(local_ids)
        for depth in range(num_levels):
            ids = local_ids[depth]
            count = int(ids.max()) + 1 if num_nodes else 0
            # One representative (the first node) per tree of this call.
            first = torch.full((count,), num_nodes, dtype=torch.long).scatter_reduce_(0, ids, node_range, "amin")
            table = self.tables[depth]
            if depth == 0:
                global_ids = [self._lookup(table, labels[node]) for node in first.tolist()]
            else:
                previous = out[depth - 1]
                rank_of_node = torch.full((num_nodes,), -1, dtype=torch.long)
                rank_of_node[first] = torch.arange(count)
                edge_rank = rank_of_node[targets]
                keep = edge_rank >= 0
                child_previous = previous[sources[keep]]
                keys = edge_keys[keep] | child_previous
                # An unseen child subtree (-1 in a frozen vocabulary) makes the tree unseen too.
                unseen_child = torch.zeros(count, dtype=torch.bool)
                unseen_child[edge_rank[keep][child_previous < 0]] = True
                keys, order = torch.sort(keys, stable=True)
                ranks = edge_rank[keep][order]
                ranks, order = torch.sort(ranks, stable=True)
                keys = keys[order]
                counts = torch.bincount(ranks, minlength=count).tolist()
                key_list, unseen, root_labels = keys.tolist(), unseen_child.tolist(), first.tolist()
                global_ids, start = [], 0
                for rank, size in enumerate(counts):
                    if unseen[rank]:
                        global_ids.append(-1)
                    else:
                        signature = (labels[root_labels[rank]], tuple(key_list[start : start + size]))
                        global_ids.append(self._lookup(table, signature))
                    start += size
            out[depth] = torch.tensor(global_ids, dtype=torch.long)[ids] if count else ids
        return out.to(device)

    def state_dict(self) -> dict:
        return {"num_hops": self.num_hops, "frozen": self.frozen, "tables": [dict(table) for table in self.tables]}

    @classmethod
    def from_state_dict(cls, state: dict) -> TreeVocabulary:
        try:
            vocabulary = cls(int(state["num_hops"]))
            vocabulary.frozen = bool(state["frozen"])
            tables = state["tables"]
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a TreeVocabulary state: {error}") from error
        if len(tables) != vocabulary.num_hops + 1:
            raise ValueError(f"a TreeVocabulary state of {vocabulary.num_hops} hops needs {vocabulary.num_hops + 1} tables")
        vocabulary.tables = [dict(table) for table in tables]
        return vocabulary


def _tree_hash_reference(
    edge_index: Tensor, node_labels: Tensor, num_hops: int, edge_labels: Tensor | None = None
) -> Tensor:
    """Ground truth: AHU canonical strings of the unrolled trees, numbered by first occurrence.

    ``canon(v, l) = "(" label ":" sorted("[" edge label "]" canon(u, l - 1) for u -> v) ")"``.
    Exponential in the depth for dense graphs; for tests on small inputs.
    """
    labels = node_labels.tolist()
    num_nodes = len(labels)
    senders: list[list[tuple[int, int]]] = [[] for _ in range(num_nodes)]
    edge_label_list = edge_labels.tolist() if edge_labels is not None else [0] * edge_index.shape[1]
    for (source, target), label in zip(edge_index.t().tolist(), edge_label_list):
        senders[target].append((source, label))
    canon = [f"({label}:)" for label in labels]
    ids = torch.empty(num_hops + 1, num_nodes, dtype=torch.long)
    for depth in range(num_hops + 1):
        if depth > 0:
            canon = [
                f"({labels[v]}:" + "".join(sorted(f"[{e}]{canon[u]}" for u, e in senders[v])) + ")"
                for v in range(num_nodes)
            ]
        numbering: dict[str, int] = {}
        ids[depth] = torch.tensor([numbering.setdefault(c, len(numbering)) for c in canon], dtype=torch.long)
    return ids


def same_partition(first: Sequence | Tensor, second: Sequence | Tensor) -> bool:
    """Whether two labelings group the same elements together (equal up to renaming)."""
    pairs = set(zip(list(first), list(second)))
    return len(pairs) == len(set(first)) == len(set(second))


if library.load():

    @torch.library.register_fake("graphkd::tree_hash")
    def _(edge_index: Tensor, node_labels: Tensor, num_hops: int, edge_labels: Tensor | None = None) -> Tensor:
        torch._check(node_labels.dim() == 1, lambda: "node_labels must be 1-D")
        return node_labels.new_empty((num_hops + 1, node_labels.shape[0]))
