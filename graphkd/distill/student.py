r"""The shared student trainer: every distillation method plugs a loss into one loop.

A method is a :class:`DistillMethod` (a module, so it may own parameters such as
a projection head or a discriminator). The loop trains the MLP student on the
observed nodes in shuffled mini-batches, evaluates it on the validation nodes
after every epoch, keeps the best epoch by validation accuracy and stops after
``patience`` epochs without improvement (GLNN's schedule: at most 500 epochs,
patience 50). Test nodes are never looked at before the end.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from geokd.distributed import DistributedContext
from geokd.log import progress
from graphkd.distill.data import NodeSplit
from graphkd.distill.teacher import TeacherOutput, accuracy
from graphkd.nn.mlp import MLP

#: Student defaults on the CPF datasets (GLNN's MLP configuration; Cora's values, CiteSeer in
#: :data:`STUDENT_DATASET_DEFAULTS`).
STUDENT_DEFAULTS = {"hidden_channels": 128, "num_layers": 2, "dropout": 0.6, "norm": "none", "lr": 0.01,
                    "weight_decay": 5e-3, "batch_size": 512, "epochs": 500, "patience": 50}
STUDENT_DATASET_DEFAULTS = {
    "cora": {"dropout": 0.6, "weight_decay": 5e-3, "lr": 0.01},
    "citeseer": {"dropout": 0.1, "weight_decay": 1e-3, "lr": 0.01},
    "pubmed": {"dropout": 0.4, "weight_decay": 0.0, "lr": 0.005},
    "a-computer": {"dropout": 0.3, "weight_decay": 2e-3, "lr": 0.001},
    "a-photo": {"dropout": 0.3, "weight_decay": 2e-3, "lr": 0.005},
}


def student_defaults(dataset: str | None) -> dict:
    settings = dict(STUDENT_DEFAULTS)
    settings.update(STUDENT_DATASET_DEFAULTS.get((dataset or "").lower(), {}))
    return settings


@dataclass
class DistillContext:
    r"""Everything a method may use while training a student on one split.

    Methods must respect the setting: structure only from ``split.edge_index``
    (the observed graph), teacher outputs only at ``split.observed`` nodes.

    Attributes:
        data (Data): the whole graph; ``x`` :math:`(N, F)`, ``y`` :math:`(N,)`.
        split (NodeSplit): the seed's split.
        teacher (TeacherOutput): teacher logits and hidden representations.
        num_classes (int): :math:`C`.
        device (torch.device): where training runs.
        seed (int): the run's seed.
        teacher_model (Module, optional): the trained teacher, for methods that need it.
    """

    data: Data
    split: NodeSplit
    teacher: TeacherOutput
    num_classes: int
    device: torch.device
    seed: int = 0
    teacher_model: torch.nn.Module | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_context(self.data, self.split, self.teacher, self.num_classes)


def _index_set(name: str, index: Tensor, num_nodes: int, allow_empty: bool) -> Tensor:
    if not isinstance(index, Tensor) or index.dtype != torch.long or index.dim() != 1:
        raise ValueError(f"split.{name} must be a 1-D int64 tensor of node ids")
    if index.numel() == 0:
        if allow_empty:
            return index
        raise ValueError(f"split.{name} is empty: the protocol needs at least one {name} node")
    if int(index.min()) < 0 or int(index.max()) >= num_nodes:
        raise ValueError(f"split.{name} holds node ids outside [0, {num_nodes}): "
                         f"min {int(index.min())}, max {int(index.max())}")
    if torch.unique(index).numel() != index.numel():
        raise ValueError(f"split.{name} lists a node more than once")
    return index


def validate_context(data: Data, split: NodeSplit, teacher: TeacherOutput, num_classes: int) -> None:
    """Check a distillation run's inputs; raise ``ValueError`` naming the offending argument.

    Features must be finite, labels in ``[0, num_classes)``, the train / val / test / test_ind
    node sets in range, non-empty (test_ind may be) and disjoint, and the teacher's logits
    :math:`(N, C)` and finite.
    """
    num_nodes = data.num_nodes
    if data.x is None or data.x.dim() != 2 or data.x.size(0) != num_nodes:
        raise ValueError(f"data.x must have shape [num_nodes={num_nodes}, F], got "
                         f"{None if data.x is None else list(data.x.shape)}")
    if not torch.isfinite(data.x).all():
        bad = (~torch.isfinite(data.x)).any(-1).nonzero().view(-1)
        raise ValueError(f"data.x holds NaN or inf in {bad.numel()} rows (first: node {int(bad[0])}); "
                         "impute or drop them first")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    y = data.y
    if y is None or y.dim() != 1 or y.numel() != num_nodes:
        raise ValueError(f"data.y must have shape [num_nodes={num_nodes}], got {None if y is None else list(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"data.y holds labels outside [0, num_classes={num_classes}): "
                         f"min {int(y.min())}, max {int(y.max())}")
    sets = {name: _index_set(name, getattr(split, name), num_nodes, allow_empty=name == "test_ind")
            for name in ("train", "val", "test", "test_ind")}
    names = list(sets)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if sets[first].numel() and sets[second].numel() and bool(torch.isin(sets[first], sets[second]).any()):
                raise ValueError(f"split.{first} and split.{second} overlap: every node may be in one set only")
    logits = teacher.logits
    if not isinstance(logits, Tensor) or logits.shape != (num_nodes, num_classes):
        raise ValueError(f"teacher.logits must have shape [num_nodes={num_nodes}, num_classes={num_classes}], got "
                         f"{list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    if not torch.isfinite(logits[split.observed]).all():
        raise ValueError("teacher.logits holds NaN or inf at observed nodes")
    if teacher.hidden is not None and teacher.hidden.size(0) != num_nodes:
        raise ValueError(f"teacher.hidden must have num_nodes={num_nodes} rows, got {teacher.hidden.size(0)}")


class DistillMethod(torch.nn.Module):
    r"""Base class of the distillation methods.

    Subclasses implement :meth:`loss`; they may override :meth:`prepare` (work done once
    before training, e.g. fitting a tokenizer) and :meth:`student_features` (inputs other
    than the raw node features; the exported student then expects them too).
    """

    name = "base"
    #: whether :meth:`loss` needs every observed node in one batch (edge-based losses).
    full_batch = False

    def prepare(self, ctx: DistillContext) -> None:
        """Called once before training."""

    def training_nodes(self, ctx: DistillContext) -> Tensor:
        """The nodes an epoch iterates over. (default: every observed node)"""
        return ctx.split.observed

    def student_features(self, ctx: DistillContext) -> Tensor:
        r"""The student's input for every node :math:`(N, F')`. (default: the node features)"""
        return ctx.data.x

    def loss(self, student: MLP, features: Tensor, nodes: Tensor, ctx: DistillContext) -> Tensor:
        """The training loss on the mini-batch ``nodes`` (global ids of observed nodes)."""
        raise NotImplementedError

    def epoch_passes(self, ctx: DistillContext) -> list[tuple[Tensor, Callable[..., Tensor]]]:
        """The passes of one epoch, in order: ``(nodes, loss)`` pairs; each pass shuffles its nodes and
        takes one optimizer step per mini-batch with its own loss (same signature as :meth:`loss`).
        (default: one pass of :meth:`loss` over :meth:`training_nodes`)"""
        return [(self.training_nodes(ctx), self.loss)]


#: Epoch schedules of methods with a label term and a soft-label term: one joint pass per epoch, or the
#: official GLNN / NOSMOG loop of a label pass then a soft-label pass (:meth:`DistillMethod.epoch_passes`).
SCHEDULES = ("joint", "two-pass")


def label_loss(logits: Tensor, nodes: Tensor, ctx: DistillContext) -> Tensor:
    """Cross-entropy on the batch's training nodes (zero when the batch holds none)."""
    is_train = torch.isin(nodes, ctx.split.train.to(nodes.device))
    if not bool(is_train.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[is_train], ctx.data.y.to(logits.device)[nodes[is_train]])


def soft_label_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    r""":math:`\tau^2\,\mathrm{KL}(\mathrm{softmax}(z^t/\tau) \,\|\, \mathrm{softmax}(z^s/\tau))`, mean over nodes."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1), reduction="batchmean",
                    log_target=True) * temperature**2


@dataclass
class StudentResult:
    """A trained student and its scores (``val``, ``test``, and inductively ``test_ind`` and ``prod``)."""

    student: MLP
    method: DistillMethod
    scores: dict
    seconds: float
    epochs: int
    best_epoch: int
    features: Tensor


def score_split(logits: Tensor, labels: Tensor, split: NodeSplit) -> dict:
    r"""Accuracies; ``prod`` is :math:`0.8\,\text{test} + 0.2\,\text{test\_ind}` for inductive splits."""
    scores = {"val": accuracy(logits[split.val], labels[split.val]),
              "test": accuracy(logits[split.test], labels[split.test])}
    if split.test_ind.numel():
        scores["test_ind"] = accuracy(logits[split.test_ind], labels[split.test_ind])
        scores["prod"] = 0.8 * scores["test"] + 0.2 * scores["test_ind"]
    return scores


def train_student(
    method: DistillMethod,
    ctx: DistillContext,
    hidden_channels: int = 128,
    num_layers: int = 2,
    dropout: float = 0.6,
    norm: str = "none",
    lr: float = 0.01,
    weight_decay: float = 5e-3,
    batch_size: int | None = 512,
    epochs: int = 500,
    patience: int = 50,
    dist_ctx: DistributedContext | None = None,
    desc: str = "student",
) -> StudentResult:
    r"""Train an MLP student with ``method``'s loss; select the epoch on validation accuracy.

    Args:
        method (DistillMethod): the loss (and any parameters of its own).
        ctx (DistillContext): data, split, teacher outputs.
        hidden_channels, num_layers, dropout, norm: the student MLP (:class:`graphkd.nn.MLP`).
        lr, weight_decay (float): Adam over the student's and the method's parameters.
        batch_size (int, optional): nodes per step; ``None`` (or a method needing full batches)
            uses every observed node at once. (default: ``512``)
        epochs (int): most epochs. (default: ``500``)
        patience (int): early-stopping patience on validation accuracy. (default: ``50``)
    """
    device = ctx.device
    generator = torch.Generator().manual_seed(ctx.seed)
    torch.manual_seed(ctx.seed)
    method.prepare(ctx)
    features = method.student_features(ctx).to(device)
    if not torch.isfinite(features).all():
        raise ValueError("student features contain NaN or inf")
    student = MLP(features.shape[1], hidden_channels, ctx.num_classes, num_layers, dropout, norm).to(device)
    method = method.to(device)
    parameters = list(student.parameters()) + list(method.parameters())
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    passes = method.epoch_passes(ctx)
    labels = ctx.data.y

    best_val, best_epoch, best_state, waited, epoch = -1.0, -1, None, 0, -1
    started = time.perf_counter()
    bar = progress(range(epochs), dist_ctx, desc=desc, unit="epoch", leave=False)
    for epoch in bar:
        student.train()
        method.train()
        total, steps = 0.0, 0
        for pass_nodes, pass_loss in passes:
            order = pass_nodes[torch.randperm(pass_nodes.numel(), generator=generator)]
            step_size = order.numel() if (batch_size is None or method.full_batch) else batch_size
            for start in range(0, order.numel(), max(1, step_size)):
                nodes = order[start : start + step_size].to(device)
                optimizer.zero_grad()
                loss = pass_loss(student, features, nodes, ctx)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{method.name}: the loss became {float(loss)} at epoch {epoch}; "
                                             "lower the learning rate")
                loss.backward()
                optimizer.step()
                total, steps = total + float(loss.detach()), steps + 1
        student.eval()
        with torch.no_grad():
            logits = student(features).cpu()
        val_acc = accuracy(logits[ctx.split.val], labels[ctx.split.val])
        if val_acc >= best_val:  # ties go to the later epoch (GLNN's rule): a more trained model
            best_val, best_epoch, waited = val_acc, epoch, 0
            best_state = (copy.deepcopy(student.state_dict()), copy.deepcopy(method.state_dict()))
        else:
            waited += 1
        bar.set_postfix(loss=f"{total / max(1, steps):.3f}", val=f"{val_acc:.3f}",
                        best=f"{best_val:.3f}", refresh=False)
        if waited >= patience:
            break
    seconds = time.perf_counter() - started
    if best_state is not None:
        student.load_state_dict(best_state[0])
        method.load_state_dict(best_state[1])
    student.eval()
    with torch.no_grad():
        logits = student(features).cpu()
    return StudentResult(student.cpu(), method.cpu(), score_split(logits, labels, ctx.split), seconds, epoch + 1,
                         best_epoch, features.cpu())
