import pytest
import torch
from torch_geometric.data import Batch, Data

from graphkd.condense import CondensedDataset, condense, training_set
from graphkd.condense.mirage import _unroll
from graphkd.condense.train import (NodeInputs, PackedGraphs, evaluate, evaluation_batches, scores,
                                    stratified_split, train_graph_classifier)
from graphkd.datasets import TUDataset
from graphkd.nn import GraphClassifier


@pytest.fixture(scope="module")
def mutag():
    return list(TUDataset("MUTAG"))


def test_stratified_split():
    labels = [0] * 60 + [1] * 140
    train, val, test = stratified_split(labels, seed=3)
    assert (len(train), len(val), len(test)) == (160, 20, 20)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert sum(labels[i] for i in test) == 14  # the class ratio is kept
    assert stratified_split(labels, seed=3) == (train, val, test)
    assert stratified_split(labels, seed=4) != (train, val, test)


def test_scores():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
    result = scores(logits, torch.tensor([0, 1, 1, 1]))
    assert result["accuracy"] == 0.75 and result["roc_auc"] == 1.0
    # One class only: ROC-AUC is undefined, reported as None rather than NaN.
    assert scores(logits, torch.tensor([1, 1, 1, 1]))["roc_auc"] is None


def test_node_inputs_without_features():
    inputs = NodeInputs(None, max_degree=3)
    data = inputs(Data(edge_index=torch.tensor([[0, 1, 2, 3, 4], [1, 1, 1, 1, 1]]), num_nodes=5))
    assert data.x.shape == (5, 4) and data.x[1, 3] == 1 and data.x[0, 0] == 1  # degree 5 capped at 3
    tree = inputs(Data(edge_index=torch.empty(2, 0, dtype=torch.long), node_label=torch.tensor([2]), num_nodes=1))
    assert tree.x.tolist() == [[0.0, 0.0, 1.0, 0.0]]


def test_node_inputs_categorical_columns_and_learned_features():
    graphs = [Data(x=torch.tensor([[0, 2], [1, 0]]), edge_index=torch.empty(2, 0, dtype=torch.long)),
              Data(x=torch.tensor([[2, 1]]), edge_index=torch.empty(2, 0, dtype=torch.long))]
    inputs = NodeInputs.for_graphs(graphs)
    assert inputs.categorical_dims == [3, 3] and inputs.size == 6
    assert inputs(graphs[0]).x.tolist() == [[1, 0, 0, 0, 0, 1], [0, 1, 0, 1, 0, 0]]
    # Trees of a condensed set hold the categories as floats: same encoding.
    assert torch.equal(inputs(Data(x=graphs[1].x.float())).x, inputs(graphs[1]).x)
    learned = Data(x=torch.rand(3, 6))
    assert inputs(learned).x is learned.x  # synthetic graphs already live in the input space
    with pytest.raises(ValueError, match="x holds category values outside"):
        inputs(Data(x=torch.tensor([[3, 0]])))
    with pytest.raises(ValueError, match="x must have 2 categorical columns"):
        inputs(Data(x=torch.tensor([[0, 0, 0]])))
    assert NodeInputs.for_graphs([Data(x=torch.rand(2, 5))]).size == 5
    assert NodeInputs.for_graphs([Data(num_nodes=2)], max_degree=7).size == 8


def test_tree_graph_reproduces_gin_on_the_original_graph(mutag):
    """Summing a GIN's root embeddings over a graph's unrolled computation trees gives exactly
    its output on the graph itself: the property Mirage's training rests on."""
    graph = mutag[5]
    num_hops = 2
    order = torch.sort(graph.edge_index[1], stable=True)[1]
    ptr = torch.ops.graphkd.index_to_ptr(graph.edge_index[1][order], graph.num_nodes).tolist()
    categories = graph.x.argmax(dim=1).tolist()
    trees = [
        _unroll(node, num_hops, ptr, graph.edge_index[0][order].tolist(), order.tolist(), categories,
                [0] * graph.num_edges)
        for node in range(graph.num_nodes)
    ]
    condensed = CondensedDataset(num_hops, 2, trees, [[], []], [0, 0], node_features=torch.eye(7).tolist())
    forest = condensed.tree_graph(range(graph.num_nodes))
    model = GraphClassifier("gin", 7, 16, num_hops, 2).eval()
    with torch.no_grad():
        on_graph = model(graph.x, graph.edge_index, torch.zeros(graph.num_nodes, dtype=torch.long))
        on_trees = model(forest.x, forest.edge_index, torch.zeros(forest.num_nodes, dtype=torch.long),
                         forest.root_mask)
    torch.testing.assert_close(on_trees, on_graph, rtol=1e-4, atol=1e-4)


