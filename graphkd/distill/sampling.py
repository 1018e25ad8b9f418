r"""Neighbour-sampled mini-batches for node classification without ``pyg-lib``.

GraphSAGE (`Hamilton et al., "Inductive Representation Learning on Large Graphs", NeurIPS 2017
<https://arxiv.org/abs/1706.02216>`_) trains on mini-batches of seed nodes and, per layer, a
uniform sample of at most :math:`k_h` in-neighbours of every node reached so far; GLNN trains its
SAGE teachers this way with fan-out ``[5, 5]`` and batch size 512. For a node :math:`v` with
in-neighbourhood :math:`\mathcal{N}(v) = \{u : (u, v) \in \mathcal{E}\}` of size :math:`d_v`, hop
:math:`h` draws without replacement

.. math::
    S_h(v) \sim \mathrm{Uniform}\left\{S \subseteq \mathcal{N}(v) : |S| = \min(d_v, k_h)\right\},
    \qquad P(u \in S_h(v)) = \frac{\min(d_v, k_h)}{d_v},

and :math:`k_h = -1` keeps all of :math:`\mathcal{N}(v)`.

PyG's :class:`~torch_geometric.loader.NeighborLoader` does exactly this, but only through the
compiled samplers of ``pyg-lib`` or ``torch-sparse``, and neither has wheels for every torch
release. :class:`UniformNeighborSampler` is a vectorised pure-torch
:class:`~torch_geometric.sampler.BaseSampler` with the same output layout, and
:func:`neighbor_loader` picks PyG's loader when it can run and this sampler otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_geometric.typing
from torch import Tensor
from torch.utils.data import get_worker_info
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader, NodeLoader
from torch_geometric.sampler import BaseSampler, EdgeSamplerInput, NodeSamplerInput, SamplerOutput

__all__ = ["UniformNeighborSampler", "neighbor_loader"]


def _check_num_neighbors(num_neighbors: Sequence[int]) -> list[int]:
    if isinstance(num_neighbors, (str, bytes)) or not isinstance(num_neighbors, Sequence):
        raise TypeError(f"num_neighbors must be a list of ints (one per hop), got {type(num_neighbors).__name__}")
    values = list(num_neighbors)
    if len(values) == 0:
        raise ValueError("num_neighbors must name at least one hop, got []")
    for value in values:
        # bool is an int subclass; True as "one neighbour" is surely a mistake.
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"num_neighbors must hold ints, got {values!r}")
        if value == 0 or value < -1:
            raise ValueError(f"num_neighbors entries must be >= 1 or -1 (all neighbours), got {values!r}")
    return values


def _check_edge_index(edge_index: object, num_nodes: int) -> Tensor:
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a Tensor, got {type(edge_index).__name__}")
    if edge_index.dtype != torch.long:
        raise TypeError(f"edge_index must be int64 of shape [2, E], got {edge_index.dtype} {list(edge_index.shape)}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must be int64 of shape [2, E], got {edge_index.dtype} {list(edge_index.shape)}")
    if edge_index.numel() > 0 and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"edge_index must hold node ids in [0, {num_nodes}), got values in "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    return edge_index


def _check_node_ids(name: str, nodes: object, num_nodes: int) -> Tensor:
    if not isinstance(nodes, Tensor):
        raise TypeError(f"{name} must be an int64 index or bool mask Tensor, got {type(nodes).__name__}")
    if nodes.dtype == torch.bool:
        if nodes.dim() != 1 or nodes.numel() != num_nodes:
            raise ValueError(f"{name} as a bool mask must have shape [{num_nodes}], got {list(nodes.shape)}")
        return nodes
    if nodes.dtype != torch.long:
        raise TypeError(f"{name} must be an int64 index or bool mask Tensor, got {nodes.dtype}")
    if nodes.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {list(nodes.shape)}")
    if nodes.numel() > 0 and (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
        raise ValueError(
            f"{name} must hold node ids in [0, {num_nodes}), got values in [{int(nodes.min())}, {int(nodes.max())}]"
        )
    return nodes


def _check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size


def _check_data(data: object) -> Data:
    # HeteroData and remote (FeatureStore, GraphStore) pairs need per-type CSCs; out of scope here.
    if not isinstance(data, Data):
        raise TypeError(f"data must be a homogeneous torch_geometric.data.Data, got {type(data).__name__}")
    if data.num_nodes is None:
        raise ValueError("data must define num_nodes (or x)")
    return data


class UniformNeighborSampler(BaseSampler):
    r"""Uniform neighbour sampling without replacement, in pure torch.

    Per hop :math:`h` every frontier node :math:`v` (the seeds at hop 1, then the nodes first
    reached at hop :math:`h - 1`) keeps a uniform random subset of :math:`\min(d_v, k_h)` of its
    in-neighbours (sources :math:`u` of edges :math:`u \to v`); see the module docstring. The draw
    is vectorised over the frontier: nodes with :math:`d_v \le k_h` keep all their in-edges, the
    others draw :math:`k_h` distinct CSC offsets by Floyd's algorithm, all nodes at once.

    The output follows :class:`~torch_geometric.sampler.NeighborSampler` (``pyg-lib``, directional,
    not disjoint) for homogeneous graphs:

    - ``node``: global ids, the seeds first and in input order (a repeated seed keeps all its
      positions, each sampled on its own), then the nodes in order of first discovery, each once;
    - ``row``/``col``: local ids into ``node`` of each sampled edge's source (the neighbour) and
      destination (the node that sampled it), so ``stack([row, col])`` is an ``edge_index`` along
      which a source-to-target :class:`~torch_geometric.nn.conv.MessagePassing` layer sends
      messages from neighbours to the nodes that sampled them; edges come hop by hop, grouped by
      destination in frontier order and, within one destination, in input edge order;
    - ``edge``: the sampled edges' ids in ``data.edge_index`` (so :attr:`edge_permutation` is
      ``None``), or ``None`` when ``return_edge_id=False``;
    - ``num_sampled_nodes``: ``[num_seeds, new at hop 1, ...]``; ``num_sampled_edges``: per hop.

    Pass it to :class:`~torch_geometric.loader.NodeLoader` as ``node_sampler``. Sampling runs on
    the CPU (seeds arrive there from :class:`~torch_geometric.sampler.NodeSamplerInput`). One
    instance must not sample from two threads at once: it reuses one node-id buffer.

    Args:
        data (Data): the graph; only ``edge_index`` and ``num_nodes`` are read.
        num_neighbors (list[int]): in-neighbours kept per node at each hop, ``-1`` for all.
        seed (int, optional): seed of the sampler's own :class:`torch.Generator`; ``None`` seeds it
            non-deterministically. In a :class:`~torch.utils.data.DataLoader` worker the generator
            is reseeded from the worker's seed, so workers draw different neighbours and the draws
            follow the loader's generator. (default: ``None``)
        return_edge_id (bool, optional): return the sampled edges' ids, which the loader needs to
            slice edge attributes and to fill ``e_id``. (default: ``True``)

    Shapes:
        - data.edge_index: :math:`(2, E)`, int64.
        - output ``node``: :math:`(N_{sub},)`; ``row``, ``col``, ``edge``: :math:`(E_{sub},)`, int64.

    Raises:
        TypeError: ``data`` not a :class:`~torch_geometric.data.Data`, ``edge_index`` not int64,
            ``num_neighbors`` not a list of ints.
        ValueError: ``edge_index`` not :math:`(2, E)` or out of range, ``num_neighbors`` empty or
            holding 0 or values below -1.
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        seed: int | None = None,
        return_edge_id: bool = True,
    ):
        data = _check_data(data)
        self.num_nodes = int(data.num_nodes)
        edge_index = _check_edge_index(data.edge_index, self.num_nodes).cpu()
        self.num_neighbors = _check_num_neighbors(num_neighbors)
        self.return_edge_id = return_edge_id

        # CSC: in-edges of each node contiguous. A stable sort keeps input order within a node,
        # the order pyg-lib reports when it keeps all neighbours.
        col, perm = torch.sort(edge_index[1], stable=True)
        self.row = edge_index[0, perm]
        self.edge_id = perm
        self.colptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(col, minlength=self.num_nodes), dim=0, out=self.colptr[1:])

        self.seed = seed
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self._worker_id: int | None = None
        # Global-to-local id map, -1 where unmapped. Kept between calls and reset only at the
        # nodes a batch touched: a fresh full(N) per batch would cost O(N), not O(batch).
        self._local = torch.full((self.num_nodes,), -1, dtype=torch.long)

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        r"""Samples the multi-hop neighbourhood of ``index.node``.

        Args:
            index (NodeSamplerInput): seeds (``node``) and their ids in the loader's input
                (``input_id``); ``time`` and ``input_type`` must be ``None``.
            **kwargs: ignored (part of :class:`~torch_geometric.sampler.BaseSampler`'s signature).

        Shapes:
            - index.node: :math:`(B,)`, int64 global ids.
            - output: see the class docstring; ``metadata`` is ``(input_id, time)`` as in PyG.
        """
        if index.input_type is not None:
            raise NotImplementedError("UniformNeighborSampler samples homogeneous graphs only (got an input_type)")
        if index.time is not None:
            raise NotImplementedError("UniformNeighborSampler does not do temporal sampling (got seed times)")
        seeds = _check_node_ids("index.node", index.node, self.num_nodes)
        if seeds.dtype == torch.bool:
            raise TypeError("index.node must be int64 node ids, got a bool mask")
        self._reseed_in_worker()
        out = self._sample(seeds.cpu())
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(self, index: EdgeSamplerInput, neg_sampling=None) -> SamplerOutput:
        """Not supported: this sampler serves node-classification loaders only."""
        raise NotImplementedError("UniformNeighborSampler samples from seed nodes only (use NodeLoader)")

    def _reseed_in_worker(self) -> None:
        # Each DataLoader worker holds a copy of this sampler made before the epoch started, so
        # without reseeding all workers (and, with non-persistent workers, all epochs) would replay
        # the same random stream. The worker seed derives from the loader's generator: reproducible.
        info = get_worker_info()
        if info is not None and self._worker_id != info.id:
            self.generator.manual_seed(info.seed)
            self._worker_id = info.id

    def _sample(self, seeds: Tensor) -> SamplerOutput:
        local = self._local
        num_seeds = seeds.numel()
        positions = torch.arange(num_seeds)
        # A repeated seed maps to its first position, as later hops' neighbours do.
        local.scatter_reduce_(0, seeds, positions, reduce="amin", include_self=False)

        nodes, rows, cols, edges = [seeds], [], [], []
        num_sampled_nodes, num_sampled_edges = [num_seeds], []
        frontier, frontier_local = seeds, positions
        num_total = num_seeds
        try:
            for fanout in self.num_neighbors:
                csc_pos, segment = self._draw(frontier, fanout)
                neighbors = self.row[csc_pos]

                new_nodes = _first_occurrences(neighbors[local[neighbors] < 0])
                nodes.append(new_nodes)  # before mapping them, so `finally` resets them too
                new_local = torch.arange(num_total, num_total + new_nodes.numel())
                local[new_nodes] = new_local

                rows.append(local[neighbors])
                cols.append(frontier_local[segment])
                if self.return_edge_id:
                    edges.append(self.edge_id[csc_pos])
                num_sampled_nodes.append(new_nodes.numel())
                num_sampled_edges.append(csc_pos.numel())
                frontier, frontier_local = new_nodes, new_local
                num_total += new_nodes.numel()
            node = torch.cat(nodes)
        finally:
            # Leave the buffer clean even if sampling failed half-way.
            local[torch.cat(nodes)] = -1

        return SamplerOutput(
            node=node,
            row=torch.cat(rows),
            col=torch.cat(cols),
            edge=torch.cat(edges) if self.return_edge_id else None,
            batch=None,
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    def _draw(self, frontier: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """CSC positions of the kept in-edges of ``frontier`` and each one's frontier position."""
        start = self.colptr[frontier]
        degree = self.colptr[frontier + 1] - start
        count = degree if fanout < 0 else degree.clamp(max=fanout)
        # Kept edges grouped by frontier position; `offset` is each one's rank within its group.
        segment = torch.repeat_interleave(torch.arange(frontier.numel()), count)
        offset = torch.arange(segment.numel()) - (torch.cumsum(count, 0) - count)[segment]
        if fanout >= 0:
            over_full = degree > fanout
            if bool(over_full.any()):
                # Over-full groups hold exactly `fanout` entries each, in frontier order, so the
                # row-major picks drop straight into their slots.
                offset[over_full[segment]] = self._choose(degree[over_full], fanout).view(-1)
        return start[segment] + offset, segment

    def _choose(self, degree: Tensor, k: int) -> Tensor:
        r"""Uniform ``k``-subsets of ``[0, d)`` for each ``d`` in ``degree`` (all ``> k``).

        Floyd's algorithm (`Bentley & Floyd, "A sample of brilliance", CACM 1987
        <https://doi.org/10.1145/30401.315746>`_), vectorised over the rows: for
        :math:`j = d - k, \dots, d - 1` draw :math:`t \sim U\{0, \dots, j\}` and take :math:`t`,
        or :math:`j` if :math:`t` was taken already. Its cost is :math:`O(k^2)` per node however
        large :math:`d` is, where ranking all candidate edges would cost :math:`O(d \log d)`
        and make hubs dominate a batch.

        Shapes:
            - degree: :math:`(S,)`; output: :math:`(S, k)`, each row ascending, so kept edges stay
              in CSC order.
        """
        picks = torch.empty(degree.numel(), k, dtype=torch.long)
        # float64: 53 random bits keep floor(u * (j + 1)) uniform for any realistic degree.
        uniform = torch.rand(degree.numel(), k, generator=self.generator, dtype=torch.float64)
        for i in range(k):  # a loop over the fan-out, not over nodes
            j = degree - k + i
            draw = torch.minimum((uniform[:, i] * (j + 1)).long(), j)
            if i > 0:
                draw = torch.where((picks[:, :i] == draw.unsqueeze(1)).any(1), j, draw)
            picks[:, i] = draw
        return picks.sort(dim=1).values


def _first_occurrences(values: Tensor) -> Tensor:
    """The distinct entries of ``values`` in order of first occurrence."""
    if values.numel() == 0:
        return values
    unique, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((unique.numel(),), values.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(values.numel()), reduce="amin")
    return values[torch.sort(first).values]


def neighbor_loader(
    data: Data,
    input_nodes: Tensor | None,
    num_neighbors: Sequence[int],
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    **kwargs,
) -> NodeLoader:
    r"""A GraphSAGE-style mini-batch loader: PyG's, or a pure-torch fallback.

    PyG's :class:`~torch_geometric.loader.NeighborLoader` samples only through ``pyg-lib`` or
    ``torch-sparse``; where neither is installed (no wheels for the installed torch) it raises
    :class:`ImportError` on the first batch. This returns it when one of them is present
    (``torch_geometric.typing.WITH_PYG_LIB or WITH_TORCH_SPARSE``) and otherwise a
    :class:`~torch_geometric.loader.NodeLoader` over :class:`UniformNeighborSampler`. Batches look
    the same either way: a :class:`~torch_geometric.data.Data` with the sliced node and edge
    attributes, ``n_id`` (seeds first, ``n_id[:batch_size]``), ``e_id``, ``batch_size``,
    ``input_id``, ``num_sampled_nodes``, ``num_sampled_edges`` and an ``edge_index`` from
    sampled neighbours to the nodes that sampled them. So ``model(batch.x,
    batch.edge_index)[:batch.batch_size]`` are the seeds' outputs.

    Args:
        data (Data): the graph with its node (and edge) attributes.
        input_nodes (Tensor, optional): seed nodes, an int64 index or a bool mask; ``None`` for
            all nodes.
        num_neighbors (list[int]): in-neighbours kept per node at each hop, ``-1`` for all.
        batch_size (int): seeds per batch.
        shuffle (bool, optional): reshuffle the seeds every epoch. (default: ``False``)
        seed (int, optional): makes the fallback's batches reproducible (shuffle order and
            neighbour draws, with or without workers). With ``pyg-lib``/``torch-sparse`` it fixes
            only the shuffle order; their draws come from the libraries' global random state.
            Ignored for the shuffle order when ``kwargs`` holds a ``generator``. (default: ``None``)
        **kwargs: further :class:`~torch.utils.data.DataLoader` / loader arguments
            (``num_workers``, ``drop_last``, ``transform``, ...).

    Shapes:
        - data.edge_index: :math:`(2, E)`, int64.
        - input_nodes: :math:`(B_{total},)` int64 or :math:`(N,)` bool.

    Raises:
        TypeError: ``edge_index`` not int64, ``input_nodes`` neither int64 nor bool,
            ``num_neighbors`` not a list of ints, ``batch_size`` not an int.
        ValueError: ``edge_index`` not :math:`(2, E)`, ids out of range, ``num_neighbors`` empty
            or holding 0 or values below -1, ``batch_size < 1``.
    """
    # Checked here, not left to either loader, so both paths fail the same way and early.
    data = _check_data(data)
    _check_edge_index(data.edge_index, int(data.num_nodes))
    num_neighbors = _check_num_neighbors(num_neighbors)
    batch_size = _check_batch_size(batch_size)
    if input_nodes is not None:
        _check_node_ids("input_nodes", input_nodes, int(data.num_nodes))

    if torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE:
        if seed is not None:
            kwargs.setdefault("generator", torch.Generator().manual_seed(seed))
        return NeighborLoader(
            data, num_neighbors=num_neighbors, input_nodes=input_nodes, batch_size=batch_size, shuffle=shuffle, **kwargs
        )

    sampler = UniformNeighborSampler(data, num_neighbors, seed=seed)
    if seed is not None and "generator" not in kwargs:
        # Seeded from the sampler's stream rather than with `seed` itself, so the shuffle order
        # and the neighbour draws are not the same random numbers.
        loader_seed = int(torch.randint(2**62, (1,), generator=sampler.generator))
        kwargs["generator"] = torch.Generator().manual_seed(loader_seed)
    return NodeLoader(data, node_sampler=sampler, input_nodes=input_nodes, batch_size=batch_size, shuffle=shuffle, **kwargs)
