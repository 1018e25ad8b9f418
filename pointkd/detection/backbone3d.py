r"""SECOND's voxel encoder and sparse 3D backbone, with width multipliers for students.

`SECOND <https://www.mdpi.com/1424-8220/18/10/3337>`_ (Yan et al., Sensors
2018) averages the points of each voxel (:class:`MeanVFE`), runs a sparse 3D
CNN that downsamples the grid 8x (:class:`VoxelBackBone8x`, OpenPCDet's
layout) and stacks the remaining height slices into a bird's-eye-view map
(:class:`HeightCompression`) for a 2D detection head.

Every stage is a submanifold/regular sparse convolution followed by
``BatchNorm1d`` and ReLU on the active voxels only:

.. math::
    x^{(l+1)}_o = \operatorname{ReLU}\big(\operatorname{BN}\big(
        \textstyle\sum_k \sum_{(i, o) \in R_k} W^{(l)}_k\, x^{(l)}_i\big)\big).

The convolutions are :mod:`pointkd.detection.sparse`'s, which train on CPU
and run spconv itself on CUDA; state dicts match OpenPCDet's ``backbone_3d``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pointkd.detection.pointpillars import scaled_channels
from pointkd.detection.sparse import SparseConv3d, SparseConvTensor, SparseSequential, SubMConv3d, sparse_to_dense

__all__ = ["HeightCompression", "MeanVFE", "VoxelBackBone8x"]

# OpenPCDet's VoxelBackBone8x channel plan at width 1.0.
_BASE_CHANNELS = {"conv_input": 16, "x_conv1": 16, "x_conv2": 32, "x_conv3": 64, "x_conv4": 64, "conv_out": 128}


class MeanVFE(nn.Module):
    r"""The mean of the points in each voxel.

    .. math::
        f_v = \frac{1}{\max(n_v, 1)} \sum_{j < n_v} p_{v, j}

    Only the first ``num_points[v]`` rows of a voxel count, so the result is
    OpenPCDet's ``MeanVFE`` whenever the padding rows are zero (as
    :func:`~pointkd.detection.voxelize.voxelize` writes them) and still right
    when they are not. A voxel with no points gets zeros.

    Args:
        in_channels (int): point features, e.g. ``4`` for ``(x, y, z, intensity)``.

    Shapes:
        - voxels: :math:`(V, P, C)`
        - num_points: :math:`(V,)`, integers in :math:`[0, P]`
        - output: :math:`(V, C)`
    """

    def __init__(self, in_channels: int):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        self.in_channels = in_channels
        self.out_channels = in_channels

    def forward(self, voxels: Tensor, num_points: Tensor) -> Tensor:
        if voxels.dim() != 3 or voxels.shape[2] != self.in_channels:
            raise ValueError(f"voxels must be (V, P, {self.in_channels}), got {list(voxels.shape)}")
        if not voxels.is_floating_point():
            raise ValueError(f"voxels must be floating point, got {voxels.dtype}")
        if num_points.shape != voxels.shape[:1] or num_points.is_floating_point() or num_points.dtype == torch.bool:
            raise ValueError(
                f"num_points must be an integer tensor of shape ({voxels.shape[0]},), "
                f"got {num_points.dtype} {list(num_points.shape)}"
            )
        max_points = voxels.shape[1]
        if num_points.numel() and bool(((num_points < 0) | (num_points > max_points)).any()):
            raise ValueError(
                f"num_points must lie in [0, {max_points}], got values in "
                f"[{int(num_points.min())}, {int(num_points.max())}]"
            )
        mask = torch.arange(max_points, device=voxels.device) < num_points.to(voxels.device)[:, None]
        total = (voxels * mask.unsqueeze(-1).to(voxels.dtype)).sum(dim=1)
        return total / num_points.clamp(min=1).to(device=voxels.device, dtype=voxels.dtype)[:, None]


class HeightCompression(nn.Module):
    r"""A sparse 3D feature volume flattened to a bird's-eye-view map.

    .. math::
        F_{b,\ c D + d,\ h,\ w} = X_{b, c, d, h, w}

    (the channel-major order of OpenPCDet's ``HeightCompression``).

    Shapes:
        - input: ``SparseConvTensor`` with features :math:`(N, C)` on spatial
          shape :math:`(D, H, W)`
        - output: :math:`(B, C D, H, W)`, zero at empty cells
    """

    def forward(self, encoded_spconv_tensor: SparseConvTensor) -> Tensor:
        dense = sparse_to_dense(encoded_spconv_tensor)
        batch, channels, depth, height, width = dense.shape
        return dense.view(batch, channels * depth, height, width)


def _post_act_block(
    in_channels: int,
    out_channels: int,
    kernel_size,
    indice_key: str,
    stride=1,
    padding=0,
    conv_type: str = "subm",
) -> SparseSequential:
    # OpenPCDet's post_act_block: conv without bias, BatchNorm1d(eps=1e-3, momentum=0.01), ReLU.
    if conv_type == "subm":
        conv = SubMConv3d(in_channels, out_channels, kernel_size, bias=False, indice_key=indice_key)
    else:
        conv = SparseConv3d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False, indice_key=indice_key
        )
    return SparseSequential(conv, nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.01), nn.ReLU())


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class VoxelBackBone8x(nn.Module):
    r"""SECOND's sparse 3D backbone (OpenPCDet's ``VoxelBackBone8x``).

    Stages on a grid of ``grid_size = (nx, ny, nz)`` voxels, whose sparse
    shape is :math:`(n_z + 1, n_y, n_x)` as in OpenPCDet (one spare z slice so
    that 40 slices reduce to 2 at the end):

    ==============  ==========================================  ========  ======
    stage           layers                                      channels  stride
    ==============  ==========================================  ========  ======
    ``conv_input``  SubM 3                                      16        1
    ``x_conv1``     SubM 3                                      16        1
    ``x_conv2``     SpConv 3 s2 p1, 2 x SubM 3                  32        2
    ``x_conv3``     SpConv 3 s2 p1, 2 x SubM 3                  64        4
    ``x_conv4``     SpConv 3 s2 p(0, 1, 1), 2 x SubM 3          64        8
    ``conv_out``    SpConv (3, 1, 1) s(2, 1, 1)                 128       8
    ==============  ==========================================  ========  ======

    each convolution followed by ``BatchNorm1d(eps=1e-3, momentum=0.01)`` and
    ReLU. Channel counts are multiplied by ``width`` and rounded to the nearest
    multiple of 8, at least 8 (:func:`~pointkd.detection.pointpillars.scaled_channels`,
    the rule the PointPillars students use): in the table's order ``width=0.5``
    gives 8/8/16/32/32/64 and ``width=0.25`` gives 8/8/8/16/16/32. Module and
    parameter names follow OpenPCDet's (``conv_input.0.weight``,
    ``conv2.0.0.weight``, ..., ``conv_out.1.running_mean``).

    Args:
        in_channels (int): voxel feature size (``4`` after :class:`MeanVFE`).
        grid_size (sequence of int): ``(nx, ny, nz)`` voxels of the grid.
        width (float): channel multiplier. (default: ``1.0``)

    Shapes:
        - voxel_features: :math:`(V, C_{in})`, floating point
        - voxel_coords: :math:`(V, 4)` integer ``(batch, z, y, x)``, unique,
          inside ``grid_size``
        - spatial_features: :math:`(B, C_{out} D, H, W)` with
          :math:`H = \lceil n_y / 8 \rceil`, :math:`W = \lceil n_x / 8 \rceil`
          and :math:`D = 2` for :math:`n_z = 40` (``num_bev_features`` and
          ``bev_shape`` hold :math:`C_{out} D` and :math:`(H, W)`).
    """

    def __init__(self, in_channels: int, grid_size: Sequence[int], width: float = 1.0):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        grid_size = tuple(grid_size)
        if len(grid_size) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in grid_size):
            raise ValueError(f"grid_size must be three positive ints (nx, ny, nz), got {grid_size!r}")
        if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
            raise ValueError(f"width must be a positive number, got {width!r}")
        self.in_channels = in_channels
        self.grid_size = grid_size
        self.width = float(width)
        nx, ny, nz = grid_size
        self.sparse_shape = [nz + 1, ny, nx]
        ch = {name: scaled_channels(channels, width) for name, channels in _BASE_CHANNELS.items()}
        self.channels = ch

        self.conv_input = SparseSequential(
            SubMConv3d(in_channels, ch["conv_input"], 3, padding=1, bias=False, indice_key="subm1"),
            nn.BatchNorm1d(ch["conv_input"], eps=1e-3, momentum=0.01),
            nn.ReLU(),
        )
        self.conv1 = SparseSequential(_post_act_block(ch["conv_input"], ch["x_conv1"], 3, "subm1", padding=1))
        self.conv2 = self._stage(ch["x_conv1"], ch["x_conv2"], padding=1, index=2)
        self.conv3 = self._stage(ch["x_conv2"], ch["x_conv3"], padding=1, index=3)
        # No z padding: 11 slices -> 5, so conv_out's (3, 1, 1) stride-2 kernel leaves 2.
        self.conv4 = self._stage(ch["x_conv3"], ch["x_conv4"], padding=(0, 1, 1), index=4)
        self.conv_out = SparseSequential(
            SparseConv3d(
                ch["x_conv4"],
                ch["conv_out"],
                (3, 1, 1),
                stride=(2, 1, 1),
                padding=0,
                bias=False,
                indice_key="spconv_down2",
            ),
            nn.BatchNorm1d(ch["conv_out"], eps=1e-3, momentum=0.01),
            nn.ReLU(),
        )
        self.height_compression = HeightCompression()

        self.backbone_channels = {name: ch[name] for name in ("x_conv1", "x_conv2", "x_conv3", "x_conv4")}
        self.num_point_features = ch["conv_out"]
        depth, height, width_out = self.sparse_shape
        for kernel, stride, padding in ((3, 2, 1), (3, 2, 1), (3, 2, 0), (3, 2, 0)):
            depth = _conv_output_size(depth, kernel, stride, padding)
        for _ in range(3):
            height = _conv_output_size(height, 3, 2, 1)
            width_out = _conv_output_size(width_out, 3, 2, 1)
        if depth < 1:
            raise ValueError(f"grid_size nz={nz} is too small: no z slice is left after the 8x downsampling")
        self.bev_shape = (height, width_out)
        self.num_bev_features = ch["conv_out"] * depth

    @staticmethod
    def _stage(in_channels: int, out_channels: int, padding, index: int) -> SparseSequential:
        return SparseSequential(
            _post_act_block(
                in_channels, out_channels, 3, f"spconv{index}", stride=2, padding=padding, conv_type="spconv"
            ),
            _post_act_block(out_channels, out_channels, 3, f"subm{index}", padding=1),
            _post_act_block(out_channels, out_channels, 3, f"subm{index}", padding=1),
        )

    def forward(self, voxel_features: Tensor, voxel_coords: Tensor, batch_size: int) -> dict:
        """Run the backbone on one batch of voxels.

        Args:
            voxel_features (Tensor): :math:`(V, C_{in})` features, e.g. from :class:`MeanVFE`.
            voxel_coords (Tensor): :math:`(V, 4)` integer ``(batch, z, y, x)``.
            batch_size (int): number of scans in the batch.

        Returns:
            dict: ``"spatial_features"`` (the BEV map), ``"spatial_features_stride"``
            (``8``), ``"encoded_spconv_tensor"`` and ``"encoded_spconv_tensor_stride"``
            (the ``conv_out`` sparse tensor and ``8``), ``"multi_scale_3d_features"``
            (``x_conv1`` ... ``x_conv4`` sparse tensors, for feature distillation) and
            ``"multi_scale_3d_strides"`` (``{"x_conv1": 1, ..., "x_conv4": 8}``).

        Raises:
            ValueError: naming ``voxel_features``, ``voxel_coords`` or ``batch_size``
                for a wrong shape or dtype, coordinates outside ``grid_size``, a batch
                index outside ``[0, batch_size)`` or repeated coordinates.
        """
        voxel_coords = self._check_inputs(voxel_features, voxel_coords, batch_size)
        x = SparseConvTensor(voxel_features, voxel_coords, self.sparse_shape, batch_size)
        x = self.conv_input(x)
        x_conv1 = self.conv1(x)
        x_conv2 = self.conv2(x_conv1)
        x_conv3 = self.conv3(x_conv2)
        x_conv4 = self.conv4(x_conv3)
        out = self.conv_out(x_conv4)
        return {
            "spatial_features": self.height_compression(out),
            "spatial_features_stride": 8,
            "encoded_spconv_tensor": out,
            "encoded_spconv_tensor_stride": 8,
            "multi_scale_3d_features": {
                "x_conv1": x_conv1,
                "x_conv2": x_conv2,
                "x_conv3": x_conv3,
                "x_conv4": x_conv4,
            },
            "multi_scale_3d_strides": {"x_conv1": 1, "x_conv2": 2, "x_conv3": 4, "x_conv4": 8},
        }

    def _check_inputs(self, voxel_features: Tensor, voxel_coords: Tensor, batch_size: int) -> Tensor:
        """Raise ValueError naming the bad argument; return ``voxel_coords`` as int32."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(voxel_features, Tensor) or voxel_features.dim() != 2:
            raise ValueError(
                f"voxel_features must be a (V, {self.in_channels}) tensor, got {_describe(voxel_features)}"
            )
        if voxel_features.shape[1] != self.in_channels or not voxel_features.is_floating_point():
            raise ValueError(
                f"voxel_features must be floating point of shape (V, {self.in_channels}), "
                f"got {_describe(voxel_features)}"
            )
        if voxel_features.shape[0] == 0:
            raise ValueError("voxel_features must hold at least one voxel, got 0 rows")
        if not isinstance(voxel_coords, Tensor) or voxel_coords.dim() != 2 or voxel_coords.shape[1] != 4:
            raise ValueError(f"voxel_coords must be (V, 4) (batch, z, y, x), got {_describe(voxel_coords)}")
        if voxel_coords.is_floating_point() or voxel_coords.is_complex() or voxel_coords.dtype == torch.bool:
            raise ValueError(f"voxel_coords must be an integer tensor, got {voxel_coords.dtype}")
        if voxel_coords.shape[0] != voxel_features.shape[0]:
            raise ValueError(
                f"voxel_coords must have one row per voxel_features row ({voxel_features.shape[0]}), "
                f"got {voxel_coords.shape[0]}"
            )
        nx, ny, nz = self.grid_size
        upper = torch.tensor([batch_size, nz, ny, nx], device=voxel_coords.device)
        coords = voxel_coords.long()
        outside = (coords < 0) | (coords >= upper)
        if bool(outside.any()):
            row, column = (int(v) for v in outside.nonzero()[0])
            if column == 0:
                raise ValueError(
                    f"voxel_coords batch index must lie in [0, batch_size={batch_size}), "
                    f"row {row} is {coords[row].tolist()}"
                )
            axis = "zyx"[column - 1]
            raise ValueError(
                f"voxel_coords must lie inside grid_size (nx, ny, nz)={self.grid_size}: row {row} "
                f"(batch, z, y, x)={coords[row].tolist()} is outside on {axis}"
            )
        # spconv assumes unique sites; duplicates would silently sum twice in some layers.
        linear = ((coords[:, 0] * nz + coords[:, 1]) * ny + coords[:, 2]) * nx + coords[:, 3]
        if linear.unique().numel() != linear.numel():
            raise ValueError("voxel_coords must be unique, got repeated (batch, z, y, x) rows")
        return voxel_coords.to(torch.int32).contiguous()


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} {list(value.shape)}"
    return type(value).__name__
