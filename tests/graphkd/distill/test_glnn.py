import pytest
import torch
import torch.nn.functional as F

from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.glnn import GLNN, PlainMLP
from graphkd.distill.student import DistillContext, soft_label_loss, train_student
from graphkd.distill.teacher import TeacherOutput, train_teacher
from graphkd.nn import MLP, build_teacher
from tests.graphkd.distill.graphs import TINY_SPLIT, tiny_graph


def test_soft_label_loss_is_kl_divergence():
    student, teacher = torch.randn(5, 3), torch.randn(5, 3)
    p, q = teacher.softmax(-1), student.softmax(-1)
    expected = (p * (p.log() - q.log())).sum(-1).mean()
    assert torch.allclose(soft_label_loss(student, teacher), expected, atol=1e-6)
    assert float(soft_label_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)
    # temperature: tau^2 KL of the softened distributions
    p2, q2 = (teacher / 2).softmax(-1), (student / 2).softmax(-1)
    assert torch.allclose(soft_label_loss(student, teacher, 2.0), 4 * (p2 * (p2.log() - q2.log())).sum(-1).mean(),
                          atol=1e-6)


def test_glnn_loss_mixes_labels_and_teacher():
    from types import SimpleNamespace

    torch.manual_seed(0)
    student = MLP(4, 8, 3)
    features = torch.randn(6, 4)
    ctx = SimpleNamespace(teacher=SimpleNamespace(logits=torch.randn(6, 3)),
                          split=SimpleNamespace(train=torch.tensor([0, 2])), data=SimpleNamespace(y=torch.tensor([1, 0, 2, 0, 1, 1])))
    nodes = torch.arange(6)
    logits = student(features)
    kd = soft_label_loss(logits, ctx.teacher.logits)
    ce = F.cross_entropy(logits[[0, 2]], ctx.data.y[[0, 2]])
    assert torch.allclose(GLNN(0.0).loss(student, features, nodes, ctx), kd)
    assert torch.allclose(GLNN(0.3).loss(student, features, nodes, ctx), 0.7 * kd + 0.3 * ce)
    with pytest.raises(ValueError, match="lam must be in"):
        GLNN(1.5)


def test_glnn_beats_plain_mlp_on_cora():
    torch.set_num_threads(1)
    data = load_node_dataset("cora")
    split = make_split(data, "tran", 0)
    torch.manual_seed(0)
    teacher = build_teacher("sage", data.num_features, data.num_classes)
    output = train_teacher(teacher, data, split, epochs=100, patience=30)
    assert output.scores["test"] > 0.75
    ctx = DistillContext(data, split, output, data.num_classes, torch.device("cpu"), 0)
    config = {"epochs": 120, "patience": 40, "dropout": 0.6, "weight_decay": 5e-3}
    glnn = train_student(GLNN(), ctx, **config)
    plain = train_student(PlainMLP(), ctx, **config)
    assert plain.scores["test"] < 0.66  # GLNN's table: 59.6
    assert glnn.scores["test"] > plain.scores["test"] + 0.12
    assert glnn.best_epoch < glnn.epochs


def test_inductive_teacher_never_sees_held_out_nodes():
    torch.set_num_threads(1)
    data = load_node_dataset("cora")
    split = make_split(data, "ind", 1)

    def run(x):
        torch.manual_seed(0)
        teacher = build_teacher("gcn", data.num_features, data.num_classes)
        changed = data.clone()
        changed.x = x
        return train_teacher(teacher, changed, split, epochs=20, patience=20)

    base = run(data.x)
    noisy_x = data.x.clone()
    noisy_x[split.test_ind] = torch.rand(split.test_ind.numel(), data.num_features)
    noisy = run(noisy_x)
    observed = split.observed
    assert torch.allclose(base.logits[observed], noisy.logits[observed], atol=1e-5)
    assert base.scores["val"] == noisy.scores["val"]
    assert "test_ind" in base.scores


@pytest.mark.parametrize("lam", [0.0, 0.4])
@pytest.mark.parametrize("setting", ["tran", "ind"])
def test_glnn_two_pass_schedule_is_the_official_loop(lam, setting):
    """One epoch of ``schedule="two-pass"`` equals a hand-written loop: Adam steps on lam * CE over the
    shuffled training nodes, then on (1 - lam) * KL over the shuffled observed nodes."""
    data = tiny_graph(num_nodes=60)
    split = make_split(data, setting, 0, **TINY_SPLIT)
    teacher = torch.randn(data.num_nodes, data.num_classes, generator=torch.Generator().manual_seed(1)) * 2
    ctx = DistillContext(data, split, TeacherOutput(teacher, teacher, {}), data.num_classes, torch.device("cpu"), 3)
    config = {"hidden_channels": 16, "num_layers": 2, "dropout": 0.0, "lr": 0.05, "weight_decay": 5e-2, "batch_size": 4}
    result = train_student(GLNN(lam), ctx, epochs=1, patience=5, **config)  # the default schedule

    torch.manual_seed(3)
    reference = MLP(data.num_features, 16, data.num_classes, 2, 0.0, "none")
    optimizer = torch.optim.Adam(reference.parameters(), lr=0.05, weight_decay=5e-2)
    generator = torch.Generator().manual_seed(3)
    for nodes, kind in ((split.train, "ce"), (split.observed, "kd")):
        order = nodes[torch.randperm(nodes.numel(), generator=generator)]
        for start in range(0, order.numel(), 4):
            batch = order[start : start + 4]
            optimizer.zero_grad()
            logits = reference(data.x[batch])
            loss = lam * F.cross_entropy(logits, data.y[batch]) if kind == "ce" else \
                (1 - lam) * soft_label_loss(logits, teacher[batch])
            loss.backward()
            optimizer.step()
    for name, value in reference.state_dict().items():
        assert torch.allclose(result.student.state_dict()[name], value, atol=1e-6), name
    # At lam = 0 the zero-loss label pass still moves the weights (Adam's coupled weight decay and
    # momentum), so the joint schedule trains a different student.
    joint = train_student(GLNN(lam, schedule="joint"), ctx, epochs=1, patience=5, **config)
    assert not torch.allclose(next(joint.student.parameters()), next(result.student.parameters()))
    with pytest.raises(ValueError, match="schedule must be one of"):
        GLNN(schedule="alternating")
