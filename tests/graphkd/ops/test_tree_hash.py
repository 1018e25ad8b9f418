import os
from contextlib import contextmanager

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphkd.ops import TreeVocabulary, tree_hash
from graphkd.ops.tree_hash import _tree_hash_reference, same_partition
from tests.conftest import DEVICES, requires_cuda


@st.composite
def labelled_graphs(draw, max_nodes=10, max_edges=24):
    num_nodes = draw(st.integers(0, max_nodes))
    pairs = draw(st.lists(st.tuples(st.integers(0, max(num_nodes - 1, 0)), st.integers(0, max(num_nodes - 1, 0))),
                          max_size=max_edges if num_nodes else 0))
    undirected = draw(st.booleans())
    with_edge_labels = draw(st.booleans())
    edge_labels = [draw(st.integers(0, 2)) for _ in pairs]
    if undirected:  # both directions, same label; self-loops and multi-edges stay as drawn
        pairs = pairs + [(t, s) for s, t in pairs]
        edge_labels = edge_labels + edge_labels
    node_labels = [draw(st.integers(0, 2)) for _ in range(num_nodes)]
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()
    return (
        edge_index,
        torch.tensor(node_labels, dtype=torch.long),
        torch.tensor(edge_labels, dtype=torch.long) if with_edge_labels else None,
    )


@settings(max_examples=300, deadline=None)
@given(graph=labelled_graphs(), num_hops=st.integers(0, 4))
def test_matches_unrolled_ahu_strings(graph, num_hops):
    edge_index, node_labels, edge_labels = graph
    expected = _tree_hash_reference(edge_index, node_labels, num_hops, edge_labels)
    # Same first-occurrence numbering, so equal tensors, not just equal partitions.
    assert torch.equal(tree_hash(edge_index, node_labels, num_hops, edge_labels), expected)


@settings(max_examples=100, deadline=None)
@given(graph=labelled_graphs(), num_hops=st.integers(0, 3), seed=st.integers(0, 1000))
def test_relabelled_isomorphic_copy_gets_the_same_ids(graph, num_hops, seed):
    edge_index, node_labels, edge_labels = graph
    num_nodes = node_labels.numel()
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))  # copy node perm[v] is node v
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(num_nodes)
    edge_order = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(seed + 1))
    copy_edges = inverse[edge_index][:, edge_order]
    batch_edges = torch.cat([edge_index, copy_edges + num_nodes], dim=1)
    batch_labels = torch.cat([node_labels, node_labels[perm]])
    batch_edge_labels = None if edge_labels is None else torch.cat([edge_labels, edge_labels[edge_order]])
    ids = tree_hash(batch_edges, batch_labels, num_hops, batch_edge_labels)
    assert torch.equal(ids[:, :num_nodes], ids[:, num_nodes:][:, inverse])


@contextmanager
def weak_signature_hashes(bits: int):
    """The CPU kernel's test hook: signature hashes cut to ``bits`` bits and no exact codes, so that
    different trees collide all the time and only the full comparison keeps them apart."""
    previous = os.environ.get("GRAPHKD_TREE_HASH_DEBUG_BITS")
    os.environ["GRAPHKD_TREE_HASH_DEBUG_BITS"] = str(bits)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["GRAPHKD_TREE_HASH_DEBUG_BITS"]
        else:
            os.environ["GRAPHKD_TREE_HASH_DEBUG_BITS"] = previous


@settings(max_examples=150, deadline=None)
@given(graph=labelled_graphs(max_nodes=14, max_edges=40), num_hops=st.integers(0, 4), bits=st.integers(0, 4))
def test_hash_collisions_are_resolved_exactly(graph, num_hops, bits):
    edge_index, node_labels, edge_labels = graph
    expected = _tree_hash_reference(edge_index, node_labels, num_hops, edge_labels)
    with weak_signature_hashes(bits):
        ids = tree_hash(edge_index, node_labels, num_hops, edge_labels)
    assert torch.equal(ids, expected)


