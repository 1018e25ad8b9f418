from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch
import torch_geometric.typing
from scipy.stats import chisquare
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import NeighborLoader, NodeLoader
from torch_geometric.nn import SAGEConv
from torch_geometric.sampler import NodeSamplerInput

from graphkd.distill.sampling import UniformNeighborSampler, neighbor_loader

WITH_PYG_SAMPLER = torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE


def random_graph(num_nodes: int = 300, max_in_degree: int = 15, seed: int = 0) -> Data:
    """Directed graph without multi-edges; in-degrees 0..max_in_degree so every fan-out case occurs."""
    generator = torch.Generator().manual_seed(seed)
    sources, targets = [], []
    for v in range(num_nodes):
        degree = int(torch.randint(0, max_in_degree + 1, (1,), generator=generator))
        sources.append(torch.randperm(num_nodes, generator=generator)[:degree])
        targets.append(torch.full((degree,), v))
    edge_index = torch.stack([torch.cat(sources), torch.cat(targets)])
    # Shuffle so that the CSC build, not the input order, is what groups edges by target.
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=generator)]
    return Data(x=torch.randn(num_nodes, 4, generator=generator), edge_index=edge_index, num_nodes=num_nodes)


@pytest.fixture(scope="module")
def graph() -> Data:
    return random_graph()


@pytest.fixture(scope="module")
def cora() -> Data:
    from graphkd.datasets import Planetoid

    return Planetoid("cora")[0]


def check_layout(data: Data, batch: Data, seeds: torch.Tensor, num_neighbors: list[int]) -> None:
    """The invariants of PyG's directional neighbour sampling, hop by hop."""
    edge_set = set(map(tuple, data.edge_index.t().tolist()))
    in_degree = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    n_id, edge_index = batch.n_id, batch.edge_index
    assert batch.batch_size == seeds.numel()
    assert torch.equal(n_id[: batch.batch_size], seeds)
    assert n_id.unique().numel() == n_id.numel()
    assert sum(batch.num_sampled_nodes) == n_id.numel()
    assert sum(batch.num_sampled_edges) == edge_index.size(1)
    assert len(batch.num_sampled_nodes) == len(num_neighbors) + 1

    global_edges = n_id[edge_index]
    assert set(map(tuple, global_edges.t().tolist())) <= edge_set
    # e_id are ids into the input edge_index (no hidden CSC permutation).
    assert torch.equal(data.edge_index[:, batch.e_id], global_edges)

    node_start = edge_start = 0
    for hop, fanout in enumerate(num_neighbors):
        node_end = node_start + batch.num_sampled_nodes[hop]
        edge_end = edge_start + batch.num_sampled_edges[hop]
        hop_edges = edge_index[:, edge_start:edge_end]
        # This hop's edges point into this hop's frontier (the nodes reached one hop earlier) ...
        assert bool(((hop_edges[1] >= node_start) & (hop_edges[1] < node_end)).all())
        # ... and only ever to nodes known by the end of the hop.
        if hop_edges.numel() > 0:
            assert int(hop_edges[0].max()) < node_end + batch.num_sampled_nodes[hop + 1]
        frontier = torch.arange(node_start, node_end)
        expected = in_degree[n_id[frontier]]
        if fanout >= 0:
            expected = expected.clamp(max=fanout)
        got = torch.bincount(hop_edges[1] - node_start, minlength=frontier.numel())
        assert torch.equal(got, expected)
        distinct = {(u, v) for u, v in hop_edges.t().tolist()}
        assert len(distinct) == hop_edges.size(1)
        node_start, edge_start = node_end, edge_end


@pytest.mark.parametrize("num_neighbors", [[3, 2], [-1, 4], [1, 1, 1]])
def test_sampled_edges_exist_and_fan_out_is_respected(graph, num_neighbors):
    input_nodes = torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(1))[:100]
    loader = NodeLoader(graph, node_sampler=UniformNeighborSampler(graph, num_neighbors, seed=0),
                        input_nodes=input_nodes, batch_size=32, shuffle=True)
    batches = list(loader)
    assert len(batches) == 4
    for batch in batches:
        check_layout(graph, batch, input_nodes[batch.input_id], num_neighbors)
        assert torch.equal(batch.x, graph.x[batch.n_id])
    seen = torch.cat([batch.n_id[: batch.batch_size] for batch in batches])
    assert torch.equal(seen.sort().values, input_nodes.sort().values)


