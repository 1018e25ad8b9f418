import pytest
import torch
from torch_geometric.data import Batch, Data

from graphkd.condense import CondensedDataset, CondensedFileError, EmptyClassError, condense, discretize
from graphkd.condense.mining import _brute_force_frequent_itemsets
from graphkd.datasets import TUDataset
from graphkd.ops import tree_hash


@pytest.fixture(scope="module")
def mutag():
    return list(TUDataset("MUTAG"))


@pytest.fixture(scope="module")
def condensed(mutag):
    return condense(mutag, num_hops=2, min_support=0.3, dataset_name="MUTAG")


@pytest.fixture(scope="module")
def joint(mutag, condensed):
    """MUTAG batched, every stored tree as one graph, and the depth-2 tree ids of MUTAG's nodes and of
    the stored roots: hashed together, so equal trees get equal ids across both."""
    batch = Batch.from_data_list(mutag)
    labels = discretize(batch.x, batch.edge_index, batch.num_nodes)
    edge_labels = discretize(batch.edge_attr, batch.edge_index, batch.num_nodes, what="edges")
    trees = condensed.tree_graph(range(len(condensed.trees)))
    ids = tree_hash(torch.cat([batch.edge_index, trees.edge_index + batch.num_nodes], dim=1),
                    torch.cat([labels, trees.node_label]), 2, torch.cat([edge_labels, trees.edge_label]))[2]
    return batch, trees, ids[: batch.num_nodes], ids[batch.num_nodes :][trees.root_mask]


def test_patterns_are_the_frequent_tree_sets(mutag, condensed, joint):
    batch, trees, original_ids, tree_ids = joint
    labels = discretize(batch.x, batch.edge_index, batch.num_nodes)
    edge_labels = discretize(batch.edge_attr, batch.edge_index, batch.num_nodes, what="edges")
    ids = tree_hash(batch.edge_index, labels, 2, edge_labels)[2].tolist()
    ptr, y = batch.ptr.tolist(), batch.y.tolist()
    assert tree_ids.unique().numel() == len(condensed.trees)  # each kept tree once
    assert set(tree_ids.tolist()) <= set(original_ids.tolist())  # and each is a real computation tree

    for label in range(2):
        transactions = [set(original_ids[ptr[g] : ptr[g + 1]].tolist()) for g in range(len(y)) if y[g] == label]
        # Every frequent set is made of frequent trees (Apriori), so enumerating the subsets of
        # those alone is still exhaustive.
        threshold = 0.3 * len(transactions)
        frequent_trees = {t for t in set().union(*transactions) if sum(t in s for s in transactions) >= threshold}
        expected = _brute_force_frequent_itemsets([s & frequent_trees for s in transactions], 0.3)
        stored = {frozenset(tree_ids[list(trees_)].tolist()): support for trees_, support in condensed.patterns[label]}
        assert stored == expected
        assert condensed.class_counts[label] == len(transactions)
    assert len(set(ids)) == condensed.meta["distinct_trees"]


def test_tree_graph_roots_reproduce_the_original_computation(condensed):
    data = condensed.tree_graph(condensed.patterns[1][0][0], label=1)
    assert int(data.root_mask.sum()) == len(condensed.patterns[1][0][0])
    assert data.x.shape == (data.num_nodes, 7) and data.edge_attr.shape == (data.num_edges, 4)
    assert torch.equal(data.x.argmax(dim=1), data.node_label) and data.y.item() == 1
    # Edges point from children to parents: roots send nothing.
    assert not data.root_mask[data.edge_index[0]].any()


@pytest.mark.parametrize("gnn", ["gin", "gat"])
def test_roots_embed_like_the_nodes_they_were_unrolled_from(joint, gnn):
    from graphkd.nn import GraphClassifier

    torch.manual_seed(0)
    model = GraphClassifier(gnn, 7, 16, 2, 2).eval()
    batch, trees, original_ids, root_ids = joint
    with torch.no_grad():
        original = model.gnn(batch.x, batch.edge_index)
        roots = model.gnn(trees.x, trees.edge_index)[trees.root_mask]
    # Every node holding a kept tree embeds exactly as that tree's root does: the GNN reads a
    # node's depth-L computation tree and nothing else.
    for root, tree_id in zip(roots, root_ids.tolist()):
        holders = (original_ids == tree_id).nonzero().view(-1)
        assert holders.numel() > 0
        torch.testing.assert_close(original[holders], root.expand(holders.numel(), -1), atol=1e-5, rtol=1e-5)


