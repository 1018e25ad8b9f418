import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphkd.condense.kidd import INPUT_CONSTANT, GraphSide, kidd, krr_predict, lite_gntk
from graphkd.condense.train import NodeInputs, stratified_split
from graphkd.datasets import get_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mutag_train():
    graphs = list(get_dataset("MUTAG"))
    train, _, _ = stratified_split([int(g.y) for g in graphs], 0)
    return [graphs[i] for i in train]


def _random_graphs(count, sizes, width, generator, directed=False, dtype=torch.float64):
    graphs = []
    for index in range(count):
        n = sizes[index % len(sizes)]
        mask = torch.rand(n, n, generator=generator) < 0.4
        mask.fill_diagonal_(False)
        if not directed:
            mask = torch.triu(mask, 1)
            mask = mask | mask.t()
        graphs.append(Data(x=torch.randn(n, width, generator=generator, dtype=dtype),
                           edge_index=mask.nonzero().t().contiguous(), num_nodes=n))
    return graphs


def _sparse_side(graphs):
    batch = Batch.from_data_list(graphs)
    return GraphSide.sparse(batch.x, batch.edge_index, batch.batch, len(graphs))


def _dense_adjacency(graph):
    """A[v, u] = number of messages u -> v."""
    n = graph.num_nodes
    adjacency = torch.zeros(n, n, dtype=graph.x.dtype)
    adjacency.index_put_((graph.edge_index[1], graph.edge_index[0]), torch.ones(graph.edge_index.size(1),
                         dtype=graph.x.dtype), accumulate=True)
    return adjacency


def _empirical_ntk(graphs, num_layers, width, generator, readout):
    r"""The NTK of one draw of the finite network the LiteGNTK is the limit of:
    :math:`f(G) = \operatorname{readout}(\hat A^{L-1} \sqrt{2/m}\,\mathrm{relu}(\hat A h W^\top)) w`
    with standard-normal :math:`W` and :math:`w`, as inner products of parameter gradients."""
    d = graphs[0].x.size(1) + 1
    weight = torch.randn(width, d, generator=generator, dtype=torch.float64).requires_grad_()
    head = torch.randn(width, generator=generator, dtype=torch.float64).requires_grad_()
    gradients = []
    for graph in graphs:
        n = graph.num_nodes
        a_hat = _dense_adjacency(graph) + torch.eye(n, dtype=torch.float64)
        h = torch.cat([graph.x, torch.full((n, 1), math.sqrt(INPUT_CONSTANT), dtype=torch.float64)], dim=1)
        hidden = math.sqrt(2 / width) * torch.relu(a_hat @ h @ weight.t())
        for _ in range(num_layers - 1):
            hidden = a_hat @ hidden
        pooled = hidden.mean(dim=0) if readout == "mean" else hidden.sum(dim=0)
        output = pooled @ head
        gradient = torch.autograd.grad(output, (weight, head))
        gradients.append(torch.cat([g.reshape(-1) for g in gradient]))
    stacked = torch.stack(gradients)
    return stacked @ stacked.t()


@pytest.mark.parametrize("readout", ["mean", "sum"])
def test_lite_gntk_is_the_ntk_of_the_wide_network(readout):
    generator = torch.Generator().manual_seed(0)
    graphs = _random_graphs(4, [3, 4, 5, 2], 3, generator, directed=True)
    expected = _empirical_ntk(graphs, num_layers=3, width=60_000, generator=generator, readout=readout)
    side = _sparse_side(graphs)
    kernel = lite_gntk(side, side, num_layers=3, mlp_layers=1, readout=readout)
    assert kernel.shape == (4, 4) and kernel.dtype == torch.float64
    # Monte-Carlo error of one draw of width m is about 1 / sqrt(m) relative.
    torch.testing.assert_close(kernel, expected, rtol=0.03, atol=0.03 * float(expected.abs().max()))


