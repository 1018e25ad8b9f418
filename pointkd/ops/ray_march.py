"""Sampling along rays through a box, skipping empty space: ``torch.ops.pointkd.ray_march``."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from pointkd._ext import library


class RayMarchOutput(NamedTuple):
    """Packed samples of :func:`ray_march`; ray ``r`` owns ``ray_offsets[r]:ray_offsets[r + 1]``."""

    ts: Tensor
    deltas: Tensor
    positions: Tensor
    ray_offsets: Tensor


def ray_march(
    rays_o: Tensor,
    rays_d: Tensor,
    aabb: Tensor,
    near: float = 0.0,
    far: float = math.inf,
    step_size: float = 1e-2,
    max_samples: int = 1024,
    occupancy: Tensor | None = None,
) -> RayMarchOutput:
    r"""March rays through an axis-aligned box at a fixed step, skipping empty
    cells of an occupancy grid, as in `Instant-NGP <https://arxiv.org/abs/2201.05989>`_.

    A ray :math:`o + t d` meets the box over :math:`[t_{\min}, t_{\max}]`
    (slab method); clipped to :math:`[\text{near}, \text{far}]` this is
    :math:`[t_0, t_1)`. The candidates are

    .. math::
        t_k = t_0 + \left(k + \tfrac{1}{2}\right) \Delta, \qquad
        k = 0, \dots, \text{max\_samples} - 1,

    of which those with :math:`t_k < t_1` whose occupancy cell (if a grid is
    given) is set are kept, in order. A ray that misses the box keeps none.
    Every sample gets ``deltas = step_size``; ``max_samples`` bounds the
    candidates, so it also bounds the samples kept per ray.

    The outputs are packed exactly (a count pass, a prefix sum, a fill pass)
    and feed :func:`~pointkd.ops.composite` directly. They are not
    differentiable: ``rays_o`` and ``rays_d`` are detached.

    Args:
        rays_o (Tensor): ray origins, float32 or float64, finite.
        rays_d (Tensor): ray directions, finite and non-zero; not normalized
            (``t`` and ``step_size`` are in units of :math:`\|d\|`).
        aabb (Tensor): the box ``(min x, min y, min z, max x, max y, max z)``.
        near (float, optional): smallest ``t``. (default: ``0.0``)
        far (float, optional): largest ``t``. (default: ``inf``)
        step_size (float, optional): :math:`\Delta > 0`. (default: ``1e-2``)
        max_samples (int, optional): candidates per ray. (default: ``1024``)
        occupancy (Tensor, optional): bool or uint8 grid over the box, indexed
            ``[x, y, z]``; cell :math:`(i, j, k)` covers
            :math:`[i / G_x, (i + 1) / G_x)` of the box along :math:`x`, etc.
            (default: ``None``, every cell occupied)

    Shapes:
        - rays_o, rays_d: :math:`(R, 3)`; aabb: :math:`(6,)`;
          occupancy: :math:`(G_x, G_y, G_z)`
        - ts, deltas: :math:`(S,)`; positions: :math:`(S, 3)`;
          ray_offsets: :math:`(R + 1,)` int64

    Raises:
        TypeError: an argument that is not a tensor.
        RuntimeError: wrong shapes, dtypes or devices, non-finite rays, a zero
            direction, an empty box, ``near > far``, ``step_size <= 0``,
            ``max_samples < 0``.
    """
    for name, value in (("rays_o", rays_o), ("rays_d", rays_d), ("aabb", aabb)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    if occupancy is not None and not isinstance(occupancy, Tensor):
        raise TypeError(f"occupancy must be a Tensor or None, got {type(occupancy).__name__}")
    ts, deltas, positions, ray_offsets = library.op("ray_march")(
        rays_o.detach(),
        rays_d.detach(),
        aabb.detach(),
        float(near),
        float(far),
        float(step_size),
        int(max_samples),
        occupancy,
    )
    return RayMarchOutput(ts, deltas, positions, ray_offsets)


def _ray_march_reference(
    rays_o: Tensor,
    rays_d: Tensor,
    aabb: Tensor,
    near: float = 0.0,
    far: float = math.inf,
    step_size: float = 1e-2,
    max_samples: int = 1024,
    occupancy: Tensor | None = None,
) -> RayMarchOutput:
    """Pure-torch ground truth: all ``max_samples`` candidates of every ray, then a mask.

    Same operations, in the same order, as the kernel, so that results agree bit for bit on the CPU.
    """
    dtype, device = rays_o.dtype, rays_o.device
    lo, hi = aabb[:3], aabb[3:]
    scalar = lambda value: torch.tensor(value, dtype=dtype, device=device)
    parallel = rays_d == 0
    safe_d = torch.where(parallel, torch.ones_like(rays_d), rays_d)
    t_lo = (lo - rays_o) / safe_d
    t_hi = (hi - rays_o) / safe_d
    first = torch.where(parallel, scalar(-math.inf), torch.minimum(t_lo, t_hi))
    second = torch.where(parallel, scalar(math.inf), torch.maximum(t_lo, t_hi))
    outside = (parallel & ((rays_o < lo) | (rays_o > hi))).any(1)
    t_start = torch.maximum(first.amax(1), scalar(near))
    t_end = torch.minimum(second.amin(1), scalar(far))
    k = torch.arange(max_samples, dtype=dtype, device=device)
    ts = t_start[:, None] + (k + scalar(0.5)) * scalar(step_size)
    keep = (ts < t_end[:, None]) & ~outside[:, None] & (t_start < t_end)[:, None]
    positions = rays_o[:, None, :] + ts[..., None] * rays_d[:, None, :]
    if occupancy is not None:
        size = torch.tensor(occupancy.shape, dtype=dtype, device=device)
        cell = torch.floor((positions - lo) / (hi - lo) * size)
        cell = torch.minimum(torch.clamp(cell, min=0), size - 1).long()
        keep &= occupancy[cell[..., 0], cell[..., 1], cell[..., 2]] != 0
    counts = keep.sum(1)
    ray_offsets = torch.zeros(rays_o.shape[0] + 1, dtype=torch.long, device=device)
    ray_offsets[1:] = torch.cumsum(counts, 0)
    return RayMarchOutput(ts[keep], torch.full_like(ts[keep], step_size), positions[keep], ray_offsets)


if library.load():

    @torch.library.register_fake("pointkd::ray_march")
    def _(
        rays_o: Tensor,
        rays_d: Tensor,
        aabb: Tensor,
        near: float,
        far: float,
        step_size: float,
        max_samples: int,
        occupancy: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        torch._check(
            rays_o.dim() == 2 and rays_o.shape[1] == 3, lambda: f"rays_o must be [R, 3], got {list(rays_o.shape)}"
        )
        num_samples = torch.library.get_ctx().new_dynamic_size()
        return (
            rays_o.new_empty((num_samples,)),
            rays_o.new_empty((num_samples,)),
            rays_o.new_empty((num_samples, 3)),
            rays_o.new_empty((rays_o.shape[0] + 1,), dtype=torch.long),
        )
