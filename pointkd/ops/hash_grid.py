"""Multiresolution hash encoding of Instant-NGP: ``torch.ops.pointkd.hash_grid_encode``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pointkd._ext import library

#: The primes of the spatial hash (Müller et al. 2022, Eq. 4), with :math:`\pi_0 = 1`.
HASH_PRIMES = (1, 2654435761, 805459861)
#: Limits of the compiled op (csrc/pointkd/hash_grid_encode_common.h).
MAX_LEVELS = 64
MAX_RESOLUTION = 1 << 24


@dataclass(frozen=True)
class HashGridConfig:
    r"""Level layout of a multiresolution hash grid (`Instant-NGP <https://arxiv.org/abs/2201.05989>`_).

    Level :math:`l \in \{0, \dots, L - 1\}` has resolution (cells per axis)

    .. math::
        N_l = \left\lfloor N_{\min}\, b^{\,l} \right\rfloor, \qquad
        b = \exp\!\left(\frac{\ln N_{\max} - \ln N_{\min}}{L - 1}\right),

    (the floor taken with a relative tolerance of :math:`10^{-9}`, so that
    :math:`N_{L-1} = N_{\max}` despite rounding; :math:`b = 1` for
    :math:`L = 1`), and a table of

    .. math::
        T_l = \min\!\left(T, (N_l + 1)^3\right), \qquad T = 2^{\text{log2\_table\_size}},

    rows of ``features_per_level`` values: dense when its :math:`(N_l + 1)^3`
    vertices fit, hashed otherwise. The tables are stored one after the other
    (level 0 first) in one :math:`(\sum_l T_l, F)` tensor, the layout of
    ``embeddings`` in :func:`hash_grid_encode`.

    The defaults are Instant-NGP's configuration for NeRF: 16 levels of 2
    features, :math:`T = 2^{19}`, resolutions 16 to 2048.

    Args:
        num_levels (int, optional): :math:`L`, in :math:`[1, 64]`. (default: ``16``)
        features_per_level (int, optional): :math:`F`. (default: ``2``)
        log2_table_size (int, optional): :math:`\log_2 T`, in :math:`[1, 32]`.
            (default: ``19``)
        base_resolution (int, optional): :math:`N_{\min}`, the coarsest
            resolution. (default: ``16``)
        finest_resolution (int, optional): :math:`N_{\max}`, the finest
            resolution, at least :math:`N_{\min}` and at most :math:`2^{24}`;
            ignored when ``num_levels == 1``. (default: ``2048``)
    """

    num_levels: int = 16
    features_per_level: int = 2
    log2_table_size: int = 19
    base_resolution: int = 16
    finest_resolution: int = 2048

    def __post_init__(self) -> None:
        for name in ("num_levels", "features_per_level", "log2_table_size", "base_resolution", "finest_resolution"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 1 <= self.num_levels <= MAX_LEVELS:
            raise ValueError(f"num_levels must be in [1, {MAX_LEVELS}], got {self.num_levels}")
        if self.features_per_level < 1:
            raise ValueError(f"features_per_level must be at least 1, got {self.features_per_level}")
        if not 1 <= self.log2_table_size <= 32:
            raise ValueError(f"log2_table_size must be in [1, 32], got {self.log2_table_size}")
        if not 1 <= self.base_resolution <= MAX_RESOLUTION:
            raise ValueError(f"base_resolution must be in [1, {MAX_RESOLUTION}], got {self.base_resolution}")
        if self.num_levels > 1 and not self.base_resolution <= self.finest_resolution <= MAX_RESOLUTION:
            raise ValueError(
                f"finest_resolution must be in [base_resolution, {MAX_RESOLUTION}] = "
                f"[{self.base_resolution}, {MAX_RESOLUTION}], got {self.finest_resolution}"
            )

    @property
    def per_level_scale(self) -> float:
        """:math:`b`, the growth factor of the resolution from one level to the next."""
        if self.num_levels == 1:
            return 1.0
        return math.exp((math.log(self.finest_resolution) - math.log(self.base_resolution)) / (self.num_levels - 1))

    @property
    def resolutions(self) -> tuple[int, ...]:
        """:math:`N_l` of each level."""
        scale = self.per_level_scale
        return tuple(math.floor(self.base_resolution * scale**level * (1 + 1e-9)) for level in range(self.num_levels))

    @property
    def table_size(self) -> int:
        """:math:`T`, the rows of a hashed level."""
        return 1 << self.log2_table_size

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """:math:`T_l`, the rows of each level's table."""
        return tuple(min(self.table_size, (resolution + 1) ** 3) for resolution in self.resolutions)

    @property
    def level_offsets(self) -> tuple[int, ...]:
        """First row of each level's table in ``embeddings``."""
        return tuple(sum(self.level_sizes[:level]) for level in range(self.num_levels))

    @property
    def num_embeddings(self) -> int:
        r""":math:`\sum_l T_l`, the rows of ``embeddings``."""
        return sum(self.level_sizes)

    @property
    def output_dim(self) -> int:
        """:math:`L F`, the features of an encoded point."""
        return self.num_levels * self.features_per_level