def test_file_round_trip_and_size(condensed, tmp_path):
    size = condensed.save(tmp_path / "mutag.mirage")
    assert size == (tmp_path / "mutag.mirage").stat().st_size
    assert 200 < size < 8192  # hundreds of bytes to a few KB
    loaded = CondensedDataset.load(tmp_path / "mutag.mirage")
    assert loaded == condensed


def test_corrupt_and_foreign_files(condensed, tmp_path):
    data = bytearray(condensed.to_bytes())
    data[-5] ^= 0xFF
    with pytest.raises(CondensedFileError, match="checksum mismatch"):
        CondensedDataset.from_bytes(bytes(data))
    with pytest.raises(CondensedFileError, match="not a geokd Mirage file"):
        CondensedDataset.from_bytes(b"PK\x03\x04 a zip file")
    future = bytearray(condensed.to_bytes())
    future[len(b"GEOKD-MIRAGE\n")] = 99
    with pytest.raises(CondensedFileError, match="format 99; this geokd reads formats 1 to 2 \\(upgrade geokd\\)"):
        CondensedDataset.from_bytes(bytes(future))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CondensedDataset.load(tmp_path / "missing.mirage")


def test_support_too_high_names_the_class(mutag):
    with pytest.raises(EmptyClassError, match="class 0: no tree set reaches min_support=10000.*lower min_support"):
        condense(mutag, num_hops=2, min_support=10_000)


def test_per_class_support(mutag):
    both = condense(mutag, num_hops=2, min_support=[0.3, 0.6])
    low, high = condense(mutag, num_hops=2, min_support=0.3), condense(mutag, num_hops=2, min_support=0.6)
    # Each class is mined at its own threshold: the tree sets are those of a single-threshold run.
    for label, reference in ((0, low), (1, high)):
        def sets(c, label=label):
            return {frozenset(repr(c.trees[t]) for t in trees): support for trees, support in c.patterns[label]}
        assert sets(both) == sets(reference)
    assert both.meta["min_support"] == [0.3, 0.6]
    assert condense(mutag, num_hops=2, min_support=(5, 0.3)).num_patterns()[1] == low.num_patterns()[1]
    with pytest.raises(ValueError, match=r"min_support must hold one threshold per class \(2\), got 3"):
        condense(mutag, num_hops=2, min_support=[0.3, 0.3, 0.3])
    with pytest.raises(TypeError, match="min_support must be a number or a list or tuple"):
        condense(mutag, num_hops=2, min_support=torch.tensor([0.3, 0.3]))
    with pytest.raises(ValueError, match="min_support as a fraction must lie in"):
        condense(mutag, num_hops=2, min_support=[0.3, float("nan")])
    with pytest.raises(EmptyClassError, match="class 1: no tree set reaches min_support=10000"):
        condense(mutag, num_hops=2, min_support=[0.3, 10_000])


def test_too_many_patterns_names_the_class(mutag):
    from graphkd.condense import TooManyItemsetsError

    with pytest.raises(TooManyItemsetsError, match="class 0: more than max_patterns=5 .*raise min_support"):
        condense(mutag, num_hops=1, min_support=0.1, max_patterns=5)


def test_bad_arguments(mutag):
    with pytest.raises(ValueError, match="num_hops must be an int >= 1"):
        condense(mutag, num_hops=0)
    with pytest.raises(ValueError, match="graphs is empty"):
        condense([], num_hops=1)


@pytest.mark.parametrize("name, value", [("x", float("nan")), ("edge_attr", float("inf"))])
def test_non_finite_features_name_the_graph(mutag, name, value):
    graphs = [g.clone() for g in mutag[:6]]
    getattr(graphs[4], name)[1, 0] = value
    with pytest.raises(ValueError, match=rf"graphs\[4\]\.{name} holds NaN or inf"):
        condense(graphs, num_hops=1, min_support=1)
    graphs[4] = mutag[4]
    assert condense(graphs, num_hops=1, min_support=1).num_classes == 2


