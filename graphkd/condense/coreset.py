r"""Coreset baselines: keep a few real training graphs per class, chosen on GNN embeddings.

Both select, per class :math:`c`, :math:`k` graphs from the embeddings
:math:`z_G = \sum_{v \in V(G)} h_v^{(L)}` that a GNN trained on the full
training set gives them (:meth:`graphkd.nn.GraphClassifier.embed`), as the
graph-condensation literature (GCond, DosCond) compares against.

**Herding** (`Welling, ICML 2009 <https://arxiv.org/abs/0906.2427>`_, the
selection of iCaRL) greedily keeps the running mean of the chosen embeddings
closest to the class mean :math:`\mu_c`:

.. math::
    G_k = \operatorname*{arg\,min}_{G \notin S_{k-1}}
        \Bigl\| \mu_c - \frac{1}{k}\Bigl(z_G + \sum_{H \in S_{k-1}} z_H\Bigr) \Bigr\|_2 .

**k-center** (`Sener and Savarese, ICLR 2018 <https://arxiv.org/abs/1708.00489>`_)
covers the class with :math:`k` balls of small radius by farthest-first
traversal, a 2-approximation of the optimal radius
:math:`\min_{|S|=k} \max_G \min_{H \in S} \|z_G - z_H\|_2`: it starts at the
graph nearest to :math:`\mu_c` and then repeatedly adds

.. math::
    G_k = \operatorname*{arg\,max}_{G} \min_{H \in S_{k-1}} \| z_G - z_H \|_2 .

Ties go to the lowest index, so selections are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

#: Selection rules by name.
SELECTORS = ("herding", "kcenter")


def _check_embeddings(embeddings: Tensor, k: int) -> None:
    if not isinstance(embeddings, Tensor) or embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a floating-point tensor of shape [n, d], got "
                         f"{getattr(embeddings, 'dtype', type(embeddings))} {list(getattr(embeddings, 'shape', []))}")
    if not torch.isfinite(embeddings).all():
        raise ValueError("embeddings must be finite (got NaN or inf)")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")


def herding(embeddings: Tensor, k: int) -> list[int]:
    r"""Indices of :math:`\min(k, n)` rows of ``embeddings`` chosen by herding, in selection order.

    Args:
        embeddings (Tensor): one row per candidate. Shape :math:`(n, d)`.
        k (int): how many to keep.
    """
    _check_embeddings(embeddings, k)
    z = embeddings.double()
    mean = z.mean(dim=0)
    chosen: list[int] = []
    available = torch.ones(len(z), dtype=torch.bool)
    running = torch.zeros_like(mean)
    for step in range(1, min(k, len(z)) + 1):
        distance = ((mean - (running + z) / step) ** 2).sum(dim=1)
        distance[~available] = float("inf")
        index = int(torch.argmin(distance))  # argmin returns the first of equal values
        chosen.append(index)
        available[index] = False
        running += z[index]
    return chosen


def kcenter(embeddings: Tensor, k: int) -> list[int]:
    r"""Indices of :math:`\min(k, n)` rows of ``embeddings`` chosen by farthest-first traversal,
    in selection order, starting from the row nearest to the mean.

    Args:
        embeddings (Tensor): one row per candidate. Shape :math:`(n, d)`.
        k (int): how many to keep.
    """
    _check_embeddings(embeddings, k)
    z = embeddings.double()
    first = int(torch.argmin(((z - z.mean(dim=0)) ** 2).sum(dim=1)))
    chosen = [first]
    nearest = (z - z[first]).norm(dim=1)
    for _ in range(1, min(k, len(z))):
        nearest[chosen] = -1.0  # never picked twice, even when points coincide
        index = int(torch.argmax(nearest))
        chosen.append(index)
        nearest = torch.minimum(nearest, (z - z[index]).norm(dim=1))
    return chosen


@torch.no_grad()
def graph_embeddings(model, graphs: Sequence[Data], inputs, device: str | torch.device = "cpu",
                     batch_size: int = 256) -> Tensor:
    """Graph embeddings of ``graphs`` from a trained :class:`~graphkd.nn.GraphClassifier`. Shape :math:`(n, d)`."""
    model.eval()
    rows = []
    for batch in DataLoader([inputs(g) for g in graphs], batch_size=batch_size):
        batch = batch.to(device)
        rows.append(model.embed(batch.x, batch.edge_index, batch.batch, num_graphs=batch.num_graphs).cpu())
    return torch.cat(rows)


def select_per_class(embeddings: Tensor, labels: Sequence[int], graphs_per_class: int, method: str) -> list[int]:
    """Indices chosen by ``method`` (``"herding"`` or ``"kcenter"``) within each class, classes in order.

    Args:
        embeddings (Tensor): one row per training graph. Shape :math:`(n, d)`.
        labels (Sequence[int]): the class of each row.
        graphs_per_class (int): graphs kept per class (all of a smaller class).
        method (str): the selection rule.
    """
    if method not in SELECTORS:
        raise ValueError(f"method must be one of {SELECTORS}, got {method!r}")
    if len(labels) != len(embeddings):
        raise ValueError(f"labels must hold one class per embedding row ({len(embeddings)}), got {len(labels)}")
    rule = herding if method == "herding" else kcenter
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    chosen: list[int] = []
    for label in torch.unique(labels_t).tolist():
        members = torch.nonzero(labels_t == label).view(-1)
        chosen.extend(members[rule(embeddings[members], graphs_per_class)].tolist())
    return chosen


__all__ = ["SELECTORS", "graph_embeddings", "herding", "kcenter", "select_per_class"]
