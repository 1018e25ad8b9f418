r"""VQGraph: a structure-aware graph tokenizer and soft code assignments as a distillation target.

VQGraph (`Yang et al., "VQGraph: Rethinking Graph Representation Space for Bridging GNNs
and MLPs", ICLR 2024 <https://arxiv.org/abs/2308.02117>`_) first trains a VQ-VAE whose
encoder is a GNN (the *tokenizer*): the embedding :math:`h_v` of each node's neighbourhood
is replaced by its nearest code of a codebook :math:`\{c_k\}_{k=1}^K`,

.. math::
    z_v = \operatorname*{arg\,min}_k \lVert h_v - c_k \rVert_2^2, \qquad
    q_v = h_v + \operatorname{sg}[c_{z_v} - h_v]
    \quad \text{(straight-through estimator)},

and the quantised embeddings must reconstruct the node features and the graph and
classify the training nodes (the tokenizer *is* VQGraph's teacher):

.. math::
    \mathcal{L}_\text{tok} = \mathrm{CE}(W q_v, y_v)_{v \in \mathcal{V}_L}
        + \lambda_x \lVert D_x q - X \rVert^2
        + \lambda_e \mathcal{L}_\text{edge}
        + \lVert \operatorname{sg}[h] - c_z \rVert^2 + \beta \lVert h - \operatorname{sg}[c_z] \rVert^2,

.. math::
    \mathcal{L}_\text{edge} = -\frac{1}{2|\mathcal{E}|}\Big(\sum_{(u,v) \in \mathcal{E}}
        \log \sigma(e_u^\top e_v) + \sum_{(u,v) \in \mathcal{E}^-} \log(1 - \sigma(e_u^\top e_v))\Big),
    \qquad e = D_e q,

where :math:`\mathcal{E}` are the observed edges and :math:`\mathcal{E}^-` as many sampled
non-edges (the paper reconstructs the dense adjacency matrix; sampling keeps memory
:math:`O(|\mathcal{E}|)`), and squared norms are means over nodes and channels.

The MLP student then learns, on every observed node, the tokenizer's class logits and its
*soft code assignments*: with a projection head :math:`P` on the student's hidden layer
:math:`g_v` and the frozen codebook,

.. math::
    r^\text{tok}_{vk} = \operatorname{softmax}_k\Big(-\frac{\lVert h_v - c_k\rVert^2}{\tau}\Big),
    \qquad r^\text{mlp}_{vk} = \operatorname{softmax}_k\Big(-\frac{\lVert P g_v - c_k\rVert^2}{\tau}\Big),

.. math::
    \mathcal{L} = \lambda\,\mathrm{CE}(\hat y_v, y_v)_{v \in \mathcal{V}_L}
        + (1 - \lambda)\,\tau_y^2\,\mathrm{KL}(p^\text{tok}_v \,\|\, \hat y_v)
        + \alpha\,\tau^2\,\mathrm{KL}(r^\text{tok}_v \,\|\, r^\text{mlp}_v),

with :math:`p^\text{tok} = \operatorname{softmax}(W q / \tau_y)`. The soft labels are the
tokenizer's, not :attr:`DistillContext.teacher`'s (as in the paper); pass
``use_teacher_logits=True`` to take them from the provided teacher instead. With a SAGE
teacher on the CPF splits of Cora and CiteSeer, validation prefers the teacher's soft labels
(benchmarks/RESULTS.md, "VQGraph: the tokenizer's soft labels vs the SAGE teacher's").

Differences from the official code (`YangLing0818/VQGraph
<https://github.com/YangLing0818/VQGraph>`_), all deliberate:

* model selection on validation accuracy only (the official transductive student keeps the
  epoch with the best *test* accuracy);
* the code-assignment targets are indexed by node id (the official student indexes the
  assignment table in the original node order with positions in a reordered node list);
* the student's and the tokenizer's assignments use the same distance (the official teacher
  uses cosine similarity, its student negative Euclidean distance) and the token loss has a
  weight that matters (official default :math:`10^{-8}`);
* codes idle for 20 steps are restarted on current embeddings (without this the codebook
  collapses to a handful of codes on Cora and the tokenizer classifies poorly);
* codes live in the hidden width (128) instead of the feature width (1,433 on Cora), the
  encoder is a two-layer GNN with a linear classifier on the codes (official: one GCN layer,
  then a GCN layer and a linear layer after the codes), and edges are reconstructed by
  sampled BCE instead of a dense :math:`N \times N` RMSE.
"""