def _check_arguments(points: Tensor, embeddings: Tensor, config: HashGridConfig) -> None:
    for name, value in (("points", points), ("embeddings", embeddings)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    if not isinstance(config, HashGridConfig):
        raise TypeError(f"config must be a HashGridConfig, got {type(config).__name__}")
    if embeddings.dim() == 2 and embeddings.shape[1] != config.features_per_level:
        raise ValueError(
            f"embeddings must have config.features_per_level = {config.features_per_level} columns, "
            f"got shape {list(embeddings.shape)}"
        )


def hash_grid_encode(points: Tensor, embeddings: Tensor, config: HashGridConfig) -> Tensor:
    r"""Encode points with a multiresolution hash grid, as in `Instant-NGP
    <https://arxiv.org/abs/2201.05989>`_ (Müller et al., SIGGRAPH 2022).

    For each level :math:`l` of ``config`` (resolution :math:`N_l`, table of
    :math:`T_l` rows at offset :math:`o_l` in ``embeddings``
    :math:`\Theta`, see :class:`HashGridConfig`), a point
    :math:`\mathbf{x} \in [0, 1]^3` is scaled to the vertex grid
    :math:`\{0, \dots, N_l\}^3` and blended trilinearly from the 8 vertices of
    its cell:

    .. math::
        \mathbf{p} = N_l \operatorname{clamp}(\mathbf{x}, 0, 1), \quad
        \mathbf{v} = \min(\lfloor \mathbf{p} \rfloor, N_l - 1), \quad
        \mathbf{t} = \mathbf{p} - \mathbf{v},

    .. math::
        \mathrm{out}_{l F + f} = \sum_{\mathbf{d} \in \{0, 1\}^3}
            \Big(\prod_{a=0}^{2} w(t_a, d_a)\Big)\,
            \Theta_{o_l + h_l(\mathbf{v} + \mathbf{d}),\, f},
        \qquad w(t, 0) = 1 - t, \quad w(t, 1) = t,

    with the dense index when the level fits its table and the spatial hash
    of the paper otherwise,

    .. math::
        h_l(\mathbf{y}) = \begin{cases}
            y_0 + (N_l + 1)\, y_1 + (N_l + 1)^2\, y_2
                & \text{if } (N_l + 1)^3 \le T, \\
            \big(y_0 \pi_0 \oplus y_1 \pi_1 \oplus y_2 \pi_2 \bmod 2^{32}\big) \bmod T
                & \text{otherwise,}
        \end{cases}

    :math:`\pi = (1, 2654435761, 805459861)`, :math:`\oplus` bitwise XOR.
    The convention is the paper's, :math:`\mathbf{p} = N_l \mathbf{x}`
    without the half-cell offset of tiny-cuda-nn: 0 and 1 are vertices
    :math:`0` and :math:`N_l` of every level (and :math:`x = 1` is blended
    from cell :math:`N_l - 1` with :math:`t = 1`). Points outside
    :math:`[0, 1]^3` are clamped onto it, coordinate by coordinate; the
    gradient of such a coordinate is zero (as for :func:`torch.clamp`, a
    coordinate exactly on 0 or 1 does pass the gradient). NaN and inf raise.

    Gradients flow to ``embeddings`` (each point adds
    :math:`w \cdot \partial L / \partial \mathrm{out}` to its 8 rows per
    level) and to ``points`` (the derivative of the trilinear weights, times
    :math:`N_l`, summed over the levels; piecewise smooth, with kinks on the
    cell faces), both computed by the compiled
    ``torch.ops.pointkd.hash_grid_encode_backward``. Double backward (e.g. an
    Eikonal penalty on :math:`\partial\, \mathrm{out} / \partial \mathbf{x}`)
    is not supported and raises. On the CPU the gradient of ``embeddings`` is
    summed in a fixed order, bitwise reproducible whatever the number of
    threads (threads split the levels, each owning a disjoint slice of the
    table); on CUDA it is accumulated with atomics, in no fixed order.

    Args:
        points (Tensor): float32 or float64 coordinates in :math:`[0, 1]^3`
            (others are clamped), finite, any strides.
        embeddings (Tensor): the level tables, of ``points``' dtype and
            device, ``config.num_embeddings`` rows of
            ``config.features_per_level`` values (e.g. the parameter of
            :class:`pointkd.nerf.HashGridEncoding`).
        config (HashGridConfig): the levels.

    Shapes:
        - points: :math:`(*, 3)`, e.g. :math:`(N, 3)`
        - embeddings: :math:`(\sum_l T_l, F)`
        - output: :math:`(*, L F)`, contiguous, level-major: columns
          :math:`[lF, (l + 1) F)` hold level :math:`l`.

    Raises:
        TypeError: ``points`` or ``embeddings`` not a tensor, ``config`` not a
            :class:`HashGridConfig`.
        ValueError: ``embeddings`` with other than ``config.features_per_level``
            columns.
        RuntimeError: wrong shape or dtype, dtypes or devices of ``points``
            and ``embeddings`` that differ, ``embeddings`` with other than
            ``config.num_embeddings`` rows, non-finite points.
    """
    _check_arguments(points, embeddings, config)
    batch_shape = points.shape[:-1]
    flat = points if points.dim() == 2 or points.shape[-1:] != (3,) else points.reshape(-1, 3)
    output = library.op("hash_grid_encode")(flat, embeddings, list(config.resolutions), config.log2_table_size)
    return output if flat is points else output.reshape(*batch_shape, output.shape[-1])


def _hash_grid_encode_reference(points: Tensor, embeddings: Tensor, config: HashGridConfig) -> Tensor:
    """Pure-torch version of :func:`hash_grid_encode`, differentiable by autograd (also twice).

    Vectorised over points and the 8 corners (one pass per level), with the
    same formulas and the same order of the weight products as the compiled
    op. Slower and heavier on memory (several :math:`(N, 8)` int64 and float
    temporaries per level); a fallback to ask for explicitly.
    """
    _check_arguments(points, embeddings, config)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points must have shape (*, 3), got {list(points.shape)}")
    if not torch.isfinite(points).all():
        raise RuntimeError("points must be finite (NaN or inf cannot be encoded)")
    batch_shape = points.shape[:-1]
    clamped = points.reshape(-1, 3).clamp(0, 1)
    num_points = clamped.shape[0]
    outputs = []
    # One view per level: the backward of split is one cat of level-sized gradients, where a
    # lookup into the whole table would build (and sum) a full-size gradient per level.
    tables = torch.split(embeddings, config.level_sizes)
    for resolution, size, table in zip(config.resolutions, config.level_sizes, tables):
        position = clamped * resolution
        low = position.detach().floor().clamp(max=resolution - 1)
        frac = position - low
        sides = low.long().unsqueeze(1) + torch.arange(2, device=points.device).unsqueeze(1)  # (N, 2, 3)
        # Each axis contributes one term per side; corner c = dx + 2 dy + 4 dz is entry
        # [dz, dy, dx] of the (2, 2, 2) broadcast, as in the compiled op.
        if size == (resolution + 1) ** 3:
            terms = sides * torch.tensor([1, resolution + 1, (resolution + 1) ** 2], device=points.device)
            rows = terms[:, None, None, :, 0] + terms[:, None, :, None, 1] + terms[:, :, None, None, 2]
        else:
            # int64 products cannot overflow (vertices <= 2^24); the low bits of the XOR
            # are those of the uint32 hash, and T divides 2^32.
            terms = sides * torch.tensor(HASH_PRIMES, device=points.device)
            rows = (terms[:, None, None, :, 0] ^ terms[:, None, :, None, 1] ^ terms[:, :, None, None, 2]) & (size - 1)
        axis_weights = torch.stack([1 - frac, frac], dim=1)  # (N, 2, 3)
        weights = (
            axis_weights[:, None, None, :, 0] * axis_weights[:, None, :, None, 1] * axis_weights[:, :, None, None, 2]
        )
        # index_select, whose backward is index_add_: 3x faster on the CPU than F.embedding's.
        values = table.index_select(0, rows.reshape(-1)).view(num_points, 8, -1)
        outputs.append((weights.reshape(num_points, 8, 1) * values).sum(1))
    return torch.cat(outputs, dim=-1).reshape(*batch_shape, config.output_dim)


if library.load():

    def _check_fake_shapes(points: Tensor, embeddings: Tensor, resolutions: list[int]) -> None:
        torch._check(
            points.dim() == 2 and points.shape[1] == 3, lambda: f"points must be [N, 3], got {list(points.shape)}"
        )
        torch._check(embeddings.dim() == 2, lambda: f"embeddings must be [E, F], got {list(embeddings.shape)}")
        torch._check(
            embeddings.dtype == points.dtype, lambda: f"embeddings must have the dtype of points ({points.dtype})"
        )
        torch._check(1 <= len(resolutions) <= MAX_LEVELS, lambda: f"resolutions must list 1 to {MAX_LEVELS} levels")

    @torch.library.register_fake("pointkd::hash_grid_encode")
    def _(points: Tensor, embeddings: Tensor, resolutions: list[int], log2_table_size: int) -> Tensor:
        _check_fake_shapes(points, embeddings, resolutions)
        return embeddings.new_empty((points.shape[0], len(resolutions) * embeddings.shape[1]))

    @torch.library.register_fake("pointkd::hash_grid_encode_backward")
    def _(
        grad_output: Tensor,
        points: Tensor,
        embeddings: Tensor,
        resolutions: list[int],
        log2_table_size: int,
        output_mask: list[bool],
    ) -> tuple[Tensor, Tensor]:
        _check_fake_shapes(points, embeddings, resolutions)
        grad_embeddings = embeddings.new_empty(embeddings.shape) if output_mask[0] else embeddings.new_empty((0,))
        grad_points = points.new_empty(points.shape) if output_mask[1] else points.new_empty((0,))
        return grad_embeddings, grad_points

    def _setup_context(ctx, inputs, output) -> None:
        points, embeddings, resolutions, log2_table_size = inputs
        ctx.save_for_backward(points, embeddings)
        ctx.resolutions = resolutions
        ctx.log2_table_size = log2_table_size

    def _backward(ctx, grad_output: Tensor):
        points, embeddings = ctx.saved_tensors
        output_mask = [ctx.needs_input_grad[1], ctx.needs_input_grad[0]]
        grad_embeddings, grad_points = torch.ops.pointkd.hash_grid_encode_backward(
            grad_output, points, embeddings, ctx.resolutions, ctx.log2_table_size, output_mask
        )
        return (grad_points if output_mask[1] else None, grad_embeddings if output_mask[0] else None, None, None)

    torch.library.register_autograd("pointkd::hash_grid_encode", _backward, setup_context=_setup_context)

    def _setup_context_backward(ctx, inputs, output) -> None:
        pass

    def _double_backward(ctx, grad_grad_embeddings: Tensor, grad_grad_points: Tensor):
        raise RuntimeError(
            "hash_grid_encode has no double backward: gradients of its gradients (e.g. an Eikonal penalty on "
            "d output / d points) are not implemented; use _hash_grid_encode_reference for those"
        )

    torch.library.register_autograd(
        "pointkd::hash_grid_encode_backward", _double_backward, setup_context=_setup_context_backward
    )