def test_without_mlp_the_kernel_is_the_linear_one_exactly():
    """``mlp_layers=0``: the NTK of a linear network, <readout(Â^L h), readout(Â^L h')>, in closed form."""
    generator = torch.Generator().manual_seed(1)
    graphs = _random_graphs(5, [4, 6, 1], 2, generator, directed=True)
    pooled = []
    for graph in graphs:
        a_hat = _dense_adjacency(graph) + torch.eye(graph.num_nodes, dtype=torch.float64)
        h = torch.cat([graph.x, torch.full((graph.num_nodes, 1), math.sqrt(INPUT_CONSTANT), dtype=torch.float64)], 1)
        pooled.append((torch.linalg.matrix_power(a_hat, 2) @ h).mean(dim=0))
    pooled = torch.stack(pooled)
    side = _sparse_side(graphs)
    torch.testing.assert_close(lite_gntk(side, side, num_layers=2, mlp_layers=0), pooled @ pooled.t(),
                               rtol=1e-12, atol=1e-12)


def test_dense_and_sparse_sides_agree_and_cross_kernels_are_blocks():
    generator = torch.Generator().manual_seed(2)
    graphs = _random_graphs(3, [5], 4, generator, directed=True)
    others = _random_graphs(4, [2, 7, 3], 4, generator)
    x = torch.stack([g.x for g in graphs])
    adjacency = torch.stack([_dense_adjacency(g) for g in graphs])
    dense = GraphSide.dense(x, adjacency)
    sparse = _sparse_side(graphs)
    everything = _sparse_side(graphs + others)
    full = lite_gntk(everything, everything, num_layers=4, mlp_layers=2)
    torch.testing.assert_close(lite_gntk(dense, dense, num_layers=4, mlp_layers=2), full[:3, :3])
    torch.testing.assert_close(lite_gntk(sparse, dense, num_layers=4, mlp_layers=2), full[:3, :3])
    torch.testing.assert_close(lite_gntk(_sparse_side(others), dense, num_layers=4, mlp_layers=2), full[3:, :3])
    torch.testing.assert_close(lite_gntk(dense, _sparse_side(others), num_layers=4, mlp_layers=2), full[:3, 3:])
    # A kernel: symmetric and positive semi-definite.
    torch.testing.assert_close(full, full.t())
    assert float(torch.linalg.eigvalsh(full).min()) > -1e-9 * float(full.abs().max())


def test_the_kernel_sees_structure_and_is_invariant_to_node_order():
    generator = torch.Generator().manual_seed(3)
    graph = _random_graphs(1, [6], 3, generator)[0]
    permutation = torch.randperm(6, generator=generator)
    inverse = torch.argsort(permutation)
    permuted = Data(x=graph.x[permutation], edge_index=inverse[graph.edge_index], num_nodes=6)
    rewired = Data(x=graph.x, edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=6)
    side = _sparse_side([graph, permuted, rewired])
    kernel = lite_gntk(side, side, num_layers=3)
    torch.testing.assert_close(kernel[0], kernel[1])
    assert not torch.allclose(kernel[0], kernel[2])


