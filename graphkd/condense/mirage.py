r"""Mirage: model-agnostic graph distillation for graph classification
(`Gupta, Manchanda, Kodamana and Ranu, ICLR 2024 <https://arxiv.org/abs/2310.09486>`_).

An :math:`L`-layer message-passing GNN sees a graph :math:`G` as the multiset of
its nodes' depth-:math:`L` computation trees, and its sum readout is

.. math::
    h_G = \sum_{v \in V(G)} \operatorname{GNN}_L\bigl(T_L(v)\bigr),

a function of those trees alone. Their frequencies are skewed, so Mirage keeps,
per class :math:`c`, the sets of trees that occur together in many training
graphs: with each graph a transaction :math:`t_G = \{T_L(v) : v \in V(G)\}`,

.. math::
    \mathcal{F}_c = \bigl\{ I : \operatorname{supp}_c(I) \ge \theta \bigr\}, \qquad
    \operatorname{supp}_c(I) = \bigl|\{ G : y_G = c,\ I \subseteq t_G \}\bigr|,

mined exactly with FP-growth (:mod:`graphkd.condense.mining`). No GNN is
trained on the full data and nothing depends on the architecture but
:math:`L`. The result, :class:`CondensedDataset`, holds each kept tree once
(unrolled: node labels, child-to-parent links, edge labels) and the tree sets
of every class with their supports, in a small versioned file.

Tree ids come from :func:`graphkd.ops.tree_hash` (exact, :math:`O(L \cdot E)`);
labels from :mod:`graphkd.condense.discretize`.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphkd.condense.discretize import Strategy, categories_of_keys, category_keys
from graphkd.condense.mining import TooManyItemsetsError, fpgrowth, resolve_min_support
from graphkd.ops import index_to_ptr, tree_hash

MAGIC = b"GEOKD-MIRAGE\n"
FORMAT_VERSION = 2
#: Format 1 lacks the category keys (``node_keys``, ``edge_keys``) that :meth:`CondensedDataset.readout_masks` needs.
READABLE_VERSIONS = (1, 2)


class CondensedFileError(ValueError):
    """A condensed file is corrupt, of another version, or not one of ours."""


class EmptyClassError(ValueError):
    """A class has no frequent tree set at the chosen support threshold."""


@dataclass
class CondensedDataset:
    """Frequent computation-tree sets per class: Mirage's distilled training set.

    Attributes:
        num_hops (int): the depth :math:`L` of the trees (the GNN's layers).
        num_classes (int): number of classes.
        trees (list[dict]): each kept tree unrolled breadth-first from its
            root (index 0): ``labels`` (node categories), ``parents``
            (parent index, -1 for the root), ``edge_labels`` (category of the
            edge to the parent, 0 for the root).
        patterns (list[list[tuple[tuple[int, ...], int]]]): per class, the
            frequent tree sets (indices into ``trees``) with their supports.
        class_counts (list[int]): training graphs per class.
        node_features (list[list[float]] or None): one feature row per node
            category that a kept tree holds (the mean over the training nodes of that
            category, or each column's most frequent code for categorical columns; zeros
            for other categories); ``None`` for graphs without node features.
        edge_features (list[list[float]] or None): the same for edges.
        meta (dict): how it was made (dataset, min_support, the resolved label
            strategies ``node_labels`` and ``edge_labels``, timings, ...).
        node_keys (dict[int, list[int]] or None): what each node category a kept tree
            holds stands for, as :func:`~graphkd.condense.discretize.category_keys` gives it
            (the hot column, the degree, the values of the categorical columns), so that
            the nodes of new graphs get the same categories; ``None`` in files of format 1.
        edge_keys (dict[int, list[int]] or None): the same for edge categories.
    """

    num_hops: int
    num_classes: int
    trees: list[dict]
    patterns: list[list[tuple[tuple[int, ...], int]]]
    class_counts: list[int]
    node_features: list[list[float]] | None = None
    edge_features: list[list[float]] | None = None
    meta: dict = field(default_factory=dict)
    node_keys: dict[int, list[int]] | None = None
    edge_keys: dict[int, list[int]] | None = None

    def num_patterns(self) -> list[int]:
        return [len(class_patterns) for class_patterns in self.patterns]

    def to_bytes(self) -> bytes:
        payload = {
            "num_hops": self.num_hops,
            "num_classes": self.num_classes,
            "trees": [[t["labels"], t["parents"], t["edge_labels"]] for t in self.trees],
            "patterns": [[[list(trees), support] for trees, support in p] for p in self.patterns],
            "class_counts": self.class_counts,
            "node_features": self.node_features,
            "edge_features": self.edge_features,
            "meta": self.meta,
            "node_keys": None if self.node_keys is None else [[c, k] for c, k in sorted(self.node_keys.items())],
            "edge_keys": None if self.edge_keys is None else [[c, k] for c, k in sorted(self.edge_keys.items())],
        }
        body = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), level=9)
        return MAGIC + struct.pack("<HI", FORMAT_VERSION, zlib.crc32(body)) + body

    def save(self, path: str | os.PathLike) -> int:
        """Write the file atomically; returns its size in bytes."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_bytes()
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        return len(data)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "data") -> CondensedDataset:
        header = len(MAGIC) + struct.calcsize("<HI")
        if not data.startswith(MAGIC) or len(data) < header:
            raise CondensedFileError(f"{source} is not a geokd Mirage file")
        version, checksum = struct.unpack("<HI", data[len(MAGIC) : header])
        if version not in READABLE_VERSIONS:
            raise CondensedFileError(
                f"{source} has Mirage file format {version}; this geokd reads formats "
                f"{READABLE_VERSIONS[0]} to {FORMAT_VERSION}"
                + (" (upgrade geokd)" if version > FORMAT_VERSION else " (condense again)")
            )
        body = data[header:]
        if zlib.crc32(body) != checksum:
            raise CondensedFileError(f"{source} is corrupt (checksum mismatch)")
        try:
            payload = json.loads(zlib.decompress(body))
            return cls(
                num_hops=int(payload["num_hops"]),
                num_classes=int(payload["num_classes"]),
                trees=[{"labels": t[0], "parents": t[1], "edge_labels": t[2]} for t in payload["trees"]],
                patterns=[[(tuple(trees), int(support)) for trees, support in p] for p in payload["patterns"]],
                class_counts=[int(c) for c in payload["class_counts"]],
                node_features=payload["node_features"],
                edge_features=payload["edge_features"],
                meta=dict(payload["meta"]),
                node_keys=_key_dict(payload.get("node_keys")),
                edge_keys=_key_dict(payload.get("edge_keys")),
            )
        except (KeyError, TypeError, ValueError, IndexError, zlib.error) as error:
            raise CondensedFileError(f"{source} is corrupt ({type(error).__name__}: {error})") from error

    @classmethod
    def load(cls, path: str | os.PathLike) -> CondensedDataset:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"condensed file {path} does not exist")
        return cls.from_bytes(path.read_bytes(), str(path))

    def tree_graph(self, tree_indices: Sequence[int], label: int | None = None) -> Data:
        r"""One tree set as a PyG graph: the disjoint union of its unrolled trees.

        Edges run from child to parent (messages flow towards the roots), so an
        :math:`L`-layer GNN whose update of a node reads only that node's
        incoming messages (GIN, GAT) computes at each root exactly what it
        computes at that tree's node in the original graph, where the node
        categories determine the features (with coarser categories, such as
        degrees on graphs with other features, it sees each category's mean
        features). GCN's symmetric normalisation also reads the degrees of the
        nodes :math:`L` hops away, which the tree does not hold: its leaves count
        as nodes of degree 0, so GCN's roots only approximate the original nodes.
        ``root_mask`` marks the roots, which a readout sums over. ``x`` holds
        the feature rows of the node categories (``None`` without node
        features; ``node_label`` is always set).
        """
        labels, sources, targets, edge_labels, roots = [], [], [], [], []
        for index in tree_indices:
            tree = self.trees[index]
            offset = len(labels)
            roots.append(offset)
            labels.extend(tree["labels"])
            for node, parent in enumerate(tree["parents"]):
                if parent >= 0:
                    sources.append(offset + node)
                    targets.append(offset + parent)
                    edge_labels.append(tree["edge_labels"][node])
        node_label = torch.tensor(labels, dtype=torch.long)
        root_mask = torch.zeros(len(labels), dtype=torch.bool)
        root_mask[roots] = True
        data = Data(
            edge_index=torch.tensor([sources, targets], dtype=torch.long).reshape(2, -1),
            node_label=node_label,
            edge_label=torch.tensor(edge_labels, dtype=torch.long),
            root_mask=root_mask,
            num_nodes=len(labels),
        )
        if self.node_features:
            data.x = torch.tensor(self.node_features, dtype=torch.float)[node_label]
        if self.edge_features:  # None without edge features, [] when the graphs had no edges
            data.edge_attr = torch.tensor(self.edge_features, dtype=torch.float).reshape(-1, len(self.edge_features[0]))[
                data.edge_label
            ]
        if label is not None:
            data.y = torch.tensor([label])
        return data

    def readout_masks(self, graphs: Sequence[Data], node_strategy: Strategy | None = None,
                      edge_strategy: Strategy | None = None) -> list[Tensor]:
        r"""Per graph, which nodes have a depth-:math:`L` computation tree that this set holds.

        A GNN trained on the tree sets has only ever summed the roots of kept trees; Mirage's
        authors score a graph likewise, as the union of its nodes' trees that the condensed set
        holds. Reading out these nodes of the original graph does that without building the
        trees: with GIN and GAT each such node embeds exactly as its tree's root (with GCN, up to
        the degrees of the leaves).

        The graphs' nodes and edges get this set's categories through :attr:`node_keys` and
        :attr:`edge_keys` (a category no kept tree holds matches no tree), under the label
        strategies recorded at condensation; a function strategy is not recorded and must be
        passed again.

        Returns:
            list[Tensor]: one boolean mask over each graph's nodes.
        """
        if self.node_keys is None or self.edge_keys is None:
            raise ValueError("this condensed set holds no category keys (a file of format 1): condense again to "
                             "read out new graphs by their trees")
        if len(graphs) == 0:
            return []
        strategies = []
        for name, given in (("node", node_strategy), ("edge", edge_strategy)):
            recorded = self.meta.get(f"{name}_labels")
            strategy = given if given is not None else recorded
            if strategy is None or strategy == "function":
                raise ValueError(f"{name}_strategy is required: this set's {name} labels came from a function, "
                                 "which the file does not hold")
            strategies.append(strategy)
        batch = Batch.from_data_list(list(graphs))
        num_nodes = int(batch.num_nodes)
        node_keys, _ = category_keys(batch.x, batch.edge_index, num_nodes, strategies[0], "nodes")
        edge_keys, _ = category_keys(getattr(batch, "edge_attr", None), batch.edge_index, num_nodes, strategies[1],
                                     "edges")
        trees = self.tree_graph(range(len(self.trees)))
        ids = tree_hash(
            torch.cat([batch.edge_index, trees.edge_index + num_nodes], dim=1),
            torch.cat([_categories_by_key(node_keys, self.node_keys), trees.node_label]),
            self.num_hops,
            torch.cat([_categories_by_key(edge_keys, self.edge_keys), trees.edge_label]),
        )[self.num_hops]
        kept = ids[num_nodes:][trees.root_mask]
        mask = torch.isin(ids[:num_nodes], kept)
        return list(mask.split(torch.diff(batch.ptr).tolist()))


