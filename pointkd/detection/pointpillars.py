r"""PointPillars' pillar encoder and bird's-eye-view backbone.

`PointPillars <https://arxiv.org/abs/1812.05784>`_ (Lang et al., CVPR 2019)
turns each pillar (a voxel spanning the whole height range) into one feature
vector with a tiny PointNet, scatters the vectors to a 2D pseudo-image and runs
a 2D convolutional backbone on it. Each point of a pillar is decorated with its
offset to the pillar's point mean and to the pillar's centre:

.. math::
    f_i = \big[x_i, y_i, z_i, r_i,\ x_i - \bar x, y_i - \bar y, z_i - \bar z,\
          x_i - x_p, y_i - y_p, z_i - z_p\big],\qquad
    g = \max_i \operatorname{ReLU}(\operatorname{BN}(W f_i)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8 (at least 8): the student's channel count."""
    return max(8, round(channels * width / 8) * 8)


class PillarFeatureNet(nn.Module):
    r"""The pillar encoder (one PointNet layer, max-pooled over each pillar's points).

    Args:
        in_channels (int): point features (``4``: x, y, z, intensity).
        out_channels (int): pillar feature size. (default: ``64``)
        voxel_size (tuple): ``(vx, vy, vz)`` of the pillar grid.
        point_cloud_range (tuple): ``(x0, y0, z0, x1, y1, z1)``.

    Shapes:
        - voxels: ``(V, P, in_channels)`` zero-padded points per pillar
        - num_points: ``(V,)`` valid points per pillar
        - voxel_coords: ``(V, 4)`` ``(batch, z, y, x)``
        - output: ``(V, out_channels)``
    """

    def __init__(
        self,
        in_channels: int,
        voxel_size: tuple[float, float, float],
        point_cloud_range: tuple[float, ...],
        out_channels: int = 64,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.register_buffer("voxel_size", torch.tensor(voxel_size, dtype=torch.float32), persistent=False)
        self.register_buffer("origin", torch.tensor(point_cloud_range[:3], dtype=torch.float32), persistent=False)
        self.linear = nn.Linear(in_channels + 6, out_channels, bias=False)
        self.norm = nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, voxels: Tensor, num_points: Tensor, voxel_coords: Tensor) -> Tensor:
        if voxels.shape[0] == 0:
            return voxels.new_zeros(0, self.out_channels)
        max_points = voxels.shape[1]
        mask = torch.arange(max_points, device=voxels.device)[None, :] < num_points[:, None]
        mask = mask.unsqueeze(-1).to(voxels.dtype)
        xyz = voxels[..., :3]
        mean = (xyz * mask).sum(dim=1, keepdim=True) / num_points.clamp(min=1).view(-1, 1, 1).to(voxels.dtype)
        # voxel_coords is (batch, z, y, x); pillar centres in x, y, z.
        centre = (voxel_coords[:, [3, 2, 1]].to(voxels.dtype) + 0.5) * self.voxel_size + self.origin
        features = torch.cat([voxels, xyz - mean, xyz - centre[:, None, :]], dim=-1) * mask
        hidden = self.linear(features)
        hidden = torch.relu(self.norm(hidden.reshape(-1, self.out_channels)).view_as(hidden))
        return hidden.max(dim=1).values


def scatter_to_bev(features: Tensor, voxel_coords: Tensor, batch_size: int, grid_size: tuple[int, int]) -> Tensor:
    """The pillars' features placed on the ``(B, C, ny, nx)`` pseudo-image (empty cells zero)."""
    nx, ny = grid_size
    channels = features.shape[1]
    canvas = features.new_zeros(batch_size, ny * nx, channels)
    flat = voxel_coords[:, 2].long() * nx + voxel_coords[:, 3].long()
    canvas[voxel_coords[:, 0].long(), flat] = features
    return canvas.view(batch_size, ny, nx, channels).permute(0, 3, 1, 2).contiguous()


def _conv_block(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01),
        nn.ReLU(inplace=True),
    ]


class BEVBackbone(nn.Module):
    r"""Strided 2D convolution stages whose outputs are upsampled to one resolution and concatenated.

    PointPillars' and SECOND's "RPN": stage ``k`` downsamples by
    ``strides[k]`` then applies ``layers[k]`` 3x3 convolutions; each stage's output
    is brought to a common stride by a transposed convolution (``upsample[k]``)
    and the results are concatenated.

    Args:
        in_channels (int): input channels.
        layers (tuple[int]): extra convolutions per stage. (default: ``(3, 5, 5)``)
        strides (tuple[int]): stage strides. (default: ``(2, 2, 2)``)
        channels (tuple[int]): stage widths. (default: ``(64, 128, 256)``)
        upsample (tuple[int]): upsampling factor per stage. (default: ``(1, 2, 4)``)
        upsample_channels (tuple[int]): channels after upsampling. (default: ``(128, 128, 128)``)
    """

    def __init__(
        self,
        in_channels: int,
        layers: tuple[int, ...] = (3, 5, 5),
        strides: tuple[int, ...] = (2, 2, 2),
        channels: tuple[int, ...] = (64, 128, 256),
        upsample: tuple[int, ...] = (1, 2, 4),
        upsample_channels: tuple[int, ...] = (128, 128, 128),
    ):
        super().__init__()
        if not len(layers) == len(strides) == len(channels) == len(upsample) == len(upsample_channels):
            raise ValueError("BEVBackbone: layers, strides, channels, upsample and upsample_channels differ in length")
        self.strides = tuple(strides)
        self.stages = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        previous = in_channels
        for count, stride, width, factor, up_width in zip(layers, strides, channels, upsample, upsample_channels):
            modules = _conv_block(previous, width, stride)
            for _ in range(count):
                modules += _conv_block(width, width, 1)
            self.stages.append(nn.Sequential(*modules))
            if factor >= 1:
                deblock = nn.ConvTranspose2d(width, up_width, factor, stride=factor, bias=False)
            else:
                inverse = round(1 / factor)
                deblock = nn.Conv2d(width, up_width, inverse, stride=inverse, bias=False)
            self.deblocks.append(
                nn.Sequential(deblock, nn.BatchNorm2d(up_width, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True))
            )
            previous = width
        self.out_channels = sum(upsample_channels)
        self.stride = strides[0] // upsample[0] if upsample[0] >= 1 else strides[0] * round(1 / upsample[0])

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        """``{"spatial_features_2d": (B, out_channels, H / stride, W / stride), "stage_features": [...]}``."""
        stage_features, upsampled = [], []
        for stage, deblock in zip(self.stages, self.deblocks):
            features = stage(features)
            stage_features.append(features)
            upsampled.append(deblock(features))
        return {"spatial_features_2d": torch.cat(upsampled, dim=1), "stage_features": stage_features}
