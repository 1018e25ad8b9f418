import itertools
import os

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.ffg2m import (
    FFG2M,
    ffg2m_config,
    ffg2m_student_config,
    high_frequency_loss,
    low_frequency_loss,
)
from graphkd.distill.glnn import PlainMLP
from graphkd.distill.nosmog import (
    NOSMOG,
    _uniform_random_walk,
    deepwalk_embeddings,
    nosmog_config,
    pgd_perturbation,
    position_features,
    similarity_distillation_loss,
)
from graphkd.distill.student import DistillContext, train_student
from graphkd.distill.teacher import TeacherOutput, train_teacher
from graphkd.nn import MLP, build_teacher
from tests.graphkd.distill.graphs import held_out_variant, tiny_graph


def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (p * (p.log() - q.log())).sum()


# ---------------------------------------------------------------- tiny graphs


def tiny_context(data: Data, setting: str, seed: int = 0, teacher_hidden: int = 5) -> DistillContext:
    split = make_split(data, setting, seed, train_per_class=3, val_per_class=3, held_out_rate=0.3)
    generator = torch.Generator().manual_seed(100 + seed)
    teacher = TeacherOutput(torch.randn(data.num_nodes, data.num_classes, generator=generator) * 2,
                            torch.rand(data.num_nodes, teacher_hidden, generator=generator), {})
    return DistillContext(data, split, teacher, data.num_classes, torch.device("cpu"), seed)


# ---------------------------------------------------------------- FF-G2M


def test_low_frequency_loss_matches_a_loop_over_edges():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    edge_index = torch.tensor([[0, 1, 2, 1, 0, 3], [1, 0, 1, 2, 0, 3]])  # (neighbour, centre), self-loops 0, 3
    expected = sum(kl(teacher[j].softmax(-1), student[i].softmax(-1)) for j, i in edge_index.T) / edge_index.shape[1]
    assert torch.allclose(low_frequency_loss(student, teacher, edge_index), expected, atol=1e-6)
    # with self-loops only it is GLNN's soft-label KL, zero when the student copies the teacher
    loops = torch.arange(4).repeat(2, 1)
    assert float(low_frequency_loss(teacher, teacher, loops)) == pytest.approx(0.0, abs=1e-7)
    # across an edge it is not: the centre is pulled towards its neighbour's teacher prediction
    assert float(low_frequency_loss(teacher, teacher, edge_index)) > 1e-3
    assert float(low_frequency_loss(student, teacher, torch.empty(2, 0, dtype=torch.long))) == 0.0


def test_high_frequency_loss_matches_a_loop_over_edges():
    torch.manual_seed(1)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    edge_index = torch.tensor([[0, 1, 2, 1, 3], [1, 0, 1, 2, 0]])
    tau = 1.3
    expected = 0.0
    for j, i in edge_index.T:
        p = ((teacher[i] - teacher[j]).abs() / tau).softmax(-1)
        q = ((student[i] - student[j]).abs() / tau).softmax(-1)
        expected = expected + kl(p, q)
    expected = expected / edge_index.shape[1]
    assert torch.allclose(high_frequency_loss(student, teacher, edge_index, tau), expected, atol=1e-6)
    assert float(high_frequency_loss(teacher, teacher, edge_index, tau)) == pytest.approx(0.0, abs=1e-7)
    # it sees differences only: shifting every logit by one vector changes nothing
    shift = torch.randn(1, 3)
    assert torch.allclose(high_frequency_loss(student + shift, teacher, edge_index, tau), expected, atol=1e-6)


