"""Bad inputs to a distillation run, precomputed teacher logits and a user's own teacher module."""

import pytest
import torch
from torch_geometric.nn import GCNConv

from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.glnn import GLNN
from graphkd.distill.student import DistillContext, train_student
from graphkd.distill.teacher import TeacherOutput, train_teacher


@pytest.fixture(scope="module")
def cora():
    data = load_node_dataset("cora")
    return data, make_split(data, "ind", 0)


def context(data, split, logits=None, num_classes=7):
    logits = torch.zeros(data.num_nodes, num_classes) if logits is None else logits
    return DistillContext(data, split, TeacherOutput(logits, logits, {}), num_classes, torch.device("cpu"), 0)


def test_a_valid_context_passes(cora):
    data, split = cora
    context(data, split)


def test_nan_or_inf_features_are_named(cora):
    data, split = cora
    bad = data.clone()
    bad.x = bad.x.clone()
    bad.x[5, 3] = float("nan")
    with pytest.raises(ValueError, match=r"data.x holds NaN or inf in 1 rows \(first: node 5\)"):
        context(bad, split)
    bad.x[5, 3] = float("inf")
    with pytest.raises(ValueError, match="data.x holds NaN or inf"):
        context(bad, split)


def test_labels_out_of_range_are_named(cora):
    data, split = cora
    bad = data.clone()
    bad.y = bad.y.clone()
    bad.y[0] = 7
    with pytest.raises(ValueError, match=r"data.y holds labels outside \[0, num_classes=7\)"):
        context(bad, split)
    bad.y[0] = -1
    with pytest.raises(ValueError, match="data.y holds labels outside"):
        context(bad, split)


@pytest.mark.parametrize("change, message", [
    (lambda s: setattr(s, "train", s.train[:0]), "split.train is empty"),
    (lambda s: setattr(s, "val", s.val[:0]), "split.val is empty"),
    (lambda s: setattr(s, "val", torch.cat([s.val, s.train[:1]])), "split.train and split.val overlap"),
    (lambda s: setattr(s, "test_ind", torch.cat([s.test_ind, s.test[:1]])), "split.test and split.test_ind overlap"),
    (lambda s: setattr(s, "test", torch.cat([s.test, torch.tensor([10**6])])), r"split.test holds node ids outside"),
    (lambda s: setattr(s, "train", torch.cat([s.train, s.train[:1]])), "split.train lists a node more than once"),
    (lambda s: setattr(s, "train", s.train.float()), "split.train must be a 1-D int64 tensor"),
])
def test_bad_masks_are_named(cora, change, message):
    data, _ = cora
    bad = make_split(data, "ind", 0)
    change(bad)
    with pytest.raises(ValueError, match=message):
        context(data, bad)


def test_teacher_logits_of_the_wrong_shape_or_not_finite(cora):
    data, split = cora
    with pytest.raises(ValueError, match=r"teacher.logits must have shape \[num_nodes=2485, num_classes=7\], got \[2485, 6\]"):
        context(data, split, torch.zeros(data.num_nodes, 6))
    with pytest.raises(ValueError, match="teacher.logits must have shape"):
        context(data, split, torch.zeros(10, 7))
    logits = torch.zeros(data.num_nodes, 7)
    logits[split.observed[0]] = float("nan")
    with pytest.raises(ValueError, match="teacher.logits holds NaN or inf at observed nodes"):
        context(data, split, logits)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        context(data, split, torch.zeros(data.num_nodes, 1), num_classes=1)


def test_precomputed_teacher_logits_are_scored_and_distilled(cora):
    torch.set_num_threads(1)
    data, _ = cora
    split = make_split(data, "tran", 0)
    # an "external teacher" that knows the labels of 80% of the nodes, chance elsewhere
    generator = torch.Generator().manual_seed(0)
    known = torch.rand(data.num_nodes, generator=generator) < 0.8
    logits = torch.randn(data.num_nodes, 7, generator=generator)
    logits[known] += 6 * torch.nn.functional.one_hot(data.y[known], 7)
    teacher = TeacherOutput.from_logits(logits, data, split)
    expected = float((logits[split.test].argmax(-1) == data.y[split.test]).float().mean())
    assert teacher.scores["test"] == pytest.approx(expected)
    assert torch.equal(teacher.hidden, teacher.logits)
    ctx = DistillContext(data, split, teacher, 7, torch.device("cpu"), 0)
    result = train_student(GLNN(), ctx, epochs=40, patience=40)
    assert result.scores["test"] > 0.75  # an MLP alone gets about 0.6
    with pytest.raises(ValueError, match=r"logits must have shape \[num_nodes=2485, C\]"):
        TeacherOutput.from_logits(logits[:10], data, split)
    with pytest.raises(ValueError, match=r"hidden must have shape \[num_nodes=2485, H\]"):
        TeacherOutput.from_logits(logits, data, split, hidden=torch.zeros(3, 2))


class UserGCN(torch.nn.Module):
    """A teacher written by a user: forward(x, edge_index) only."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(in_channels, 32), GCNConv(32, out_channels)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def test_a_users_teacher_module_is_trained_and_distilled(cora):
    torch.set_num_threads(1)
    data, split = cora
    torch.manual_seed(0)
    output = train_teacher(UserGCN(data.num_features, 7), data, split, epochs=60, patience=30)
    assert output.scores["test"] > 0.7 and output.logits.shape == (data.num_nodes, 7)
    assert torch.equal(output.hidden, output.logits)
    result = train_student(GLNN(), DistillContext(data, split, output, 7, torch.device("cpu"), 0), epochs=40,
                           patience=40)
    assert result.scores["test"] > 0.7

    class Broken(UserGCN):
        def forward(self, x, edge_index):
            return super().forward(x, edge_index)[:5]

    with pytest.raises(ValueError, match="must return logits of shape"):
        from graphkd.distill.teacher import teacher_outputs

        teacher_outputs(Broken(data.num_features, 7), data, split, torch.device("cpu"))


def test_teacher_selection_rule_is_checked(cora):
    data, split = cora
    with pytest.raises(ValueError, match="select must be 'accuracy' or 'loss'"):
        train_teacher(UserGCN(data.num_features, 7), data, split, epochs=1, select="f1")


def test_teacher_selected_on_loss_is_calibrated(cora):
    torch.set_num_threads(1)
    data, split = cora
    outputs = {}
    for select in ("loss", "accuracy"):
        torch.manual_seed(0)
        outputs[select] = train_teacher(UserGCN(data.num_features, 7), data, split, epochs=60, patience=60,
                                        select=select)
    # the rules keep different epochs, each reporting the accuracy of the epoch it kept
    for output in outputs.values():
        assert output.epochs == 60 and 0 <= output.best_epoch < 60 and output.scores["val"] > 0.6
