"""A message-passing GNN with a sum readout over chosen nodes, for graph classification."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import global_add_pool
from torch_geometric.nn.models import GAT, GCN, GIN

#: The GNNs a graph classifier can be built on (PyG's implementations).
GNN_CLASSES = {"gcn": GCN, "gin": GIN, "gat": GAT}


class GraphClassifier(torch.nn.Module):
    r"""Graph classifier :math:`\hat y_G = \operatorname{MLP}\bigl(\sum_{v \in R(G)} h_v^{(L)}\bigr)`.

    :math:`h^{(L)}` are the node embeddings of an :math:`L`-layer GNN and
    :math:`R(G)` the readout nodes: every node of an ordinary graph, or the
    roots (``readout_mask``) of a graph of computation trees, whose embeddings
    equal those of the nodes they were unrolled from with GIN and GAT (GCN's
    normalisation also reads the degrees of the trees' leaves, which a tree
    does not hold; see :meth:`graphkd.condense.CondensedDataset.tree_graph`).

    Args:
        gnn (str): ``"gcn"``, ``"gin"`` or ``"gat"``.
        in_channels (int): node feature size.
        hidden_channels (int): embedding size.
        num_layers (int): message-passing layers :math:`L`.
        num_classes (int): output classes.
        dropout (float): dropout in the GNN and the head. (default: ``0.0``)
    """

    def __init__(self, gnn: str, in_channels: int, hidden_channels: int, num_layers: int, num_classes: int,
                 dropout: float = 0.0):
        super().__init__()
        if gnn not in GNN_CLASSES:
            raise ValueError(f"gnn must be one of {sorted(GNN_CLASSES)}, got {gnn!r}")
        kwargs = {"heads": 4, "concat": False} if gnn == "gat" else {}
        self.gnn = GNN_CLASSES[gnn](in_channels, hidden_channels, num_layers, dropout=dropout, **kwargs)
        self.head = torch.nn.Sequential(
            torch.nn.Linear(hidden_channels, hidden_channels),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_channels, num_classes),
        )

    def embed(self, x: Tensor, edge_index: Tensor, batch: Tensor, readout_mask: Tensor | None = None,
              num_graphs: int | None = None) -> Tensor:
        r"""The graph embeddings :math:`\sum_{v \in R(G)} h_v^{(L)}`, before the head. Shape :math:`(B, H)`.

        ``num_graphs`` is :math:`B`; without it, ``batch.max() + 1``, which misses graphs without
        nodes at the end of the batch (give it whenever a batch may hold such graphs).
        """
        h = self.gnn(x, edge_index)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        if readout_mask is not None:
            h, batch = h[readout_mask], batch[readout_mask]
        return global_add_pool(h, batch, size=num_graphs)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor, readout_mask: Tensor | None = None,
                num_graphs: int | None = None) -> Tensor:
        return self.head(self.embed(x, edge_index, batch, readout_mask, num_graphs))