def _key_dict(entries) -> dict[int, list[int]] | None:
    if entries is None:
        return None
    return {int(category): [int(k) for k in key] for category, key in entries}


def _key_table(keys: Tensor, categories: Tensor, used: set[int]) -> dict[int, list[int]]:
    """The key row of each category in ``used``, from its first member."""
    if not used:
        return {}
    count = int(categories.max()) + 1
    first = torch.full((count,), categories.numel(), dtype=torch.long).scatter_reduce(
        0, categories, torch.arange(categories.numel()), "amin")
    return {c: keys[int(first[c])].tolist() for c in sorted(used)}


def _categories_by_key(keys: Tensor, table: dict[int, list[int]]) -> Tensor:
    """Categories of rows of keys through ``table``; rows it lacks get one category of their own
    beyond the table's, which no kept tree holds."""
    lookup = {tuple(key): category for category, key in table.items()}
    unknown = max(table, default=-1) + 1
    return torch.tensor([lookup.get(tuple(row), unknown) for row in keys.tolist()], dtype=torch.long)


def tree_readout(condensed: CondensedDataset, graphs: Sequence[Data], **strategies) -> tuple[list[Data], int]:
    """Copies of ``graphs`` with ``root_mask`` set to :meth:`CondensedDataset.readout_masks`, which
    :func:`~graphkd.condense.train.evaluate` reads out; a graph holding no kept tree is read out whole,
    as Mirage's authors do. Returns the graphs and how many of them were read out whole."""
    whole = 0
    out = []
    for graph, mask in zip(graphs, condensed.readout_masks(graphs, **strategies)):
        if not bool(mask.any()):
            mask = torch.ones_like(mask)
            whole += 1
        graph = graph.clone()
        graph.root_mask = mask
        out.append(graph)
    return out, whole