def test_ffg2m_loss_is_the_weighted_sum_and_trains_the_student():
    data = tiny_graph()
    ctx = tiny_context(data, "tran")
    torch.manual_seed(0)
    student = MLP(data.num_features, 8, data.num_classes, dropout=0.0)
    method = FFG2M(lam=0.3, tau=1.5)
    method.prepare(ctx)
    nodes = ctx.split.observed
    loss = method.loss(student, data.x, nodes, ctx)

    logits, teacher = student(data.x), ctx.teacher.logits
    edges = data.edge_index
    low = [kl(teacher[j].softmax(-1), logits[i].softmax(-1)) for j, i in edges.T]
    low += [kl(teacher[i].softmax(-1), logits[i].softmax(-1)) for i in range(data.num_nodes)]
    high = [kl(((teacher[i] - teacher[j]).abs() / 1.5).softmax(-1), ((logits[i] - logits[j]).abs() / 1.5).softmax(-1))
            for j, i in edges.T]
    ce = F.cross_entropy(logits[ctx.split.train], data.y[ctx.split.train])
    expected = 0.3 * ce + 0.7 * (sum(low) / len(low) + sum(high) / len(high))
    assert torch.allclose(loss, expected, atol=1e-5)

    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_ffg2m_batch_keeps_the_edges_centred_in_it():
    data = tiny_graph()
    ctx = tiny_context(data, "tran")
    torch.manual_seed(0)
    student = MLP(data.num_features, 8, data.num_classes, dropout=0.0)
    method = FFG2M(lam=0.0, tau=1.0)
    method.prepare(ctx)
    nodes = torch.tensor([0, 4, 7, 9])
    logits, teacher = student(data.x), ctx.teacher.logits
    edges = data.edge_index[:, torch.isin(data.edge_index[1], nodes)]
    low = [kl(teacher[j].softmax(-1), logits[i].softmax(-1)) for j, i in edges.T]
    low += [kl(teacher[i].softmax(-1), logits[i].softmax(-1)) for i in nodes]
    high = [kl((teacher[i] - teacher[j]).abs().softmax(-1), (logits[i] - logits[j]).abs().softmax(-1))
            for j, i in edges.T]
    expected = sum(low) / len(low) + sum(high) / len(high)
    assert torch.allclose(method.loss(student, data.x, nodes, ctx), expected, atol=1e-5)


def test_ffg2m_official_configuration():
    assert ffg2m_config("cora", "sage") == {"lam": 0.5, "tau": 1.3}
    assert ffg2m_config("citeseer", "sage") == {"lam": 0.1, "tau": 1.2}
    assert ffg2m_config("unknown", "appnp") == ffg2m_config("cora", "sage")
    assert ffg2m_student_config("cora", "sage") == {"hidden_channels": 512, "num_layers": 3, "dropout": 0.4,
                                                    "lr": 0.01, "weight_decay": 5e-4, "epochs": 500, "patience": 50}
    data = tiny_graph()
    data.name = "citeseer"
    method = FFG2M()
    method.prepare(tiny_context(data, "tran"))
    assert (method.lam_, method.tau_) == (0.1, 1.2)
    method = FFG2M(lam=0.2)
    method.prepare(tiny_context(data, "tran"))
    assert (method.lam_, method.tau_) == (0.2, 1.2)
    with pytest.raises(ValueError, match="lam must be in"):
        FFG2M(lam=2.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        FFG2M(tau=0.0)


# ---------------------------------------------------------------- NOSMOG


def test_similarity_distillation_loss_matches_explicit_formula():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 4), torch.randn(5, 7)  # widths may differ
    expected = 0.0
    for a in range(5):
        for b in range(5):
            expected += (teacher[a] @ teacher[b] - student[a] @ student[b]) ** 2
    assert torch.allclose(similarity_distillation_loss(student, teacher), expected / 25, rtol=1e-5)
    assert float(similarity_distillation_loss(teacher, teacher)) == 0.0
    # a rotation of the representation keeps every similarity
    rotation, _ = torch.linalg.qr(torch.randn(7, 7))
    assert float(similarity_distillation_loss(teacher @ rotation, teacher)) == pytest.approx(0.0, abs=1e-8)


def test_pgd_perturbation_stays_in_the_ball_and_raises_the_loss():
    torch.manual_seed(0)
    student = MLP(6, 16, 3, dropout=0.0)
    x, target = torch.randn(20, 6), torch.randn(20, 3)

    def objective(inputs):
        return F.kl_div(F.log_softmax(student(inputs), -1), F.log_softmax(target, -1), reduction="batchmean",
                        log_target=True)

    delta = pgd_perturbation(objective, x, eps=0.3, steps=5)
    assert delta.shape == x.shape and not delta.requires_grad
    assert float(delta.abs().max()) <= 0.3 + 1e-6
    with torch.no_grad():
        assert float(objective(x + delta)) > float(objective(x))
    # only delta was differentiated: the student's gradients are untouched
    assert all(p.grad is None for p in student.parameters())


