import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from geokd.seed import seed_everything
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.glnn import PlainMLP
from graphkd.distill.student import DistillContext, soft_label_loss, train_student
from graphkd.distill.teacher import TeacherOutput, train_teacher
from graphkd.distill.vqgraph import (
    VectorQuantizer,
    VQGraph,
    VQTokenizer,
    code_assignment_loss,
    squared_distances,
    structure_loss,
    train_tokenizer,
)
from graphkd.nn import MLP, build_teacher
from tests.graphkd.distill.graphs import held_out_variant, tiny_graph


def tiny_context(data: Data, setting: str = "tran", seed: int = 0) -> DistillContext:
    split = make_split(data, setting, seed, train_per_class=3, val_per_class=3, held_out_rate=0.3)
    generator = torch.Generator().manual_seed(100 + seed)
    teacher = TeacherOutput(torch.randn(data.num_nodes, data.num_classes, generator=generator),
                            torch.rand(data.num_nodes, 5, generator=generator), {})
    return DistillContext(data, split, teacher, data.num_classes, torch.device("cpu"), seed)


def small_vqgraph(**kwargs) -> VQGraph:
    settings = {"num_codes": 16, "hidden_channels": 8, "student_hidden_channels": 8, "tokenizer_epochs": 15,
                    "tokenizer_patience": 15}
    settings.update(kwargs)
    return VQGraph(**settings)


# ---------------------------------------------------------------- quantiser


def test_squared_distances_match_cdist():
    torch.manual_seed(0)
    x, codes = torch.randn(50, 7), torch.randn(13, 7)
    assert torch.allclose(squared_distances(x, codes), torch.cdist(x, codes) ** 2, atol=1e-4)
    assert (squared_distances(codes, codes).diagonal() >= 0).all()


def test_quantizer_picks_the_nearest_code_with_a_straight_through_gradient():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(10, 4)
    quantizer.initialized.fill_(True)  # keep the random codebook
    embedding = torch.randn(30, 4, requires_grad=True)
    out = quantizer(embedding)
    brute = torch.stack([((quantizer.codebook - row) ** 2).sum(-1).argmin() for row in embedding.detach()])
    assert torch.equal(out.indices, brute)
    assert torch.allclose(out.quantized, quantizer.codebook[brute])
    # straight through: d(sum q)/dh = 1, and the commitment loss pulls h towards its code
    grad, = torch.autograd.grad(out.quantized.sum(), embedding)
    assert torch.equal(grad, torch.ones_like(grad))
    assert torch.allclose(out.commitment_loss, F.mse_loss(embedding, quantizer.codebook[brute]))
    # the codebook loss trains the chosen codes only
    out.codebook_loss.backward()
    unused = torch.ones(10, dtype=torch.bool)
    unused[brute] = False
    assert quantizer.codebook.grad[unused].abs().sum() == 0 and quantizer.codebook.grad[~unused].abs().sum() > 0
    with pytest.raises(ValueError, match=r"embedding must have shape \[N, 4\]"):
        quantizer(torch.randn(3, 5))
    with pytest.raises(ValueError, match="ema_decay"):
        VectorQuantizer(4, 4, ema_decay=1.5)


def test_quantizer_initialises_from_data_and_ema_moves_codes_to_their_means():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(2, 2, ema_decay=0.5)
    cluster_a, cluster_b = torch.randn(20, 2) * 0.1 + 5, torch.randn(20, 2) * 0.1 - 5
    data = torch.cat([cluster_a, cluster_b])
    quantizer.train()
    quantizer(data)
    assert bool(quantizer.initialized)
    # every code is one of the data rows after the first call's initialisation (then one EMA step)
    for _ in range(30):
        out = quantizer(data)
    assert out.codebook_loss == 0
    means = torch.stack([cluster_a.mean(0), cluster_b.mean(0)])
    assert torch.unique(out.indices).numel() in (1, 2)
    if torch.unique(out.indices).numel() == 2:  # one code per cluster: each code sits on its cluster's mean
        order = out.indices[[0, 20]]
        assert torch.allclose(quantizer.codebook[order], means, atol=0.05)


def test_idle_codes_restart_on_data():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(8, 2, restart_after=1)
    quantizer.train()
    data = torch.randn(40, 2)
    quantizer(data)
    quantizer.codebook.data[3] = 1000.0  # far away: never chosen
    quantizer(data)
    assert quantizer.codebook[3].abs().max() < 100