def test_mirage_training_set_carries_the_class_signal(mutag):
    labels = [int(g.y) for g in mutag]
    train_index, val_index, _ = stratified_split(labels, seed=0)
    train = [mutag[i] for i in train_index]
    condensed = condense(train, num_hops=2, min_support=0.3)
    graphs, weights = training_set(condensed)
    assert len(graphs) == sum(condensed.num_patterns())
    assert abs(sum(weights) - 1.0) < 1e-9 and all(g.root_mask.any() for g in graphs)
    inputs = NodeInputs(7)
    result = train_graph_classifier(graphs, [mutag[i] for i in val_index], train, inputs, 2, gnn="gin",
                                    num_layers=2, epochs=20, sample_weights=weights, steps_per_epoch=5)
    # Scored on the 150 original training graphs (never seen as such by the model): a method whose
    # tree sets lost the class information would sit near 0.5.
    assert result["test"]["roc_auc"] > 0.75, result


def test_bad_sample_weights(mutag):
    inputs = NodeInputs(7)
    with pytest.raises(ValueError, match="sample_weights must be non-negative"):
        train_graph_classifier(mutag[:4], mutag[4:6], mutag[6:8], inputs, 2, epochs=1, sample_weights=[1.0])
    with pytest.raises(ValueError, match="val_graphs is empty"):
        train_graph_classifier(mutag[:4], [], mutag[6:8], inputs, 2, epochs=1)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        train_graph_classifier(mutag[:4], mutag[4:6], mutag[6:8], inputs, 2, epochs=0)
    with pytest.raises(ValueError, match="select_on must be"):
        train_graph_classifier(mutag[:4], mutag[4:6], mutag[6:8], inputs, 2, epochs=1, select_on="f1")
    with pytest.raises(ValueError, match="gnn must be one of"):
        GraphClassifier("sage", 7, 8, 2, 2)


def test_evaluate_on_full_training(mutag):
    inputs = NodeInputs(7)
    result = train_graph_classifier(mutag[:40] + mutag[-40:], mutag[40:60], mutag[60:80], inputs, 2, gnn="gcn",
                                    epochs=3)
    assert set(result) == {"val", "test", "best_epoch", "train_seconds"}
    assert 0 <= result["best_epoch"] < 3 and 0.0 <= result["test"]["accuracy"] <= 1.0
    model = GraphClassifier("gat", 7, 8, 2, 2)
    assert set(evaluate(model, mutag[:10], inputs, torch.device("cpu"))) == {"accuracy", "roc_auc"}