def test_nosmog_loss_matches_explicit_formula_and_trains_everything():
    data = tiny_graph()
    ctx = tiny_context(data, "tran")
    torch.manual_seed(0)
    method = NOSMOG(adv_eps=0.05, rsd_weight=0.2, use_position=False)
    method.prepare(ctx)
    student = MLP(data.num_features, 8, data.num_classes, dropout=0.0)
    nodes = torch.tensor([1, 3, 5, 8, 13, 21])
    method.eval()  # no dropout anywhere: the only randomness is PGD's start
    torch.manual_seed(5)
    loss = method.loss(student, data.x, nodes, ctx)

    x, teacher = data.x[nodes], ctx.teacher.logits[nodes]

    def soft(logits):
        p = teacher.softmax(-1)
        return (p * (p.log() - logits.log_softmax(-1))).sum(-1).mean()

    torch.manual_seed(5)
    delta = pgd_perturbation(lambda inputs: soft(student(inputs)), x, 0.05, 5)
    preactivation = student.hidden_layers[0][0](x)
    projected = torch.relu(method.projection(preactivation))
    teacher_hidden = ctx.teacher.hidden[nodes]
    rsd = ((teacher_hidden @ teacher_hidden.T - projected @ projected.T) ** 2).mean()
    expected = soft(student(x)) + 0.1 * soft(student(x + delta)) + 0.2 * rsd
    assert torch.allclose(loss, expected, atol=1e-5)
    assert method.projection.weight.shape == (ctx.teacher.hidden.shape[1], 8)

    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.projection.parameters())


def test_nosmog_skips_rsd_on_short_batches():
    data = tiny_graph()
    ctx = tiny_context(data, "tran")
    torch.manual_seed(0)
    student = MLP(data.num_features, 8, data.num_classes, dropout=0.0)
    method = NOSMOG(adv_weight=0.0, rsd_weight=0.5, use_position=False)
    method.prepare(ctx)
    method.eval()
    full, short = torch.arange(10), torch.tensor([11, 12, 13])
    p = ctx.teacher.logits.softmax(-1)

    def soft(nodes):
        logits = student(data.x[nodes])
        return (p[nodes] * (p[nodes].log() - logits.log_softmax(-1))).sum(-1).mean()

    with torch.no_grad():
        assert float(method.loss(student, data.x, full, ctx)) > float(soft(full)) + 1e-3  # RSD counted
        assert torch.allclose(method.loss(student, data.x, short, ctx), soft(short), atol=1e-6)  # short last batch
        method.prepare(ctx)  # a new run starts counting again
        assert float(method.loss(student, data.x, short, ctx)) > float(soft(short)) + 1e-3


def test_nosmog_label_loss_and_switches():
    data = tiny_graph()
    ctx = tiny_context(data, "tran")
    torch.manual_seed(0)
    student = MLP(data.num_features, 8, data.num_classes, dropout=0.0)
    nodes = ctx.split.observed
    method = NOSMOG(lam=0.4, adv_weight=0.0, rsd_weight=0.0, use_position=False)
    method.prepare(ctx)
    assert method.projection is None
    assert torch.equal(method.student_features(ctx), data.x)
    logits = student(data.x)
    p = ctx.teacher.logits.softmax(-1)
    soft = (p * (p.log() - logits.log_softmax(-1))).sum(-1).mean()
    ce = F.cross_entropy(logits[ctx.split.train], data.y[ctx.split.train])
    assert torch.allclose(method.loss(student, data.x, nodes, ctx), 0.6 * soft + 0.4 * ce, atol=1e-6)
    with pytest.raises(ValueError, match="lam must be in"):
        NOSMOG(lam=-0.1)
    with pytest.raises(ValueError, match="adv_eps must be >= 0"):
        NOSMOG(adv_eps=-1.0)


