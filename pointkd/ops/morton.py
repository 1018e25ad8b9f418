"""Z-order (Morton) codes of voxel coordinates: ``torch.ops.pointkd.morton_encode``."""

from __future__ import annotations

import torch
from torch import Tensor

from pointkd._ext import library

MORTON_BITS = 21


def morton_encode(coords: Tensor) -> Tensor:
    r"""Interleave the bits of 3-D integer coordinates into one 63-bit key.

    .. math::
        \mathrm{code}_i = \sum_{b=0}^{20} \sum_{k=0}^{2}
        \mathrm{bit}_b(\mathrm{coords}_{i,k}) \, 2^{3b + k}

    Sorting points by code groups nearby voxels (Z-order curve); the code is
    also a collision-free key of a voxel for hashing and ``unique``.

    Args:
        coords (Tensor): int32 or int64 voxel coordinates, each in
            :math:`[0, 2^{21})`.

    Shapes:
        - coords: :math:`(N, 3)`
        - output: :math:`(N,)`, int64.

    Raises:
        RuntimeError: wrong dtype or shape, or coordinates out of range.
    """
    if not isinstance(coords, Tensor):
        raise TypeError(f"coords must be a Tensor, got {type(coords).__name__}")
    return library.op("morton_encode")(coords)


def _morton_encode_reference(coords: Tensor) -> Tensor:
    """Pure-torch ground truth: one bit at a time."""
    coords = coords.to(torch.int64)
    codes = torch.zeros(coords.shape[0], dtype=torch.int64, device=coords.device)
    for bit in range(MORTON_BITS):
        for axis in range(3):
            codes |= ((coords[:, axis] >> bit) & 1) << (3 * bit + axis)
    return codes


if library.load():

    @torch.library.register_fake("pointkd::morton_encode")
    def _(coords: Tensor) -> Tensor:
        torch._check(coords.dim() == 2 and coords.shape[1] == 3, lambda: f"coords must be [N, 3], got {list(coords.shape)}")
        return coords.new_empty((coords.shape[0],), dtype=torch.int64)
