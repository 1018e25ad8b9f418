r"""Radiance fields: four architectures behind one interface.

Every field maps a world point :math:`\mathbf{x}` inside its box (``aabb``) and
a view direction :math:`\mathbf{d}` to a density :math:`\sigma \ge 0` and a
colour :math:`\mathbf{c} \in [0, 1]^3`, through an intermediate *volume
feature* :math:`\mathbf{f}(\mathbf{x})` that depends on position only (the
quantity that `PVD <https://arxiv.org/abs/2211.15977>`_ matches between
architectures):

.. math::
    (\sigma(\mathbf{x}), \mathbf{f}(\mathbf{x})) = \mathrm{query}(\mathbf{x}), \qquad
    \mathbf{c}(\mathbf{x}, \mathbf{d}) = \mathrm{decode}(\mathbf{f}(\mathbf{x}), \mathbf{d}).

=============  ==========================================  =====================================
field          query                                        decode
=============  ==========================================  =====================================
`MLPField`     positional encoding, ReLU MLP (NeRF)         linear + direction encoding + MLP
`GridField`    dense voxel volume, trilinear (DVGO)         small MLP, or spherical harmonics
`VMField`      vector-matrix tensor factors (TensoRF)       basis matrix + small MLP
`HashField`    multiresolution hash grid + MLP (Instant-NGP) SH direction encoding + MLP
=============  ==========================================  =====================================

Methods: :meth:`RadianceField.density`, :meth:`RadianceField.features`,
:meth:`RadianceField.color`, and ``forward(x, d) -> (sigma, rgb)`` computing
both at once. Points outside the box get zero density. :func:`save_field` and
:func:`load_field` store a field with its constructor arguments and metadata.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geokd.checkpoint import load_checkpoint, save_checkpoint
from pointkd.nerf.encoding import HashGridEncoding, PositionalEncoding, SphericalHarmonicsEncoding
from pointkd.ops.grid_sample import grid_sample3d
from pointkd.ops.hash_grid import HashGridConfig

FIELD_FORMAT = "geokd.pointkd.nerf.field"
FIELD_FORMAT_VERSION = 1


class _TruncExp(torch.autograd.Function):
    # exp with a gradient clamped at exp(15): Instant-NGP's density activation,
    # which keeps one large pre-activation from producing an inf gradient.
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_output * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: Tensor) -> Tensor:
    r""":math:`e^x`, with the gradient evaluated at :math:`\min(x, 15)`."""
    return _TruncExp.apply(x)


def _mlp(input_dim: int, hidden_dim: int, num_hidden: int, output_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    dim = input_dim
    for _ in range(num_hidden):
        layers += [nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers.append(nn.Linear(dim, output_dim))
    return nn.Sequential(*layers)


def _as_aabb(aabb: Any) -> Tensor:
    box = torch.as_tensor(aabb, dtype=torch.float32).flatten()
    if box.numel() != 6 or not torch.isfinite(box).all() or not bool((box[3:] > box[:3]).all()):
        raise ValueError(
            f"aabb must be 6 finite values (min x, min y, min z, max x, max y, max z) with max > min, got {aabb}"
        )
    return box


# Initial opacity of one voxel-length step: DVGO's activation shift makes a
# fresh grid nearly transparent, log(alpha / (1 - alpha)) for alpha = 1e-2.
DEFAULT_DENSITY_SHIFT = math.log(1e-2 / (1 - 1e-2))


def _voxel_density_scale(aabb: Tensor, resolution: int) -> float:
    # Densities of voxel-based fields are learnt per voxel length (DVGO's
    # voxel_size_ratio, TensoRF's distance_scale) and converted to world units,
    # so that a voxel turns opaque after a few optimiser steps, not thousands.
    extent = float((aabb[3:] - aabb[:3]).mean())
    return (resolution - 1) / extent


class RadianceField(nn.Module):
    r"""Base class of the fields: the box, input checks and the shared
    interface. Subclasses implement ``_query(x01) -> (sigma, features)`` on
    points normalised to :math:`[0, 1]^3` and ``_decode(features, directions)
    -> rgb``, and list their constructor arguments in ``config()``.

    Args:
        aabb (sequence of 6 floats): the box
            ``(min x, min y, min z, max x, max y, max z)`` the field covers.
    """

    kind: str = ""

    def __init__(self, aabb: Any):
        super().__init__()
        self.register_buffer("aabb", _as_aabb(aabb))

    # -- to be provided by the architectures ---------------------------------
    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    def _query(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _decode(self, features: Tensor, directions: Tensor) -> Tensor:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- the interface ---------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """World points to :math:`[0, 1]^3` of the box."""
        if x.dim() != 2 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (M, 3), got {list(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            # Every architecture would otherwise return NaN densities silently.
            raise ValueError("x must be finite, got NaN or inf")
        low, high = self.aabb[:3].to(x.dtype), self.aabb[3:].to(x.dtype)
        return (x - low) / (high - low)

    def _query_masked(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x01 = self.normalize(x)
        sigma, features = self._query(x01.clamp(0.0, 1.0))
        inside = ((x01 >= 0) & (x01 <= 1)).all(dim=-1)
        return sigma * inside.to(sigma.dtype), features

    def density(self, x: Tensor) -> Tensor:
        r""":math:`\sigma(\mathbf{x}) \ge 0`, zero outside the box. Shapes: :math:`(M, 3) \to (M,)`."""
        return self._query_masked(x)[0]

    def features(self, x: Tensor) -> Tensor:
        r"""The volume feature :math:`\mathbf{f}(\mathbf{x})`. Shapes: :math:`(M, 3) \to (M, F)`."""
        return self._query_masked(x)[1]

    def color(self, x: Tensor, directions: Tensor) -> Tensor:
        r""":math:`\mathbf{c}(\mathbf{x}, \mathbf{d}) \in [0, 1]^3`. Shapes: :math:`(M, 3), (M, 3) \to (M, 3)`."""
        return self.forward(x, directions)[1]

    def forward(self, x: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
        r"""Density and colour at once. Shapes: :math:`(M, 3), (M, 3) \to (M,), (M, 3)`."""
        if directions.shape != x.shape:
            raise ValueError(f"directions must have the shape of x {list(x.shape)}, got {list(directions.shape)}")
        sigma, features = self._query_masked(x)
        return sigma, self._decode(features, F.normalize(directions, dim=-1))


class MLPField(RadianceField):
    r"""The MLP radiance field of `NeRF <https://arxiv.org/abs/2003.08934>`_:

    .. math::
        \mathbf{h} = \mathrm{MLP}_{\text{trunk}}(\gamma_{L_x}(\mathbf{x})), \quad
        \sigma = \mathrm{softplus}(w_\sigma^\top \mathbf{h}), \quad
        \mathbf{c} = \mathrm{sigmoid}\big(\mathrm{MLP}_c([W_f \mathbf{h},\ \gamma_{L_d}(\mathbf{d})])\big),

    with the input re-injected half-way through the trunk (the skip
    connection). The volume feature is :math:`\mathbf{h}`. NeRF uses
    ReLU for the density; softplus (as mip-NeRF) avoids dead densities early
    in training. The defaults are smaller than the paper's 8 layers of 256,
    which do not train in reasonable time on a CPU; pass ``width=256,
    depth=8`` for the original network.

    Args:
        aabb (sequence of 6 floats): the box.
        width (int, optional): trunk width. (default: ``128``)
        depth (int, optional): trunk layers. (default: ``4``)
        position_frequencies (int, optional): :math:`L_x`. (default: ``10``)
        direction_frequencies (int, optional): :math:`L_d`. (default: ``4``)
    """

    kind = "mlp"

    def __init__(
        self,
        aabb: Any,
        width: int = 128,
        depth: int = 4,
        position_frequencies: int = 10,
        direction_frequencies: int = 4,
    ):
        super().__init__(aabb)
        if width < 1 or depth < 2:
            raise ValueError(f"width must be >= 1 and depth >= 2, got width={width}, depth={depth}")
        self.width, self.depth = width, depth
        self.position_encoding = PositionalEncoding(position_frequencies)
        self.direction_encoding = PositionalEncoding(direction_frequencies)
        self.skip = depth // 2
        layers = []
        for layer in range(depth):
            if layer == 0:
                in_dim = self.position_encoding.output_dim
            elif layer == self.skip:
                in_dim = width + self.position_encoding.output_dim
            else:
                in_dim = width
            layers.append(nn.Linear(in_dim, width))
        self.trunk = nn.ModuleList(layers)
        self.sigma_head = nn.Linear(width, 1)
        self.feature_head = nn.Linear(width, width)
        self.color_head = _mlp(width + self.direction_encoding.output_dim, width // 2, 1, 3)

    @property
    def feature_dim(self) -> int:
        return self.width

    def _query(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        # The encoding sees [-1, 1]^3, the scale NeRF's frequencies assume.
        encoded = self.position_encoding(x01 * 2 - 1)
        hidden = encoded
        for layer, linear in enumerate(self.trunk):
            if layer == self.skip:
                hidden = torch.cat([hidden, encoded], dim=-1)
            hidden = F.relu(linear(hidden))
        return F.softplus(self.sigma_head(hidden).squeeze(-1)), hidden

    def _decode(self, features: Tensor, directions: Tensor) -> Tensor:
        hidden = torch.cat([self.feature_head(features), self.direction_encoding(directions)], dim=-1)
        return torch.sigmoid(self.color_head(hidden))

    def config(self) -> dict[str, Any]:
        return {
            "aabb": self.aabb.tolist(),
            "width": self.width,
            "depth": self.depth,
            "position_frequencies": self.position_encoding.num_frequencies,
            "direction_frequencies": self.direction_encoding.num_frequencies,
        }


class GridField(RadianceField):
    r"""A dense voxel grid, as in `DVGO <https://arxiv.org/abs/2111.11215>`_
    (and, with ``color_mode="sh"``, `Plenoxels <https://arxiv.org/abs/2112.05131>`_):

    .. math::
        [s, \mathbf{f}] = \mathrm{trilerp}(V, \mathbf{x}), \quad
        \sigma = k\, \mathrm{softplus}(s + b), \quad
        \mathbf{c} = \begin{cases}
            \mathrm{sigmoid}(\mathrm{MLP}([\mathbf{f}, \gamma_{L_d}(\mathbf{d})])) & \text{mlp} \\
            \mathrm{sigmoid}\big(\sum_{l, m} \mathbf{f}_{l m} Y_l^m(\mathbf{d})\big) & \text{sh}
        \end{cases}

    :math:`V` is a :math:`(1 + C, R, R, R)` volume sampled with
    :func:`pointkd.ops.grid_sample3d` (``align_corners=True``: the corner
    voxels sit on the box faces). Densities are learnt per voxel length and
    scaled to world units by :math:`k = (R - 1) / \text{box extent}`; the
    shift :math:`b` makes a fresh grid nearly transparent (both as in DVGO).
    The volume feature is
    :math:`\mathbf{f}`. :meth:`upsample` resamples the volume to a finer
    resolution with :func:`pointkd.ops.resample_volume` (coarse-to-fine
    training).

    Args:
        aabb (sequence of 6 floats): the box.
        resolution (int, optional): voxels per axis :math:`R`. (default: ``128``)
        feature_dim (int, optional): :math:`C` for ``"mlp"`` (for ``"sh"`` it
            is :math:`3 \cdot \text{sh\_degree}^2`). (default: ``12``)
        color_mode (str, optional): ``"mlp"`` or ``"sh"``. (default: ``"mlp"``)
        sh_degree (int, optional): bands of the ``"sh"`` colour. (default: ``3``)
        hidden_dim (int, optional): width of the decoder. (default: ``128``)
        direction_frequencies (int, optional): :math:`L_d`. (default: ``4``)
        density_shift (float, optional): :math:`b`. (default: :math:`\ln(0.01 / 0.99)`,
            an opacity of 1% per voxel)
        density_scale (float, optional): :math:`k`. (default: ``None``, one
            over the voxel size at ``resolution``; kept when upsampling)
    """

    kind = "grid"

    def __init__(
        self,
        aabb: Any,
        resolution: int = 128,
        feature_dim: int = 12,
        color_mode: str = "mlp",
        sh_degree: int = 3,
        hidden_dim: int = 128,
        direction_frequencies: int = 4,
        density_shift: float = DEFAULT_DENSITY_SHIFT,
        density_scale: float | None = None,
    ):
        super().__init__(aabb)
        if color_mode not in ("mlp", "sh"):
            raise ValueError(f"color_mode must be 'mlp' or 'sh', got {color_mode!r}")
        if resolution < 2:
            raise ValueError(f"resolution must be >= 2, got {resolution}")
        self.color_mode = color_mode
        self.sh_degree = sh_degree
        self.hidden_dim = hidden_dim
        self.density_shift = density_shift
        self.density_scale = density_scale if density_scale is not None else _voxel_density_scale(self.aabb, resolution)
        self._feature_dim = 3 * sh_degree**2 if color_mode == "sh" else feature_dim
        self.volume = nn.Parameter(torch.zeros(1 + self._feature_dim, resolution, resolution, resolution))
        with torch.no_grad():
            self.volume[1:].uniform_(-1e-1, 1e-1)
        self.direction_encoding = PositionalEncoding(direction_frequencies)
        if color_mode == "mlp":
            self.decoder = _mlp(self._feature_dim + self.direction_encoding.output_dim, hidden_dim, 2, 3)
        else:
            self.sh_encoding = SphericalHarmonicsEncoding(sh_degree)

    @property
    def resolution(self) -> int:
        return self.volume.shape[-1]

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def _query(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        sampled = grid_sample3d(self.volume, x01 * 2 - 1, align_corners=True, padding_mode="border")
        return self.density_scale * F.softplus(sampled[:, 0] + self.density_shift), sampled[:, 1:]

    def _decode(self, features: Tensor, directions: Tensor) -> Tensor:
        if self.color_mode == "mlp":
            return torch.sigmoid(self.decoder(torch.cat([features, self.direction_encoding(directions)], dim=-1)))
        basis = self.sh_encoding(directions)
        coefficients = features.view(features.shape[0], 3, -1)
        return torch.sigmoid((coefficients * basis[:, None, :]).sum(-1))

    @torch.no_grad()
    def upsample(self, resolution: int) -> None:
        """Resample the volume to ``resolution`` voxels per axis (trilinear,
        corners kept on the box faces). The parameter is replaced: build the
        optimizer again afterwards."""
        from pointkd.ops.resample import resample_volume

        resampled = resample_volume(self.volume.detach(), (resolution,) * 3, align_corners=True)
        self.volume = nn.Parameter(resampled.contiguous())

    def config(self) -> dict[str, Any]:
        return {
            "aabb": self.aabb.tolist(),
            "resolution": self.resolution,
            "feature_dim": self._feature_dim,
            "color_mode": self.color_mode,
            "sh_degree": self.sh_degree,
            "hidden_dim": self.hidden_dim,
            "direction_frequencies": self.direction_encoding.num_frequencies,
            "density_shift": self.density_shift,
            "density_scale": self.density_scale,
        }


class VMField(RadianceField):
    r"""The vector-matrix (VM) decomposition of
    `TensoRF <https://arxiv.org/abs/2203.09517>`_. With planes :math:`M` and
    lines :math:`v` for the three axis pairs
    :math:`(XY, Z), (XZ, Y), (YZ, X)`:

    .. math::
        \sigma = k\, \mathrm{softplus}\Big(\sum_{m} \sum_{r=1}^{R_\sigma}
            M^{\sigma}_{m, r}(\mathbf{x}_{\bar m})\, v^{\sigma}_{m, r}(x_m) + b\Big), \quad
        \mathbf{f} = B\, \big[M^{c}_{m, r}(\mathbf{x}_{\bar m})\, v^{c}_{m, r}(x_m)\big]_{m, r},

    .. math::
        \mathbf{c} = \mathrm{sigmoid}(\mathrm{MLP}([\mathbf{f}, \gamma_{L_d}(\mathbf{d})])).

    Planes and lines are sampled bilinearly / linearly (``align_corners=True``).
    The volume feature is :math:`\mathbf{f}` (the appearance feature after the
    basis matrix :math:`B`). As for :class:`GridField`, densities are learnt
    per voxel length (TensoRF's ``distance_scale``) and scaled by
    :math:`k = (R - 1) / \text{box extent}`.

    Args:
        aabb (sequence of 6 floats): the box.
        resolution (int, optional): samples per axis of the planes and lines.
            (default: ``128``)
        density_components (int, optional): :math:`R_\sigma` per axis pair.
            (default: ``16``)
        appearance_components (int, optional): :math:`R_c` per axis pair.
            (default: ``48``)
        feature_dim (int, optional): rows of :math:`B`. (default: ``27``)
        hidden_dim (int, optional): width of the decoder. (default: ``128``)
        direction_frequencies (int, optional): :math:`L_d`. (default: ``2``)
        density_shift (float, optional): :math:`b`. (default: :math:`\ln(0.01 / 0.99)`)
        density_scale (float, optional): :math:`k`. (default: ``None``, one
            over the voxel size at ``resolution``)
    """

    kind = "vm"
    # (plane axes, line axis) in x, y, z order of the normalised point.
    _MODES = ((0, 1, 2), (0, 2, 1), (1, 2, 0))

    def __init__(
        self,
        aabb: Any,
        resolution: int = 128,
        density_components: int = 16,
        appearance_components: int = 48,
        feature_dim: int = 27,
        hidden_dim: int = 128,
        direction_frequencies: int = 2,
        density_shift: float = DEFAULT_DENSITY_SHIFT,
        density_scale: float | None = None,
    ):
        super().__init__(aabb)
        if resolution < 2:
            raise ValueError(f"resolution must be >= 2, got {resolution}")
        self.density_components = density_components
        self.appearance_components = appearance_components
        self._feature_dim = feature_dim
        self.hidden_dim = hidden_dim
        self.density_shift = density_shift
        self.density_scale = density_scale if density_scale is not None else _voxel_density_scale(self.aabb, resolution)

        def planes(components: int) -> nn.ParameterList:
            return nn.ParameterList(
                [nn.Parameter(0.1 * torch.randn(1, components, resolution, resolution)) for _ in range(3)]
            )

        def lines(components: int) -> nn.ParameterList:
            return nn.ParameterList([nn.Parameter(0.1 * torch.randn(1, components, resolution, 1)) for _ in range(3)])

        self.density_planes, self.density_lines = planes(density_components), lines(density_components)
        self.appearance_planes, self.appearance_lines = planes(appearance_components), lines(appearance_components)
        self.basis = nn.Linear(3 * appearance_components, feature_dim, bias=False)
        self.direction_encoding = PositionalEncoding(direction_frequencies)
        self.decoder = _mlp(feature_dim + self.direction_encoding.output_dim, hidden_dim, 2, 3)

    @property
    def resolution(self) -> int:
        return self.density_planes[0].shape[-1]

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def _factors(self, x11: Tensor, planes: nn.ParameterList, lines: nn.ParameterList) -> list[Tensor]:
        out = []
        for (a, b, c), plane, line in zip(self._MODES, planes, lines):
            # F.grid_sample's 2D grid is (x, y) = (width, height) of the plane.
            plane_coords = torch.stack([x11[:, b], x11[:, a]], dim=-1).view(1, -1, 1, 2)
            line_coords = torch.stack([torch.zeros_like(x11[:, c]), x11[:, c]], dim=-1).view(1, -1, 1, 2)
            plane_values = F.grid_sample(plane, plane_coords, mode="bilinear", align_corners=True)
            line_values = F.grid_sample(line, line_coords, mode="bilinear", align_corners=True)
            out.append((plane_values * line_values).view(plane.shape[1], -1))
        return out

    def _query(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        x11 = x01 * 2 - 1
        density = sum(part.sum(0) for part in self._factors(x11, self.density_planes, self.density_lines))
        appearance = torch.cat(self._factors(x11, self.appearance_planes, self.appearance_lines), dim=0).t()
        return self.density_scale * F.softplus(density + self.density_shift), self.basis(appearance)

    def _decode(self, features: Tensor, directions: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(torch.cat([features, self.direction_encoding(directions)], dim=-1)))

    def config(self) -> dict[str, Any]:
        return {
            "aabb": self.aabb.tolist(),
            "resolution": self.resolution,
            "density_components": self.density_components,
            "appearance_components": self.appearance_components,
            "feature_dim": self._feature_dim,
            "hidden_dim": self.hidden_dim,
            "direction_frequencies": self.direction_encoding.num_frequencies,
            "density_shift": self.density_shift,
            "density_scale": self.density_scale,
        }


class HashField(RadianceField):
    r"""The hash-grid field of `Instant-NGP <https://arxiv.org/abs/2201.05989>`_:

    .. math::
        [s, \mathbf{f}] = \mathrm{MLP}_\sigma(\mathrm{enc}(\mathbf{x})), \quad
        \sigma = e^{s}, \quad
        \mathbf{c} = \mathrm{sigmoid}\big(\mathrm{MLP}_c([\mathbf{f}, \mathrm{SH}_4(\mathbf{d})])\big),

    with :func:`pointkd.ops.hash_grid_encode` as :math:`\mathrm{enc}`, one
    hidden layer of 64 in the density network and two in the colour network,
    and a 15-value geometry feature :math:`\mathbf{f}` (the volume feature).
    The exponential's gradient is clamped (:func:`trunc_exp`).

    Args:
        aabb (sequence of 6 floats): the box.
        config (HashGridConfig or dict, optional): the encoding.
            (default: 16 levels of 2 features, :math:`T = 2^{19}`,
            resolutions 16 to 2048)
        hidden_dim (int, optional): width of both networks. (default: ``64``)
        geometry_dim (int, optional): :math:`|\mathbf{f}|`. (default: ``15``)
        sh_degree (int, optional): bands of the direction encoding. (default: ``4``)
    """

    kind = "hash"

    def __init__(
        self,
        aabb: Any,
        config: HashGridConfig | dict | None = None,
        hidden_dim: int = 64,
        geometry_dim: int = 15,
        sh_degree: int = 4,
    ):
        super().__init__(aabb)
        if isinstance(config, dict):
            config = HashGridConfig(**config)
        self.encoding = HashGridEncoding(config)
        self.hidden_dim = hidden_dim
        self.geometry_dim = geometry_dim
        self.density_net = _mlp(self.encoding.output_dim, hidden_dim, 1, 1 + geometry_dim)
        self.direction_encoding = SphericalHarmonicsEncoding(sh_degree)
        self.color_net = _mlp(geometry_dim + self.direction_encoding.output_dim, hidden_dim, 2, 3)

    @property
    def feature_dim(self) -> int:
        return self.geometry_dim

    def _query(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        out = self.density_net(self.encoding(x01))
        return trunc_exp(out[:, 0]), out[:, 1:]

    def _decode(self, features: Tensor, directions: Tensor) -> Tensor:
        # Directions are already unit vectors (forward normalises them).
        encoded = torch.cat([features, self.direction_encoding(directions)], dim=-1)
        return torch.sigmoid(self.color_net(encoded))

    def config(self) -> dict[str, Any]:
        encoding = self.encoding.config
        return {
            "aabb": self.aabb.tolist(),
            "config": {
                "num_levels": encoding.num_levels,
                "features_per_level": encoding.features_per_level,
                "log2_table_size": encoding.log2_table_size,
                "base_resolution": encoding.base_resolution,
                "finest_resolution": encoding.finest_resolution,
            },
            "hidden_dim": self.hidden_dim,
            "geometry_dim": self.geometry_dim,
            "sh_degree": self.direction_encoding.degree,
        }


FIELDS: dict[str, type[RadianceField]] = {"mlp": MLPField, "grid": GridField, "vm": VMField, "hash": HashField}


def build_field(kind: str, aabb: Any, **kwargs: Any) -> RadianceField:
    """A field of one of the kinds in :data:`FIELDS` (``mlp``, ``grid``, ``vm``, ``hash``)."""
    if kind not in FIELDS:
        raise ValueError(f"kind must be one of {sorted(FIELDS)}, got {kind!r}")
    return FIELDS[kind](aabb, **kwargs)


def save_field(field: RadianceField, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    """Write ``field`` (kind, constructor arguments, weights) and ``metadata``
    atomically to ``path``; :func:`load_field` rebuilds it."""
    if not isinstance(field, RadianceField):
        raise TypeError(f"field must be a RadianceField, got {type(field).__name__}")
    state = {
        "format": FIELD_FORMAT,
        "version": FIELD_FORMAT_VERSION,
        "kind": field.kind,
        "config": field.config(),
        "state_dict": {name: value.detach().cpu() for name, value in field.state_dict().items()},
        "metadata": dict(metadata or {}),
    }
    save_checkpoint(state, path)


def load_field(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[RadianceField, dict[str, Any]]:
    """Read a field written by :func:`save_field`: ``(field, metadata)``."""
    state = load_checkpoint(path, map_location=map_location)
    if not isinstance(state, dict) or state.get("format") != FIELD_FORMAT:
        raise ValueError(f"{path} is not a radiance field written by save_field (no '{FIELD_FORMAT}' format tag)")
    if state.get("version", 0) > FIELD_FORMAT_VERSION:
        raise ValueError(
            f"{path} has field format version {state['version']}; this geokd reads up to {FIELD_FORMAT_VERSION}: upgrade geokd"
        )
    config = dict(state["config"])
    field = build_field(state["kind"], config.pop("aabb"), **config)
    field.load_state_dict(state["state_dict"])
    return field.to(map_location), state.get("metadata", {})


def num_parameters(field: nn.Module) -> int:
    return sum(parameter.numel() for parameter in field.parameters())


__all__ = [
    "FIELDS",
    "GridField",
    "HashField",
    "MLPField",
    "RadianceField",
    "VMField",
    "build_field",
    "load_field",
    "num_parameters",
    "save_field",
    "trunc_exp",
]
