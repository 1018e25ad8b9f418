"""Small synthetic graphs shared by the distillation method tests."""

import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphkd.distill.data import NodeSplit, make_split

#: Split sizes for the tiny graphs: 3 training and 3 validation nodes per class, 30% held out.
TINY_SPLIT = {"train_per_class": 3, "val_per_class": 3, "held_out_rate": 0.3}


def tiny_graph(num_nodes: int = 45, num_classes: int = 3, num_features: int = 6, seed: int = 0,
               signal: float = 1.0) -> Data:
    """A ring with random chords; features are noise plus ``signal`` x one-hot(class)."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(num_nodes) % num_classes
    x = torch.randn(num_nodes, num_features, generator=generator) + signal * F.one_hot(y, num_features).float()
    ring = torch.stack([torch.arange(num_nodes), (torch.arange(num_nodes) + 1) % num_nodes])
    chords = torch.randint(0, num_nodes, (2, num_nodes), generator=generator)
    chords = chords[:, chords[0] != chords[1]]
    data = Data(x=x, y=y, edge_index=to_undirected(torch.cat([ring, chords], dim=1), num_nodes=num_nodes))
    data.num_classes = num_classes
    data.name = "tiny"
    return data


def held_out_variant(data: Data, split: NodeSplit) -> tuple[Data, NodeSplit]:
    """``data`` changed only where an inductive run must not look: new features at the held-out
    nodes and new edges between them and observed nodes; with its split (same nodes, same
    observed edges)."""
    held_out, observed = split.test_ind, split.observed
    changed = data.clone()
    changed.x[held_out] = torch.randn(held_out.numel(), data.num_features) * 5
    extra = torch.stack([held_out, observed[torch.arange(held_out.numel()) % observed.numel()]])
    changed.edge_index = to_undirected(torch.cat([data.edge_index, extra], dim=1), num_nodes=data.num_nodes)
    changed_split = make_split(changed, "ind", 0, **TINY_SPLIT)
    assert torch.equal(changed_split.test_ind, held_out) and torch.equal(changed_split.edge_index, split.edge_index)
    assert not torch.equal(changed_split.full_edge_index, split.full_edge_index)
    return changed, changed_split