def random_graph(num_nodes, num_edges, num_labels, num_edge_labels, seed, label_scale=1):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    labels = torch.randint(0, num_labels, (num_nodes,), generator=generator) * label_scale
    edge_labels = torch.randint(0, num_edge_labels, (num_edges,), generator=generator) if num_edge_labels else None
    return edge_index, labels, edge_labels


@pytest.mark.parametrize(
    "num_nodes, num_edges, num_labels, num_edge_labels, label_scale",
    [
        (400, 800, 3, 0, 1),  # in-degrees mostly <= 4
        (400, 2400, 3, 0, 1),  # in-degrees mostly 5..8, some more
        (150, 3000, 2, 3, 1),  # in-degrees ~20: hashes checked key by key, not exact codes
        (300, 900, 4, 5, -(2**40)),  # labels far apart (a hashed first depth), edge labels in the codes
    ],
)
@pytest.mark.parametrize("bits", [None, 2])
def test_degree_and_label_regimes_match_reference(num_nodes, num_edges, num_labels, num_edge_labels, label_scale, bits):
    edge_index, labels, edge_labels = random_graph(num_nodes, num_edges, num_labels, num_edge_labels, seed=num_edges,
                                                   label_scale=label_scale)
    expected = _tree_hash_reference(edge_index, labels, 3, edge_labels)
    if bits is None:
        assert torch.equal(tree_hash(edge_index, labels, 3, edge_labels), expected)
    else:
        with weak_signature_hashes(bits):
            assert torch.equal(tree_hash(edge_index, labels, 3, edge_labels), expected)


def test_same_ids_with_one_thread_and_many():
    edge_index, labels, edge_labels = random_graph(50_000, 200_000, 4, 3, seed=3)
    threads = torch.get_num_threads()
    many = tree_hash(edge_index, labels, 4, edge_labels)
    try:
        torch.set_num_threads(1)
        one = tree_hash(edge_index, labels, 4, edge_labels)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)
    assert torch.equal(tree_hash(edge_index, labels, 4, edge_labels), many)  # and from call to call


