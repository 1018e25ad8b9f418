r"""Volume rendering of radiance fields: packed ray marching through an
occupancy grid (:func:`pointkd.ops.ray_march`), field queries on the kept
samples, and compositing (:func:`pointkd.ops.composite`).

For a ray :math:`\mathbf{o} + t \mathbf{d}` (unit :math:`\mathbf{d}`) with
samples :math:`t_i` at a fixed step :math:`\delta`,

.. math::
    \hat{C} = \sum_i T_i \big(1 - e^{-\sigma_i \delta}\big) \mathbf{c}_i
        + \Big(1 - \sum_i T_i \big(1 - e^{-\sigma_i \delta}\big)\Big) \mathbf{c}_{\text{bg}},
    \qquad T_i = e^{-\sum_{j < i} \sigma_j \delta}.

Rays that miss the box render the background.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from pointkd.ops.composite import composite
from pointkd.ops.ray_march import ray_march


class RenderOutput(NamedTuple):
    """Per-ray renders: colour over the background, opacity, depth, and the number of samples queried."""

    color: Tensor
    opacity: Tensor
    depth: Tensor
    num_samples: int


def render_rays(
    field: nn.Module,
    rays_o: Tensor,
    rays_d: Tensor,
    aabb: Tensor,
    near: float = 0.0,
    far: float = math.inf,
    step_size: float = 1e-2,
    max_samples: int = 1024,
    occupancy: Tensor | None = None,
    background: Tensor | None = None,
    transmittance_threshold: float = 1e-4,
) -> RenderOutput:
    r"""Render rays through ``field`` (differentiable in the field's parameters).

    Args:
        field (nn.Module): called as ``field(positions, directions) -> (sigma, rgb)``
            (a :class:`~pointkd.nerf.fields.RadianceField`, possibly wrapped in DDP).
        rays_o (Tensor): origins.
        rays_d (Tensor): directions; normalised here, so ``step_size``,
            ``near`` and ``far`` are world distances.
        aabb (Tensor): the box to march through, ``(6,)``.
        near (float, optional): (default: ``0.0``)
        far (float, optional): (default: ``inf``)
        step_size (float, optional): world distance between samples.
            (default: ``1e-2``)
        max_samples (int, optional): candidate samples per ray. (default: ``1024``)
        occupancy (Tensor, optional): bool grid over ``aabb`` indexed
            ``[x, y, z]``; samples in empty cells are skipped. (default: ``None``)
        background (Tensor, optional): colour behind the scene, ``(3,)``.
            (default: ``None``, black)
        transmittance_threshold (float, optional): early ray termination.
            (default: ``1e-4``)

    Shapes:
        - rays_o, rays_d: :math:`(R, 3)`
        - color: :math:`(R, 3)`; opacity, depth: :math:`(R,)`
    """
    if rays_o.shape != rays_d.shape or rays_o.dim() != 2 or rays_o.shape[1] != 3:
        raise ValueError(
            f"rays_o and rays_d must both have shape (R, 3), got {list(rays_o.shape)} and {list(rays_d.shape)}"
        )
    directions = torch.nn.functional.normalize(rays_d, dim=-1)
    march = ray_march(
        rays_o.detach(),
        directions.detach(),
        aabb.to(rays_o),
        near=near,
        far=far,
        step_size=step_size,
        max_samples=max_samples,
        occupancy=occupancy,
    )
    counts = march.ray_offsets.diff()
    sample_directions = directions.detach().repeat_interleave(counts, dim=0)
    sigmas, rgbs = field(march.positions, sample_directions)
    out = composite(sigmas, rgbs, march.deltas, march.ts, march.ray_offsets, transmittance_threshold)
    color = out.color
    if background is not None:
        color = color + (1 - out.opacity)[:, None] * background.to(color)
    return RenderOutput(color, out.opacity, out.depth, int(march.positions.shape[0]))


@torch.no_grad()
def render_image(
    field: nn.Module, rays_o: Tensor, rays_d: Tensor, chunk_size: int = 16384, **render_kwargs: Any
) -> dict[str, Tensor]:
    r"""Render an image (or any batch of rays) in chunks without gradients.

    Args:
        field (nn.Module): the field.
        rays_o (Tensor): origins, :math:`(*, 3)`.
        rays_d (Tensor): directions, :math:`(*, 3)`.
        chunk_size (int, optional): rays per chunk. (default: ``16384``)
        **render_kwargs: passed to :func:`render_rays`.

    Returns:
        dict: ``color`` :math:`(*, 3)`, ``opacity`` and ``depth`` :math:`(*)`.
    """
    shape = rays_o.shape[:-1]
    flat_o, flat_d = rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)
    colors, opacities, depths = [], [], []
    for start in range(0, flat_o.shape[0], chunk_size):
        out = render_rays(
            field, flat_o[start : start + chunk_size], flat_d[start : start + chunk_size], **render_kwargs
        )
        colors.append(out.color)
        opacities.append(out.opacity)
        depths.append(out.depth)
    if not colors:
        empty = flat_o.new_zeros(0)
        return {"color": flat_o.new_zeros(*shape, 3), "opacity": empty.view(shape), "depth": empty.view(shape)}
    return {
        "color": torch.cat(colors).view(*shape, 3),
        "opacity": torch.cat(opacities).view(shape),
        "depth": torch.cat(depths).view(shape),
    }


class OccupancyGrid(nn.Module):
    r"""A bitfield over the scene box that marks where the field is not empty,
    maintained as in `Instant-NGP <https://arxiv.org/abs/2201.05989>`_: a
    running density per cell,

    .. math::
        \bar\sigma_c \leftarrow \max\big(\lambda \bar\sigma_c,\ \sigma(\mathbf{x}_c)\big),

    with :math:`\mathbf{x}_c` a uniformly jittered point in cell :math:`c`,
    and the cell occupied when a step through it is not transparent,
    :math:`1 - e^{-\bar\sigma_c \delta} > \alpha_{\min}`, i.e.
    :math:`\bar\sigma_c > \tau = -\ln(1 - \alpha_{\min}) / \delta`, or
    when it is denser than the mean cell,
    :math:`\bar\sigma_c > \min(\tau, \operatorname{mean}_c \bar\sigma_c)`
    (Instant-NGP's safeguard: early in training, when the field is still
    transparent everywhere, the grid keeps its densest cells instead of
    emptying, which would stop every gradient). A fresh grid is fully
    occupied, so the first steps see the whole box.

    Args:
        aabb (Tensor): the box, ``(6,)``.
        resolution (int, optional): cells per axis. (default: ``64``)
        decay (float, optional): :math:`\lambda`. (default: ``0.95``)
        alpha_threshold (float, optional): :math:`\alpha_{\min}`. (default: ``1e-2``)
        step_size (float, optional): :math:`\delta`, the renderer's step.
            (default: ``1e-2``)
    """

    def __init__(
        self,
        aabb: Tensor,
        resolution: int = 64,
        decay: float = 0.95,
        alpha_threshold: float = 1e-2,
        step_size: float = 1e-2,
    ):
        super().__init__()
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if not 0 < alpha_threshold < 1 or step_size <= 0:
            raise ValueError(
                f"alpha_threshold must be in (0, 1) and step_size > 0, got {alpha_threshold} and {step_size}"
            )
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).clone())
        self.resolution = resolution
        self.decay = decay
        self.density_threshold = -math.log1p(-alpha_threshold) / step_size
        self.register_buffer("density", torch.full((resolution,) * 3, math.inf))
        self.register_buffer("bitfield", torch.ones((resolution,) * 3, dtype=torch.bool))

    @torch.no_grad()
    def update(self, density_fn, generator: torch.Generator | None = None, chunk_size: int = 65536) -> float:
        """Evaluate ``density_fn`` at one jittered point per cell and refresh
        the bitfield; returns the occupied fraction."""
        from pointkd.ops.resample import evaluate_on_grid

        fresh = evaluate_on_grid(
            density_fn, self.resolution, self.aabb, chunk_size=chunk_size, jitter=True, generator=generator
        ).to(self.density)
        previous = torch.where(torch.isinf(self.density), torch.zeros_like(self.density), self.density)
        self.density.copy_(torch.maximum(previous * self.decay, fresh))
        threshold = min(self.density_threshold, float(self.density.mean()))
        self.bitfield.copy_(self.density > threshold)
        return self.occupied_fraction

    @property
    def occupied_fraction(self) -> float:
        return float(self.bitfield.float().mean())