def reference_full_fan_out(data: Data, seeds: list[int], num_hops: int):
    """pyg-lib's sequential loop (directional, not disjoint) with all neighbours kept: the exact layout."""
    edges_into = {v: [] for v in range(data.num_nodes)}
    for e, (u, v) in enumerate(data.edge_index.t().tolist()):
        edges_into[v].append((e, u))
    local, node = {}, []
    for position, v in enumerate(seeds):
        local.setdefault(v, position)
        node.append(v)
    rows, cols, edge_ids = [], [], []
    begin, end = 0, len(node)
    for _ in range(num_hops):
        for i in range(begin, end):
            for e, u in edges_into[node[i]]:
                if u not in local:
                    local[u] = len(node)
                    node.append(u)
                rows.append(local[u])
                cols.append(i)
                edge_ids.append(e)
        begin, end = end, len(node)
    return node, rows, cols, edge_ids


def test_full_fan_out_matches_the_sequential_reference_exactly(graph):
    seeds = [3, 17, 3, 250, 0]
    out = UniformNeighborSampler(graph, [-1, -1], seed=0).sample_from_nodes(NodeSamplerInput(None, torch.tensor(seeds)))
    node, rows, cols, edge_ids = reference_full_fan_out(graph, seeds, 2)
    assert out.node.tolist() == node
    assert out.row.tolist() == rows
    assert out.col.tolist() == cols
    assert out.edge.tolist() == edge_ids


def test_message_passing_flows_from_sampled_neighbours_to_samplers():
    # Node 0 has in-neighbours 1 and 2 and one out-neighbour 3: a sum over the batch's edge_index
    # at the seed must see exactly its in-neighbours.
    data = Data(x=torch.tensor([[1.0], [10.0], [100.0], [1000.0]]),
                edge_index=torch.tensor([[1, 2, 0], [0, 0, 3]]), num_nodes=4)
    batch = next(iter(neighbor_loader(data, torch.tensor([0]), [-1], batch_size=1, seed=0)))
    messages = batch.x[batch.edge_index[0]]
    aggregated = torch.zeros_like(batch.x).index_add_(0, batch.edge_index[1], messages)
    assert float(aggregated[0]) == 110.0
    assert set(batch.n_id.tolist()) == {0, 1, 2}


def test_repeated_seeds_keep_their_positions(graph):
    sampler = UniformNeighborSampler(graph, [4, 2], seed=0)
    seeds = torch.tensor([5, 7, 5, 9])
    out = sampler.sample_from_nodes(NodeSamplerInput(None, seeds))
    assert torch.equal(out.node[:4], seeds)
    assert out.node[4:].unique().numel() == out.node.numel() - 4
    assert not set(out.node[4:].tolist()) & set(seeds.tolist())
    in_degree = torch.bincount(graph.edge_index[1], minlength=graph.num_nodes)
    per_position = torch.bincount(out.col[: out.num_sampled_edges[0]], minlength=4)
    assert torch.equal(per_position, in_degree[seeds].clamp(max=4))
    # The buffer mapping global to local ids is left clean for the next batch.
    assert bool((sampler._local == -1).all())


def test_edge_attributes_follow_the_sampled_edges(graph):
    data = graph.clone()
    data.edge_attr = torch.arange(data.num_edges, dtype=torch.float).unsqueeze(-1)
    for batch in neighbor_loader(data, None, [5, 5], batch_size=128, seed=0):
        assert torch.equal(batch.edge_attr.view(-1).long(), batch.e_id)


def test_bool_mask_input_nodes(graph):
    mask = torch.zeros(graph.num_nodes, dtype=torch.bool)
    mask[::7] = True
    batches = list(neighbor_loader(graph, mask, [2], batch_size=16, seed=0))
    seeds = torch.cat([batch.n_id[: batch.batch_size] for batch in batches])
    assert torch.equal(seeds, mask.nonzero().view(-1))


