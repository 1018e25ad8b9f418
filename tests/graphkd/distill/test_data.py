import networkx as nx
import numpy as np
import pytest
import torch

from graphkd.distill.data import (
    cpf_raw_path,
    cpf_split,
    inductive_split,
    load_node_dataset,
    make_split,
    read_cpf_npz,
    standardize,
)


@pytest.fixture(scope="module")
def cora():
    return load_node_dataset("cora")  # embedded in the package


def test_cora_largest_component_matches_networkx(cora):
    raw = read_cpf_npz(cpf_raw_path("cora"))
    graph = nx.Graph()
    graph.add_nodes_from(range(raw.num_nodes))
    graph.add_edges_from((u, v) for u, v in raw.edge_index.t().tolist() if u != v)
    largest = sorted(max(nx.connected_components(graph), key=len))
    assert cora.num_nodes == len(largest) == 2485  # the CPF / GLNN figure
    assert torch.equal(cora.x, raw.x[largest])
    assert torch.equal(cora.y, raw.y[largest])
    expected = nx.relabel_nodes(graph.subgraph(largest), {v: i for i, v in enumerate(largest)})
    edges = set(map(tuple, cora.edge_index.t().tolist()))
    assert edges == {(u, v) for u, v in expected.edges()} | {(v, u) for u, v in expected.edges()}
    assert cora.num_classes == 7 and cora.num_features == 1433


def test_standardize_removes_self_loops_and_symmetrises():
    from torch_geometric.data import Data

    data = Data(x=torch.eye(4), edge_index=torch.tensor([[0, 1, 1, 3], [1, 2, 1, 3]]), y=torch.arange(4))
    out = standardize(data)
    assert out.num_nodes == 3  # node 3 only had a self-loop
    assert sorted(map(tuple, out.edge_index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]


@pytest.mark.parametrize("seed", [0, 7])
def test_cpf_split_counts_and_determinism(cora, seed):
    train, val, test = cpf_split(cora.y, seed)
    for c in range(cora.num_classes):
        assert int((cora.y[train] == c).sum()) == 20
        assert int((cora.y[val] == c).sum()) == 30
    together = torch.cat([train, val, test])
    assert together.numel() == cora.num_nodes and torch.unique(together).numel() == cora.num_nodes
    again = cpf_split(cora.y, seed)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    other = cpf_split(cora.y, seed + 1)
    assert not torch.equal(train, other[0])


def test_cpf_split_uses_numpy_random_state_draws():
    # Class by class, RandomState(seed).choice over the members in node order.
    labels = torch.tensor([0, 1] * 60)
    train, val, _ = cpf_split(labels, 3, 5, 4)
    state = np.random.RandomState(3)
    members = [np.flatnonzero(labels.numpy() == c) for c in (0, 1)]
    expected_train = np.concatenate([state.choice(m, 5, replace=False) for m in members])
    expected_val = np.concatenate([state.choice([v for v in m if v not in set(expected_train)], 4, replace=False)
                                   for m in members])
    assert train.tolist() == expected_train.tolist() and val.tolist() == expected_val.tolist()


def test_inductive_split_and_setting(cora):
    split = make_split(cora, "ind", 0)
    _, _, test = cpf_split(cora.y, 0)
    assert split.test_ind.numel() == int(test.numel() * 0.2)
    assert torch.equal(torch.cat([split.test, split.test_ind]).sort().values, test.sort().values)
    held_out = set(split.test_ind.tolist())
    assert not held_out & set(split.observed.tolist())
    assert not held_out & set(split.edge_index.flatten().tolist())  # their edges are gone too
    assert split.full_edge_index.shape[1] == cora.edge_index.shape[1]
    observed_test, held = inductive_split(test, 0)
    assert torch.equal(held, split.test_ind) and torch.equal(observed_test, split.test)
    tran = make_split(cora, "tran", 0)
    assert tran.test_ind.numel() == 0 and tran.observed.numel() == cora.num_nodes


def test_bad_input(cora):
    with pytest.raises(ValueError, match="setting must be one of"):
        make_split(cora, "semi", 0)
    with pytest.raises(ValueError, match="class 1 has 3 nodes"):
        cpf_split(torch.tensor([0] * 60 + [1] * 3), 0)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        cpf_split(torch.tensor([0, -1]), 0)
    with pytest.raises(ValueError, match="rate must be in"):
        inductive_split(torch.arange(10), 0, 1.5)
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_node_dataset("reddit")
