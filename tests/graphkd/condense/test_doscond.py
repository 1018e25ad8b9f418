import math

import pytest
import torch
from torch_geometric.data import Data

from graphkd.condense.doscond import MAX_DEFAULT_NODES, doscond, matching_distance
from graphkd.condense.train import NodeInputs, stratified_split, train_graph_classifier
from graphkd.datasets import get_dataset
from tests.conftest import requires_cuda

# Small settings: the tests check behaviour, not the paper's numbers.
FAST = {"hidden": 16, "batch_size": 32, "show_progress": False}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mutag():
    return list(get_dataset("MUTAG"))


@pytest.fixture(scope="module")
def mutag_split(mutag):
    train, val, test = stratified_split([int(g.y) for g in mutag], 0)
    return [mutag[i] for i in train], [mutag[i] for i in val], [mutag[i] for i in test]


def _edge_set(edge_index):
    return set(map(tuple, edge_index.t().tolist()))


def _brute_force_distance(real_gradients, synthetic_gradients):
    total = 0.0
    for real, synthetic in zip(real_gradients, synthetic_gradients):
        if real.dim() == 1:
            continue  # biases are left out
        for real_row, synthetic_row in zip(real.reshape(real.shape[0], -1).tolist(),
                                           synthetic.reshape(synthetic.shape[0], -1).tolist()):
            dot = sum(a * b for a, b in zip(real_row, synthetic_row))
            norms = math.sqrt(sum(a * a for a in real_row)) * math.sqrt(sum(b * b for b in synthetic_row))
            total += 1 - dot / (norms + 1e-6)
    return total


def test_matching_distance_is_the_sum_of_row_cosine_distances():
    generator = torch.Generator().manual_seed(0)
    shapes = [(5, 3), (5,), (4, 5), (2, 3, 2), (2,)]
    real = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    synthetic = [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    real[0][1] = 0  # a unit that no real graph activates: cosine 0, distance 1
    expected = _brute_force_distance(real, synthetic)
    assert float(matching_distance(real, synthetic)) == pytest.approx(expected, rel=1e-12)
    # Identical gradients are at distance ~0 (but for the zero row), opposite ones at 2 per row.
    assert float(matching_distance(real, real)) == pytest.approx(1.0, abs=1e-4)
    assert float(matching_distance([real[2]], [-real[2]])) == pytest.approx(8.0, abs=1e-4)
    # Differentiable with respect to the synthetic side, which is what DosCond optimises.
    leaf = synthetic[2].clone().requires_grad_()
    torch.autograd.gradcheck(lambda s: matching_distance([real[2]], [s]), (leaf,))
    with pytest.raises(ValueError, match="gradient shapes differ"):
        matching_distance([real[0]], [real[2]])


def test_matching_loss_decreases_on_mutag(mutag_split):
    train, _, _ = mutag_split
    # Small graphs and brisk learning rates leave the real-graph initialisation room to improve
    # within a few dozen iterations.
    _, history = doscond(train, NodeInputs(7), 2, nodes_per_graph=6, iterations=60, lr_features=0.05,
                         lr_adjacency=0.1, seed=0, return_history=True, **{**FAST, "batch_size": 64})
    matching = history["matching"]
    assert len(matching) == 60 and len(history["sparsity"]) == 60
    assert all(math.isfinite(value) for value in matching)
    first, last = sum(matching[:10]) / 10, sum(matching[-10:]) / 10
    assert last < 0.85 * first, (first, last)


def test_output_format_and_determinism(mutag_split):
    train, _, _ = mutag_split
    inputs = NodeInputs(7)
    graphs = doscond(train, inputs, 2, graphs_per_class=3, iterations=5, seed=1, **FAST)
    assert [int(g.y) for g in graphs] == [0, 0, 0, 1, 1, 1]
    for graph in graphs:
        label = int(graph.y)
        members = [g for g in train if int(g.y) == label]
        expected_nodes = min(MAX_DEFAULT_NODES, round(sum(g.num_nodes for g in members) / len(members)))
        assert graph.y.dtype == torch.long and graph.y.shape == (1,)
        assert graph.x.dtype == torch.float32 and graph.x.shape == (expected_nodes, 7)
        assert graph.num_nodes == expected_nodes and torch.isfinite(graph.x).all()
        assert graph.edge_index.dtype == torch.long and graph.edge_index.shape[0] == 2
        edges = _edge_set(graph.edge_index)
        assert all((j, i) in edges for i, j in edges)  # symmetric
        assert all(i != j for i, j in edges)  # no self loops
        assert graph.edge_index.numel() == 0 or int(graph.edge_index.max()) < expected_nodes
        assert inputs(graph).x.shape == graph.x.shape  # passes through NodeInputs as it is

    again = doscond(train, inputs, 2, graphs_per_class=3, iterations=5, seed=1, **FAST)
    for a, b in zip(graphs, again):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    other = doscond(train, inputs, 2, graphs_per_class=3, iterations=5, seed=2, **FAST)
    assert any(not torch.equal(a.x, b.x) for a, b in zip(graphs, other))


def test_frozen_synthetic_graphs_are_the_real_initial_graphs(mutag_split):
    """With both learning rates 0, the output is the initialisation: distinct real graphs of the
    class, cut or padded to ``nodes_per_graph`` nodes (thresholding the ±5 logits gives their
    edges)."""
    train, _, _ = mutag_split
    nodes = 12
    graphs = doscond(train, NodeInputs(7), 2, graphs_per_class=4, nodes_per_graph=nodes, iterations=2,
                     lr_features=0.0, lr_adjacency=0.0, seed=3, **FAST)
    for label in (0, 1):
        sources = set()
        for graph in (g for g in graphs if int(g.y) == label):
            matches = []
            for index, real in enumerate(train):
                if int(real.y) != label:
                    continue
                kept = min(real.num_nodes, nodes)
                induced = {(i, j) for i, j in _edge_set(real.edge_index) if i < kept and j < kept}
                if torch.equal(graph.x[:kept], real.x[:kept].float()) and _edge_set(graph.edge_index) == induced:
                    matches.append(index)
            assert matches, "a synthetic graph does not start from a real graph of its class"
            sources.add(matches[0])
            # Padding nodes copy real nodes' one-hot features and start isolated.
            assert torch.equal(graph.x.sum(dim=1), torch.ones(nodes))
        assert len(sources) == 4  # distinct real graphs


def test_few_graphs_and_featureless_inputs():
    # Class 1 has 2 graphs (fewer than graphs_per_class); no node features: one-hot degrees.
    def ring(n, label):
        nodes = torch.arange(n)
        edge_index = torch.stack([nodes, (nodes + 1) % n])
        return Data(edge_index=torch.cat([edge_index, edge_index.flip(0)], dim=1), y=torch.tensor([label]),
                    num_nodes=n)

    # A graph without nodes is degenerate but legal: it must neither crash nor shift the batch.
    empty = Data(edge_index=torch.empty(2, 0, dtype=torch.long), y=torch.tensor([0]), num_nodes=0)
    train = [ring(n, 0) for n in (4, 5, 6, 7, 8)] + [empty] + [ring(n, 1) for n in (3, 9)]
    inputs = NodeInputs(None, max_degree=4)
    graphs = doscond(train, inputs, 2, graphs_per_class=3, iterations=3, **FAST)
    assert [int(g.y) for g in graphs] == [0, 0, 0, 1, 1]
    # Class 0 averages 5 nodes, class 1 six; inputs are one-hot degrees 0..4.
    assert [tuple(g.x.shape) for g in graphs] == [(5, 5)] * 3 + [(6, 5)] * 2
    small = doscond(train, inputs, 2, graphs_per_class=1, nodes_per_graph=1, iterations=2, **FAST)
    assert all(g.num_nodes == 1 and g.edge_index.shape == (2, 0) for g in small)  # kept although edgeless


def test_trains_a_gcn_on_mutag(mutag_split):
    train, val, test = mutag_split
    inputs = NodeInputs(7)
    graphs = doscond(train, inputs, 2, iterations=30, seed=0, **FAST)
    assert len(graphs) == 20
    result = train_graph_classifier(graphs, val, test, inputs, 2, gnn="gcn", num_layers=2, epochs=15, seed=0)
    assert result["val"]["roc_auc"] is not None
    assert result["test"]["roc_auc"] > 0.5, result


@pytest.mark.parametrize("change, message", [
    ({"train_graphs": []}, "train_graphs is empty"),
    ({"graphs_per_class": 0}, "graphs_per_class must be an int >= 1"),
    ({"iterations": 0}, "iterations must be an int >= 1"),
    ({"nodes_per_graph": 0}, "nodes_per_graph must be None or an int >= 1"),
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"lr_features": -1.0}, "lr_features must be >= 0"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"num_classes": 3}, r"no graph of class\(es\) \[2\] \(num_classes=3\)"),
    ({"num_classes": 1}, r"has label 1, outside range\(num_classes=1\)"),
    ({"inputs": NodeInputs(5)}, (r"train_graphs\[0\] has node inputs of shape \(17, 7\) after inputs\(\), "
                                 r"expected \(17, 5\) \(inputs.size\)")),
])
def test_bad_inputs(mutag, change, message):
    arguments = dict(train_graphs=mutag[:20], inputs=NodeInputs(7), num_classes=2, iterations=1, **FAST)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        doscond(**arguments)