@pytest.mark.parametrize(("degree", "k"), [(10, 3), (6, 5), (12, 1), (40, 7)])
def test_draws_are_uniform_without_replacement(degree, k):
    # Node 0 has in-degree `degree`; k of them, 3000 times (3000 positions of one seed, each drawn
    # on its own). Each neighbour should appear 3000 k / degree times and, where the C(degree, k)
    # subsets are few enough to expect >= 5 hits each, every subset equally often.
    edge_index = torch.stack([torch.arange(1, degree + 1), torch.zeros(degree, dtype=torch.long)])
    sampler = UniformNeighborSampler(Data(edge_index=edge_index, num_nodes=degree + 1), [k], seed=0)
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.zeros(3000, dtype=torch.long)))
    assert torch.equal(out.col, torch.arange(3000).repeat_interleave(k))
    draws = out.node[out.row].view(3000, k)
    assert bool((draws[:, 1:] > draws[:, :-1]).all())  # distinct, and kept in input edge order
    neighbour_counts = torch.bincount(draws.view(-1), minlength=degree + 1)[1:]
    assert chisquare(neighbour_counts.numpy()).pvalue > 1e-3
    if math.comb(degree, k) <= 600:
        subsets = list(itertools.combinations(range(1, degree + 1), k))
        subset_counts = Counter(map(tuple, draws.tolist()))
        assert chisquare([subset_counts[s] for s in subsets]).pvalue > 1e-3
    # Separate calls draw afresh (the generator advances).
    single = NodeSamplerInput(None, torch.tensor([0]))
    assert len({tuple(sampler.sample_from_nodes(single).node.tolist()) for _ in range(20)}) > 1


class SAGE(torch.nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = SAGEConv(in_channels, hidden_channels, aggr="mean")
        self.conv2 = SAGEConv(hidden_channels, out_channels, aggr="mean")

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


@torch.no_grad()
def test_full_fan_out_reproduces_full_graph_sage_on_cora(cora):
    torch.manual_seed(0)
    model = SAGE(cora.num_features, 32, 7).eval()
    full = model(cora.x, cora.edge_index)
    loader = neighbor_loader(cora, None, [-1, -1], batch_size=512, shuffle=True, seed=0)
    covered = torch.zeros(cora.num_nodes, dtype=torch.bool)
    for batch in loader:
        seeds = batch.n_id[: batch.batch_size]
        out = model(batch.x, batch.edge_index)[: batch.batch_size]
        torch.testing.assert_close(out, full[seeds], atol=1e-5, rtol=0)
        assert torch.equal(batch.y, cora.y[batch.n_id])
        covered[seeds] = True
    assert bool(covered.all())
    # The check has teeth: a truncated fan-out changes the outputs.
    batch = next(iter(neighbor_loader(cora, None, [2, 2], batch_size=512, seed=0)))
    out = model(batch.x, batch.edge_index)[: batch.batch_size]
    assert not torch.allclose(out, full[batch.n_id[: batch.batch_size]], atol=1e-3)


def epoch(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(batch.n_id, batch.edge_index) for batch in loader]


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for pa, pb in zip(a, b) for x, y in zip(pa, pb))


def test_seed_makes_batches_reproducible(graph):
    kwargs = {"num_neighbors": [3, 3], "batch_size": 64, "shuffle": True}
    first = neighbor_loader(graph, None, seed=0, **kwargs)
    epoch_a = epoch(first)
    assert same(epoch_a, epoch(neighbor_loader(graph, None, seed=0, **kwargs)))
    assert not same(epoch_a, epoch(neighbor_loader(graph, None, seed=1, **kwargs)))
    # Sampler and shuffle streams advance: the next epoch is a new draw.
    assert not same(epoch_a, epoch(first))
    # Same seeds in the same order, different seed: only the neighbour draw differs.
    fixed = {"num_neighbors": [3, 3], "batch_size": 64, "shuffle": False}
    assert not same(epoch(neighbor_loader(graph, None, seed=0, **fixed)),
                    epoch(neighbor_loader(graph, None, seed=1, **fixed)))


def test_seed_makes_worker_batches_reproducible(graph):
    kwargs = {"num_neighbors": [3, 3], "batch_size": 100, "shuffle": False, "num_workers": 2}
    loader = neighbor_loader(graph, None, seed=0, **kwargs)
    epoch_a, epoch_b = epoch(loader), epoch(loader)
    assert same(epoch_a, epoch(neighbor_loader(graph, None, seed=0, **kwargs)))
    # Each epoch's workers start from a copy of the sampler made in the main process; without
    # reseeding from the worker seed both epochs would replay the same draws.
    assert not same(epoch_a, epoch_b)


def test_fallback_is_used_without_pyg_lib(graph):
    if WITH_PYG_SAMPLER:
        pytest.skip("pyg-lib or torch-sparse is installed: neighbor_loader returns PyG's NeighborLoader")
    loader = neighbor_loader(graph, None, [2], batch_size=8)
    assert isinstance(loader.node_sampler, UniformNeighborSampler)
    with pytest.raises(ImportError), pytest.warns(UserWarning, match="pyg-lib"):  # why the fallback exists
        next(iter(NeighborLoader(graph, num_neighbors=[2], batch_size=8)))