from __future__ import annotations

import copy
import math
import time
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import negative_sampling

from graphkd.distill.student import DistillContext, DistillMethod, label_loss, soft_label_loss
from graphkd.distill.teacher import _observed_graph, accuracy
from graphkd.nn.mlp import MLP
from graphkd.nn.teachers import NodeGNN

#: Defaults on Cora (see :class:`VQGraph`; where each value comes from is noted there).
VQGRAPH_DEFAULTS = {"num_codes": 512, "hidden_channels": 128, "beta": 0.25, "feature_weight": 1.0,
                    "edge_weight": 1.0, "ema_decay": 0.8, "restart_after": 20, "token_weight": 1.0,
                    "token_temperature": 4.0}


def squared_distances(embedding: Tensor, codebook: Tensor) -> Tensor:
    r"""Squared Euclidean distances :math:`\lVert x_i - c_k \rVert^2` of ``(N, D)`` rows to ``(K, D)`` codes, ``(N, K)``.

    Expanded as :math:`\lVert x\rVert^2 - 2 x^\top c + \lVert c\rVert^2` (one matrix product,
    no ``(N, K, D)`` intermediate), clamped at zero against rounding.
    """
    return torch.addmm((embedding * embedding).sum(-1, keepdim=True) + (codebook * codebook).sum(-1),
                       embedding, codebook.t(), alpha=-2.0).clamp_min_(0.0)


def code_assignment_logits(embedding: Tensor, codebook: Tensor) -> Tensor:
    r"""Unnormalised soft code assignments :math:`-\lVert x_i - c_k \rVert^2`, ``(N, K)``; softmax over ``/ tau``."""
    return -squared_distances(embedding, codebook)


def code_assignment_loss(student_embedding: Tensor, teacher_embedding: Tensor, codebook: Tensor,
                         temperature: float = 4.0) -> Tensor:
    r""":math:`\tau^2\,\mathrm{KL}(r^\text{tok} \,\|\, r^\text{mlp})` of the soft code assignments, mean over nodes.

    Args:
        student_embedding (Tensor): projected student hidden layer :math:`(B, D)`.
        teacher_embedding (Tensor): tokenizer embeddings :math:`(B, D)` (targets, not differentiated).
        codebook (Tensor): frozen codes :math:`(K, D)`.
        temperature (float): :math:`\tau`. (default: ``4.0``)
    """
    with torch.no_grad():
        teacher = code_assignment_logits(teacher_embedding, codebook)
    return soft_label_loss(code_assignment_logits(student_embedding, codebook.detach()), teacher, temperature)


def structure_loss(embedding: Tensor, edge_index: Tensor, num_nodes: int, max_edges: int | None = None) -> Tensor:
    r"""Edge reconstruction: BCE of :math:`\sigma(e_u^\top e_v)` on the edges and as many sampled non-edges.

    Memory is :math:`O(|\mathcal{E}| D)`: no :math:`N \times N` matrix is formed.

    Args:
        embedding (Tensor): decoded node embeddings :math:`(N, D)`.
        edge_index (Tensor): the (observed) edges :math:`(2, E)`.
        num_nodes (int): :math:`N`.
        max_edges (int, optional): score a random subset of at most this many edges. (default: ``None``, all)
    """
    if edge_index.numel() == 0:
        return embedding.sum() * 0.0
    positive = edge_index
    if max_edges is not None and edge_index.size(1) > max_edges:
        positive = edge_index[:, torch.randperm(edge_index.size(1), device=edge_index.device)[:max_edges]]
    negative = negative_sampling(edge_index, num_nodes=num_nodes, num_neg_samples=positive.size(1))
    pairs = torch.cat([positive, negative], dim=1)
    scores = (embedding[pairs[0]] * embedding[pairs[1]]).sum(-1)
    targets = torch.cat([scores.new_ones(positive.size(1)), scores.new_zeros(negative.size(1))])
    return F.binary_cross_entropy_with_logits(scores, targets)