# ---------------------------------------------------------------- losses


def test_code_assignment_loss_is_tempered_kl_of_distance_softmaxes():
    torch.manual_seed(0)
    student, teacher, codes = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4), torch.randn(9, 4)
    codes.requires_grad_(True)
    tau = 4.0
    p = (-(torch.cdist(teacher, codes) ** 2) / tau).softmax(-1)
    q = (-(torch.cdist(student, codes) ** 2) / tau).softmax(-1)
    expected = tau**2 * (p * (p.log() - q.log())).sum(-1).mean()
    loss = code_assignment_loss(student, teacher, codes, tau)
    assert torch.allclose(loss, expected, atol=1e-4)
    loss.backward()
    assert student.grad.abs().sum() > 0 and codes.grad is None  # the codebook is frozen
    assert float(code_assignment_loss(teacher, teacher, codes.detach(), tau)) == pytest.approx(0.0, abs=1e-5)


def test_structure_loss_scores_edges_against_sampled_non_edges():
    torch.manual_seed(0)
    # two 5-cliques: embeddings that separate them fit the graph, random ones do not
    clique = torch.combinations(torch.arange(5)).T
    edge_index = to_undirected(torch.cat([clique, clique + 5], dim=1))
    good = torch.cat([torch.tensor([[3.0, -3.0]]).repeat(5, 1), torch.tensor([[-3.0, 3.0]]).repeat(5, 1)])
    bad = torch.randn(10, 2)
    assert float(structure_loss(good, edge_index, 10)) < float(structure_loss(bad, edge_index, 10))
    # all edges positive and no negatives at all: plain BCE of the positives
    embedding = torch.randn(10, 3, requires_grad=True)
    torch.manual_seed(1)
    loss = structure_loss(embedding, edge_index, 10, max_edges=7)
    assert loss.requires_grad and torch.isfinite(loss)
    assert float(structure_loss(embedding, torch.empty(2, 0, dtype=torch.long), 10).detach()) == 0.0


def test_tokenizer_loss_has_every_term_and_trains():
    torch.manual_seed(0)
    data = tiny_graph(signal=2.0)
    train_index, val_index = torch.arange(0, 15), torch.arange(15, 30)
    tokenizer = VQTokenizer(data.num_features, 3, hidden_channels=8, num_codes=16)
    loss, terms = tokenizer.loss(data.x, data.edge_index, data.y, train_index)
    assert set(terms) == {"label", "codebook", "commitment", "feature", "edge"}
    expected = (terms["label"] + terms["codebook"] + 0.25 * terms["commitment"] + terms["feature"]
                + terms["edge"])
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    no_recon = VQTokenizer(data.num_features, 3, hidden_channels=8, num_codes=16, feature_weight=0, edge_weight=0)
    assert set(no_recon.loss(data.x, data.edge_index, data.y, train_index)[1]) == {"label", "codebook", "commitment"}
    log = train_tokenizer(tokenizer, data.x, data.edge_index, data.y, train_index, val_index, epochs=40,
                          patience=40)
    assert log["epochs"] == 40 and 0 <= log["best_epoch"] < 40
    tokenizer.train()
    assert tokenizer.loss(data.x, data.edge_index, data.y, train_index)[0] < loss  # kept its best epoch, trained
    with pytest.raises(ValueError, match="beta must be >= 0"):
        VQTokenizer(4, 2, beta=-1)


# ---------------------------------------------------------------- the method


