r"""KiDD: graph dataset distillation by kernel ridge regression
(`Xu, Chen, Pan, Chen, Wang, Tong and Zhang, KDD 2023 <https://arxiv.org/abs/2306.07566>`_).

A baseline for :mod:`graphkd.condense.mirage`. KiDD learns a few synthetic
graphs per class such that kernel ridge regression (KRR) fitted on them
classifies the real training graphs well, with a graph neural tangent kernel
(GNTK, `Du et al., NeurIPS 2019 <https://arxiv.org/abs/1905.13192>`_) as the
kernel: the KRR predictor is the limit of a wide GNN trained to convergence on
the synthetic graphs, so no GNN is trained or unrolled, and the gradient to the
synthetic graphs is exact. KiDD's *LiteGNTK* keeps the GNTK's aggregations but
puts the (infinitely wide) MLP after the first one only, which makes it cheap.

Node-pair form used here: for two sides :math:`P` and :math:`Q` (synthetic
graphs, a batch of real ones), every quantity is a matrix over pairs of nodes
:math:`(u, v)`, :math:`u` in a graph of :math:`P`, :math:`v` in a graph of
:math:`Q`; aggregation with :math:`\hat A = A + I` (each node sums itself and
its in-neighbours; GNTK's uniform scale) acts on both indices. Real graphs stay
sparse (one sparse aggregation per layer over the whole batch), synthetic ones
are dense, so the cost is :math:`O(V_P V_Q)` per layer without ever forming a
dense real adjacency.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch, Data

from geokd.log import progress
from graphkd.condense.doscond import (
    INIT_LOGIT,
    _default_nodes,
    _initial_graphs,
    _prepared_by_class,
    _relaxed_adjacency,
    _synthetic_graphs,
    _temperature,
)
from graphkd.condense.train import NodeInputs

#: The constant added to every input inner product before the first aggregation (the authors'
#: code: it keeps the kernel's diagonal positive for nodes whose aggregated features vanish).
#: It is the kernel of a constant input feature :math:`\sqrt{c}`.
INPUT_CONSTANT = 1e-4
#: Correlations are clipped to :math:`[-1 + \epsilon, 1 - \epsilon]` before the arc-cosine
#: functions, whose derivative is infinite at :math:`\pm 1` (the authors clip at 0.9999).
CORRELATION_EPS = 1e-6


@dataclass
class GraphSide:
    """One side of a kernel evaluation: the nodes of several graphs and how they aggregate.

    Build it with :meth:`dense` (graphs of equal size with dense, possibly relaxed adjacencies:
    synthetic graphs) or :meth:`sparse` (a PyG batch: real graphs).

    Attributes:
        x (Tensor): node inputs, all graphs' nodes stacked. Shape :math:`(V, d)`.
        graph (Tensor): the graph of each node, in ``range(num_graphs)``. Shape :math:`(V,)`.
        num_graphs (int): how many graphs.
        aggregate (callable): ``M -> Â M`` for ``M`` of shape :math:`(V, K)`, where :math:`\\hat A`
            is the block-diagonal adjacency with self loops (row ``v`` sums ``v`` and the nodes
            sending to ``v``).
    """

    x: Tensor
    graph: Tensor
    num_graphs: int
    aggregate: Callable[[Tensor], Tensor]

    @classmethod
    def dense(cls, x: Tensor, adjacency: Tensor) -> GraphSide:
        r"""Graphs given as dense tensors.

        Args:
            x (Tensor): node inputs. Shape :math:`(N, n, d)`.
            adjacency (Tensor): weights :math:`A_{vu}` of the messages :math:`u \to v`, any real
                values (a relaxed adjacency is fine); self loops are added. Shape :math:`(N, n, n)`.
        """
        if x.dim() != 3 or adjacency.dim() != 3 or adjacency.shape != (x.size(0), x.size(1), x.size(1)):
            raise ValueError(f"x must be (N, n, d) and adjacency (N, n, n), got {tuple(x.shape)} and "
                             f"{tuple(adjacency.shape)}")
        num_graphs, num_nodes, _ = x.shape
        with_loops = adjacency + torch.eye(num_nodes, dtype=adjacency.dtype, device=adjacency.device)

        def aggregate(matrix: Tensor) -> Tensor:
            return torch.bmm(with_loops, matrix.reshape(num_graphs, num_nodes, -1)).reshape(matrix.shape)

        graph = torch.arange(num_graphs, device=x.device).repeat_interleave(num_nodes)
        return cls(x.reshape(num_graphs * num_nodes, -1), graph, num_graphs, aggregate)

    @classmethod
    def sparse(cls, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int) -> GraphSide:
        r"""Graphs given as one PyG batch.

        Args:
            x (Tensor): node inputs. Shape :math:`(V, d)`.
            edge_index (Tensor): messages :math:`u \to v` as columns ``(u, v)`` (PyG's source-to-target
                convention; repeated edges count repeatedly). Shape :math:`(2, E)`.
            batch (Tensor): the graph of each node. Shape :math:`(V,)`.
            num_graphs (int): how many graphs.
        """
        source, target = edge_index[0], edge_index[1]

        def aggregate(matrix: Tensor) -> Tensor:
            return matrix.index_add(0, target, matrix[source])

        return cls(x, batch, num_graphs, aggregate)

    def readout(self, node_pairs: Tensor, other: GraphSide, mean: bool) -> Tensor:
        """Sums (or means) of a :math:`(V, V')` node-pair matrix over each pair of graphs."""
        per_row = torch.zeros(self.num_graphs, node_pairs.size(1), dtype=node_pairs.dtype, device=node_pairs.device)
        per_row = per_row.index_add(0, self.graph, node_pairs)
        pooled = torch.zeros(self.num_graphs, other.num_graphs, dtype=node_pairs.dtype, device=node_pairs.device)
        pooled = pooled.index_add(1, other.graph, per_row)
        if mean:
            count = torch.bincount(self.graph, minlength=self.num_graphs).to(pooled.dtype).clamp(min=1)
            count_other = torch.bincount(other.graph, minlength=other.num_graphs).to(pooled.dtype).clamp(min=1)
            pooled = pooled / count[:, None] / count_other[None, :]
        return pooled


def _first_layer(side: GraphSide) -> tuple[Tensor, Tensor]:
    """Aggregated inputs (with the constant feature) and the diagonal of their kernel."""
    constant = torch.full((side.x.size(0), 1), math.sqrt(INPUT_CONSTANT), dtype=side.x.dtype, device=side.x.device)
    features = side.aggregate(torch.cat([side.x, constant], dim=1))
    return features, (features * features).sum(dim=1)


def lite_gntk(first: GraphSide, second: GraphSide, num_layers: int = 5, mlp_layers: int = 1,
              readout: str = "mean") -> Tensor:
    r"""The LiteGNTK between every graph of ``first`` and every graph of ``second``.

    With :math:`h_u` the input of node :math:`u` extended by a constant :math:`\sqrt{c}`
    (:data:`INPUT_CONSTANT`) and :math:`\hat A = A + I`, for nodes :math:`u \in G`, :math:`v \in H`:

    .. math::
        \Sigma^{(0)}_{uv} = \bigl\langle (\hat A_G h)_u, (\hat A_H h)_v \bigr\rangle, \qquad
        \Theta^{(0)} = \Sigma^{(0)},

    then each of the ``mlp_layers`` ReLU layers (NTK parametrisation, :math:`c_\sigma = 2`), with
    :math:`\rho_{uv} = \Sigma_{uv} / \sqrt{\Sigma_{uu} \Sigma_{vv}}` (diagonals from each graph with
    itself, which a ReLU layer leaves unchanged):

    .. math::
        \dot\Sigma_{uv} = \frac{\pi - \arccos\rho_{uv}}{\pi}, \quad
        \Sigma_{uv} \leftarrow \sqrt{\Sigma_{uu}\Sigma_{vv}}\,
        \frac{\rho_{uv}(\pi - \arccos\rho_{uv}) + \sqrt{1 - \rho_{uv}^2}}{\pi}, \quad
        \Theta \leftarrow \Theta \odot \dot\Sigma + \Sigma,

    then ``num_layers - 1`` further aggregations :math:`\Theta \leftarrow \hat A_G \Theta \hat A_H^\top`,
    and the readout :math:`K(G, H) = \frac{1}{|G||H|} \sum_{u \in G, v \in H} \Theta_{uv}` (``"mean"``,
    the authors' pooling) or the plain sum (``"sum"``).

    It is the neural tangent kernel of the infinitely wide network
    :math:`f(G) = \operatorname{readout}\bigl(\hat A^{L-1} \operatorname{MLP}(\hat A h)\bigr) w`
    (checked against the empirical NTK of a wide random network in the tests).

    Args:
        first (GraphSide): the graphs of the rows.
        second (GraphSide): the graphs of the columns (may be ``first``).
        num_layers (int): aggregations :math:`L` (default: ``5``, the authors' setting).
        mlp_layers (int): ReLU layers after the first aggregation. (default: ``1``)
        readout (str): ``"mean"`` or ``"sum"``. (default: ``"mean"``)

    Returns:
        Tensor: the kernel matrix. Shape :math:`(N_{first}, N_{second})`.
    """
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
    if not isinstance(mlp_layers, int) or mlp_layers < 0:
        raise ValueError(f"mlp_layers must be an int >= 0, got {mlp_layers!r}")
    if readout not in ("mean", "sum"):
        raise ValueError(f"readout must be 'mean' or 'sum', got {readout!r}")
    if first.x.size(1) != second.x.size(1):
        raise ValueError(f"both sides need the same input width, got {first.x.size(1)} and {second.x.size(1)}")
    features_first, diagonal_first = _first_layer(first)
    features_second, diagonal_second = (features_first, diagonal_first) if second is first else _first_layer(second)
    sigma = features_first @ features_second.t()
    theta = sigma
    if mlp_layers:
        scale = torch.sqrt(diagonal_first[:, None] * diagonal_second[None, :])
        for _ in range(mlp_layers):
            rho = (sigma / scale).clamp(-1 + CORRELATION_EPS, 1 - CORRELATION_EPS)
            angle = torch.acos(rho)
            sigma_dot = (math.pi - angle) / math.pi
            sigma = scale * (rho * (math.pi - angle) + torch.sqrt(1 - rho * rho)) / math.pi
            theta = theta * sigma_dot + sigma
    for _ in range(num_layers - 1):
        theta = first.aggregate(theta)
        theta = second.aggregate(theta.t()).t()
    return first.readout(theta, second, mean=readout == "mean")


def krr_predict(kernel_train: Tensor, kernel_test_train: Tensor, targets: Tensor, ridge: float) -> Tensor:
    r"""Kernel ridge regression: :math:`K_{TS}\,(K_{SS} + \lambda \frac{\operatorname{tr} K_{SS}}{N_S} I)^{-1} Y_S`.

    The ridge is relative to the mean of the kernel's diagonal (the authors' choice), so that it
    does not depend on the kernel's scale. Solved in float64, returned in the kernel's dtype.

    Shapes:
        - kernel_train: :math:`(N_S, N_S)`; kernel_test_train: :math:`(N_T, N_S)`; targets: :math:`(N_S, C)`
        - output: :math:`(N_T, C)`
    """
    size = kernel_train.size(0)
    gram = kernel_train.double()
    regularized = gram + ridge * torch.trace(gram) / size * torch.eye(size, dtype=gram.dtype, device=gram.device)
    weights = torch.linalg.solve(regularized, targets.double())
    return (kernel_test_train.double() @ weights).to(kernel_train.dtype)


def _validate(train_graphs: Sequence[Data], num_classes: int, graphs_per_class: int, nodes_per_graph: int | None,
              num_layers: int, mlp_layers: int, iterations: int, batch_size: int, lr_features: float,
              lr_adjacency: float, ridge: float, orthogonal_weight: float, seed: int) -> None:
    if len(train_graphs) == 0:
        raise ValueError("train_graphs is empty")
    for name, value in (("num_classes", num_classes), ("graphs_per_class", graphs_per_class),
                        ("num_layers", num_layers), ("iterations", iterations), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not isinstance(mlp_layers, int) or isinstance(mlp_layers, bool) or mlp_layers < 0:
        raise ValueError(f"mlp_layers must be an int >= 0, got {mlp_layers!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if nodes_per_graph is not None and (not isinstance(nodes_per_graph, int) or isinstance(nodes_per_graph, bool)
                                        or nodes_per_graph < 1):
        raise ValueError(f"nodes_per_graph must be None or an int >= 1, got {nodes_per_graph!r}")
    for name, value in (("lr_features", lr_features), ("lr_adjacency", lr_adjacency),
                        ("orthogonal_weight", orthogonal_weight)):
        if not value >= 0 or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not ridge > 0 or not math.isfinite(ridge):
        raise ValueError(f"ridge must be a finite number > 0, got {ridge!r}")


def kidd(
    train_graphs: Sequence[Data],
    inputs: NodeInputs,
    num_classes: int,
    graphs_per_class: int = 10,
    nodes_per_graph: int | None = None,
    num_layers: int = 5,
    mlp_layers: int = 1,
    iterations: int = 300,
    lr_features: float = 1e-3,
    lr_adjacency: float = 1e-3,
    batch_size: int = 64,
    ridge: float = 1e-6,
    orthogonal_weight: float = 1e-3,
    init_order: Sequence[int] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    show_progress: bool = True,
    return_history: bool = False,
) -> list[Data] | tuple[list[Data], dict[str, list[float]]]:
    r"""Condense ``train_graphs`` into ``graphs_per_class`` synthetic graphs per class with KiDD
    (`KDD 2023 <https://arxiv.org/abs/2306.07566>`_).

    The synthetic graphs :math:`S` have learnable node features :math:`X'` and adjacency logits
    :math:`\Omega`, relaxed during training exactly as in :func:`graphkd.condense.doscond` (symmetric
    binary-concrete draws, temperature annealed from 1 to 0.01 over 200 iterations) and returned
    with their most likely structure :math:`[\sigma(\bar\Omega) > 0.5]`; their labels :math:`Y_S`
    are fixed one-hots. Every iteration draws ``batch_size`` real training graphs :math:`T` and
    minimises, with Adam on :math:`X'` and :math:`\Omega`,

    .. math::
        \mathcal{L} = \operatorname{CE}\Bigl(K_{TS}\,\bigl(K_{SS} + \lambda \tfrac{\operatorname{tr} K_{SS}}{N_S} I\bigr)^{-1} Y_S,\;
        y_T\Bigr) + \beta\, \bigl\lVert D^{-1/2} K_{SS} D^{-1/2} - I \bigr\rVert_F,

    with :math:`K` the :func:`lite_gntk` (mean readout), :math:`D = \operatorname{diag}(K_{SS})`,
    the cross-entropy taking the KRR outputs as logits and the second term the authors' orthogonality
    regulariser, which keeps the synthetic graphs' kernel rows apart. After each step, features are
    clipped to the per-column range of the real inputs (the authors clip to :math:`[0, 1]`, the
    range of their normalised features).

    Initialisation: each synthetic graph starts as a real graph of its class (features, logits
    :math:`\pm 5` from its edges), taken from ``init_order`` when given (the authors initialise
    from herding or k-center selections) and otherwise drawn at random preferring graphs of at
    most :math:`n` nodes, as in :func:`~graphkd.condense.doscond`.

    Departures from the authors' code: the adjacency logits are left unclipped (their code clips
    them to :math:`[0, 1]` after every step, which turns the :math:`\pm 5` initialisation into
    edge probabilities of 0.73 / 0.5 under the relaxation); :math:`n` is the class's mean node
    count (capped, as DosCond here) rather than a dataset-wide mean times a multiplier; the
    readout means over real nodes only (their padded dense batches include padding nodes).

    Args:
        train_graphs (sequence of Data): the training graphs, each with a label ``y``.
        inputs (NodeInputs): turns a graph into float node inputs of width ``inputs.size``.
        num_classes (int): every class in ``range(num_classes)`` must have a training graph.
        graphs_per_class (int): synthetic graphs per class (fewer where a class has fewer
            training graphs). (default: ``10``)
        nodes_per_graph (int, optional): nodes of every synthetic graph; ``None`` for the class's
            rounded mean node count, capped at :data:`graphkd.condense.doscond.MAX_DEFAULT_NODES`.
        num_layers (int): aggregations of the kernel. (default: ``5``, the authors')
        mlp_layers (int): ReLU layers of the kernel. (default: ``1``, the authors')
        iterations (int): optimisation steps, one real batch each. (default: ``300``)
        lr_features (float): Adam learning rate of :math:`X'`. (default: ``1e-3``)
        lr_adjacency (float): Adam learning rate of :math:`\Omega` (0 keeps the initial structure,
            the authors' setting on most datasets). (default: ``1e-3``)
        batch_size (int): real graphs per iteration. Memory is about
            :math:`(L + 6) \cdot V_S \cdot V_T` floats for :math:`V_S` synthetic and :math:`V_T`
            real nodes. (default: ``64``)
        ridge (float): :math:`\lambda`. (default: ``1e-6``, the authors')
        orthogonal_weight (float): :math:`\beta`. (default: ``1e-3``, the authors')
        init_order (sequence of int, optional): indices into ``train_graphs`` in order of preference
            for the initial graphs; each class takes its first ``graphs_per_class`` (cut to
            :math:`n` nodes). (default: ``None``, random)
        seed (int): seeds the initial graphs, the batches and the noise; the global random state
            is neither used nor changed. (default: ``0``)
        device (str or torch.device): where the optimisation runs. (default: ``"cpu"``)
        show_progress (bool): show a progress bar. (default: ``True``)
        return_history (bool): also return ``{"krr": [...], "orthogonal": [...], "accuracy": [...]}``
            per iteration (``accuracy``: of the KRR predictor on the batch). (default: ``False``)

    Returns:
        list of Data: the synthetic graphs, class by class, each with ``x``, ``edge_index`` (both
        directions, no self loops; possibly empty) and ``y``; with ``return_history``, the pair
        ``(graphs, history)``.
    """
    _validate(train_graphs, num_classes, graphs_per_class, nodes_per_graph, num_layers, mlp_layers, iterations,
              batch_size, lr_features, lr_adjacency, ridge, orthogonal_weight, seed)
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)

    prepared_graphs, by_class = _prepared_by_class(train_graphs, inputs, num_classes, "KiDD")
    if init_order is not None:
        order = [int(i) for i in init_order]
        bad = [i for i in order if not 0 <= i < len(train_graphs)]
        if bad:
            raise ValueError(f"init_order holds indices outside range(len(train_graphs)={len(train_graphs)}): {bad[:5]}")

    all_inputs = torch.cat([g.x for g in prepared_graphs])
    lower, upper = all_inputs.amin(dim=0).to(device), all_inputs.amax(dim=0).to(device)

    features, logits, labels = [], [], []
    for label, members in enumerate(by_class):
        graphs = [prepared_graphs[i] for i in members]
        count = min(graphs_per_class, len(graphs))
        num_nodes = nodes_per_graph if nodes_per_graph is not None else _default_nodes(graphs)
        preferred = None
        if init_order is not None:
            position = {index: slot for slot, index in enumerate(members)}
            preferred = [position[i] for i in order if i in position]
        x0, adjacency0 = _initial_graphs(graphs, count, num_nodes, generator, order=preferred)
        features.append(x0.to(device).requires_grad_())
        logits.append((INIT_LOGIT * (2 * adjacency0 - 1)).to(device).requires_grad_())
        labels.append(torch.full((count,), label, dtype=torch.long))
    labels_synthetic = torch.cat(labels).to(device)
    targets = F.one_hot(labels_synthetic, num_classes).float()

    optimizer_features = torch.optim.Adam(features, lr=lr_features)
    optimizer_adjacency = torch.optim.Adam(logits, lr=lr_adjacency)
    history: dict[str, list[float]] = {"krr": [], "orthogonal": [], "accuracy": []}
    steps = range(iterations)
    if show_progress:
        steps = progress(steps, desc="KiDD", unit="it")
    for iteration in steps:
        temperature = _temperature(iteration)
        chosen = torch.randperm(len(prepared_graphs), generator=generator)[:batch_size].tolist()
        batch = Batch.from_data_list([prepared_graphs[i] for i in chosen]).to(device)
        real = GraphSide.sparse(batch.x, batch.edge_index, batch.batch, len(chosen))
        # Classes may have synthetic graphs of different sizes: one dense side per class.
        sides = [GraphSide.dense(x, _relaxed_adjacency(logit, temperature, generator))
                 for x, logit in zip(features, logits)]
        # K_SS is symmetric: each block above the diagonal once, mirrored below it.
        blocks = {(i, j): lite_gntk(sides[i], sides[j], num_layers, mlp_layers)
                  for i in range(len(sides)) for j in range(i, len(sides))}
        kernel_train = torch.cat([torch.cat([blocks[(i, j)] if i <= j else blocks[(j, i)].t()
                                             for j in range(len(sides))], dim=1) for i in range(len(sides))], dim=0)
        kernel_test_train = torch.cat([lite_gntk(real, side, num_layers, mlp_layers) for side in sides], dim=1)
        prediction = krr_predict(kernel_train, kernel_test_train, targets, ridge)
        krr_loss = F.cross_entropy(prediction, batch.y.view(-1))
        diagonal = torch.sqrt(kernel_train.diagonal().clamp(min=1e-30))
        normalized = kernel_train / diagonal[:, None] / diagonal[None, :]
        orthogonal = torch.linalg.matrix_norm(normalized - torch.eye(len(normalized), device=device))
        loss = krr_loss + orthogonal_weight * orthogonal
        optimizer_features.zero_grad()
        optimizer_adjacency.zero_grad()
        loss.backward()
        optimizer_features.step()
        optimizer_adjacency.step()
        with torch.no_grad():
            for x in features:
                torch.maximum(torch.minimum(x, upper), lower, out=x)
        history["krr"].append(float(krr_loss.detach()))
        history["orthogonal"].append(float(orthogonal.detach()))
        history["accuracy"].append(float((prediction.argmax(dim=1) == batch.y.view(-1)).float().mean()))
        if not math.isfinite(history["krr"][-1]):
            raise FloatingPointError(f"KiDD's loss became non-finite at iteration {iteration}; lower lr_features "
                                     "or lr_adjacency, or raise ridge")
        if show_progress:
            steps.set_postfix(krr=f"{history['krr'][-1]:.4f}", tau=f"{temperature:.3f}")

    condensed = _synthetic_graphs(features, logits)
    return (condensed, history) if return_history else condensed


__all__ = ["GraphSide", "kidd", "krr_predict", "lite_gntk"]