def graph_batch(num_graphs, seed, with_edge_labels):
    """Many small random graphs side by side, edges sorted by source like a PyG batch."""
    generator = torch.Generator().manual_seed(seed)
    edges, edge_labels, offset = [], [], 0
    for _ in range(num_graphs):
        size = int(torch.randint(2, 40, (1,), generator=generator))
        pairs = torch.randint(0, size, (2, 4 * size), generator=generator)
        pairs = torch.cat([pairs, pairs.flip(0)], dim=1)  # undirected
        edges.append(pairs + offset)
        edge_labels.append(torch.randint(0, 3, (pairs.shape[1] // 2,), generator=generator).repeat(2))
        offset += size
    edge_index, edge_labels = torch.cat(edges, dim=1), torch.cat(edge_labels)
    order = torch.argsort(edge_index[0] * offset + edge_index[1])
    labels = torch.randint(0, 4, (offset,), generator=generator)
    return edge_index[:, order], labels, edge_labels[order] if with_edge_labels else None


@pytest.mark.parametrize("with_edge_labels", [False, True])
def test_batches_sorted_by_source_match_shuffled_edges(with_edge_labels):
    # Sorted by source with closed graphs: the CSR is built graph run by graph run; shuffled, by
    # one counting sort over all edges. The ids must not depend on it.
    edge_index, labels, edge_labels = graph_batch(1500, seed=5, with_edge_labels=with_edge_labels)
    assert edge_index.shape[1] > 2**17
    sorted_ids = tree_hash(edge_index, labels, 3, edge_labels)
    order = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(6))
    shuffled_ids = tree_hash(edge_index[:, order], labels, 3, None if edge_labels is None else edge_labels[order])
    assert torch.equal(sorted_ids, shuffled_ids)
    small_index, small_labels, small_edge_labels = graph_batch(300, seed=7, with_edge_labels=with_edge_labels)
    assert torch.equal(tree_hash(small_index, small_labels, 2, small_edge_labels),
                       _tree_hash_reference(small_index, small_labels, 2, small_edge_labels))


def test_sorted_batch_that_does_not_close():
    # One edge from the last graph into the first: no run closes, the global sort takes over.
    edge_index, labels, _ = graph_batch(1500, seed=8, with_edge_labels=False)
    num_nodes = labels.numel()
    extra = torch.tensor([[num_nodes - 1], [0]])
    edge_index = torch.cat([edge_index, extra], dim=1)
    order = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(9))
    assert torch.equal(tree_hash(edge_index, labels, 3), tree_hash(edge_index[:, order], labels, 3))


@pytest.mark.parametrize("position, row, value", [(-1, 0, 10**9), (-1, 1, -1), (0, 0, -5), (70_000, 1, 10**9)])
def test_bad_index_in_sorted_batch(position, row, value):
    edge_index, labels, _ = graph_batch(1500, seed=10, with_edge_labels=False)
    edge_index[row, position] = value
    with pytest.raises(RuntimeError, match=r"node indices in \[0, N\)"):
        tree_hash(edge_index, labels, 2)


def test_known_trees():
    # Path 0 - 1 - 2 (undirected): the ends are alike at every depth, the middle differs from depth 1.
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    ids = tree_hash(edge_index, torch.zeros(3, dtype=torch.long), 2)
    assert ids.tolist() == [[0, 0, 0], [0, 1, 0], [0, 1, 0]]
    # Direction matters: in 0 -> 1 -> 2 only node 0 has no sender.
    ids = tree_hash(torch.tensor([[0, 1], [1, 2]]), torch.zeros(3, dtype=torch.long), 2)
    assert ids.tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 2]]
    # Edge labels separate otherwise equal trees.
    ids = tree_hash(torch.tensor([[0, 2], [1, 3]]), torch.zeros(4, dtype=torch.long), 1, torch.tensor([0, 1]))
    assert ids[1].tolist() == [0, 1, 0, 2]
    # Multi-edges count: two parallel edges are not one.
    ids = tree_hash(torch.tensor([[0, 0, 2], [1, 1, 3]]), torch.zeros(4, dtype=torch.long), 1)
    assert ids[1, 1] != ids[1, 3]


def test_hash_collisions_cannot_merge_trees():
    """Many distinct trees with identical labels: every one must keep its own id."""
    # Star centres with 0..199 leaves: 200 distinct depth-1 trees (+ the leaves' one).
    sources, targets, offset = [], [], 0
    for leaves in range(200):
        centre = offset
        for leaf in range(1, leaves + 1):
            sources.append(centre + leaf)
            targets.append(centre)
        offset += leaves + 1
    edge_index = torch.tensor([sources, targets])
    ids = tree_hash(edge_index, torch.zeros(offset, dtype=torch.long), 1)
    assert ids[1].unique().numel() == 200  # centre with 0 leaves = a leaf: 199 centres + leaves' tree


def test_mutag_matches_reference():
    from torch_geometric.data import Batch

    from graphkd.datasets import TUDataset

    batch = Batch.from_data_list(list(TUDataset("MUTAG")))
    node_labels, edge_labels = batch.x.argmax(dim=1), batch.edge_attr.argmax(dim=1)
    for num_hops in (1, 3):
        expected = _tree_hash_reference(batch.edge_index, node_labels, num_hops, edge_labels)
        assert torch.equal(tree_hash(batch.edge_index, node_labels, num_hops, edge_labels), expected)


