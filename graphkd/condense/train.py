"""Training and evaluation of graph classifiers on full or condensed training sets, one protocol for all.

Every method's training set is a list of PyG graphs (original graphs, or graphs
of computation trees with a ``root_mask``) with optional sampling weights; the
model is selected on the original validation graphs and scored on the original
test graphs. Scores: accuracy, and ROC-AUC (binary tasks; one-vs-rest macro
average otherwise; ``None`` when the graphs scored hold a single class).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from geokd.seed import seed_everything
from graphkd.nn import GraphClassifier


def stratified_split(labels: Sequence[int], seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[list, list, list]:
    """Random stratified train/validation/test indices (80/10/10 by default, as Mirage's TU protocol)."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    indices = np.arange(len(labels))
    train, rest = train_test_split(indices, train_size=fractions[0], random_state=seed, stratify=labels)
    rest_labels = [labels[i] for i in rest]
    val, test = train_test_split(
        rest, train_size=fractions[1] / (fractions[1] + fractions[2]), random_state=seed, stratify=rest_labels
    )
    return sorted(train.tolist()), sorted(val.tolist()), sorted(test.tolist())


class NodeInputs:
    """The float node inputs a GNN reads, made the same way for every graph of a protocol.

    - dataset features (``num_features`` columns of floats, e.g. one-hot atom types);
    - categorical integer columns (OGB molecules: ``categorical_dims[j]`` values in column
      ``j``), one-hot encoded per column and concatenated, which is OGB's ``AtomEncoder``
      (a sum of per-column embeddings) once followed by the GNN's first linear layer;
    - no features (IMDB-BINARY): a one-hot in-degree capped at ``max_degree``. Graphs of
      computation trees carry their nodes' original categories (``node_label``), which
      stand for those degrees.

    A graph whose ``x`` is already float and :attr:`size` wide (learned synthetic graphs)
    is passed through unchanged.

    Args:
        num_features (int or None): feature columns; ``None`` or 0 for featureless graphs.
        max_degree (int): degree cap for featureless graphs. (default: ``64``)
        categorical_dims (Sequence[int], optional): values per categorical column. (default: ``None``)
    """

    def __init__(self, num_features: int | None, max_degree: int = 64, categorical_dims: Sequence[int] | None = None):
        self.num_features = num_features
        self.max_degree = max_degree
        self.categorical_dims = list(categorical_dims) if categorical_dims is not None else None
        if self.categorical_dims is not None and (not self.categorical_dims or min(self.categorical_dims) < 1):
            raise ValueError(f"categorical_dims must be a non-empty list of positive ints, got {categorical_dims}")

    @classmethod
    def for_graphs(cls, graphs: Sequence[Data], max_degree: int = 64) -> NodeInputs:
        """The inputs suited to ``graphs`` (give all of a dataset's graphs, so that value ranges cover every split)."""
        x = graphs[0].x
        if x is None:
            return cls(None, max_degree)
        if x.is_floating_point():
            return cls(x.size(1), max_degree)
        maxima = torch.stack([g.x.amax(dim=0) for g in graphs if g.num_nodes]).amax(dim=0)
        return cls(x.size(1), max_degree, categorical_dims=(maxima + 1).tolist())

    @property
    def size(self) -> int:
        if self.categorical_dims is not None:
            return sum(self.categorical_dims)
        return self.num_features if self.num_features else self.max_degree + 1

    def __call__(self, data: Data) -> Data:
        data = copy.copy(data)
        x = data.x
        if x is not None and x.is_floating_point() and x.dim() == 2 and x.size(1) == self.size:
            return data
        if self.categorical_dims is not None:
            codes = x.long()
            if codes.dim() != 2 or codes.size(1) != len(self.categorical_dims):
                raise ValueError(f"x must have {len(self.categorical_dims)} categorical columns, got shape "
                                 f"{list(x.shape)}")
            bounds = torch.tensor(self.categorical_dims)
            if codes.numel() and ((codes < 0).any() or (codes >= bounds).any()):
                raise ValueError(f"x holds category values outside [0, {self.categorical_dims}) per column")
            data.x = torch.cat([F.one_hot(codes[:, j], size) for j, size in enumerate(self.categorical_dims)],
                               dim=1).float()
            return data
        if self.num_features:
            data.x = x.float()
            return data
        if getattr(data, "node_label", None) is not None:
            degree = data.node_label
        else:
            degree = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
        data.x = F.one_hot(degree.clamp(max=self.max_degree), self.max_degree + 1).float()
        return data


def scores(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    probabilities = logits.softmax(dim=1).numpy()
    labels_np = labels.numpy()
    result = {"accuracy": float((logits.argmax(dim=1) == labels).float().mean())}
    # ROC-AUC is undefined when the graphs hold a single class: None, never a NaN that would
    # spread silently into means.
    result["roc_auc"] = None
    if len(np.unique(labels_np)) == probabilities.shape[1]:
        if probabilities.shape[1] == 2:
            result["roc_auc"] = float(roc_auc_score(labels_np, probabilities[:, 1]))
        else:
            result["roc_auc"] = float(roc_auc_score(labels_np, probabilities, multi_class="ovr"))
    return result


class PackedGraphs:
    """Training graphs stored as one set of concatenated tensors, from which a batch of any graphs is
    cut with a few index operations: the same tensors as PyG's collation of those graphs
    (``Batch.from_data_list``), made in a fraction of its time.

    Keeps what :class:`~graphkd.nn.GraphClassifier` training reads: ``x``, ``edge_index``, one label
    ``y`` per graph and, when every graph has one, the readout mask ``root_mask``.
    """

    def __init__(self, graphs: Sequence[Data]):
        if not graphs:
            raise ValueError("graphs is empty")
        self.num_nodes = torch.tensor([g.num_nodes for g in graphs])
        self.num_edges = torch.tensor([g.edge_index.size(1) for g in graphs])
        self.node_ptr = torch.cumsum(self.num_nodes, 0) - self.num_nodes
        self.edge_ptr = torch.cumsum(self.num_edges, 0) - self.num_edges
        self.x = torch.cat([g.x for g in graphs])
        self.edge_index = torch.cat([g.edge_index for g in graphs], dim=1)  # each graph's own node ids
        self.y = torch.cat([g.y.view(-1) for g in graphs])
        if self.y.numel() != len(graphs):
            raise ValueError(f"every graph must hold one label y, got {self.y.numel()} labels for {len(graphs)} graphs")
        masks = [getattr(g, "root_mask", None) for g in graphs]
        self.root_mask = torch.cat(masks) if all(m is not None for m in masks) else None

    def __len__(self) -> int:
        return self.num_nodes.numel()

    @staticmethod
    def _ranges(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Concatenated ``arange(start, start + count)`` per graph, each element's graph, and the
        graphs' offsets in the concatenation."""
        owner = torch.repeat_interleave(torch.arange(counts.numel()), counts)
        offsets = torch.cumsum(counts, 0) - counts
        return starts[owner] + torch.arange(owner.numel()) - offsets[owner], owner, offsets

    def batch(self, index: Tensor) -> Batch:
        """The graphs ``index`` (in that order, repeats allowed) as one PyG batch."""
        nodes, node_owner, node_offsets = self._ranges(self.node_ptr[index], self.num_nodes[index])
        edges, edge_owner, _ = self._ranges(self.edge_ptr[index], self.num_edges[index])
        batch = Batch(x=self.x[nodes], edge_index=self.edge_index[:, edges] + node_offsets[edge_owner],
                      y=self.y[index], batch=node_owner)
        if self.root_mask is not None:
            batch.root_mask = self.root_mask[nodes]
        return batch


def evaluation_batches(graphs: Sequence[Data], inputs: NodeInputs, device: torch.device,
                       batch_size: int = 256) -> list[Batch]:
    """``graphs`` encoded by ``inputs`` and collated into batches on ``device``, in order: made once and
    scored every epoch by :func:`evaluate`, instead of encoding and collating the graphs again each time."""
    return [batch.to(device) for batch in DataLoader([inputs(g) for g in graphs], batch_size=batch_size)]


@torch.no_grad()
def evaluate(model: GraphClassifier, graphs: Sequence[Data] | Sequence[Batch], inputs: NodeInputs | None,
             device: torch.device) -> dict:
    """Scores of ``model`` on ``graphs``: PyG graphs (encoded by ``inputs``), or the batches
    :func:`evaluation_batches` made of them (``inputs`` is then not used)."""
    model.eval()
    if inputs is not None:
        graphs = evaluation_batches(graphs, inputs, device)
    logits, labels = [], []
    for batch in graphs:
        logits.append(model(batch.x, batch.edge_index, batch.batch, getattr(batch, "root_mask", None),
                            batch.num_graphs).cpu())
        labels.append(batch.y.view(-1).cpu())
    return scores(torch.cat(logits), torch.cat(labels))


def train_graph_classifier(
    train_graphs: Sequence[Data],
    val_graphs: Sequence[Data],
    test_graphs: Sequence[Data],
    inputs: NodeInputs,
    num_classes: int,
    gnn: str = "gcn",
    num_layers: int = 2,
    hidden: int = 64,
    epochs: int = 100,
    batch_size: int = 32,
    lr: float = 0.005,
    weight_decay: float = 5e-4,
    dropout: float = 0.0,
    sample_weights: Sequence[float] | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    select_on: str = "roc_auc",
    return_model: bool = False,
) -> dict:
    r"""Train a :class:`~graphkd.nn.GraphClassifier`, select the epoch on validation, score on test.

    Args:
        train_graphs: the training set; graphs with a ``root_mask`` read out their roots only.
        sample_weights: draw training graphs with these probabilities (with replacement,
            ``steps_per_epoch`` batches an epoch) instead of shuffling. (default: ``None``)
        select_on (str): ``"roc_auc"`` or ``"accuracy"`` on the validation graphs. (default: ``"roc_auc"``)
        return_model (bool): also return the selected model under ``"model"``. (default: ``False``)

    Returns:
        dict: ``val`` and ``test`` scores at the selected epoch, ``best_epoch``, ``train_seconds``.
    """
    for name, graphs in (("train_graphs", train_graphs), ("val_graphs", val_graphs), ("test_graphs", test_graphs)):
        if len(graphs) == 0:
            raise ValueError(f"{name} is empty")
    if select_on not in ("roc_auc", "accuracy"):
        raise ValueError(f"select_on must be 'roc_auc' or 'accuracy', got {select_on!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    seed_everything(seed)
    device = torch.device(device)
    model = GraphClassifier(gnn, inputs.size, hidden, num_layers, num_classes, dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    packed = PackedGraphs([inputs(g) for g in train_graphs])
    generator = torch.Generator().manual_seed(seed)
    # The loader draws graph indices only (the same draws as a loader over the graphs themselves);
    # the packed graphs are cut into each batch.
    indices = range(len(packed))
    if sample_weights is not None:
        weights = torch.tensor(list(sample_weights), dtype=torch.double)
        if weights.numel() != len(packed) or not (weights >= 0).all() or weights.sum() <= 0:
            raise ValueError("sample_weights must be non-negative, one per training graph, not all zero")
        steps = steps_per_epoch or max(1, len(packed) // batch_size)
        sampler = torch.utils.data.WeightedRandomSampler(weights, steps * batch_size, replacement=True,
                                                         generator=generator)
        loader = torch.utils.data.DataLoader(indices, batch_size=batch_size, sampler=sampler)
    else:
        loader = torch.utils.data.DataLoader(indices, batch_size=batch_size, shuffle=True, generator=generator)

    best = {"score": -float("inf"), "epoch": -1, "state": None}
    started = time.perf_counter()
    val_batches = evaluation_batches(val_graphs, inputs, device)
    for epoch in range(epochs):
        model.train()
        for index in loader:
            batch = packed.batch(index).to(device)
            optimizer.zero_grad()
            logits = model(batch.x, batch.edge_index, batch.batch, getattr(batch, "root_mask", None), index.numel())
            loss = F.cross_entropy(logits, batch.y.view(-1))
            loss.backward()
            optimizer.step()
        val = evaluate(model, val_batches, None, device)
        score = val[select_on] if val[select_on] is not None else val["accuracy"]
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict()), "val": val}
    train_seconds = time.perf_counter() - started
    model.load_state_dict(best["state"])
    result = {
        "val": best["val"],
        "test": evaluate(model, test_graphs, inputs, device),
        "best_epoch": best["epoch"],
        "train_seconds": round(train_seconds, 2),
    }
    if return_model:
        result["model"] = model
    return result