@requires_cuda
def test_cuda_matches_cpu(mutag_split):
    train, _, _ = mutag_split
    cpu = doscond(train, NodeInputs(7), 2, graphs_per_class=2, iterations=5, seed=0, **FAST)
    cuda = doscond(train, NodeInputs(7), 2, graphs_per_class=2, iterations=5, seed=0, device="cuda", **FAST)
    for a, b in zip(cpu, cuda):
        torch.testing.assert_close(a.x, b.x, rtol=1e-3, atol=1e-3)


def test_sparse_forward_on_real_graphs_equals_the_dense_network():
    from torch_geometric.data import Batch
    from torch_geometric.utils import to_dense_adj, to_dense_batch

    from graphkd.condense.doscond import _DenseGCN, _sparse_forward

    generator = torch.Generator().manual_seed(0)
    graphs = [
        Data(x=torch.rand(4, 3, generator=generator), edge_index=torch.tensor([[0, 1, 1, 2, 3, 3], [1, 0, 2, 1, 3, 0]])),
        Data(x=torch.rand(2, 3, generator=generator), edge_index=torch.tensor([[0, 0, 1], [1, 1, 0]])),  # a repeated edge
        Data(x=torch.rand(6, 3, generator=generator), edge_index=torch.tensor([[0, 2, 4], [1, 3, 5]])),  # one direction
    ]
    batch = Batch.from_data_list(graphs)
    model = _DenseGCN(3, 8, 2, 2)
    x, mask = to_dense_batch(batch.x, batch.batch)
    adjacency = to_dense_adj(batch.edge_index, batch.batch, max_num_nodes=x.size(1))
    dense = model(x, adjacency, mask)
    sparse = _sparse_forward(model, batch.x, batch.edge_index, batch.batch, len(graphs))
    torch.testing.assert_close(sparse, dense)