def bad_graph(edge_index) -> Data:
    return Data(edge_index=edge_index, num_nodes=4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_neighbors": []}, ValueError, "num_neighbors"),
        ({"num_neighbors": [0]}, ValueError, "num_neighbors"),
        ({"num_neighbors": [5, -2]}, ValueError, "num_neighbors"),
        ({"num_neighbors": "5,5"}, TypeError, "num_neighbors"),
        ({"num_neighbors": [2.0]}, TypeError, "num_neighbors"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"input_nodes": torch.tensor([0, 4])}, ValueError, "input_nodes"),
        ({"input_nodes": torch.tensor([-1])}, ValueError, "input_nodes"),
        ({"input_nodes": torch.tensor([0, 1], dtype=torch.int32)}, TypeError, "input_nodes"),
        ({"input_nodes": torch.tensor([0.0])}, TypeError, "input_nodes"),
        ({"input_nodes": [0, 1]}, TypeError, "input_nodes"),
        ({"input_nodes": torch.ones(3, dtype=torch.bool)}, ValueError, "input_nodes"),
        ({"data": bad_graph(torch.tensor([[0.0, 1.0], [1.0, 2.0]]))}, TypeError, "edge_index"),
        ({"data": bad_graph(torch.tensor([[0, 1], [1, 2]], dtype=torch.int32))}, TypeError, "edge_index"),
        ({"data": bad_graph(torch.tensor([[0, 1], [1, 2], [2, 3]]))}, ValueError, "edge_index"),
        ({"data": bad_graph(torch.tensor([0, 1, 2]))}, ValueError, "edge_index"),
        ({"data": bad_graph(torch.tensor([[0, 1], [1, 4]]))}, ValueError, "edge_index"),
        ({"data": HeteroData()}, TypeError, "data"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, error, match):
    args = {"data": bad_graph(torch.tensor([[0, 1, 2], [1, 2, 3]])), "input_nodes": None, "num_neighbors": [2, 2],
            "batch_size": 2}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        neighbor_loader(**args)
    if "batch_size" not in kwargs and "input_nodes" not in kwargs:
        with pytest.raises(error, match=match):
            UniformNeighborSampler(args["data"], args["num_neighbors"])


def test_sampler_rejects_out_of_range_and_temporal_seeds(graph):
    sampler = UniformNeighborSampler(graph, [2])
    with pytest.raises(ValueError, match="index.node"):
        sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([graph.num_nodes])))
    with pytest.raises(NotImplementedError, match="temporal"):
        sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([0]), time=torch.tensor([0])))
    assert bool((sampler._local == -1).all())


@pytest.mark.skipif(not WITH_PYG_SAMPLER, reason="PyG's NeighborLoader needs pyg-lib or torch-sparse, not installed")
@pytest.mark.parametrize("num_neighbors", [[-1, -1], [5, 5]])
def test_layout_matches_pyg_neighbor_loader(cora, num_neighbors):
    kwargs = {"input_nodes": None, "batch_size": 512, "shuffle": False}
    ours = NodeLoader(cora, node_sampler=UniformNeighborSampler(cora, num_neighbors, seed=0), **kwargs)
    theirs = NeighborLoader(cora, num_neighbors=num_neighbors, **kwargs)
    for mine, pyg in zip(ours, theirs, strict=True):
        assert set(pyg.keys()) <= set(mine.keys())
        assert mine.batch_size == pyg.batch_size
        assert torch.equal(mine.n_id[: mine.batch_size], pyg.n_id[: pyg.batch_size])
        if pyg.num_sampled_nodes is not None:  # torch-sparse does not report per-hop counts
            check_layout(cora, pyg, pyg.n_id[: pyg.batch_size], num_neighbors)
        if num_neighbors == [-1, -1]:  # a deterministic sample: the same subgraph
            assert set(mine.n_id.tolist()) == set(pyg.n_id.tolist())
            assert set(map(tuple, mine.n_id[mine.edge_index].t().tolist())) == \
                set(map(tuple, pyg.n_id[pyg.edge_index].t().tolist()))
            if pyg.num_sampled_nodes is not None:
                assert mine.num_sampled_nodes == list(pyg.num_sampled_nodes)