def test_evaluation_batches_score_as_the_graphs_one_by_one(mutag):
    # The batches made once per training run score exactly as each graph run through the model alone.
    inputs = NodeInputs(7)
    torch.manual_seed(0)
    model = GraphClassifier("gin", 7, 8, 2, 2).eval()
    graphs = mutag[:50]
    with torch.no_grad():
        logits = torch.cat([model(g.x.float(), g.edge_index, torch.zeros(g.num_nodes, dtype=torch.long))
                            for g in graphs])
    expected = scores(logits, torch.tensor([int(g.y) for g in graphs]))
    batches = evaluation_batches(graphs, inputs, torch.device("cpu"), batch_size=16)
    assert len(batches) == 4 and sum(b.num_graphs for b in batches) == 50
    for result in (evaluate(model, batches, None, torch.device("cpu")),
                   evaluate(model, graphs, inputs, torch.device("cpu"))):
        assert result["accuracy"] == pytest.approx(expected["accuracy"])
        assert result["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)


def test_evaluate_reads_out_the_masked_nodes(mutag):
    # Graphs carrying a root_mask are scored by the sum over those nodes only.
    inputs = NodeInputs(7)
    torch.manual_seed(0)
    model = GraphClassifier("gin", 7, 8, 2, 2).eval()
    graphs = []
    for index, g in enumerate(mutag[:30]):
        g = g.clone()
        g.root_mask = torch.arange(g.num_nodes) % (2 + index % 3) == 0
        graphs.append(g)
    with torch.no_grad():
        logits = torch.cat([model(g.x.float(), g.edge_index, torch.zeros(g.num_nodes, dtype=torch.long), g.root_mask)
                            for g in graphs])
        whole = torch.cat([model(g.x.float(), g.edge_index, torch.zeros(g.num_nodes, dtype=torch.long))
                           for g in graphs])
    expected = scores(logits, torch.tensor([int(g.y) for g in graphs]))
    assert not torch.allclose(logits, whole)
    result = evaluate(model, graphs, inputs, torch.device("cpu"))
    assert result["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-12)
    assert result["accuracy"] == pytest.approx(expected["accuracy"])


@pytest.mark.parametrize("with_roots", [False, True])
def test_packed_graphs_cut_the_batches_pyg_collates(with_roots):
    generator = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(12):
        n = int(torch.randint(1, 9, (1,), generator=generator))
        m = 0 if i == 3 else int(torch.randint(0, 20, (1,), generator=generator))  # graph 3 has no edges
        data = Data(x=torch.randn(n, 5, generator=generator),
                    edge_index=torch.randint(0, n, (2, m), generator=generator), y=torch.tensor([i % 3]))
        if with_roots:
            data.root_mask = torch.rand(n, generator=generator) < 0.5
        graphs.append(data)
    packed = PackedGraphs(graphs)
    assert len(packed) == 12
    for index in (torch.tensor([0]), torch.tensor([3, 3, 11, 0, 7]), torch.randperm(12, generator=generator)):
        got = packed.batch(index)
        expected = Batch.from_data_list([graphs[i] for i in index.tolist()])
        for key in ("x", "edge_index", "y", "batch") + (("root_mask",) if with_roots else ()):
            assert torch.equal(getattr(got, key), getattr(expected, key)), key
        assert with_roots or getattr(got, "root_mask", None) is None
    with pytest.raises(ValueError, match="graphs is empty"):
        PackedGraphs([])
    with pytest.raises(ValueError, match="one label y"):
        PackedGraphs([Data(x=torch.randn(2, 5), edge_index=torch.zeros(2, 0, dtype=torch.long),
                           y=torch.tensor([0, 1]))])


def test_graphs_without_nodes_keep_their_rows(mutag):
    # A graph without nodes last in a batch leaves no trace in the batch vector; it still gets its own
    # (zero) embedding, so logits and labels stay aligned in training and in evaluation.
    inputs = NodeInputs(7)
    empty = Data(x=torch.zeros(0, 7), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_attr=torch.zeros(0, mutag[0].edge_attr.size(1)), y=torch.tensor([1]))
    graphs = [mutag[0], mutag[1], empty]
    torch.manual_seed(0)
    model = GraphClassifier("gcn", 7, 8, 2, 2).eval()
    packed = PackedGraphs([inputs(g) for g in graphs])
    batch = packed.batch(torch.tensor([0, 2]))
    assert int(batch.batch.max()) == 0
    with torch.no_grad():
        logits = model(batch.x, batch.edge_index, batch.batch, num_graphs=2)
        assert logits.shape == (2, 2)
        assert torch.equal(logits[1], model.head(torch.zeros(1, 8))[0])
    expected = scores(torch.cat([model(g.x.float(), g.edge_index, torch.zeros(g.num_nodes, dtype=torch.long),
                                       num_graphs=1) for g in graphs]).detach(), torch.tensor([1, 0, 1]))
    result = evaluate(model, graphs, inputs, torch.device("cpu"))
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    # Training draws the empty graph last in some batch (weight on it alone makes every batch end with it).
    result = train_graph_classifier(graphs, graphs, graphs, inputs, 2, gnn="gcn", epochs=1, batch_size=3,
                                    sample_weights=[0.0, 0.0, 1.0], steps_per_epoch=2)
    assert set(result["val"]) == {"accuracy", "roc_auc"}