def test_nci1_partition_matches_networkx_weisfeiler_lehman(shared_data):
    import networkx as nx
    from torch_geometric.data import Batch
    from torch_geometric.utils import to_networkx

    from graphkd.datasets import TUDataset

    dataset = TUDataset("NCI1")[:600]
    batch = Batch.from_data_list(list(dataset))
    node_labels = batch.x.argmax(dim=1)
    ids = tree_hash(batch.edge_index, node_labels, 3)
    expected = [[] for _ in range(4)]
    for graph_index, data in enumerate(dataset):
        graph = to_networkx(data, to_undirected=True)
        labels = data.x.argmax(dim=1).tolist()
        # networkx concatenates a node's label with its neighbours' without separators, so
        # variable-width initial labels would be ambiguous ("1" + "12" == "11" + "2"): pad them.
        nx.set_node_attributes(graph, {v: f"{labels[v]:03d}" for v in graph.nodes}, "label")
        hashes = nx.weisfeiler_lehman_subgraph_hashes(graph, node_attr="label", iterations=3,
                                                      include_initial_labels=True)
        for depth in range(4):
            # Equal trees in different graphs hash equally, so one list over all graphs.
            expected[depth].extend(hashes[v][depth] for v in range(data.num_nodes))
    for depth in range(4):
        assert same_partition(ids[depth].tolist(), expected[depth]), f"depth {depth}"


def test_vocabulary_shares_ids_across_calls():
    edges_a = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # path of 3
    edges_b = torch.tensor([[1, 0, 0, 2], [0, 1, 2, 0]])  # the same path, centre numbered 0
    labels = torch.tensor([0, 1, 0])
    vocabulary = TreeVocabulary(2)
    first = tree_hash(edges_a, labels, 2, vocabulary=vocabulary)
    second = tree_hash(edges_b, torch.tensor([1, 0, 0]), 2, vocabulary=vocabulary)
    assert vocabulary.sizes() == [2, 2, 2]
    assert first[:, 1].tolist() == second[:, 0].tolist()  # the centres
    # A new tree grows the vocabulary; a frozen one answers -1 instead.
    star = torch.tensor([[1, 2, 3], [0, 0, 0]])
    grown = tree_hash(star, torch.tensor([1, 0, 0, 0]), 2, vocabulary=vocabulary)
    assert grown[1, 0] == 2 and vocabulary.sizes()[1] == 4
    restored = TreeVocabulary.from_state_dict(vocabulary.state_dict()).freeze()
    unseen = tree_hash(torch.tensor([[1, 2, 3, 4], [0, 0, 0, 0]]), torch.tensor([1, 0, 0, 0, 0]), 2,
                       vocabulary=restored)
    assert unseen[0].tolist() == [1, 0, 0, 0, 0] and unseen[1, 0] == -1 and unseen[2, 0] == -1
    assert restored.sizes() == vocabulary.sizes()


def test_vocabulary_ids_match_a_joint_call():
    """Ids through a vocabulary partition nodes exactly as one call over all graphs together."""
    generator = torch.Generator().manual_seed(0)
    parts = []
    for _ in range(3):
        edge_index = torch.randint(0, 30, (2, 60), generator=generator)
        parts.append((edge_index, torch.randint(0, 3, (30,), generator=generator)))
    vocabulary = TreeVocabulary(3)
    separate = torch.cat([tree_hash(e, x, 3, vocabulary=vocabulary) for e, x in parts], dim=1)
    joint = tree_hash(torch.cat([e + 30 * i for i, (e, _) in enumerate(parts)], dim=1),
                      torch.cat([x for _, x in parts]), 3)
    for depth in range(4):
        assert same_partition(separate[depth].tolist(), joint[depth].tolist())


def test_empty_inputs():
    assert tree_hash(torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long), 2).shape == (3, 0)
    ids = tree_hash(torch.empty(2, 0, dtype=torch.long), torch.tensor([3, 1, 3]), 2)
    assert ids.tolist() == [[0, 1, 0]] * 3


def test_non_contiguous_inputs():
    edge_index = torch.tensor([[0, 1], [1, 2], [2, 0]]).t()
    labels = torch.tensor([[1, 0], [2, 0], [1, 0]])[:, 0]
    assert not edge_index.is_contiguous() and not labels.is_contiguous()
    assert torch.equal(tree_hash(edge_index, labels, 2),
                       _tree_hash_reference(edge_index.contiguous(), labels.contiguous(), 2))