def training_set(condensed: CondensedDataset) -> tuple[list[Data], list[float]]:
    r"""The graphs to train on and their sampling weights.

    Each tree set becomes one graph (:meth:`CondensedDataset.tree_graph`)
    labelled with its class; it is drawn with probability proportional to the
    class's share of the training graphs times the set's share of the class's
    support, :math:`p(I) \propto \frac{n_c}{n} \cdot
    \frac{\operatorname{supp}_c(I)}{\sum_{J \in \mathcal{F}_c} \operatorname{supp}_c(J)}`.
    """
    graphs, weights = [], []
    total = sum(condensed.class_counts)
    for label, class_patterns in enumerate(condensed.patterns):
        support_sum = sum(support for _, support in class_patterns)
        for trees, support in class_patterns:
            graphs.append(condensed.tree_graph(trees, label=label))
            weights.append(condensed.class_counts[label] / total * support / support_sum)
    return graphs, weights


def class_supports(min_support, num_classes: int) -> list:
    """One threshold per class from one value or a list or tuple of them, each checked (an int count
    >= 1 or a float fraction in (0, 1]) before any work: a ValueError or TypeError naming ``min_support``."""
    if isinstance(min_support, (list, tuple)):
        if len(min_support) != num_classes:
            raise ValueError(f"min_support must hold one threshold per class ({num_classes}), got {len(min_support)}: "
                             f"{list(min_support)}")
        supports = list(min_support)
    elif hasattr(min_support, "__len__"):  # tensors, arrays, strings
        raise TypeError(f"min_support must be a number or a list or tuple of them, got {type(min_support).__name__}")
    else:
        supports = [min_support] * num_classes
    for support in supports:
        resolve_min_support(support, 1)
    return supports


