"""Trilinear sampling of a dense feature volume, channels last: ``torch.ops.pointkd.grid_sample3d``."""

from __future__ import annotations

import torch
from torch import Tensor

from pointkd._ext import library

PADDING_MODES = ("zeros", "border")


def grid_sample3d(volume: Tensor, points: Tensor, align_corners: bool = True, padding_mode: str = "zeros") -> Tensor:
    r"""Sample a 3-D feature volume at continuous points by trilinear interpolation.

    The convention is exactly that of :func:`torch.nn.functional.grid_sample`
    on a 5-D input with ``mode="bilinear"``: ``grid_sample3d(volume, points)``
    equals ``F.grid_sample(volume, points.view(B, 1, 1, M, 3))`` (same
    ``align_corners`` and ``padding_mode``) reshaped from
    :math:`(B, C, 1, 1, M)` to :math:`(B, M, C)`. The result is channels last,
    the layout a NeRF-style decoder (an MLP per point) consumes; the op reads a
    channels-last copy of the volume, so that each corner is one contiguous
    vector of :math:`C` features.

    A point :math:`(x, y, z) \in [-1, 1]^3` indexes the volume with :math:`x`
    along :math:`W`, :math:`y` along :math:`H` and :math:`z` along :math:`D`.
    Along an axis of :math:`S` samples, the coordinate :math:`u` maps to the
    continuous index

    .. math::
        i(u) = \begin{cases}
            \frac{u + 1}{2} (S - 1) & \text{if align\_corners,} \\
            \frac{(u + 1) S - 1}{2} & \text{otherwise,}
        \end{cases}

    so that :math:`\pm 1` are the centres of the corner samples with
    ``align_corners=True`` and their outer edges with ``align_corners=False``.

    With :math:`i_0 = \lfloor i \rfloor` and :math:`t = i - i_0` per axis
    (:math:`t_x, t_y, t_z`), the output is the trilinear blend of the 8 corners

    .. math::
        \mathrm{out}_{m, c} = \sum_{a, b, e \in \{0, 1\}}
            w_a(t_x)\, w_b(t_y)\, w_e(t_z)\;
            V_{c,\, k_0 + e,\, j_0 + b,\, i_0 + a},
        \qquad w_0(t) = 1 - t, \quad w_1(t) = t,

    where :math:`i_0, j_0, k_0` are the lower neighbours along :math:`W, H, D`.
    With ``padding_mode="zeros"`` corners outside the volume read :math:`0`;
    with ``"border"`` each index is first clamped to :math:`[0, S - 1]` (and,
    as in PyTorch, a clamped coordinate, the border itself included, gets zero
    gradient).

    Gradients flow to ``volume`` and ``points``, both computed by the compiled
    ``torch.ops.pointkd.grid_sample3d_backward``. Double backward (e.g. an
    Eikonal penalty on the gradient with respect to ``points``) is not
    supported and raises. On the CPU, the gradient of the volume is summed in
    a fixed order: it is bitwise reproducible, whatever the number of threads
    (on CUDA it is accumulated with atomics, in no fixed order).

    Args:
        volume (Tensor): float32 or float64 features. Any strides; one in
            ``torch.channels_last_3d`` is read in place, any other is copied to
            that layout (in forward, and in backward when ``points`` needs a
            gradient).
        points (Tensor): sample coordinates, of ``volume``'s dtype and device.
            Points outside :math:`[-1, 1]` follow ``padding_mode``; NaN and
            inf raise an error.
        align_corners (bool, optional): whether :math:`\pm 1` are the centres
            (``True``) or the outer edges (``False``) of the corner samples.
            (default: ``True``)
        padding_mode (str, optional): ``"zeros"`` or ``"border"``.
            (default: ``"zeros"``)

    Shapes:
        - volume: :math:`(C, D, H, W)` or batched :math:`(B, C, D, H, W)`
        - points: :math:`(M, 3)` or batched :math:`(B, M, 3)`, ordered
          :math:`(x, y, z)`
        - output: :math:`(M, C)` or batched :math:`(B, M, C)`, contiguous.

    Raises:
        TypeError: ``volume`` or ``points`` not a tensor, ``padding_mode`` not
            a string.
        RuntimeError: wrong rank, shape or dtype, dtypes or devices of
            ``volume`` and ``points`` that differ, batch sizes that differ,
            non-finite points, an unknown ``padding_mode``.
    """
    for name, value in (("volume", volume), ("points", points)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a str, got {type(padding_mode).__name__}")
    return library.op("grid_sample3d")(volume, points, bool(align_corners), padding_mode)


def _grid_sample3d_reference(
    volume: Tensor, points: Tensor, align_corners: bool = True, padding_mode: str = "zeros"
) -> Tensor:
    """Pure-torch ground truth from the index formulas, differentiable by autograd.

    Independent of :func:`torch.nn.functional.grid_sample`: the 8 corners are
    gathered from the flattened volume one by one.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    batched = volume.dim() == 5
    if not batched:
        volume, points = volume.unsqueeze(0), points.unsqueeze(0)
    batch, channels, depth, height, width = volume.shape
    flat = volume.reshape(batch, channels, depth * height * width)

    def axis(coord: Tensor, size: int) -> tuple[Tensor, Tensor]:
        index = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
        if padding_mode == "border":
            # torch.where rather than clamp: a coordinate on the border counts as clamped (zero gradient).
            inside = (index > 0) & (index < size - 1)
            index = torch.where(inside, index, index.detach().clamp(0, size - 1))
        low = torch.floor(index).detach()
        return low.long(), index - low

    low_x, frac_x = axis(points[..., 0], width)
    low_y, frac_y = axis(points[..., 1], height)
    low_z, frac_z = axis(points[..., 2], depth)
    output = volume.new_zeros(batch, channels, points.shape[1])
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                x, y, z = low_x + dx, low_y + dy, low_z + dz
                weight = (
                    (frac_x if dx else 1 - frac_x) * (frac_y if dy else 1 - frac_y) * (frac_z if dz else 1 - frac_z)
                )
                inside = (x >= 0) & (x < width) & (y >= 0) & (y < height) & (z >= 0) & (z < depth)
                voxel = (z.clamp(0, depth - 1) * height + y.clamp(0, height - 1)) * width + x.clamp(0, width - 1)
                values = flat.gather(2, voxel.unsqueeze(1).expand(batch, channels, -1))
                output = output + values * (weight * inside).unsqueeze(1)
    output = output.transpose(1, 2)
    return output if batched else output.squeeze(0)


if library.load():

    def _check_fake_shapes(volume: Tensor, points: Tensor) -> None:
        torch._check(
            volume.dim() in (4, 5), lambda: f"volume must be [C, D, H, W] or [B, C, D, H, W], got {list(volume.shape)}"
        )
        torch._check(
            points.dim() == volume.dim() - 2 and points.shape[-1] == 3,
            lambda: f"points must be [M, 3] or [B, M, 3] to match volume, got {list(points.shape)}",
        )
        torch._check(points.dtype == volume.dtype, lambda: f"points must have the dtype of volume ({volume.dtype})")
        if volume.dim() == 5:
            torch._check(points.shape[0] == volume.shape[0], lambda: "points must have as many batches as volume")

    @torch.library.register_fake("pointkd::grid_sample3d")
    def _(volume: Tensor, points: Tensor, align_corners: bool = True, padding_mode: str = "zeros") -> Tensor:
        _check_fake_shapes(volume, points)
        channels = volume.shape[-4]
        if volume.dim() == 5:
            return volume.new_empty((volume.shape[0], points.shape[1], channels))
        return volume.new_empty((points.shape[0], channels))

    @torch.library.register_fake("pointkd::grid_sample3d_backward")
    def _(
        grad_output: Tensor,
        volume: Tensor,
        points: Tensor,
        align_corners: bool,
        padding_mode: str,
        output_mask: list[bool],
    ) -> tuple[Tensor, Tensor]:
        _check_fake_shapes(volume, points)
        if output_mask[0]:
            # Accumulated channels last, returned as a permuted view.
            if volume.dim() == 5:
                batch, channels, depth, height, width = volume.shape
                grad_volume = volume.new_empty((batch, depth, height, width, channels)).permute(0, 4, 1, 2, 3)
            else:
                channels, depth, height, width = volume.shape
                grad_volume = volume.new_empty((depth, height, width, channels)).permute(3, 0, 1, 2)
        else:
            grad_volume = volume.new_empty((0,))
        grad_points = points.new_empty(points.shape) if output_mask[1] else points.new_empty((0,))
        return grad_volume, grad_points

    def _setup_context(ctx, inputs, output) -> None:
        volume, points, align_corners, padding_mode = inputs
        ctx.save_for_backward(volume, points)
        ctx.align_corners = align_corners
        ctx.padding_mode = padding_mode

    def _backward(ctx, grad_output: Tensor):
        volume, points = ctx.saved_tensors
        output_mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1]]
        grad_volume, grad_points = torch.ops.pointkd.grid_sample3d_backward(
            grad_output, volume, points, ctx.align_corners, ctx.padding_mode, output_mask
        )
        return (grad_volume if output_mask[0] else None, grad_points if output_mask[1] else None, None, None)

    torch.library.register_autograd("pointkd::grid_sample3d", _backward, setup_context=_setup_context)

    def _setup_context_backward(ctx, inputs, output) -> None:
        pass

    def _double_backward(ctx, grad_grad_volume: Tensor, grad_grad_points: Tensor):
        raise RuntimeError(
            "grid_sample3d has no double backward: gradients of its gradients (e.g. an Eikonal penalty on "
            "d output / d points) are not implemented; use _grid_sample3d_reference for those"
        )

    torch.library.register_autograd(
        "pointkd::grid_sample3d_backward", _double_backward, setup_context=_setup_context_backward
    )
