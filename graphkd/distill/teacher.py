"""Teacher training on one split, with validation-only model selection.

The teacher trains on the observed graph only (the whole graph in the
transductive setting; without the held-out test nodes and their edges in the
inductive one), full-batch or on neighbour-sampled mini-batches, for at most
``epochs`` epochs with early stopping on validation accuracy. Its outputs for
the distillation are then computed on the observed graph; held-out nodes are
scored with the full graph, as a deployed GNN would see them, and never feed
training.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import subgraph

from geokd.checkpoint import load_checkpoint
from geokd.distributed import DistributedContext
from geokd.log import progress
from geokd.seed import seed_everything
from graphkd.distill.data import NodeSplit
from graphkd.nn.teachers import TEACHER_DEFAULTS, build_teacher


@dataclass
class TeacherOutput:
    r"""What the students learn from.

    Attributes:
        logits (Tensor): :math:`(N, C)` teacher logits of every node; rows of held-out
            nodes come from the full graph and are used for scoring only.
        hidden (Tensor): :math:`(N, H)` the representation before the last layer.
        scores (dict): ``val``, ``test`` (observed test nodes) and, inductively, ``test_ind``.
        seconds (float): training time.
        epochs (int): epochs run; ``best_epoch`` the one kept.
    """

    logits: Tensor
    hidden: Tensor
    scores: dict
    seconds: float = 0.0
    epochs: int = 0
    best_epoch: int = -1

    @classmethod
    def from_logits(cls, logits: Tensor, data: Data, split: NodeSplit, hidden: Tensor | None = None) -> TeacherOutput:
        r"""Precomputed teacher outputs (a model trained elsewhere), scored on ``split``.

        Args:
            logits (Tensor): :math:`(N, C)` logits of every node. In the inductive setting the
                rows of observed nodes must come from a teacher that never saw the held-out
                nodes; held-out rows are only scored.
            data (Data): the graph (its ``y`` scores the logits).
            split (NodeSplit): the split they belong to.
            hidden (Tensor, optional): :math:`(N, H)` representations, for methods that use them
                (NOSMOG); the logits stand in when omitted. (default: ``None``)
        """
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.size(0) != data.num_nodes:
            raise ValueError(f"logits must have shape [num_nodes={data.num_nodes}, C], got "
                             f"{list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
        if hidden is not None and (hidden.dim() != 2 or hidden.size(0) != data.num_nodes):
            raise ValueError(f"hidden must have shape [num_nodes={data.num_nodes}, H], got {list(hidden.shape)}")
        logits = logits.detach().float().cpu()
        scores = {"val": accuracy(logits[split.val], data.y[split.val]),
                  "test": accuracy(logits[split.test], data.y[split.test])}
        if split.test_ind.numel():
            scores["test_ind"] = accuracy(logits[split.test_ind], data.y[split.test_ind])
        return cls(logits, logits.clone() if hidden is None else hidden.detach().float().cpu(), scores)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    if labels.numel() == 0:
        return float("nan")
    return float((logits.argmax(dim=-1) == labels).float().mean())


def _observed_graph(data: Data, split: NodeSplit) -> tuple[Data, Tensor]:
    """The observed subgraph with nodes renumbered, and the map from its ids to global ids."""
    if split.setting == "tran":
        return Data(x=data.x, edge_index=data.edge_index, y=data.y), torch.arange(data.num_nodes)
    edge_index, _ = subgraph(split.observed, data.edge_index, relabel_nodes=True, num_nodes=data.num_nodes)
    return Data(x=data.x[split.observed], edge_index=edge_index, y=data.y[split.observed]), split.observed


def _forward_with_hidden(model: torch.nn.Module, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """``(logits, hidden)``; a model with only ``forward(x, edge_index)`` gives its logits as ``hidden``."""
    if hasattr(model, "forward_with_hidden"):
        return model.forward_with_hidden(x, edge_index)
    logits = model(x, edge_index)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.size(0) != x.size(0):
        raise ValueError(f"the teacher's forward(x, edge_index) must return logits of shape [{x.size(0)}, C], got "
                         f"{list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    return logits, logits


@torch.no_grad()
def teacher_outputs(model: torch.nn.Module, data: Data, split: NodeSplit, device: torch.device) -> tuple[Tensor, Tensor]:
    """Logits and hidden representations of every node (see :class:`TeacherOutput`)."""
    model.eval()
    observed_data, observed = _observed_graph(data, split)
    logits_obs, hidden_obs = _forward_with_hidden(model, observed_data.x.to(device), observed_data.edge_index.to(device))
    logits = torch.zeros(data.num_nodes, logits_obs.shape[1])
    hidden = torch.zeros(data.num_nodes, hidden_obs.shape[1])
    logits[observed], hidden[observed] = logits_obs.cpu(), hidden_obs.cpu()
    if split.test_ind.numel():
        logits_full, hidden_full = _forward_with_hidden(model, data.x.to(device), data.edge_index.to(device))
        logits[split.test_ind] = logits_full[split.test_ind.to(device)].cpu()
        hidden[split.test_ind] = hidden_full[split.test_ind.to(device)].cpu()
    return logits, hidden


def train_teacher(
    model: torch.nn.Module,
    data: Data,
    split: NodeSplit,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    epochs: int = 500,
    patience: int = 50,
    fan_out: list[int] | None = None,
    batch_size: int = 512,
    seed: int = 0,
    device: torch.device | str = "cpu",
    ctx: DistributedContext | None = None,
    desc: str = "teacher",
    select: str = "loss",
) -> TeacherOutput:
    r"""Train ``model`` on the split's training nodes, keep the epoch with the best validation score.

    The score is the validation loss or accuracy (``select``); among ties the latest epoch wins
    (GLNN's rule), and early stopping waits ``patience`` epochs without a tie or better.

    Args:
        model: any module with ``forward(x, edge_index) -> logits`` (a user's own GNN); one with
            ``forward_with_hidden(x, edge_index) -> (logits, hidden)`` also provides hidden
            representations (else the logits stand in for them).
        data (Data): the whole graph (``x``, ``edge_index``, ``y``).
        split (NodeSplit): the seed's split and setting.
        lr, weight_decay (float): Adam's settings. (default: ``0.01``, ``5e-4``)
        epochs (int): most epochs. (default: ``500``)
        patience (int): stop after this many epochs without a better validation accuracy. (default: ``50``)
        fan_out (list of int, optional): neighbours sampled per layer for mini-batch training
            (GLNN's SAGE uses ``[5, 5]`` and batches of 512); ``None`` trains full-batch. (default: ``None``)
        batch_size (int): seed nodes per mini-batch when sampling. (default: ``512``)
        seed (int): seeds the sampler. (default: ``0``)
        device: where to train. (default: ``"cpu"``)
        ctx (DistributedContext, optional): only rank 0 shows progress.
        select (str): the validation score that picks the epoch kept: ``"loss"`` (cross-entropy)
            or ``"accuracy"`` (GLNN's rule). On the CPF splits' 210-node validation sets accuracy
            often peaks within the first few epochs, and the epoch kept is then a barely trained
            teacher whose flat logits are a poor target; the validation loss keeps a trained,
            calibrated teacher. (default: ``"loss"``)
    """
    device = torch.device(device)
    model = model.to(device)
    observed_data, observed = _observed_graph(data, split)
    local = torch.full((data.num_nodes,), -1, dtype=torch.long)
    local[observed] = torch.arange(observed.numel())
    train_local, val_local = local[split.train], local[split.val]
    x, edge_index, y = observed_data.x.to(device), observed_data.edge_index.to(device), observed_data.y.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loader = None
    if fan_out:
        from graphkd.distill.sampling import neighbor_loader

        loader = neighbor_loader(observed_data, train_local, fan_out, batch_size, shuffle=True, seed=seed)

    if select not in ("accuracy", "loss"):
        raise ValueError(f"select must be 'accuracy' or 'loss', got {select!r}")
    best_val, best_epoch, best_state, waited = -math.inf, -1, None, 0
    started = time.perf_counter()
    bar = progress(range(epochs), ctx, desc=desc, unit="epoch", leave=False)
    epoch = -1
    for epoch in bar:
        model.train()
        if loader is None:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x, edge_index)[train_local.to(device)], y[train_local.to(device)])
            loss.backward()
            optimizer.step()
        else:
            for batch in loader:
                batch = batch.to(device)
                optimizer.zero_grad()
                out = model(batch.x, batch.edge_index)[: batch.batch_size]
                loss = F.cross_entropy(out, batch.y[: batch.batch_size])
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            val_logits = model(x, edge_index)[val_local.to(device)]
            val_acc = accuracy(val_logits, y[val_local.to(device)])
            # "loss" ranks epochs by -CE, so that the larger score wins either way
            score = val_acc if select == "accuracy" else -float(F.cross_entropy(val_logits, y[val_local.to(device)]))
        if score >= best_val:  # ties go to the later epoch (GLNN's rule): a more trained model
            best_val, best_epoch, waited = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", val=f"{val_acc:.3f}", best=f"{best_val:.3f}", refresh=False)
        if waited >= patience:
            break
    seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    logits, hidden = teacher_outputs(model, data, split, device)
    scores = {"val": accuracy(logits[split.val], data.y[split.val]),
              "test": accuracy(logits[split.test], data.y[split.test])}
    if split.test_ind.numel():
        scores["test_ind"] = accuracy(logits[split.test_ind], data.y[split.test_ind])
    return TeacherOutput(logits, hidden, scores, seconds, epoch + 1, best_epoch)


def cached_teacher(data: Data, split: NodeSplit, seed: int, teacher_dir=None, name: str = "sage") -> TeacherOutput:
    """The seed's teacher outputs from ``teacher_dir`` (the ``<name>-<setting>-seed<k>.pt`` files that
    ``graphkd distill --teacher-dir`` writes) when the file is there, else a teacher trained with the
    defaults of :data:`graphkd.nn.teachers.TEACHER_DEFAULTS` (not saved)."""
    path = None if teacher_dir is None else Path(teacher_dir) / f"{name}-{split.setting}-seed{seed}.pt"
    if path is not None and path.is_file():
        state = load_checkpoint(path)
        return TeacherOutput(state["logits"], state["hidden"], state["scores"], state.get("seconds", 0.0),
                             state.get("epochs", 0), state.get("best_epoch", -1))
    seed_everything(seed)
    defaults = TEACHER_DEFAULTS[name]
    model = build_teacher(name, data.num_features, data.num_classes)
    return train_teacher(model, data, split, lr=defaults["lr"], weight_decay=defaults["weight_decay"],
                         fan_out=defaults.get("fan_out"), batch_size=defaults.get("batch_size", 512), seed=seed)