class QuantizerOutput(NamedTuple):
    """What :class:`VectorQuantizer` returns (see its ``Shapes``)."""

    quantized: Tensor
    embedding: Tensor
    indices: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor


class VectorQuantizer(torch.nn.Module):
    r"""Nearest-code quantisation with a straight-through gradient (`van den Oord et al., 2017
    <https://arxiv.org/abs/1711.00937>`_).

    .. math::
        z_i = \operatorname*{arg\,min}_k \lVert h_i - c_k \rVert^2, \qquad
        q_i = h_i + \operatorname{sg}[c_{z_i} - h_i],

    .. math::
        \mathcal{L}_\text{codebook} = \tfrac{1}{ND}\lVert \operatorname{sg}[h] - c_z \rVert^2, \qquad
        \mathcal{L}_\text{commit} = \tfrac{1}{ND}\lVert h - \operatorname{sg}[c_z] \rVert^2.

    The codebook is a parameter trained by :math:`\mathcal{L}_\text{codebook}`, or, with
    ``ema_decay``, a buffer following the exponential moving average of the embeddings
    assigned to each code (the official code's choice, decay 0.8; its codebook loss is then
    zero). On its first training call the codebook is initialised from that call's
    embeddings (drawn with replacement and jittered when :math:`K > N`), so no code starts
    far from the data.

    Args:
        num_codes (int): :math:`K`.
        dim (int): :math:`D`.
        ema_decay (float, optional): EMA decay in ``(0, 1)``; ``None`` learns the codebook by
            gradient. (default: ``None``)
        normalize (bool): assign on the unit sphere (cosine similarity). (default: ``False``)
        restart_after (int, optional): move a code unused for this many consecutive training
            calls onto a random embedding of the current call (dead-code restart); ``None``
            never restarts. (default: ``None``)
        eps (float): Laplace smoothing of the EMA cluster sizes. (default: ``1e-5``)

    Shapes:
        - **input:** :math:`(N, D)`
        - **output:** ``quantized`` :math:`(N, D)`, ``indices`` :math:`(N,)` (int64), two scalar losses.
    """

    def __init__(self, num_codes: int, dim: int, ema_decay: float | None = None, normalize: bool = False,
                 restart_after: int | None = None, eps: float = 1e-5):
        super().__init__()
        if num_codes < 1 or dim < 1:
            raise ValueError(f"num_codes and dim must be >= 1, got {num_codes} and {dim}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {ema_decay}")
        self.num_codes, self.dim, self.ema_decay, self.eps = num_codes, dim, ema_decay, eps
        self.normalize, self.restart_after = normalize, restart_after
        self.register_buffer("idle_steps", torch.zeros(num_codes, dtype=torch.long))
        codebook = torch.randn(num_codes, dim) / dim**0.5
        if ema_decay is None:
            self.codebook = torch.nn.Parameter(codebook)
        else:
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_size", torch.zeros(num_codes))
            self.register_buffer("ema_sum", codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, embedding: Tensor) -> None:
        count = embedding.size(0)
        if count >= self.num_codes:
            chosen = embedding[torch.randperm(count, device=embedding.device)[: self.num_codes]]
        else:
            chosen = embedding[torch.randint(0, count, (self.num_codes,), device=embedding.device)]
            chosen = chosen + 1e-3 * chosen.std() * torch.randn_like(chosen)
        self.codebook.data.copy_(chosen)
        if self.ema_decay is not None:
            self.ema_sum.copy_(chosen)
            self.ema_size.fill_(1.0)
        self.initialized.fill_(True)

    def project(self, embedding: Tensor) -> Tensor:
        """Rows onto the unit sphere when ``normalize`` (cosine codes), else unchanged."""
        return F.normalize(embedding, dim=-1) if self.normalize else embedding

    def codes(self) -> Tensor:
        r"""The codebook as used for assignment :math:`(K, D)` (unit rows when ``normalize``)."""
        return self.project(self.codebook)

    def nearest(self, embedding: Tensor) -> Tensor:
        """Index of the nearest code of every (projected) row, :math:`(N,)`."""
        return squared_distances(embedding.detach(), self.codes().detach()).argmin(dim=-1)

    @torch.no_grad()
    def _restart_idle(self, embedding: Tensor, indices: Tensor) -> None:
        used = torch.zeros(self.num_codes, dtype=torch.bool, device=indices.device)
        used[indices] = True
        self.idle_steps.add_(1).masked_fill_(used, 0)
        idle = (self.idle_steps >= self.restart_after).nonzero().view(-1)
        if idle.numel():
            picked = embedding[torch.randint(0, embedding.size(0), (idle.numel(),), device=embedding.device)]
            self.codebook.data[idle] = picked
            if self.ema_decay is not None:
                self.ema_sum[idle] = picked
                self.ema_size[idle] = 1.0
            self.idle_steps[idle] = 0

    @torch.no_grad()
    def _ema_update(self, embedding: Tensor, indices: Tensor) -> None:
        decay = self.ema_decay
        counts = torch.bincount(indices, minlength=self.num_codes).to(embedding.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, embedding)
        self.ema_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
        total = self.ema_size.sum()
        smoothed = (self.ema_size + self.eps) / (total + self.num_codes * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(-1))

    def forward(self, embedding: Tensor) -> QuantizerOutput:
        if embedding.dim() != 2 or embedding.size(1) != self.dim:
            raise ValueError(f"embedding must have shape [N, {self.dim}], got {list(embedding.shape)}")
        embedding = self.project(embedding)
        if self.training and not bool(self.initialized) and embedding.size(0) > 0:
            self._initialize(embedding.detach())
        indices = self.nearest(embedding)
        if self.training and self.ema_decay is not None:
            self._ema_update(embedding.detach(), indices)
        if self.training and self.restart_after is not None and embedding.size(0) > 0:
            self._restart_idle(embedding.detach(), indices)
        codes = self.codes()[indices]
        commitment = F.mse_loss(embedding, codes.detach())
        codebook_loss = F.mse_loss(codes, embedding.detach()) if self.ema_decay is None else commitment.new_zeros(())
        quantized = embedding + (codes - embedding).detach()
        return QuantizerOutput(quantized, embedding, indices, codebook_loss, commitment)


