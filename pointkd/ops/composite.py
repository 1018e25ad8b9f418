"""NeRF volume rendering of packed samples: ``torch.ops.pointkd.composite``."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pointkd._ext import library


class CompositeOutput(NamedTuple):
    """Per-ray renders and per-sample weights of :func:`composite`."""

    color: Tensor
    opacity: Tensor
    depth: Tensor
    weights: Tensor


def composite(
    sigmas: Tensor,
    rgbs: Tensor,
    deltas: Tensor,
    ts: Tensor,
    ray_offsets: Tensor,
    transmittance_threshold: float = 1e-4,
) -> CompositeOutput:
    r"""Volume-render packed samples along rays, as in
    `NeRF <https://arxiv.org/abs/2003.08934>`_ (emission-absorption quadrature).

    Ray :math:`r` owns samples ``ray_offsets[r]:ray_offsets[r + 1]`` (a CSR
    layout, like ``ptr`` in PyTorch Geometric). Along a ray, with
    :math:`s_i = \sigma_i \delta_i`,

    .. math::
        \alpha_i = 1 - e^{-s_i}, \qquad
        T_i = \prod_{j < i} (1 - \alpha_j) = e^{-\sum_{j < i} s_j}, \qquad
        w_i = T_i \alpha_i,

    .. math::
        \mathrm{color} = \sum_i w_i c_i, \qquad
        \mathrm{opacity} = \sum_i w_i, \qquad
        \mathrm{depth} = \sum_i w_i t_i.

    Early termination: a ray stops at its first sample :math:`K` with
    :math:`T_K <` ``transmittance_threshold``; samples :math:`i \ge K` get
    :math:`w_i = 0` and zero gradient (the backward cuts at the same sample).
    A ray without samples renders color 0, opacity 0, depth 0.

    Background blending is left to the caller:
    ``out.color + (1 - out.opacity[:, None]) * background``.

    Gradients flow to ``sigmas`` and ``rgbs`` from all four outputs, computed
    by the compiled ``torch.ops.pointkd.composite_backward`` in
    :math:`O(\text{samples})` per ray (suffix sums:
    :math:`\partial L / \partial s_i = v_i T_{i+1} - \sum_{j > i} w_j v_j`
    with :math:`v_i = \partial L / \partial w_i`). ``deltas`` and ``ts`` are
    treated as constants: no gradient reaches them, even if they require one.
    Double backward is not supported.

    Args:
        sigmas (Tensor): densities, float32 or float64, finite and
            :math:`\ge 0`.
        rgbs (Tensor): per-sample colours (any number of channels), finite.
        deltas (Tensor): step lengths, finite and :math:`\ge 0`.
        ts (Tensor): sample distances along the ray (for the depth), finite.
        ray_offsets (Tensor): int64 CSR offsets: starts at 0, non-decreasing,
            ends at :math:`S`.
        transmittance_threshold (float, optional): early-termination
            threshold, :math:`\ge 0`; 0 composites every sample.
            (default: ``1e-4``)

    Shapes:
        - sigmas, deltas, ts: :math:`(S,)`; rgbs: :math:`(S, C)`
        - ray_offsets: :math:`(R + 1,)`
        - color: :math:`(R, C)`; opacity, depth: :math:`(R,)`; weights: :math:`(S,)`

    Raises:
        TypeError: an argument that is not a tensor.
        RuntimeError: wrong shapes, dtypes or devices, a malformed
            ``ray_offsets``, negative or non-finite ``sigmas`` or ``deltas``,
            non-finite ``rgbs`` or ``ts``, a negative threshold.
    """
    for name, value in (
        ("sigmas", sigmas),
        ("rgbs", rgbs),
        ("deltas", deltas),
        ("ts", ts),
        ("ray_offsets", ray_offsets),
    ):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    color, opacity, depth, weights = library.op("composite")(
        sigmas, rgbs, deltas, ts, ray_offsets, float(transmittance_threshold)
    )
    return CompositeOutput(color, opacity, depth, weights)


def _composite_reference(
    sigmas: Tensor,
    rgbs: Tensor,
    deltas: Tensor,
    ts: Tensor,
    ray_offsets: Tensor,
    transmittance_threshold: float = 1e-4,
) -> CompositeOutput:
    """Pure-torch ground truth, differentiable by autograd (to all of sigmas, rgbs, deltas, ts).

    Samples are scattered into a dense (R, longest ray) table, where the
    transmittance is an exclusive cumprod along each row.
    """
    num_rays = ray_offsets.numel() - 1
    num_samples = sigmas.numel()
    lengths = ray_offsets[1:] - ray_offsets[:-1]
    ray_index = torch.repeat_interleave(torch.arange(num_rays, device=sigmas.device), lengths)
    position = torch.arange(num_samples, device=sigmas.device) - ray_offsets[:-1][ray_index]
    longest = int(lengths.max()) if num_rays > 0 else 0
    optical = sigmas * deltas
    alpha = -torch.expm1(-optical)
    survive = sigmas.new_ones(num_rays, longest + 1)
    survive = survive.index_put((ray_index, position + 1), torch.exp(-optical))
    transmittance = torch.cumprod(survive, dim=1)[:, :-1][ray_index, position]
    kept = (transmittance >= transmittance_threshold).to(sigmas.dtype).detach()
    weights = transmittance * alpha * kept
    color = rgbs.new_zeros(num_rays, rgbs.shape[1]).index_add(0, ray_index, weights[:, None] * rgbs)
    opacity = sigmas.new_zeros(num_rays).index_add(0, ray_index, weights)
    depth = sigmas.new_zeros(num_rays).index_add(0, ray_index, weights * ts)
    return CompositeOutput(color, opacity, depth, weights)


if library.load():

    @torch.library.register_fake("pointkd::composite")
    def _(
        sigmas: Tensor,
        rgbs: Tensor,
        deltas: Tensor,
        ts: Tensor,
        ray_offsets: Tensor,
        transmittance_threshold: float = 1e-4,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        torch._check(sigmas.dim() == 1, lambda: f"sigmas must be [S], got {list(sigmas.shape)}")
        torch._check(
            rgbs.dim() == 2 and rgbs.shape[0] == sigmas.shape[0], lambda: f"rgbs must be [S, C], got {list(rgbs.shape)}"
        )
        torch._check(ray_offsets.dim() == 1, lambda: f"ray_offsets must be [R + 1], got {list(ray_offsets.shape)}")
        num_rays = ray_offsets.shape[0] - 1
        return (
            sigmas.new_empty((num_rays, rgbs.shape[1])),
            sigmas.new_empty((num_rays,)),
            sigmas.new_empty((num_rays,)),
            sigmas.new_empty(sigmas.shape),
        )

    @torch.library.register_fake("pointkd::composite_backward")
    def _(
        grad_color: Tensor,
        grad_opacity: Tensor,
        grad_depth: Tensor,
        grad_weights: Tensor,
        sigmas: Tensor,
        rgbs: Tensor,
        deltas: Tensor,
        ts: Tensor,
        ray_offsets: Tensor,
        transmittance_threshold: float,
        need_rgbs: bool,
    ) -> tuple[Tensor, Tensor]:
        return sigmas.new_empty(sigmas.shape), rgbs.new_empty(rgbs.shape) if need_rgbs else rgbs.new_empty((0,))

    def _setup_context(ctx, inputs, output) -> None:
        sigmas, rgbs, deltas, ts, ray_offsets, transmittance_threshold = inputs
        ctx.save_for_backward(sigmas, rgbs, deltas, ts, ray_offsets)
        ctx.transmittance_threshold = transmittance_threshold

    def _backward(ctx, grad_color: Tensor, grad_opacity: Tensor, grad_depth: Tensor, grad_weights: Tensor):
        sigmas, rgbs, deltas, ts, ray_offsets = ctx.saved_tensors
        num_rays = ray_offsets.shape[0] - 1
        # Outputs that did not reach the loss may come as None.
        if grad_color is None:
            grad_color = rgbs.new_zeros((num_rays, rgbs.shape[1]))
        if grad_opacity is None:
            grad_opacity = sigmas.new_zeros((num_rays,))
        if grad_depth is None:
            grad_depth = sigmas.new_zeros((num_rays,))
        if grad_weights is None:
            grad_weights = sigmas.new_zeros(sigmas.shape)
        need_rgbs = ctx.needs_input_grad[1]
        grad_sigmas, grad_rgbs = torch.ops.pointkd.composite_backward(
            grad_color,
            grad_opacity,
            grad_depth,
            grad_weights,
            sigmas,
            rgbs,
            deltas,
            ts,
            ray_offsets,
            ctx.transmittance_threshold,
            need_rgbs,
        )
        return (
            grad_sigmas if ctx.needs_input_grad[0] else None,
            grad_rgbs if need_rgbs else None,
            None,
            None,
            None,
            None,
        )

    torch.library.register_autograd("pointkd::composite", _backward, setup_context=_setup_context)

    def _setup_context_backward(ctx, inputs, output) -> None:
        pass

    def _double_backward(ctx, grad_grad_sigmas: Tensor, grad_grad_rgbs: Tensor):
        raise RuntimeError("composite has no double backward; use _composite_reference for gradients of gradients")

    torch.library.register_autograd(
        "pointkd::composite_backward", _double_backward, setup_context=_setup_context_backward
    )