def test_vqgraph_loss_is_the_weighted_sum_and_token_weight_matters():
    torch.manual_seed(0)
    data = tiny_graph(signal=2.0)
    ctx = tiny_context(data)
    method = small_vqgraph(token_weight=0.7, label_weight=0.2)
    method.prepare(ctx)
    assert method.code_targets.shape == (data.num_nodes, 8) and method.codebook.shape == (16, 8)
    assert 0 < method.tokenizer_scores["codes_used"] <= 16
    student = MLP(data.num_features, 8, 3, num_layers=2)
    nodes = torch.arange(0, data.num_nodes, 2)
    student.eval()
    logits, hidden = student.forward_with_hidden(data.x[nodes])
    expected = (0.8 * soft_label_loss(logits, method.soft_targets[nodes])
                + 0.2 * F.cross_entropy(logits[torch.isin(nodes, ctx.split.train)],
                                        data.y[nodes[torch.isin(nodes, ctx.split.train)]])
                + 0.7 * code_assignment_loss(method.projection(hidden), method.code_targets[nodes], method.codebook,
                                             4.0))
    assert torch.allclose(method.loss(student, data.x, nodes, ctx), expected, atol=1e-5)
    method.token_weight = 0.0
    assert not torch.allclose(method.loss(student, data.x, nodes, ctx), expected, atol=1e-3)
    # the projection head belongs to the method: the student loop optimises it
    assert any(parameter is method.projection.weight for parameter in method.parameters())
    wrong = MLP(data.num_features, 5, 3, num_layers=2)
    method.token_weight = 1.0
    with pytest.raises(ValueError, match="student_hidden_channels"):
        method.loss(wrong, data.x, nodes, ctx)
    with pytest.raises(RuntimeError, match="prepare"):
        small_vqgraph().loss(student, data.x, nodes, ctx)


def test_vqgraph_rejects_bad_settings():
    with pytest.raises(ValueError, match="token_weight"):
        VQGraph(token_weight=-1)
    with pytest.raises(ValueError, match="temperatures"):
        VQGraph(token_temperature=0)
    with pytest.raises(ValueError, match="label_weight"):
        VQGraph(label_weight=2)


def test_vqgraph_soft_labels_can_come_from_the_teacher():
    torch.manual_seed(0)
    data = tiny_graph(signal=2.0)
    ctx = tiny_context(data)
    method = small_vqgraph(use_teacher_logits=True)
    method.prepare(ctx)
    assert torch.equal(method.soft_targets, ctx.teacher.logits)


def test_held_out_nodes_never_influence_vqgraph_training():
    torch.set_num_threads(1)
    data = tiny_graph(signal=2.0)
    split = make_split(data, "ind", 0, train_per_class=3, val_per_class=3, held_out_rate=0.3)
    held_out = split.test_ind
    assert held_out.numel() > 0
    changed, changed_split = held_out_variant(data, split)

    def run(graph, node_split):
        seed_everything(3)  # PyG's negative sampling draws from Python's `random`
        ctx = DistillContext(graph, node_split, TeacherOutput(torch.zeros(graph.num_nodes, 3),
                                                              torch.zeros(graph.num_nodes, 5), {}),
                             graph.num_classes, torch.device("cpu"), 0)
        return train_student(small_vqgraph(), ctx, hidden_channels=8, dropout=0.2, batch_size=16, epochs=6,
                             patience=10)

    base, other = run(data, split), run(changed, changed_split)
    for key, value in base.student.state_dict().items():
        assert torch.equal(value, other.student.state_dict()[key]), key
    assert base.scores["val"] == other.scores["val"] and base.scores["test"] == other.scores["test"]
    assert torch.equal(base.method.code_targets[held_out], torch.zeros(held_out.numel(), 8))


# ---------------------------------------------------------------- Cora end to end


def test_vqgraph_beats_plain_mlp_on_cora_and_its_token_loss_matters():
    torch.set_num_threads(1)
    data = load_node_dataset("cora")
    split = make_split(data, "tran", 0)
    torch.manual_seed(0)
    teacher = build_teacher("sage", data.num_features, data.num_classes)
    output = train_teacher(teacher, data, split, epochs=40, patience=20)
    ctx = DistillContext(data, split, output, data.num_classes, torch.device("cpu"), 0, teacher)
    torch.manual_seed(0)
    plain = train_student(PlainMLP(), ctx, epochs=60, patience=30)
    settings = {"tokenizer_epochs": 60, "tokenizer_patience": 30}
    seed_everything(0)
    with_tokens = train_student(VQGraph(**settings), ctx, epochs=30, patience=30)
    seed_everything(0)
    without = train_student(VQGraph(token_weight=0.0, **settings), ctx, epochs=30, patience=30)
    assert with_tokens.method.tokenizer_scores["test"] > 0.7
    assert with_tokens.scores["test"] > plain.scores["test"] + 0.10, (with_tokens.scores, plain.scores)
    # same seed, same tokenizer training: only the token loss differs, and it changes the student
    assert with_tokens.scores["test"] != without.scores["test"]
