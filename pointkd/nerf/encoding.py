"""Input encodings of radiance fields."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pointkd.ops.hash_grid import HashGridConfig, hash_grid_encode


class HashGridEncoding(nn.Module):
    r"""Multiresolution hash encoding of `Instant-NGP <https://arxiv.org/abs/2201.05989>`_
    with its trainable tables: :func:`pointkd.ops.hash_grid_encode` on the
    module's ``embeddings``.

    .. math::
        \mathbf{x} \in [0, 1]^3 \;\mapsto\;
        \big[\, \mathrm{trilerp}_l(\mathbf{x}; \Theta) \,\big]_{l=0}^{L-1} \in \mathbb{R}^{L F}

    The tables are initialised uniformly in :math:`[-10^{-4}, 10^{-4}]`, as in
    the paper, so that the encoding starts near zero and the decoder's early
    gradients are not swamped by hash collisions.

    Args:
        config (HashGridConfig, optional): the levels; the default is
            Instant-NGP's NeRF configuration (16 levels of 2 features,
            :math:`T = 2^{19}`, resolutions 16 to 2048, 12.2 M parameters).
            (default: ``HashGridConfig()``)
        init_scale (float, optional): half-width of the uniform
            initialisation. (default: ``1e-4``)
        dtype (torch.dtype, optional): of the tables; points must have it too.
            (default: ``None``, torch's default dtype)
        device (torch.device, optional): of the tables. (default: ``None``)

    Shapes:
        - input: :math:`(*, 3)` in :math:`[0, 1]^3` (others are clamped)
        - output: :math:`(*, L F)`
    """

    def __init__(
        self,
        config: HashGridConfig | None = None,
        init_scale: float = 1e-4,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.config = config if config is not None else HashGridConfig()
        self.init_scale = init_scale
        self.embeddings = nn.Parameter(
            torch.empty(self.config.num_embeddings, self.config.features_per_level, dtype=dtype, device=device)
        )
        self.reset_parameters()

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embeddings, -self.init_scale, self.init_scale)

    def forward(self, points: Tensor) -> Tensor:
        return hash_grid_encode(points, self.embeddings, self.config)

    def extra_repr(self) -> str:
        config = self.config
        return (
            f"levels={config.num_levels}, features_per_level={config.features_per_level}, "
            f"log2_table_size={config.log2_table_size}, resolutions={config.base_resolution}..{config.resolutions[-1]}"
        )


class PositionalEncoding(nn.Module):
    r"""The sinusoidal encoding of `NeRF <https://arxiv.org/abs/2003.08934>`_:

    .. math::
        \gamma(\mathbf{x}) = \big[\mathbf{x},\ \sin(2^k \pi' \mathbf{x}),\ \cos(2^k \pi' \mathbf{x})\big]_{k=0}^{K-1}

    applied per coordinate, with :math:`\pi' = 1` (the official code's choice:
    its inputs lie in a box of a few units, so :math:`2^0` is already a coarse
    frequency).

    Args:
        num_frequencies (int): :math:`K \ge 0`.
        include_input (bool, optional): keep :math:`\mathbf{x}` itself.
            (default: ``True``)
        input_dim (int, optional): coordinates per point. (default: ``3``)

    Shapes:
        - input: :math:`(*, D)`
        - output: :math:`(*, D (\text{include\_input} + 2K))`
    """

    def __init__(self, num_frequencies: int, include_input: bool = True, input_dim: int = 3):
        super().__init__()
        if num_frequencies < 0:
            raise ValueError(f"num_frequencies must be >= 0, got {num_frequencies}")
        self.num_frequencies = num_frequencies
        self.include_input = include_input
        self.input_dim = input_dim
        self.register_buffer("frequencies", 2.0 ** torch.arange(num_frequencies, dtype=torch.float32), persistent=False)

    @property
    def output_dim(self) -> int:
        return self.input_dim * (int(self.include_input) + 2 * self.num_frequencies)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.input_dim:
            raise ValueError(
                f"x must have {self.input_dim} coordinates in its last dimension, got shape {list(x.shape)}"
            )
        parts = [x] if self.include_input else []
        if self.num_frequencies:
            scaled = (x[..., None, :] * self.frequencies.to(x.dtype)[:, None]).flatten(-2)
            parts += [torch.sin(scaled), torch.cos(scaled)]
        return torch.cat(parts, dim=-1) if parts else x[..., :0]


# Real spherical harmonics, degree 0 to 4, as polynomials in the unit
# direction (the basis of Plenoxels and Instant-NGP). The constants are
# sqrt((2l + 1) / (4 pi) * (l - |m|)! / (l + |m|)!) with the factors of the
# associated Legendre polynomials folded in; tests check orthonormality and
# that each degree spans the same space as scipy's spherical harmonics.
_SH_C0 = 0.28209479177387814
_SH_C1 = 0.4886025119029199
_SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)
_SH_C4 = (
    2.5033429417967046,
    -1.7701307697799304,
    0.9461746957575601,
    -0.6690465435572892,
    0.10578554691520431,
    -0.6690465435572892,
    0.47308734787878004,
    -1.7701307697799304,
    0.6258357354491761,
)


def spherical_harmonics(directions: Tensor, degree: int) -> Tensor:
    r"""Real spherical harmonics :math:`Y_l^m(\mathbf{d})` for
    :math:`0 \le l < \text{degree}` (so ``degree ** 2`` values), ordered by
    :math:`l`, then :math:`m = -l, \dots, l`.

    Args:
        directions (Tensor): unit vectors (not normalised here).
        degree (int): number of bands, in :math:`[1, 5]`.

    Shapes:
        - directions: :math:`(*, 3)`
        - output: :math:`(*, \text{degree}^2)`
    """
    if not 1 <= degree <= 5:
        raise ValueError(f"degree must be in [1, 5], got {degree}")
    if directions.shape[-1] != 3:
        raise ValueError(f"directions must have shape (*, 3), got {list(directions.shape)}")
    x, y, z = directions.unbind(-1)
    out = [torch.full_like(x, _SH_C0)]
    if degree > 1:
        out += [-_SH_C1 * y, _SH_C1 * z, -_SH_C1 * x]
    if degree > 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            _SH_C2[0] * xy,
            _SH_C2[1] * yz,
            _SH_C2[2] * (2 * zz - xx - yy),
            _SH_C2[3] * xz,
            _SH_C2[4] * (xx - yy),
        ]
    if degree > 3:
        out += [
            _SH_C3[0] * y * (3 * xx - yy),
            _SH_C3[1] * xy * z,
            _SH_C3[2] * y * (4 * zz - xx - yy),
            _SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            _SH_C3[4] * x * (4 * zz - xx - yy),
            _SH_C3[5] * z * (xx - yy),
            _SH_C3[6] * x * (xx - 3 * yy),
        ]
    if degree > 4:
        out += [
            _SH_C4[0] * xy * (xx - yy),
            _SH_C4[1] * yz * (3 * xx - yy),
            _SH_C4[2] * xy * (7 * zz - 1),
            _SH_C4[3] * yz * (7 * zz - 3),
            _SH_C4[4] * (zz * (35 * zz - 30) + 3),
            _SH_C4[5] * xz * (7 * zz - 3),
            _SH_C4[6] * (xx - yy) * (7 * zz - 1),
            _SH_C4[7] * xz * (xx - 3 * yy),
            _SH_C4[8] * (xx * (xx - 3 * yy) - yy * (3 * xx - yy)),
        ]
    return torch.stack(out, dim=-1)


class SphericalHarmonicsEncoding(nn.Module):
    r"""View directions encoded by :func:`spherical_harmonics` (directions are
    normalised first).

    Args:
        degree (int, optional): number of bands; ``degree ** 2`` outputs.
            (default: ``4``, Instant-NGP's choice)
    """

    def __init__(self, degree: int = 4):
        super().__init__()
        if not 1 <= degree <= 5:
            raise ValueError(f"degree must be in [1, 5], got {degree}")
        self.degree = degree

    @property
    def output_dim(self) -> int:
        return self.degree**2

    def forward(self, directions: Tensor) -> Tensor:
        return spherical_harmonics(torch.nn.functional.normalize(directions, dim=-1), self.degree)