def test_unlabelled_graphs_use_degrees(shared_data):
    dataset = list(TUDataset("IMDB-BINARY"))
    graphs = dataset[:100] + dataset[-100:]  # the file lists one class, then the other
    # Degree-labelled ego-nets share few trees: a low threshold keeps some.
    condensed = condense(graphs, num_hops=1, min_support=0.05)
    assert condensed.node_features is None and all(condensed.num_patterns())
    data = condensed.tree_graph(condensed.patterns[0][0][0])
    # A depth-1 tree: a root whose label (its degree) equals its number of children.
    assert data.node_label[0] == data.num_nodes - 1


def test_feature_table_with_unused_categories():
    from graphkd.condense.mirage import _feature_table

    features = torch.eye(4)[[3, 0, 3]]  # columns 1 and 2 never used
    assert _feature_table(features, features.argmax(dim=1)) == [
        [1.0, 0.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4, [0.0, 0.0, 0.0, 1.0]
    ]


def test_feature_table_means_codes_and_unused_rows():
    from graphkd.condense.mirage import _feature_table

    # Float features whose categories do not determine them: the row is the category's mean.
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    categories = torch.tensor([0, 0, 0, 2])
    assert _feature_table(features, categories) == [[0.333333, 0.666667], [0.0, 0.0], [0.5, 0.5]]
    # Rows of categories outside `used` are zeros.
    assert _feature_table(features, categories, used={2}) == [[0.0, 0.0], [0.0, 0.0], [0.5, 0.5]]
    # Integer codes: each column's most frequent value (the smallest on ties), never a mean.
    codes = torch.tensor([[5, 1], [7, 1], [7, 2], [3, 0], [9, 4]])
    assert _feature_table(codes, torch.tensor([1, 1, 1, 0, 0])) == [[3, 0], [7, 1]]
    # Large, sparse codes need no category x value grid.
    assert _feature_table(torch.tensor([[10**12], [10**12], [-5]]), torch.tensor([0, 0, 0])) == [[10**12]]


@pytest.mark.parametrize("seed", range(5))
def test_feature_table_modes_match_a_counter(seed):
    from collections import Counter

    from graphkd.condense.mirage import _feature_table

    generator = torch.Generator().manual_seed(seed)
    categories = torch.randint(0, 12, (300,), generator=generator)
    # Few distinct values (ties are common), some large and negative.
    palette = torch.tensor([-7, 0, 1, 2, 10**11])
    codes = palette[torch.randint(0, 5, (300, 3), generator=generator)]
    used = set(torch.randint(0, 14, (8,), generator=generator).tolist())
    expected = []
    for category in range(int(categories.max()) + 1):
        rows = codes[categories == category]
        if category not in used or rows.numel() == 0:
            expected.append([0, 0, 0])
            continue
        row = []
        for column in range(3):
            counter = Counter(rows[:, column].tolist())
            top = max(counter.values())
            row.append(min(value for value, n in counter.items() if n == top))
        expected.append(row)
    assert _feature_table(codes, categories, used) == expected


def test_degree_labels_on_featured_graphs_keep_mean_features(mutag):
    # MUTAG has one-hot atom types; with degrees as tree labels an atom type is no longer known,
    # and each degree's row is the mean atom type of the training nodes of that degree.
    condensed = condense(mutag, num_hops=1, min_support=0.3, node_strategy="degree")
    batch = Batch.from_data_list(mutag)
    degree = discretize(batch.x, batch.edge_index, batch.num_nodes, "degree")
    used = {label for tree in condensed.trees for label in tree["labels"]}
    assert used
    for category, row in enumerate(condensed.node_features):
        expected = batch.x[degree == category].mean(dim=0) if category in used else torch.zeros(batch.x.size(1))
        assert torch.allclose(torch.tensor(row), expected, atol=1e-5), category
    graph = condensed.tree_graph(condensed.patterns[0][0][0])
    assert torch.allclose(graph.x, torch.tensor(condensed.node_features)[graph.node_label])


def test_class_specific_tree_sets_are_counted(mutag):
    condensed = condense(mutag, num_hops=1, min_support=0.3)
    sets = [{frozenset(trees) for trees, _ in patterns} for patterns in condensed.patterns]
    # Reference: a plain set difference (tree indices are shared by the classes).
    assert condensed.meta["class_specific_patterns"] == [len(sets[0] - sets[1]), len(sets[1] - sets[0])]
    # The same graphs under both labels: no tree set belongs to one class only.
    graphs = [g for g in mutag if int(g.y) == 1][:40]
    relabelled = [g.clone() for g in graphs]
    for g in relabelled:
        g.y = torch.zeros_like(g.y)
    shared = condense(graphs + relabelled, num_hops=1, min_support=0.5)
    assert shared.num_patterns()[0] > 0 and shared.meta["class_specific_patterns"] == [0, 0]


def test_readout_masks_are_the_nodes_holding_a_kept_tree(mutag):
    train, test = mutag[::2], mutag[1::2]
    condensed = condense(train, num_hops=2, min_support=0.3)
    masks = condensed.readout_masks(test)
    assert [m.numel() for m in masks] == [g.num_nodes for g in test] and all(m.dtype == torch.bool for m in masks)
    # Reference: hash the training and test graphs together (one discretization); the trees of the
    # frequent sets are the trees frequent on their own in some class (every item of a frequent set is
    # frequent, and every frequent item is a frequent set).
    batch = Batch.from_data_list(train + test)
    labels = discretize(batch.x, batch.edge_index, batch.num_nodes)
    edge_labels = discretize(batch.edge_attr, batch.edge_index, batch.num_nodes, what="edges")
    ids = tree_hash(batch.edge_index, labels, 2, edge_labels)[2]
    ptr = batch.ptr.tolist()
    kept = set()
    for label in range(2):
        transactions = [set(ids[ptr[g]:ptr[g + 1]].tolist()) for g in range(len(train)) if int(train[g].y) == label]
        kept |= {t for t in set().union(*transactions) if sum(t in s for s in transactions) >= 0.3 * len(transactions)}
    expected = torch.tensor([int(i) in kept for i in ids[ptr[len(train)]:]])
    assert torch.equal(torch.cat(masks), expected)
    assert 0 < int(expected.sum()) < expected.numel()


def test_readout_masks_match_categories_by_key_not_by_rank():
    # Integer features: categories are ranks of the distinct rows a call sees, so the test graphs'
    # ranks differ from the training graphs' (the value 5 is absent there, 9 unknown to training).
    def graph(values, label):
        n = len(values)
        edges = [[i, (i + 1) % n] for i in range(n)] + [[(i + 1) % n, i] for i in range(n)]
        return Data(x=torch.tensor(values).view(-1, 1), edge_index=torch.tensor(edges).t(), y=torch.tensor([label]))

    train = [graph([1, 3, 5, 7], 0), graph([1, 3, 5, 7], 0), graph([3, 7, 7], 1), graph([3, 7, 7], 1)]
    condensed = condense(train, num_hops=1, min_support=1.0)
    assert condensed.meta["node_labels"] == "categorical"
    test = [graph([1, 3, 9, 7], 0), graph([7, 3, 7], 1), graph([9, 9], 1)]
    masks = condensed.readout_masks(test)
    # Depth-1 trees on a cycle: a node and its two neighbours' values. Kept: every tree of the
    # training cycles (each class's graphs are equal, so every tree reaches support 1).
    def trees(values):
        n = len(values)
        return [(values[i], tuple(sorted((values[i - 1], values[(i + 1) % n])))) for i in range(n)]

    kept = {t for g in ([1, 3, 5, 7], [3, 7, 7]) for t in trees(g)}
    for mask, values in zip(masks, ([1, 3, 9, 7], [7, 3, 7], [9, 9])):
        assert mask.tolist() == [t in kept for t in trees(values)]
    assert masks[1].all() and not masks[2].any()
    # A readout over the kept trees; a graph with none is read out whole and counted.
    from graphkd.condense import tree_readout

    graphs, whole = tree_readout(condensed, test)
    assert whole == 1 and graphs[2].root_mask.all() and torch.equal(graphs[0].root_mask, masks[0])
    assert not hasattr(test[0], "root_mask")  # the originals are left alone


def test_readout_with_degree_labels_and_function_strategies(mutag):
    train, test = mutag[::2], mutag[1::2]
    by_degree = condense(train, num_hops=1, min_support=0.3, node_strategy="degree")
    assert by_degree.meta["node_labels"] == "degree" and by_degree.meta["edge_labels"] == "argmax"
    batch = Batch.from_data_list(test)
    degree = discretize(batch.x, batch.edge_index, batch.num_nodes, "degree")
    kept_degrees = {tuple(t["labels"][:1]) for t in by_degree.trees}
    mask = torch.cat(by_degree.readout_masks(test))
    assert bool(mask.any()) and all((int(d),) in kept_degrees for d in degree[mask])

    def element(features, edge_index, num_nodes):
        return features.argmax(dim=1)

    by_function = condense(train, num_hops=2, min_support=0.3, node_strategy=element)
    assert by_function.meta["node_labels"] == "function"
    with pytest.raises(ValueError, match="node_strategy is required"):
        by_function.readout_masks(test)
    reference = condense(train, num_hops=2, min_support=0.3)
    assert [m.tolist() for m in by_function.readout_masks(test, node_strategy=element)] == [
        m.tolist() for m in reference.readout_masks(test)]


@pytest.mark.parametrize("gnn", ["gin", "gat"])
def test_masked_readout_equals_the_union_of_the_graphs_kept_trees(mutag, gnn):
    # Mirage's authors score a test graph as the disjoint union of its nodes' trees that the condensed
    # set holds, summing the roots; with GIN and GAT the masked readout of the graph is the same sum.
    from graphkd.nn import GraphClassifier

    train, test = mutag[::2], mutag[1::2][:12]
    condensed = condense(train, num_hops=2, min_support=0.3)
    torch.manual_seed(0)
    model = GraphClassifier(gnn, 7, 16, 2, 2).eval()
    trees = condensed.tree_graph(range(len(condensed.trees)))
    batch = Batch.from_data_list(train + test)
    labels = discretize(batch.x, batch.edge_index, batch.num_nodes)
    edge_labels = discretize(batch.edge_attr, batch.edge_index, batch.num_nodes, what="edges")
    ids = tree_hash(torch.cat([batch.edge_index, trees.edge_index + batch.num_nodes], dim=1),
                    torch.cat([labels, trees.node_label]), 2, torch.cat([edge_labels, trees.edge_label]))[2]
    root_ids = ids[batch.num_nodes:][trees.root_mask].tolist()
    with torch.no_grad():
        for graph, mask, start in zip(test, condensed.readout_masks(test), batch.ptr[len(train):].tolist()):
            union = [root_ids.index(int(i)) for i in ids[start:start + graph.num_nodes] if int(i) in root_ids]
            masked = model(graph.x, graph.edge_index, torch.zeros(graph.num_nodes, dtype=torch.long), mask, 1)
            if not union:
                assert not mask.any()
                continue
            built = condensed.tree_graph(union)
            expected = model(built.x, built.edge_index, torch.zeros(built.num_nodes, dtype=torch.long),
                             built.root_mask, 1)
            torch.testing.assert_close(masked, expected, atol=1e-5, rtol=1e-5)


def test_format_1_files_load_but_cannot_read_out_new_graphs(mutag, condensed):
    import json
    import struct
    import zlib

    data = condensed.to_bytes()
    header = len(b"GEOKD-MIRAGE\n") + struct.calcsize("<HI")
    payload = json.loads(zlib.decompress(data[header:]))
    assert payload["node_keys"] and payload["edge_keys"]
    del payload["node_keys"], payload["edge_keys"]
    body = zlib.compress(json.dumps(payload).encode())
    old = CondensedDataset.from_bytes(b"GEOKD-MIRAGE\n" + struct.pack("<HI", 1, zlib.crc32(body)) + body)
    assert old.trees == condensed.trees and old.node_keys is None
    with pytest.raises(ValueError, match="holds no category keys .*condense again"):
        old.readout_masks(mutag[:3])
    assert condensed.readout_masks([]) == []
