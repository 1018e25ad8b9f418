r"""GNN teachers for node classification: GraphSAGE, GCN, GAT and APPNP (PyG layers).

Every teacher maps ``(x, edge_index)`` to logits and exposes the node
representation before its last layer (:meth:`forward_with_hidden`), which
NOSMOG's similarity distillation and VQGraph's tokenizer use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import APPNP, GATConv, GCNConv, SAGEConv
from torch_geometric.utils import add_remaining_self_loops


class NodeGNN(torch.nn.Module):
    r"""A stack of message-passing layers with ReLU and dropout in between.

    ``"sage"`` is GraphSAGE with GLNN's (and DGL's) ``gcn`` aggregator,
    :math:`h_v' = W \cdot \operatorname{mean}\{h_u : u \in N(v) \cup \{v\}\}`
    (`Hamilton et al., 2017 <https://arxiv.org/abs/1706.02216>`_); ``"gcn"`` is
    `Kipf & Welling (2017) <https://arxiv.org/abs/1609.02907>`_; ``"gat"``
    `Veličković et al. (2018) <https://arxiv.org/abs/1710.10903>`_ with ``heads``
    concatenated in hidden layers and one head in the output layer.

    Args:
        kind (str): ``"sage"``, ``"gcn"`` or ``"gat"``.
        in_channels, hidden_channels, out_channels (int): feature, hidden and class sizes.
        num_layers (int): message-passing layers. (default: ``2``)
        dropout (float): dropout on hidden representations. (default: ``0.0``)
        heads (int): GAT attention heads of the hidden layers. (default: ``8``)
        attn_dropout (float): GAT attention dropout. (default: ``0.0``)
        norm (str): ``"none"``, ``"batch"`` or ``"layer"`` after each hidden layer. (default: ``"none"``)
    """

    def __init__(self, kind: str, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
                 dropout: float = 0.0, heads: int = 8, attn_dropout: float = 0.0, norm: str = "none"):
        super().__init__()
        if kind not in ("sage", "gcn", "gat"):
            raise ValueError(f"kind must be 'sage', 'gcn' or 'gat', got {kind!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.kind, self.dropout = kind, dropout
        self.convs = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        width = in_channels
        for layer in range(num_layers):
            last = layer == num_layers - 1
            out = out_channels if last else hidden_channels
            if kind == "sage":
                conv = SAGEConv(width, out, aggr="mean", root_weight=False)
            elif kind == "gcn":
                conv = GCNConv(width, out, cached=False)
            else:
                layer_heads = 1 if last else heads
                if not last and hidden_channels % heads:
                    raise ValueError(f"hidden_channels ({hidden_channels}) must be divisible by heads ({heads})")
                conv = GATConv(width, out // layer_heads, heads=layer_heads, dropout=attn_dropout)
            self.convs.append(conv)
            if not last:
                if norm == "batch":
                    self.norms.append(torch.nn.BatchNorm1d(out))
                elif norm == "layer":
                    self.norms.append(torch.nn.LayerNorm(out))
                else:
                    self.norms.append(torch.nn.Identity())
            width = out

    def forward_with_hidden(self, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        if self.kind == "sage":
            edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=x.size(0))
        hidden = x
        for conv, norm in zip(self.convs[:-1], self.norms):
            hidden = F.dropout(F.relu(norm(conv(hidden, edge_index))), self.dropout, self.training)
        return self.convs[-1](hidden, edge_index), hidden

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.forward_with_hidden(x, edge_index)[0]


class APPNPNet(torch.nn.Module):
    r"""APPNP (`Gasteiger et al., 2019 <https://arxiv.org/abs/1810.05997>`_): an MLP, then
    personalised-PageRank propagation :math:`Z^{(k+1)} = (1-\alpha)\hat A Z^{(k)} + \alpha H`.

    Args:
        in_channels, hidden_channels, out_channels (int): sizes.
        num_layers (int): MLP layers. (default: ``2``)
        dropout (float): MLP dropout. (default: ``0.5``)
        K (int): propagation steps. (default: ``10``)
        alpha (float): teleport probability. (default: ``0.1``)
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
                 dropout: float = 0.5, K: int = 10, alpha: float = 0.1):
        super().__init__()
        from graphkd.nn.mlp import MLP

        self.mlp = MLP(in_channels, hidden_channels, out_channels, num_layers, dropout)
        self.propagate = APPNP(K, alpha)

    def forward_with_hidden(self, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        logits, hidden = self.mlp.forward_with_hidden(x)
        return self.propagate(logits, edge_index), hidden

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.forward_with_hidden(x, edge_index)[0]


#: Teacher defaults on the CPF datasets (GLNN's configuration for Cora and CiteSeer).
TEACHER_DEFAULTS = {
    "sage": {"hidden_channels": 128, "num_layers": 2, "dropout": 0.0, "lr": 0.01, "weight_decay": 5e-4,
             "fan_out": [5, 5], "batch_size": 512},
    "gcn": {"hidden_channels": 64, "num_layers": 2, "dropout": 0.8, "lr": 0.01, "weight_decay": 1e-3},
    "gat": {"hidden_channels": 128, "num_layers": 2, "dropout": 0.6, "lr": 0.01, "weight_decay": 1e-2, "heads": 8,
            "attn_dropout": 0.3},
    "appnp": {"hidden_channels": 128, "num_layers": 2, "dropout": 0.5, "lr": 0.01, "weight_decay": 1e-2},
}
TEACHERS = tuple(TEACHER_DEFAULTS)


def build_teacher(kind: str, in_channels: int, out_channels: int, **overrides) -> torch.nn.Module:
    """A teacher with :data:`TEACHER_DEFAULTS` for ``kind``, updated by ``overrides`` (model arguments only)."""
    if kind not in TEACHER_DEFAULTS:
        raise ValueError(f"teacher must be one of {TEACHERS}, got {kind!r}")
    settings = {k: v for k, v in TEACHER_DEFAULTS[kind].items() if k not in ("lr", "weight_decay", "fan_out",
                                                                              "batch_size")}
    settings.update(overrides)
    if kind == "appnp":
        return APPNPNet(in_channels, settings["hidden_channels"], out_channels, settings["num_layers"],
                        settings["dropout"])
    return NodeGNN(kind, in_channels, settings["hidden_channels"], out_channels, settings["num_layers"],
                   settings["dropout"], heads=settings.get("heads", 8), attn_dropout=settings.get("attn_dropout", 0.0),
                   norm=settings.get("norm", "none"))