def _class_specific_counts(itemsets_per_class: list[list]) -> list[int]:
    """Per class, how many of its frequent tree sets no other class has among its own."""
    keys = [{frozenset(itemset) for itemset in itemsets} for itemsets in itemsets_per_class]
    holders = Counter(key for own in keys for key in own)
    return [sum(holders[key] == 1 for key in own) for own in keys]


def _unroll(root: int, num_hops: int, ptr: list[int], sources: list[int], edge_ids: list[int],
            node_labels: list[int], edge_labels: list[int]) -> dict:
    """The depth-``num_hops`` computation tree of ``root``, breadth first."""
    labels, parents, parent_edge_labels = [node_labels[root]], [-1], [0]
    frontier = [(root, 0)]
    for _ in range(num_hops):
        next_frontier = []
        for node, tree_index in frontier:
            for position in range(ptr[node], ptr[node + 1]):
                child = sources[position]
                labels.append(node_labels[child])
                parents.append(tree_index)
                parent_edge_labels.append(edge_labels[edge_ids[position]])
                next_frontier.append((child, len(labels) - 1))
        frontier = next_frontier
    return {"labels": labels, "parents": parents, "edge_labels": parent_edge_labels}


def _feature_table(features: Tensor | None, categories: Tensor, used: set[int] | None = None,
                   digits: int = 6) -> list[list[float]] | None:
    """One feature row per category, as representative of that category's nodes (or edges).

    Float features: the mean over the category's members. Where the categories determine
    the features (one-hot labels) that is the features themselves; where they do not
    (``"degree"`` or a user function on graphs with other features) it is the expected
    feature row given the category, which a GNN's first linear layer maps to the mean of
    what it computes on those members. Integer codes (categorical columns, where a mean is
    no code): each column's most frequent value, the smallest on ties.

    Rows of categories outside ``used`` (those no kept tree holds) and of categories no
    member has are zeros, so they cost next to nothing in the compressed file; means are
    rounded to ``digits`` significant digits for the same reason.
    """
    if features is None or features.numel() == 0:
        return None
    features = features.reshape(features.shape[0], -1)
    count = int(categories.max()) + 1 if categories.numel() else 0
    sizes = torch.bincount(categories, minlength=count)
    keep = sizes > 0
    if used is not None:
        mask = torch.zeros(count, dtype=torch.bool)
        mask[[c for c in used if 0 <= c < count]] = True
        keep &= mask
    if features.is_floating_point():
        sums = torch.zeros(count, features.shape[1], dtype=torch.float64).index_add_(0, categories, features.double())
        table = sums / sizes.clamp(min=1).unsqueeze(1)
        table[~keep] = 0.0
        width = features.shape[1]
        return [[float(f"{value:.{digits}g}") for value in row] if kept else [0.0] * width
                for row, kept in zip(table.tolist(), keep.tolist())]
    table = torch.zeros(count, features.shape[1], dtype=torch.long)
    members = keep[categories]  # only the rows of kept categories count
    categories, features = categories[members], features[members].long()
    for column in range(features.shape[1] if categories.numel() else 0):
        # Count (category, value) pairs, not a category x value grid: codes may be large and sparse.
        # A pair is one int64 key, category * distinct values + the value's rank (< N^2), so one
        # sorted 1-D unique counts them in (category, value) order.
        values, ranks = torch.unique(features[:, column], return_inverse=True)
        keys, counts = torch.unique(categories * values.numel() + ranks, return_counts=True)
        pair_category, pair_value = keys // values.numel(), values[keys % values.numel()]
        best = torch.zeros(count, dtype=counts.dtype).scatter_reduce(0, pair_category, counts, "amax")
        winners = (counts == best[pair_category]).nonzero().view(-1)  # sorted: the first is the smallest value
        first = torch.full((count,), keys.numel(), dtype=torch.long).scatter_reduce(0, pair_category[winners],
                                                                                    winners, "amin")
        found = first < keys.numel()
        table[found, column] = pair_value[first[found]]
    table[~keep] = 0
    return table.tolist()