def test_nosmog_two_pass_schedule():
    """The official loop: lam x (CE + alpha CE_adv + beta RSD) over the training nodes, then
    (1 - lam) x (KL + alpha KL_adv + beta RSD) over the observed nodes, short batches judged per pass."""
    data = tiny_graph()
    ctx = tiny_context(data, "ind")
    torch.manual_seed(0)
    student = MLP(data.num_features, 8, data.num_classes, dropout=0.0)
    method = NOSMOG(lam=0.3, adv_weight=0.0, rsd_weight=0.5, use_position=False, schedule="two-pass")
    method.prepare(ctx)
    method.eval()
    passes = method.epoch_passes(ctx)
    assert [nodes.tolist() for nodes, _ in passes] == [ctx.split.train.tolist(), ctx.split.observed.tolist()]
    (train, label_pass), (observed, soft_pass) = passes

    def rsd(nodes):
        projected = torch.relu(method.projection(student.hidden_layers[0][0](data.x[nodes])))
        teacher = ctx.teacher.hidden[nodes]
        return ((teacher @ teacher.T - projected @ projected.T) ** 2).mean()

    with torch.no_grad():
        logits = student(data.x)
        p = ctx.teacher.logits.softmax(-1)
        ce = F.cross_entropy(logits[train], data.y[train])
        assert torch.allclose(label_pass(student, data.x, train, ctx), 0.3 * (ce + 0.5 * rsd(train)), atol=1e-6)
        kl = (p[observed] * (p[observed].log() - logits[observed].log_softmax(-1))).sum(-1).mean()
        assert torch.allclose(soft_pass(student, data.x, observed, ctx), 0.7 * (kl + 0.5 * rsd(observed)), atol=1e-6)
        # the label pass's batch is smaller than the soft pass's, yet full-size for its own pass
        assert train.numel() < observed.numel()
        short = observed[:3]
        kl_short = (p[short] * (p[short].log() - logits[short].log_softmax(-1))).sum(-1).mean()
        assert torch.allclose(soft_pass(student, data.x, short, ctx), 0.7 * kl_short, atol=1e-6)
    joint = NOSMOG(use_position=False).epoch_passes(ctx)
    assert len(joint) == 1 and torch.equal(joint[0][0], ctx.split.observed)
    with pytest.raises(ValueError, match="schedule must be"):
        NOSMOG(schedule="alternating")


def test_nosmog_official_configuration():
    assert nosmog_config("cora", "tran")["adv_eps"] == 0.04
    assert nosmog_config("cora", "ind")["adv_eps"] == 0.05
    assert nosmog_config("citeseer", "ind")["rsd_weight"] == 0.3
    assert nosmog_config("citeseer", "prod") == nosmog_config("citeseer", "ind")
    data = tiny_graph()
    data.name = "citeseer"
    method = NOSMOG(walks_per_node=1, dw_epochs=1)
    method.prepare(tiny_context(data, "tran"))
    assert method.config["embedding_dim"] == 16 and method.config["walks_per_node"] == 1
    assert method.student_features(tiny_context(data, "tran")).shape == (data.num_nodes, data.num_features + 16)


def test_uniform_random_walk_follows_edges():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # path 0-1-2, node 3 isolated
    from torch_geometric.index import index2ptr

    rowptr = index2ptr(edge_index[0], 4)
    torch.manual_seed(0)
    walks = _uniform_random_walk(rowptr, edge_index[1], torch.tensor([0, 1, 2, 3] * 5), 12)
    assert walks.shape == (20, 13)
    edges = set(map(tuple, edge_index.T.tolist()))
    for walk in walks.tolist():
        for a, b in itertools.pairwise(walk):
            assert (a, b) in edges or a == b == 3
    assert (walks[3::4] == 3).all()


