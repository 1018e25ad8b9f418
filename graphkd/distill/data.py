r"""Node-classification data and the GLNN / CPF evaluation protocol.

The protocol of `Zhang et al. (ICLR 2022) <https://arxiv.org/abs/2110.08727>`_,
inherited from CPF (`Yang et al., WWW 2021 <https://arxiv.org/abs/2103.02885>`_):

* the graph is made unweighted, undirected and free of self-loops, and only its
  largest connected component is kept (Cora: 2,485 of 2,708 nodes; CiteSeer:
  2,110 of 3,312);
* split ``i`` comes from ``numpy.random.RandomState(i)``: 20 training and 30
  validation nodes drawn per class (classes in order, each from its members in
  node order), the rest is the test set;
* **transductive** (``tran``): teacher and student see the whole graph and every
  node's features; scores on the test nodes;
* **inductive** (``ind``): 20% of the test nodes (a ``torch.randperm`` seeded with
  the split's seed) are held out with their edges. The teacher trains on the
  observed subgraph, the student on observed nodes only; held-out nodes appear
  only at test time (the GNN then sees the full graph, the MLP their features);
* **production** (``prod``): the inductive run scored as
  :math:`0.8 \cdot \text{acc}_\text{tran} + 0.2 \cdot \text{acc}_\text{ind}`,
  where :math:`\text{acc}_\text{tran}` is on the observed test nodes.

Model selection everywhere uses the validation nodes only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import LargestConnectedComponents
from torch_geometric.utils import remove_self_loops, subgraph, to_undirected

from geokd.paths import (
    MissingDataError,
    cache_root,
    data_root,
    dataset_lock,
    missing_data_message,
    offline,
    stage_raw_files,
)
from graphkd.datasets._staging import EMBEDDED_ROOT

#: CPF / gnn-benchmark npz files and where they are published.
CPF_URLS = {
    "cora": "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/cora.npz",
    "citeseer": "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/citeseer.npz",
    "pubmed": "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/pubmed.npz",
    "a-computer": "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/amazon_electronics_computers.npz",
    "a-photo": "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/amazon_electronics_photo.npz",
}
SETTINGS = ("tran", "ind", "prod")


def _npz_file_name(name: str) -> str:
    return CPF_URLS[name].rsplit("/", 1)[1]


def cpf_raw_path(name: str) -> Path:
    """The npz file of a CPF dataset, staged into the cache (downloaded only when found nowhere)."""
    key = name.lower()
    if key not in CPF_URLS:
        raise ValueError(f"dataset must be one of {sorted(CPF_URLS)}, got {name!r}")
    file_name = _npz_file_name(key)
    target_dir = cache_root() / "npz"
    target = target_dir / file_name
    with dataset_lock(target_dir):
        if not target.exists():
            sources = [data_root() / "npz", EMBEDDED_ROOT / "npz"]
            stage_raw_files([file_name], target_dir, sources)
        if not target.exists():
            if offline():
                raise MissingDataError(missing_data_message("CPF dataset", target_dir, [file_name], sources))
            from torch_geometric.data import download_url

            download_url(CPF_URLS[key], str(target_dir))
    return target


def read_cpf_npz(path: str | os.PathLike) -> Data:
    """A gnn-benchmark npz file as a PyG graph, before any cleaning.

    Features keep their stored values (CPF and GLNN use them as they are).
    """
    import scipy.sparse as sp

    with np.load(path, allow_pickle=True) as archive:
        files = dict(archive)
    adj = sp.csr_matrix((files["adj_data"], files["adj_indices"], files["adj_indptr"]), shape=files["adj_shape"])
    if "attr_data" in files:
        attr = sp.csr_matrix((files["attr_data"], files["attr_indices"], files["attr_indptr"]),
                             shape=files["attr_shape"]).toarray()
    else:
        attr = files["attr_matrix"]
    coo = adj.tocoo()
    edge_index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    return Data(x=torch.from_numpy(np.asarray(attr, dtype=np.float32)), edge_index=edge_index,
                y=torch.from_numpy(np.asarray(files["labels"]).astype(np.int64)))


def standardize(data: Data) -> Data:
    """Unweighted, undirected, no self-loops, largest connected component (nodes keep their order)."""
    edge_index, _ = remove_self_loops(data.edge_index)
    edge_index = to_undirected(edge_index, num_nodes=data.num_nodes)
    cleaned = Data(x=data.x, edge_index=edge_index, y=data.y)
    return LargestConnectedComponents(num_components=1)(cleaned)


def load_node_dataset(name: str) -> Data:
    r"""A node-classification graph under the CPF protocol's cleaning.

    Args:
        name (str): ``"cora"``, ``"citeseer"``, ``"pubmed"``, ``"a-computer"``, ``"a-photo"``
            (gnn-benchmark npz files, read from ``$GEOKD_DATA/npz`` when there; Cora is also
            embedded in the package).

    Returns:
        Data: ``x`` :math:`(N, F)`, ``edge_index`` :math:`(2, E)` (both directions),
        ``y`` :math:`(N,)`, ``num_classes``.
    """
    data = standardize(read_cpf_npz(cpf_raw_path(name)))
    data.num_classes = int(data.y.max()) + 1
    data.name = name.lower()
    return data


def cpf_split(labels: Tensor, seed: int, train_per_class: int = 20, val_per_class: int = 30) -> tuple[Tensor, Tensor, Tensor]:
    """Split ``seed`` of the CPF protocol: per-class training and validation draws, the rest for test.

    The draws reproduce gnn-benchmark's ``get_train_val_test_split`` (the splits GLNN and CPF use):
    a ``numpy.random.RandomState(seed)`` draws without replacement, class by class, first the
    training nodes, then the validation nodes from the remaining members.

    Returns:
        (Tensor, Tensor, Tensor): training, validation and test node indices.
    """
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty 1-D tensor, got shape {tuple(labels.shape)}")
    if labels.min() < 0:
        raise ValueError("labels must be >= 0 (every node of the protocol is labelled)")
    y = labels.cpu().numpy()
    num_classes = int(y.max()) + 1
    members = [np.flatnonzero(y == c) for c in range(num_classes)]
    for c, nodes in enumerate(members):
        if len(nodes) < train_per_class + val_per_class:
            raise ValueError(
                f"class {c} has {len(nodes)} nodes, fewer than train_per_class + val_per_class = "
                f"{train_per_class + val_per_class}"
            )
    random_state = np.random.RandomState(seed)
    train = np.concatenate([random_state.choice(nodes, train_per_class, replace=False) for nodes in members])
    taken = set(train.tolist())
    val = np.concatenate([
        random_state.choice([v for v in nodes if v not in taken], val_per_class, replace=False) for nodes in members
    ])
    test = np.setdiff1d(np.arange(len(y)), np.concatenate([train, val]))
    return (torch.from_numpy(train.astype(np.int64)), torch.from_numpy(val.astype(np.int64)),
            torch.from_numpy(test.astype(np.int64)))


def inductive_split(test_index: Tensor, seed: int, rate: float = 0.2) -> tuple[Tensor, Tensor]:
    """Hold out ``rate`` of the test nodes: ``(test_observed, test_held_out)`` (GLNN's ``graph_split``)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(test_index.numel(), generator=generator)
    cut = int(test_index.numel() * rate)
    return test_index[order[cut:]], test_index[order[:cut]]


@dataclass
class NodeSplit:
    r"""One seed's split in one setting, in the full graph's node ids.

    Attributes:
        setting (str): ``"tran"`` or ``"ind"`` (``"prod"`` is scored from an ``"ind"`` split).
        train, val, test (Tensor): labelled training, validation and (observed) test nodes.
        test_ind (Tensor): held-out test nodes (empty in ``tran``).
        observed (Tensor): nodes whose features and edges training may use (all in ``tran``).
        edge_index (Tensor): the edges among observed nodes :math:`(2, E_\text{obs})`.
        full_edge_index (Tensor): every edge, for scoring held-out nodes with a GNN.
    """

    setting: str
    train: Tensor
    val: Tensor
    test: Tensor
    test_ind: Tensor
    observed: Tensor
    edge_index: Tensor
    full_edge_index: Tensor
    num_nodes: int
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def observed_mask(self) -> Tensor:
        mask = torch.zeros(self.num_nodes, dtype=torch.bool)
        mask[self.observed] = True
        return mask


def make_split(data: Data, setting: str, seed: int, train_per_class: int = 20, val_per_class: int = 30,
               held_out_rate: float = 0.2) -> NodeSplit:
    """The split of ``seed`` in ``setting`` (``"tran"``, ``"ind"`` or ``"prod"``, which uses ``"ind"``'s)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    train, val, test = cpf_split(data.y, seed, train_per_class, val_per_class)
    num_nodes = data.num_nodes
    if setting == "tran":
        return NodeSplit("tran", train, val, test, torch.empty(0, dtype=torch.long), torch.arange(num_nodes),
                         data.edge_index, data.edge_index, num_nodes, seed)
    test_observed, test_ind = inductive_split(test, seed, held_out_rate)
    observed = torch.cat([train, val, test_observed]).sort().values
    edge_index, _ = subgraph(observed, data.edge_index, num_nodes=num_nodes)
    return NodeSplit("ind", train, val, test_observed, test_ind, observed, edge_index, data.edge_index, num_nodes,
                     seed)