def test_gradients_reach_synthetic_features_and_adjacency():
    generator = torch.Generator().manual_seed(4)
    real = _sparse_side(_random_graphs(3, [4, 5], 2, generator))
    x = torch.randn(2, 3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    adjacency = torch.rand(2, 3, 3, generator=generator, dtype=torch.float64, requires_grad=True)

    def kernel(x, adjacency):
        return lite_gntk(real, GraphSide.dense(x, adjacency), num_layers=2)

    torch.autograd.gradcheck(kernel, (x, adjacency))


def test_krr_matches_scikit_learn():
    kernel_ridge = pytest.importorskip("sklearn.kernel_ridge")
    generator = torch.Generator().manual_seed(5)
    points = torch.randn(12, 3, generator=generator, dtype=torch.float64)
    gram = points @ points.t() + 1.0
    targets = torch.randn(8, 2, generator=generator, dtype=torch.float64)
    ridge = 1e-2
    ours = krr_predict(gram[:8, :8], gram[8:, :8], targets, ridge)
    alpha = ridge * float(torch.trace(gram[:8, :8])) / 8
    model = kernel_ridge.KernelRidge(alpha=alpha, kernel="precomputed").fit(gram[:8, :8].numpy(), targets.numpy())
    torch.testing.assert_close(ours, torch.from_numpy(model.predict(gram[8:, :8].numpy())))


def test_kidd_learns_on_mutag(mutag_train):
    graphs, history = kidd(mutag_train, NodeInputs(7), 2, graphs_per_class=4, iterations=60, lr_features=0.02,
                           lr_adjacency=0.05, batch_size=48, num_layers=3, seed=0, show_progress=False,
                           return_history=True)
    krr = history["krr"]
    assert len(krr) == 60 and all(math.isfinite(value) for value in krr)
    first, last = sum(krr[:10]) / 10, sum(krr[-10:]) / 10
    assert last < 0.9 * first, (first, last)
    assert [int(g.y) for g in graphs] == [0] * 4 + [1] * 4
    for graph in graphs:
        assert graph.x.dtype == torch.float32 and graph.x.size(1) == 7
        assert float(graph.x.min()) >= 0 and float(graph.x.max()) <= 1  # the one-hot inputs' range
        edges = set(map(tuple, graph.edge_index.t().tolist()))
        assert all((j, i) in edges and i != j for i, j in edges)


def test_determinism_and_initial_graphs(mutag_train):
    inputs = NodeInputs(7)
    options = {"graphs_per_class": 3, "iterations": 3, "batch_size": 16, "num_layers": 2, "show_progress": False}
    first = kidd(mutag_train, inputs, 2, seed=1, **options)
    again = kidd(mutag_train, inputs, 2, seed=1, **options)
    for a, b in zip(first, again):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)

    # Frozen (both learning rates 0) with an explicit order: the output is the ordered real graphs.
    order = [i for i in reversed(range(len(mutag_train)))]
    nodes = 30  # larger than every MUTAG graph: none is cut
    frozen = kidd(mutag_train, inputs, 2, nodes_per_graph=nodes, lr_features=0.0, lr_adjacency=0.0,
                  init_order=order, seed=2, **{**options, "graphs_per_class": 2})
    for label in (0, 1):
        expected = [i for i in order if int(mutag_train[i].y) == label][:2]
        produced = [g for g in frozen if int(g.y) == label]
        for index, graph in zip(expected, produced):
            real = mutag_train[index]
            assert torch.equal(graph.x[: real.num_nodes], real.x.float())
            assert set(map(tuple, graph.edge_index.t().tolist())) == set(map(tuple, real.edge_index.t().tolist()))


@pytest.mark.parametrize(("change", "message"), [
    ({"iterations": 0}, "iterations must be an int >= 1"),
    ({"ridge": 0.0}, "ridge must be a finite number > 0"),
    ({"lr_features": float("nan")}, "lr_features must be a finite number >= 0"),
    ({"mlp_layers": -1}, "mlp_layers must be an int >= 0"),
    ({"init_order": [0, 10_000]}, "init_order holds indices outside"),
    ({"num_classes": 3}, r"no graph of class\(es\) \[2\]"),
])
def test_bad_arguments_name_themselves(mutag_train, change, message):
    arguments = {"train_graphs": mutag_train, "inputs": NodeInputs(7), "num_classes": 2, "iterations": 1,
                     "show_progress": False}
    with pytest.raises(ValueError, match=message):
        kidd(**{**arguments, **change})


def test_non_finite_inputs_are_refused(mutag_train):
    broken = mutag_train[0].clone()
    broken.x = broken.x.float()
    broken.x[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"train_graphs\[0\] has non-finite node inputs"):
        kidd([broken] + mutag_train[1:], NodeInputs(7), 2, iterations=1, show_progress=False)


def test_lite_gntk_bad_arguments():
    side = _sparse_side(_random_graphs(2, [3], 2, torch.Generator().manual_seed(0)))
    other = _sparse_side(_random_graphs(2, [3], 5, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="readout must be"):
        lite_gntk(side, side, readout="max")
    with pytest.raises(ValueError, match="num_layers must be"):
        lite_gntk(side, side, num_layers=0)
    with pytest.raises(ValueError, match="same input width"):
        lite_gntk(side, other)
    with pytest.raises(ValueError, match=r"x must be \(N, n, d\)"):
        GraphSide.dense(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