def test_torch_deepwalk_embeddings_are_deterministic_and_see_communities():
    # two 8-cliques joined by one edge: embeddings within a clique are closer than across
    clique = torch.combinations(torch.arange(8)).T
    edge_index = to_undirected(torch.cat([clique, clique + 8, torch.tensor([[0], [8]])], dim=1))
    state = torch.random.get_rng_state()
    first = deepwalk_embeddings(edge_index, 16, embedding_dim=8, walk_length=10, walks_per_node=4, window_size=3,
                                epochs=5, lr=0.05, batch_size=4, seed=3, backend="torch")
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    again = deepwalk_embeddings(edge_index, 16, embedding_dim=8, walk_length=10, walks_per_node=4, window_size=3,
                                epochs=5, lr=0.05, batch_size=4, seed=3, backend="torch")
    assert torch.equal(first, again)
    similarity = F.normalize(first, dim=1) @ F.normalize(first, dim=1).T
    same = torch.block_diag(torch.ones(8, 8), torch.ones(8, 8)).bool() & ~torch.eye(16, dtype=torch.bool)
    assert similarity[same].mean() > similarity[~same & ~torch.eye(16, dtype=torch.bool)].mean() + 0.3


def test_gensim_deepwalk_is_reproducible_across_processes_and_sees_communities(tmp_path):
    pytest.importorskip("gensim")
    import subprocess
    import sys

    clique = torch.combinations(torch.arange(8)).T
    edge_index = to_undirected(torch.cat([clique, clique + 8, torch.tensor([[0], [8]])], dim=1))
    settings = {"embedding_dim": 8, "walk_length": 20, "walks_per_node": 40, "window_size": 3, "epochs": 5, "seed": 3}
    state = torch.random.get_rng_state()
    # Node 16 has no edge: its walks are the node alone, and it still gets a vector.
    first = deepwalk_embeddings(edge_index, 17, backend="gensim", **settings)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert first.shape == (17, 8) and first.dtype == torch.float32 and torch.isfinite(first).all()
    assert torch.equal(first, deepwalk_embeddings(edge_index, 17, backend="auto", **settings))
    # gensim seeds vectors from a hash of their key: a fresh interpreter (another string-hash seed)
    # must give the same embeddings.
    script = (
        "import sys, torch; from torch_geometric.utils import to_undirected;"
        "from graphkd.distill.nosmog import deepwalk_embeddings;"
        "c = torch.combinations(torch.arange(8)).T;"
        "e = to_undirected(torch.cat([c, c + 8, torch.tensor([[0], [8]])], dim=1));"
        f"torch.save(deepwalk_embeddings(e, 17, backend='gensim', **{settings!r}), sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "other.pt")], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert torch.equal(first, torch.load(tmp_path / "other.pt"))
    similarity = F.normalize(first[:16], dim=1) @ F.normalize(first[:16], dim=1).T
    same = torch.block_diag(torch.ones(8, 8), torch.ones(8, 8)).bool() & ~torch.eye(16, dtype=torch.bool)
    assert similarity[same].mean() > similarity[~same & ~torch.eye(16, dtype=torch.bool)].mean() + 0.3
    with pytest.raises(ValueError, match="backend must be"):
        deepwalk_embeddings(edge_index, 17, backend="word2vec")


def test_deepwalk_corpus_walks_follow_edges_and_lonely_nodes_walk_alone():
    from graphkd.distill.nosmog import _deepwalk_walks

    edge_index = to_undirected(torch.tensor([[0, 1, 2], [1, 2, 0]]))
    walks = _deepwalk_walks(edge_index, 4, walk_length=6, walks_per_node=3)
    assert len(walks) == 12
    assert sorted(walk[0] for walk in walks) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # every node starts 3 walks
    edges = set(map(tuple, edge_index.T.tolist()))
    for walk in walks:
        if walk[0] == 3:
            assert walk == [3]
        else:
            assert len(walk) == 6 and all(pair in edges for pair in itertools.pairwise(walk))


def test_position_features_of_held_out_nodes_are_their_observed_neighbours_mean():
    data = tiny_graph()
    split = make_split(data, "ind", 0, train_per_class=3, val_per_class=3, held_out_rate=0.3)
    settings = {"embedding_dim": 4, "walk_length": 6, "walks_per_node": 1, "window_size": 2, "epochs": 1}
    features = position_features(split, data.num_nodes, seed=0, **settings)
    observed = set(split.observed.tolist())
    for v in split.test_ind.tolist():
        neighbours = [u for u, w in data.edge_index.T.tolist() if w == v and u in observed]
        if neighbours:
            assert torch.allclose(features[v], features[neighbours].mean(0), atol=1e-6)
        else:
            assert (features[v] == 0).all()
    assert (features[split.observed].abs().sum(1) > 0).all()
    # a held-out node whose neighbours are all held out gets zeros
    lonely = split.test_ind[0]
    keep = (data.edge_index[1] != lonely) | torch.isin(data.edge_index[0], split.test_ind)
    split.full_edge_index = data.edge_index[:, keep]
    assert (position_features(split, data.num_nodes, seed=0, **settings)[lonely] == 0).all()


@pytest.mark.parametrize("method_name", ["ffg2m", "nosmog"])
def test_held_out_nodes_never_influence_training(method_name):
    torch.set_num_threads(1)
    data = tiny_graph()
    split = make_split(data, "ind", 0, train_per_class=3, val_per_class=3, held_out_rate=0.3)
    held_out = split.test_ind
    assert held_out.numel() > 0

    # the same graph, except: new features at the held-out nodes, new edges between them and observed
    # nodes, and different teacher outputs there
    observed = split.observed
    changed, changed_split = held_out_variant(data, split)

    def run(graph, node_split, perturb_teacher):
        generator = torch.Generator().manual_seed(7)
        logits = torch.randn(graph.num_nodes, graph.num_classes, generator=generator)
        hidden = torch.rand(graph.num_nodes, 5, generator=generator)
        if perturb_teacher:
            logits[held_out], hidden[held_out] = -logits[held_out], hidden[held_out] + 3
        ctx = DistillContext(graph, node_split, TeacherOutput(logits, hidden, {}), graph.num_classes,
                             torch.device("cpu"), 0)
        method = FFG2M() if method_name == "ffg2m" else NOSMOG(walk_length=8, walks_per_node=1, window_size=2,
                                                               dw_epochs=1)
        return train_student(method, ctx, hidden_channels=8, dropout=0.2, batch_size=16, epochs=6, patience=10)

    base, other = run(data, split, False), run(changed, changed_split, True)
    for key, value in base.student.state_dict().items():
        assert torch.equal(value, other.student.state_dict()[key]), key
    assert torch.equal(base.features[observed], other.features[observed])
    assert base.scores["val"] == other.scores["val"] and base.scores["test"] == other.scores["test"]
    if method_name == "nosmog":
        # held-out rows do differ (their features and neighbourhoods changed): they only matter at inference
        assert not torch.equal(base.features[held_out], other.features[held_out])


# ---------------------------------------------------------------- Cora end to end


@pytest.fixture(scope="module")
def cora_context():
    torch.set_num_threads(1)
    data = load_node_dataset("cora")
    split = make_split(data, "tran", 0)
    torch.manual_seed(0)
    teacher = build_teacher("sage", data.num_features, data.num_classes)
    output = train_teacher(teacher, data, split, epochs=40, patience=20)  # its best epoch is 29
    assert output.scores["test"] > 0.75
    ctx = DistillContext(data, split, output, data.num_classes, torch.device("cpu"), 0, teacher)
    plain = train_student(PlainMLP(), ctx, epochs=100, patience=30)
    assert plain.scores["test"] < 0.66  # GLNN's table: 59.6
    return ctx, plain.scores["test"]


@pytest.mark.parametrize("method_name", ["ffg2m", "nosmog"])
def test_distilled_mlp_beats_plain_mlp_on_cora(cora_context, method_name):
    torch.set_num_threads(1)
    ctx, plain_test = cora_context
    if method_name == "ffg2m":
        method = FFG2M()
    else:  # a cheaper DeepWalk and PGD than the official ones
        method = NOSMOG(walks_per_node=1, dw_epochs=1, adv_steps=1)
    result = train_student(method, ctx, epochs=30, patience=30)  # about 80% either way
    assert result.scores["test"] > plain_test + 0.10, (result.scores, plain_test)