class TokenizerOutput(NamedTuple):
    """Outputs of :meth:`VQTokenizer.forward` (see its ``Shapes``)."""

    logits: Tensor
    embedding: Tensor
    quantized: Tensor
    indices: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor


class VQTokenizer(torch.nn.Module):
    r"""VQGraph's structure-aware tokenizer: GNN encoder, codebook, three decoders (see the module docstring).

    Args:
        in_channels (int): feature size :math:`F`.
        out_channels (int): number of classes :math:`C`.
        hidden_channels (int): embedding and code width :math:`D`. (default: ``128``)
        num_codes (int): codebook size :math:`K`. (default: ``2048``)
        num_layers (int): message-passing layers of the encoder. (default: ``2``)
        encoder (str): ``"sage"`` (GLNN's mean-with-self aggregator, like the teacher), ``"gcn"``
            or ``"gat"`` (:class:`graphkd.nn.NodeGNN`). (default: ``"sage"``)
        dropout (float): encoder dropout. (default: ``0.0``)
        beta (float): commitment weight :math:`\beta`. (default: ``0.25``)
        feature_weight (float): :math:`\lambda_x` of the feature reconstruction. (default: ``1.0``)
        edge_weight (float): :math:`\lambda_e` of the edge reconstruction. (default: ``1.0``)
        ema_decay (float, optional): EMA codebook updates instead of the codebook loss
            (:class:`VectorQuantizer`). (default: ``None``)
        normalize, restart_after: see :class:`VectorQuantizer`.
        max_edges (int, optional): edges scored per step by the structure loss. (default: ``None``, all)

    Shapes:
        - **input:** ``x`` :math:`(N, F)`, ``edge_index`` :math:`(2, E)`
        - **output:** ``logits`` :math:`(N, C)`, ``embedding`` and ``quantized`` :math:`(N, D)`,
          ``indices`` :math:`(N,)`
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 128, num_codes: int = 2048,
                 num_layers: int = 2, encoder: str = "sage", dropout: float = 0.0, beta: float = 0.25,
                 feature_weight: float = 1.0, edge_weight: float = 1.0, ema_decay: float | None = None,
                 normalize: bool = False, restart_after: int | None = None, max_edges: int | None = None):
        super().__init__()
        for name, value in (("beta", beta), ("feature_weight", feature_weight), ("edge_weight", edge_weight)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.beta, self.feature_weight, self.edge_weight, self.max_edges = beta, feature_weight, edge_weight, max_edges
        self.encoder = NodeGNN(encoder, in_channels, hidden_channels, hidden_channels, num_layers, dropout)
        self.quantizer = VectorQuantizer(num_codes, hidden_channels, ema_decay, normalize, restart_after)
        self.classifier = torch.nn.Linear(hidden_channels, out_channels)
        self.feature_decoder = torch.nn.Linear(hidden_channels, in_channels)
        self.edge_decoder = torch.nn.Linear(hidden_channels, hidden_channels)

    @property
    def codebook(self) -> Tensor:
        r"""The codes as assigned :math:`(K, D)`."""
        return self.quantizer.codes()

    def forward(self, x: Tensor, edge_index: Tensor) -> TokenizerOutput:
        quantized, embedding, indices, codebook_loss, commitment_loss = self.quantizer(self.encoder(x, edge_index))
        return TokenizerOutput(self.classifier(quantized), embedding, quantized, indices, codebook_loss,
                               commitment_loss)

    def loss(self, x: Tensor, edge_index: Tensor, y: Tensor, train_index: Tensor) -> tuple[Tensor, dict]:
        r""":math:`\mathcal{L}_\text{tok}` on one graph, and its terms (floats) for logging.

        ``train_index`` are the labelled nodes (local ids of ``x``'s rows).
        """
        out = self(x, edge_index)
        terms = {"label": F.cross_entropy(out.logits[train_index], y[train_index]),
                 "codebook": out.codebook_loss, "commitment": out.commitment_loss}
        if self.feature_weight > 0:
            terms["feature"] = F.mse_loss(self.feature_decoder(out.quantized), x)
        if self.edge_weight > 0:
            terms["edge"] = structure_loss(self.edge_decoder(out.quantized), edge_index, x.size(0), self.max_edges)
        total = (terms["label"] + terms["codebook"] + self.beta * terms["commitment"]
                 + self.feature_weight * terms.get("feature", 0.0) + self.edge_weight * terms.get("edge", 0.0))
        return total, {name: float(value.detach()) for name, value in terms.items()}


def train_tokenizer(tokenizer: VQTokenizer, x: Tensor, edge_index: Tensor, y: Tensor, train_index: Tensor,
                    val_index: Tensor, lr: float = 0.01, weight_decay: float = 5e-4, epochs: int = 200,
                    patience: int = 50, select: str = "accuracy") -> dict:
    r"""Full-batch training of ``tokenizer`` on one graph; keeps the epoch with the best validation score.

    ``select`` ranks epochs by validation accuracy (``"accuracy"``) or cross-entropy (``"loss"``),
    the latest of ties winning, as :func:`graphkd.distill.teacher.train_teacher`. Indices are
    local to ``x``. Returns ``{"val"`` (accuracy of the epoch kept), ``"epochs", "best_epoch", "seconds"}``.
    """
    if select not in ("accuracy", "loss"):
        raise ValueError(f"select must be 'accuracy' or 'loss', got {select!r}")
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=lr, weight_decay=weight_decay)
    best_score, best_val, best_epoch, best_state, waited, epoch = -math.inf, -1.0, -1, None, 0, -1
    started = time.perf_counter()
    for epoch in range(epochs):
        tokenizer.train()
        optimizer.zero_grad()
        loss, _ = tokenizer.loss(x, edge_index, y, train_index)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"VQ tokenizer: the loss became {float(loss)} at epoch {epoch}")
        loss.backward()
        optimizer.step()
        tokenizer.eval()
        with torch.no_grad():
            val_logits = tokenizer(x, edge_index).logits[val_index]
            val_acc = accuracy(val_logits, y[val_index])
            score = val_acc if select == "accuracy" else -float(F.cross_entropy(val_logits, y[val_index]))
        if score >= best_score:  # ties go to the later epoch (GLNN's rule): a more trained model
            best_score, best_val, best_epoch, waited = score, val_acc, epoch, 0
            best_state = copy.deepcopy(tokenizer.state_dict())
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        tokenizer.load_state_dict(best_state)
    tokenizer.eval()
    return {"val": best_val, "epochs": epoch + 1, "best_epoch": best_epoch, "seconds": time.perf_counter() - started}


class VQGraph(DistillMethod):
    r"""VQGraph's distillation (see the module docstring).

    :meth:`prepare` trains a :class:`VQTokenizer` on the observed graph (validation-selected)
    and keeps, for observed nodes only, its embeddings :math:`h_v` (the code-assignment
    targets, computed batch by batch against the frozen codebook) and its class logits (the
    soft labels). The projection head :math:`P` belongs to the method, so it is optimised
    with the student.

    Args:
        num_codes (int): codebook size :math:`K`. The official code defaults to 5,000 codes of
            the feature width; 512 codes of width 128 keep Cora's tokenizer on CPU in
            seconds. (default: ``512``)
        hidden_channels (int): tokenizer and code width :math:`D`. (default: ``128``)
        encoder (str): tokenizer GNN, ``"sage"``, ``"gcn"`` or ``"gat"``. (default: ``"sage"``)
        beta (float): commitment weight (official code and VQ-VAE: ``0.25``). (default: ``0.25``)
        feature_weight, edge_weight (float): reconstruction weights :math:`\lambda_x, \lambda_e`.
            (default: ``1.0``, ``1.0``)
        ema_decay (float, optional): EMA codebook (official: ``0.8``); ``None`` learns it by the
            codebook loss. (default: ``0.8``)
        normalize (bool): cosine codes (unit-norm embeddings and codes). (default: ``False``)
        restart_after (int, optional): a code left unused for this many consecutive steps is
            moved onto a random embedding of the current step; ``None`` never restarts. Without
            restarts the codebook collapses onto a handful of codes; restarting after every idle
            step keeps the codes moving so much that the tokenizer's validation accuracy peaks
            within its first epochs. (default: ``20``)
        token_weight (float): :math:`\alpha`, weight of the code-assignment KL. (default: ``1.0``)
        token_temperature (float): :math:`\tau` of the code assignments (official: ``4``). (default: ``4.0``)
        label_weight (float): :math:`\lambda` of the label cross-entropy in ``[0, 1]``; the soft labels
            get :math:`1 - \lambda` (official and GLNN: ``0``). (default: ``0.0``)
        label_temperature (float): :math:`\tau_y` of the soft labels. (default: ``1.0``)
        use_teacher_logits (bool): soft labels from ``ctx.teacher.logits`` instead of the tokenizer's.
            (default: ``False``)
        student_hidden_channels (int): width of the student's last hidden layer, the input of
            :math:`P` (:data:`graphkd.distill.student.STUDENT_DEFAULTS`: 128). (default: ``128``)
        tokenizer_epochs, tokenizer_patience (int): tokenizer schedule. (default: ``200``, ``50``)
        tokenizer_lr, tokenizer_weight_decay (float): tokenizer Adam (the teacher's SAGE settings).
            (default: ``0.01``, ``5e-4``)
    """

    name = "vqgraph"

    def __init__(self, num_codes: int = 512, hidden_channels: int = 128, encoder: str = "sage", beta: float = 0.25,
                 feature_weight: float = 1.0, edge_weight: float = 1.0, ema_decay: float | None = 0.8,
                 normalize: bool = False, restart_after: int | None = 20, token_weight: float = 1.0,
                 token_temperature: float = 4.0, label_weight: float = 0.0, label_temperature: float = 1.0, use_teacher_logits: bool = False, student_hidden_channels: int = 128,
                 tokenizer_epochs: int = 200, tokenizer_patience: int = 50, tokenizer_lr: float = 0.01,
                 tokenizer_weight_decay: float = 5e-4):
        super().__init__()
        if token_weight < 0:
            raise ValueError(f"token_weight must be >= 0, got {token_weight}")
        if token_temperature <= 0 or label_temperature <= 0:
            raise ValueError(f"temperatures must be > 0, got {token_temperature} and {label_temperature}")
        if not 0.0 <= label_weight <= 1.0:
            raise ValueError(f"label_weight must be in [0, 1], got {label_weight}")
        self.tokenizer_config = {"hidden_channels": hidden_channels, "num_codes": num_codes, "encoder": encoder,
                                 "beta": beta, "feature_weight": feature_weight, "edge_weight": edge_weight,
                                 "ema_decay": ema_decay, "normalize": normalize, "restart_after": restart_after}
        self.train_config = {"epochs": tokenizer_epochs, "patience": tokenizer_patience, "lr": tokenizer_lr,
                             "weight_decay": tokenizer_weight_decay}
        self.token_weight, self.token_temperature = token_weight, token_temperature
        self.label_weight, self.label_temperature = label_weight, label_temperature
        self.use_teacher_logits = use_teacher_logits
        self.student_hidden_channels = student_hidden_channels
        self.tokenizer: VQTokenizer | None = None
        self.projection: torch.nn.Linear | None = None
        self.tokenizer_scores: dict = {}
        # Per-node targets: derived data, not state worth checkpointing with every best epoch.
        self.register_buffer("codebook", None, persistent=False)
        self.register_buffer("code_targets", None, persistent=False)
        self.register_buffer("soft_targets", None, persistent=False)

    def prepare(self, ctx: DistillContext) -> None:
        data, split = ctx.data, ctx.split
        observed_data, observed = _observed_graph(data, split)
        local = torch.full((data.num_nodes,), -1, dtype=torch.long)
        local[observed] = torch.arange(observed.numel())
        device = ctx.device
        x, edge_index, y = observed_data.x.to(device), observed_data.edge_index.to(device), observed_data.y.to(device)

        tokenizer = VQTokenizer(data.num_features, ctx.num_classes, **self.tokenizer_config).to(device)
        log = train_tokenizer(tokenizer, x, edge_index, y, local[split.train].to(device), local[split.val].to(device),
                              **self.train_config)
        tokenizer.requires_grad_(False)
        with torch.no_grad():
            out = tokenizer(x, edge_index)
        codes_used = int(torch.unique(out.indices).numel())
        embedding = torch.zeros(data.num_nodes, out.embedding.size(1))
        logits = torch.zeros(data.num_nodes, ctx.num_classes)
        embedding[observed], logits[observed] = out.embedding.cpu(), out.logits.cpu()

        scores = {"val": accuracy(logits[split.val], data.y[split.val]),
                  "test": accuracy(logits[split.test], data.y[split.test])}
        if split.test_ind.numel():
            # Held-out nodes are scored with the full graph, like the GNN teacher; nothing of this feeds training.
            with torch.no_grad():
                full = tokenizer(data.x.to(device), split.full_edge_index.to(device)).logits.cpu()
            scores["test_ind"] = accuracy(full[split.test_ind], data.y[split.test_ind])
            scores["prod"] = 0.8 * scores["test"] + 0.2 * scores["test_ind"]
        self.tokenizer_scores = {**scores, "codes_used": codes_used, **{k: v for k, v in log.items() if k != "val"}}

        self.tokenizer = tokenizer
        self.codebook = tokenizer.codebook.detach().clone()
        self.code_targets = embedding
        self.soft_targets = ctx.teacher.logits.clone() if self.use_teacher_logits else logits
        self.projection = torch.nn.Linear(self.student_hidden_channels, embedding.size(1))

    def loss(self, student: MLP, features: Tensor, nodes: Tensor, ctx: DistillContext) -> Tensor:
        if self.code_targets is None:
            raise RuntimeError("VQGraph.prepare(ctx) must run before VQGraph.loss")
        logits, hidden = student.forward_with_hidden(features[nodes])
        loss = logits.new_zeros(())
        if self.label_weight < 1:
            loss = loss + (1 - self.label_weight) * soft_label_loss(logits, self.soft_targets[nodes],
                                                                     self.label_temperature)
        if self.label_weight > 0:
            loss = loss + self.label_weight * label_loss(logits, nodes, ctx)
        if self.token_weight > 0:
            if hidden.size(1) != self.projection.in_features:
                raise ValueError(f"the student's hidden layer has {hidden.size(1)} channels but the projection head "
                                 f"expects {self.projection.in_features}; set student_hidden_channels")
            projected = self.projection(hidden)
            if self.tokenizer_config["normalize"]:
                projected = F.normalize(projected, dim=-1)
            loss = loss + self.token_weight * code_assignment_loss(projected, self.code_targets[nodes],
                                                                   self.codebook, self.token_temperature)
        return loss