@pytest.mark.parametrize(
    "edge_index, labels, hops, edge_labels, message",
    [
        (torch.tensor([[0, 1]]), torch.zeros(2, dtype=torch.long), 1, None, r"edge_index must be an int64 tensor of shape \[2, E\]"),
        (torch.tensor([[0.0], [1.0]]), torch.zeros(2, dtype=torch.long), 1, None, "edge_index must be an int64"),
        (torch.tensor([[0], [2]]), torch.zeros(2, dtype=torch.long), 1, None, r"node indices in \[0, N\) = \[0, 2\)"),
        (torch.tensor([[-1], [0]]), torch.zeros(2, dtype=torch.long), 1, None, r"got values in \[-1, 0\]"),
        (torch.tensor([[0], [1]]), torch.zeros(2), 1, None, "node_labels must be a 1-D int64 tensor"),
        (torch.tensor([[0], [1]]), torch.zeros(2, 1, dtype=torch.long), 1, None, "node_labels must be a 1-D int64"),
        (torch.tensor([[0], [1]]), torch.zeros(2, dtype=torch.long), -1, None, "num_hops must be >= 0"),
        (torch.tensor([[0], [1]]), torch.zeros(2, dtype=torch.long), 1, torch.tensor([0, 1]), "one entry per edge"),
        (torch.tensor([[0], [1]]), torch.zeros(2, dtype=torch.long), 1, torch.tensor([-2]), r"edge_labels must lie in \[0, 2\^31\)"),
    ],
)
def test_bad_input(edge_index, labels, hops, edge_labels, message):
    with pytest.raises(RuntimeError, match=message):
        tree_hash(edge_index, labels, hops, edge_labels)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="num_hops must be an int"):
        tree_hash(torch.zeros(2, 0, dtype=torch.long), torch.zeros(1, dtype=torch.long), 1.5)
    with pytest.raises(TypeError, match="edge_index must be a Tensor"):
        tree_hash([[0], [0]], torch.zeros(1, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="num_hops must be an int >= 0"):
        TreeVocabulary(-1)
    with pytest.raises(ValueError, match="not a TreeVocabulary state"):
        TreeVocabulary.from_state_dict({"tables": []})


def test_opcheck():
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    labels = torch.tensor([0, 1, 0])
    torch.library.opcheck(torch.ops.graphkd.tree_hash.default, (edge_index, labels, 2, None))
    torch.library.opcheck(torch.ops.graphkd.tree_hash.default, (edge_index, labels, 1, torch.tensor([0, 1, 1, 0])))


@pytest.mark.parametrize("device", DEVICES)
def test_devices_agree_with_reference(device):
    generator = torch.Generator().manual_seed(1)
    # Enough edges for the CPU kernel to split its counting sort over several chunks.
    edge_index = torch.randint(0, 3000, (2, 20_000), generator=generator)
    labels = torch.randint(0, 4, (3000,), generator=generator)
    edge_labels = torch.randint(0, 3, (20_000,), generator=generator)
    ids = tree_hash(edge_index.to(device), labels.to(device), 2, edge_labels.to(device)).cpu()
    assert torch.equal(ids, _tree_hash_reference(edge_index, labels, 2, edge_labels))
    bad = edge_index.clone()
    bad[0, 15_000] = 3000
    with pytest.raises(RuntimeError, match=r"got values in \[0, 3000\]"):
        tree_hash(bad.to(device), labels.to(device), 2)


@requires_cuda
def test_cuda_matches_cpu_large():
    generator = torch.Generator().manual_seed(2)
    edge_index = torch.randint(0, 100_000, (2, 500_000), generator=generator)
    labels = torch.randint(0, 5, (100_000,), generator=generator)
    assert torch.equal(tree_hash(edge_index.cuda(), labels.cuda(), 3).cpu(), tree_hash(edge_index, labels, 3))