def condense(
    graphs: Sequence[Data],
    num_hops: int = 2,
    min_support: float | Sequence[float] = 0.1,
    max_length: int | None = None,
    node_strategy: Strategy = "auto",
    edge_strategy: Strategy = "auto",
    dataset_name: str | None = None,
    max_patterns: int | None = 100_000,
) -> CondensedDataset:
    r"""Condense labelled training graphs into frequent computation-tree sets.

    Args:
        graphs (Sequence[Data]): the training graphs, each with a graph label ``y``.
        num_hops (int): tree depth :math:`L`, the number of GNN layers. (default: ``2``)
        min_support (int, float or sequence): per-class threshold :math:`\theta`, a count
            or a fraction of the class's graphs; a list or tuple gives each class its
            own (on imbalanced sets one threshold can mine a small, homogeneous
            class into thousands of large tree sets while the others keep a few
            small ones). (default: ``0.1``)
        max_length (int, optional): largest tree set kept. (default: ``None``)
        node_strategy, edge_strategy: how features become categories (see
            :func:`graphkd.condense.discretize.discretize`). (default: ``"auto"``)
        dataset_name (str, optional): recorded in the file's metadata.
        max_patterns (int, optional): most tree sets mined per class; beyond it mining stops
            with an error rather than exhausting memory (the count grows exponentially as the
            support falls). ``None`` for no limit. (default: ``100_000``)

    Raises:
        EmptyClassError: a class keeps no tree set (lower ``min_support``).
        TooManyItemsetsError: a class has more than ``max_patterns`` tree sets.
    """
    if isinstance(num_hops, bool) or not isinstance(num_hops, int) or num_hops < 1:
        raise ValueError(f"num_hops must be an int >= 1, got {num_hops!r}")
    if len(graphs) == 0:
        raise ValueError("graphs is empty: nothing to condense")
    started = time.perf_counter()
    batch = Batch.from_data_list(list(graphs))
    if batch.y is None or batch.y.numel() != batch.num_graphs:
        raise ValueError("every graph needs a single graph label y")
    for name in ("x", "edge_attr"):
        values = getattr(batch, name, None)
        if values is not None and values.is_floating_point() and not bool(torch.isfinite(values).all()):
            graph = next(i for i, g in enumerate(graphs) if not bool(torch.isfinite(getattr(g, name)).all()))
            raise ValueError(f"graphs[{graph}].{name} holds NaN or inf; node and edge features must be finite")
    graph_labels = batch.y.view(-1).long()
    num_classes = int(graph_labels.max()) + 1
    supports = class_supports(min_support, num_classes)
    edge_index, num_nodes = batch.edge_index, int(batch.num_nodes)
    node_keys, node_resolved = category_keys(batch.x, edge_index, num_nodes, node_strategy, "nodes")
    node_labels = categories_of_keys(node_keys, node_resolved)
    edge_attr = getattr(batch, "edge_attr", None)
    edge_keys, edge_resolved = category_keys(edge_attr, edge_index, num_nodes, edge_strategy, "edges")
    edge_labels = categories_of_keys(edge_keys, edge_resolved)
    ids = tree_hash(edge_index, node_labels, num_hops, edge_labels)[num_hops]
    hashed = time.perf_counter()

    ptr = batch.ptr.tolist()
    id_list = ids.tolist()
    transactions = [set(id_list[ptr[g] : ptr[g + 1]]) for g in range(batch.num_graphs)]
    class_members = [[t for t, y in zip(transactions, graph_labels.tolist()) if y == c] for c in range(num_classes)]
    mined = []
    for label, (members, support) in enumerate(zip(class_members, supports)):
        if not members:
            raise EmptyClassError(f"class {label} has no training graph")
        try:
            frequent = fpgrowth(members, support, max_length=max_length, max_itemsets=max_patterns)
        except TooManyItemsetsError as error:
            raise TooManyItemsetsError(
                f"class {label}: more than max_patterns={max_patterns} frequent tree sets at min_support="
                f"{support}; raise min_support, set max_length, or use coarser node labels"
            ) from error
        if not frequent:
            threshold = resolve_min_support(support, len(members))
            raise EmptyClassError(
                f"class {label}: no tree set reaches min_support={support} (support >= {threshold} of "
                f"{len(members)} graphs); lower min_support or num_hops"
            )
        mined.append(sorted(frequent.items(), key=lambda item: (-item[1], sorted(item[0]))))
    mined_at = time.perf_counter()
    specific = _class_specific_counts([[itemset for itemset, _ in class_patterns] for class_patterns in mined])

    # Unroll each kept tree once, from the first node holding it.
    order = torch.sort(edge_index[1], stable=True)[1]
    csr_ptr = index_to_ptr(edge_index[1][order], num_nodes).tolist()
    csr_sources, edge_ids = edge_index[0][order].tolist(), order.tolist()
    node_label_list, edge_label_list = node_labels.tolist(), edge_labels.tolist()
    first_node: dict[int, int] = {}
    for node, tree_id in enumerate(id_list):
        first_node.setdefault(tree_id, node)
    tree_index: dict[int, int] = {}
    trees: list[dict] = []
    patterns: list[list[tuple[tuple[int, ...], int]]] = []
    for class_patterns in mined:
        kept = []
        for itemset, support in class_patterns:
            indices = []
            for tree_id in sorted(itemset):
                if tree_id not in tree_index:
                    tree_index[tree_id] = len(trees)
                    trees.append(_unroll(first_node[tree_id], num_hops, csr_ptr, csr_sources, edge_ids,
                                         node_label_list, edge_label_list))
                indices.append(tree_index[tree_id])
            kept.append((tuple(indices), int(support)))
        patterns.append(kept)
    used_labels = {label for tree in trees for label in tree["labels"]}
    used_edge_labels = {label for tree in trees for label in tree["edge_labels"][1:]}
    node_features = _feature_table(batch.x, node_labels, used_labels)
    edge_features = None
    if edge_attr is not None:
        edge_features = _feature_table(edge_attr, edge_labels, used_edge_labels)
    finished = time.perf_counter()
    return CondensedDataset(
        num_hops=num_hops,
        num_classes=num_classes,
        trees=trees,
        patterns=patterns,
        class_counts=[len(members) for members in class_members],
        node_features=node_features,
        edge_features=edge_features,
        meta={
            "method": "mirage",
            "dataset": dataset_name,
            "num_graphs": batch.num_graphs,
            "min_support": supports if isinstance(min_support, (list, tuple)) else min_support,
            "max_length": max_length,
            "node_labels": node_resolved if isinstance(node_resolved, str) else "function",
            "edge_labels": edge_resolved if isinstance(edge_resolved, str) else "function",
            "distinct_trees": int(ids.max()) + 1 if ids.numel() else 0,
            "class_specific_patterns": specific,
            "seconds_hash": round(hashed - started, 4),
            "seconds_mine": round(mined_at - hashed, 4),
            "seconds_total": round(finished - started, 4),
        },
        node_keys=_key_table(node_keys, node_labels, used_labels),
        edge_keys=_key_table(edge_keys, edge_labels, used_edge_labels),
    )
