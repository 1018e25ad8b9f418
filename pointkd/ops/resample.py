"""Resampling of dense feature volumes between regular grids: ``torch.ops.pointkd.resample_volume``,
and :func:`evaluate_on_grid`, which fills a grid from a field given as a function of points."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from pointkd._ext import library
from pointkd.ops.grid_sample import PADDING_MODES, _grid_sample3d_reference

#: The default ``src_box`` and ``dst_box``: the normalized cube :math:`[-1, 1]^3`.
UNIT_BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)

BoxLike = Sequence[float] | Tensor


def resample_volume(
    volume: Tensor,
    size: Sequence[int],
    src_box: BoxLike | None = None,
    dst_box: BoxLike | None = None,
    align_corners: bool = True,
    padding_mode: str = "zeros",
) -> Tensor:
    r"""Resample a dense feature volume onto a new regular grid by trilinear interpolation.

    Used to initialise a voxel-grid radiance field from another grid, to
    upsample a grid during coarse-to-fine training (as in
    `DVGO <https://arxiv.org/abs/2111.11215>`_ and
    `Plenoxels <https://arxiv.org/abs/2112.05131>`_), or to crop a grid to a
    sub-box. The source volume covers the world-space box ``src_box``, the
    output covers ``dst_box``; with the default boxes (both the cube
    :math:`[-1, 1]^3`) this is
    ``F.interpolate(volume[None], size, mode="trilinear", align_corners=align_corners)[0]``,
    with two differences: with ``align_corners=False``, ``F.interpolate``
    clamps positions to the border, so it equals ``padding_mode="border"``
    (with ``"zeros"``, upsampling blends the outer half cells with zeros);
    and with ``align_corners=True`` a single output sample along an axis sits
    at the centre of the box, where ``F.interpolate`` takes the first sample.

    The layout is that of :func:`~pointkd.ops.grid_sample3d`: :math:`x` runs
    along :math:`W`, :math:`y` along :math:`H`, :math:`z` along :math:`D`.
    Along an axis with output size :math:`S'`, the output sample
    :math:`n \in \{0, \dots, S' - 1\}` sits in :math:`[b_{\min}, b_{\max}]`
    (the axis of ``dst_box``) at

    .. math::
        p(n) = \begin{cases}
            b_{\min} + n \, \dfrac{b_{\max} - b_{\min}}{S' - 1}
                & \text{if align\_corners and } S' > 1, \\
            \tfrac{1}{2} (b_{\min} + b_{\max})
                & \text{if align\_corners and } S' = 1, \\
            b_{\min} + \left(n + \tfrac{1}{2}\right) \dfrac{b_{\max} - b_{\min}}{S'}
                & \text{otherwise,}
        \end{cases}

    which maps into the normalized coordinates of the source box
    :math:`[a_{\min}, a_{\max}]` (the axis of ``src_box``) as

    .. math::
        u(n) = 2 \, \frac{p(n) - a_{\min}}{a_{\max} - a_{\min}} - 1,

    and the output is :func:`~pointkd.ops.grid_sample3d` of ``volume`` at
    :math:`(u_x(i), u_y(j), u_z(k))`, with the same ``align_corners`` and
    ``padding_mode``:

    .. math::
        \mathrm{out}_{c, k, j, i} = \mathrm{grid\_sample3d}(V,\,
            (u_x(i), u_y(j), u_z(k)))_c .

    So ``align_corners`` describes both grids: with ``True`` the corner
    samples sit on the faces of their box, with ``False`` the samples are
    cell centres and the faces are the outer edges of the corner cells. The
    positions are computed per output sample in the compiled kernels (in
    float64, whatever the dtype); no point tensor is built.

    The op is linear in ``volume``. Its gradient, the scatter of the trilinear
    weights, is the compiled ``torch.ops.pointkd.resample_volume_backward``,
    itself differentiable (its derivative is this op again), so double
    backward works. On the CPU the gradient is summed in a fixed order: it is
    bitwise reproducible whatever the number of threads (on CUDA it is
    accumulated with atomics, in no fixed order). The boxes are constants: no
    gradient flows to them.

    Args:
        volume (Tensor): float32 or float64 features. Any strides (a
            non-contiguous volume is copied once).
        size (Sequence[int]): the output size :math:`(D', H', W')`, each at
            least 1.
        src_box (Sequence[float] or Tensor, optional): the box
            ``(xmin, ymin, zmin, xmax, ymax, zmax)`` the volume covers; finite,
            with min < max on every axis. (default: ``None``, the cube
            :math:`[-1, 1]^3`)
        dst_box (Sequence[float] or Tensor, optional): the box the output
            covers, in the same world space. (default: ``None``, the cube
            :math:`[-1, 1]^3`)
        align_corners (bool, optional): whether the corner samples of both
            grids sit on the box faces (``True``) or are the centres of cells
            tiling the box (``False``). (default: ``True``)
        padding_mode (str, optional): ``"zeros"`` (positions outside the
            source volume read zero) or ``"border"`` (they are clamped to it).
            (default: ``"zeros"``)

    Shapes:
        - volume: :math:`(C, D, H, W)` or batched :math:`(B, C, D, H, W)`
        - output: :math:`(C, D', H', W')` or batched :math:`(B, C, D', H', W')`,
          contiguous; empty when :math:`B = 0` or :math:`C = 0`.

    Raises:
        TypeError: ``volume`` not a tensor, ``size`` not a sequence of
            integers, a box not a sequence of numbers or a tensor,
            ``padding_mode`` not a string.
        ValueError: ``size`` without 3 entries or with an entry below 1, a box
            without 6 entries, with a non-finite entry or with min >= max on
            an axis.
        RuntimeError: ``volume`` of the wrong rank or dtype or with
            :math:`D`, :math:`H` or :math:`W` zero, an unknown
            ``padding_mode``.
    """
    if not isinstance(volume, Tensor):
        raise TypeError(f"volume must be a Tensor, got {type(volume).__name__}")
    size = _as_size(size, "size")
    src = _as_box(src_box, "src_box")
    dst = _as_box(dst_box, "dst_box")
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a str, got {type(padding_mode).__name__}")
    return library.op("resample_volume")(volume, size, src, dst, bool(align_corners), padding_mode)


def _resample_volume_reference(
    volume: Tensor,
    size: Sequence[int],
    src_box: BoxLike | None = None,
    dst_box: BoxLike | None = None,
    align_corners: bool = True,
    padding_mode: str = "zeros",
) -> Tensor:
    """Pure-torch ground truth, differentiable by autograd: the output positions as an explicit point
    tensor, sampled by :func:`~pointkd.ops.grid_sample._grid_sample3d_reference`."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    size = _as_size(size, "size")
    src = _as_box(src_box, "src_box")
    dst = _as_box(dst_box, "dst_box")
    dtype, device = volume.dtype, volume.device

    def coords(axis: int, out_size: int) -> Tensor:
        lo, hi = dst[axis], dst[axis + 3]
        index = torch.arange(out_size, dtype=torch.float64, device=device)
        if not align_corners:
            world = lo + (index + 0.5) * ((hi - lo) / out_size)
        elif out_size > 1:
            world = lo + index * ((hi - lo) / (out_size - 1))
        else:
            world = torch.full_like(index, (lo + hi) / 2)
        return (2 * (world - src[axis]) / (src[axis + 3] - src[axis]) - 1).to(dtype)

    out_depth, out_height, out_width = size
    z, y, x = torch.meshgrid(coords(2, out_depth), coords(1, out_height), coords(0, out_width), indexing="ij")
    points = torch.stack([x, y, z], dim=-1).reshape(-1, 3)
    if volume.dim() == 5:
        points = points.expand(volume.shape[0], -1, -1)
    samples = _grid_sample3d_reference(volume, points, align_corners, padding_mode)  # ([B,] M, C)
    return samples.transpose(-1, -2).reshape(*volume.shape[:-3], *size)


def evaluate_on_grid(
    fn: Callable[[Tensor], Tensor],
    resolution: int | Sequence[int],
    aabb: BoxLike,
    chunk_size: int = 65536,
    jitter: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Evaluate a field ``fn`` at the cell centres of a regular grid over a box, in chunks.

    Fills an occupancy or density grid from a network (as Instant-NGP's
    occupancy-grid updates do), or a volume from an analytic field. The box
    ``aabb`` :math:`= (x_{\min}, y_{\min}, z_{\min}, x_{\max}, y_{\max}, z_{\max})`
    is split into :math:`R_x \times R_y \times R_z` cells; cell
    :math:`(i, j, k)` covers
    :math:`[x_{\min} + i \Delta_x, x_{\min} + (i + 1) \Delta_x)` along
    :math:`x` (likewise :math:`y`, :math:`z`), with
    :math:`\Delta_x = (x_{\max} - x_{\min}) / R_x`, the cell layout of the
    ``occupancy`` grid of :func:`~pointkd.ops.ray_march`. It is evaluated at

    .. math::
        p_{ijk} = \left(x_{\min} + (i + t_x) \Delta_x,\;
                        y_{\min} + (j + t_y) \Delta_y,\;
                        z_{\min} + (k + t_z) \Delta_z\right),

    with :math:`t = (\tfrac{1}{2}, \tfrac{1}{2}, \tfrac{1}{2})`, the cell
    centre, or with ``jitter`` :math:`t \sim \mathcal{U}[0, 1)^3` drawn per
    cell (a stochastic update that sees the whole cell over time).

    ``fn`` runs under :func:`torch.no_grad` on at most ``chunk_size`` points
    at a time, in the order of the flattened ``[x, y, z]`` index (:math:`x`
    slowest); for a pointwise ``fn`` the result does not depend on
    ``chunk_size`` without jitter. With jitter the draws come from
    ``generator`` chunk by chunk: the same generator state and
    ``chunk_size`` give the same grid.

    The result is indexed ``[x, y, z]``, unlike the :math:`(C, D, H, W)`
    layout (:math:`W` along :math:`x`) of :func:`resample_volume` and
    :func:`~pointkd.ops.grid_sample3d`. Reversing the axes converts one into
    the other, both ways (the permutation is its own inverse):

    .. code-block:: python

        volume = grid.permute(3, 2, 1, 0)  # (Rx, Ry, Rz, C) -> (C, Rz, Ry, Rx) = (C, D, H, W)
        grid = volume.permute(3, 2, 1, 0)  # (C, D, H, W) -> (W, H, D, C) = (Rx, Ry, Rz, C)
        volume = grid.permute(2, 1, 0)[None]  # (Rx, Ry, Rz), no channel axis -> (1, D, H, W)

    The samples are cell centres, so such a volume covers ``aabb`` with
    ``align_corners=False``: for an affine ``fn`` (which trilinear
    interpolation reproduces) and a ``box`` within the span of the cell
    centres, ``resample_volume(grid.permute(3, 2, 1, 0), size, src_box=aabb,
    dst_box=box, align_corners=False)`` equals
    ``evaluate_on_grid(fn, size[::-1], box).permute(3, 2, 1, 0)``.

    Args:
        fn (Callable[[Tensor], Tensor]): the field; maps points :math:`(M, 3)`
            (ordered :math:`(x, y, z)`, of ``aabb``'s dtype and device) to
            values :math:`(M,)` or :math:`(M, C)` of any dtype.
        resolution (int or Sequence[int]): :math:`R` for a cube of cells, or
            :math:`(R_x, R_y, R_z)`; each at least 1.
        aabb (Sequence[float] or Tensor): the box
            ``(xmin, ymin, zmin, xmax, ymax, zmax)``, finite, with min < max on
            every axis. The points are on a tensor ``aabb``'s device, in its
            dtype if floating point; otherwise in the default dtype on the CPU.
        chunk_size (int, optional): points per call of ``fn``, at least 1.
            (default: ``65536``)
        jitter (bool, optional): whether to draw a uniform position in each
            cell instead of its centre. (default: ``False``)
        generator (torch.Generator, optional): the source of the jitter, on
            the points' device. (default: ``None``, torch's default generator)

    Shapes:
        - aabb: :math:`(6,)`
        - output: :math:`(R_x, R_y, R_z)` or :math:`(R_x, R_y, R_z, C)`,
          following ``fn``'s output.

    Raises:
        TypeError: ``fn`` not callable, ``resolution`` or ``chunk_size`` not
            integers, ``aabb`` not a sequence of numbers or a tensor, ``fn``
            returning something other than a tensor.
        ValueError: a resolution or ``chunk_size`` below 1, ``aabb`` without 6
            entries, non-finite or with min >= max on an axis, ``fn``
            returning a shape other than :math:`(M,)` or :math:`(M, C)`, or
            different trailing shapes for different chunks.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    resolution = _as_size([resolution] * 3 if _is_integer(resolution) else resolution, "resolution")
    if not _is_integer(chunk_size):
        raise TypeError(f"chunk_size must be an int, got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    box = _as_box(aabb, "aabb", default=None)
    if isinstance(aabb, Tensor):
        device = aabb.device
        dtype = aabb.dtype if aabb.is_floating_point() else torch.get_default_dtype()
    else:
        device, dtype = torch.device("cpu"), torch.get_default_dtype()

    res_x, res_y, res_z = resolution
    total = res_x * res_y * res_z
    lo = torch.tensor(box[:3], dtype=dtype, device=device)
    cell = (torch.tensor(box[3:], dtype=dtype, device=device) - lo) / torch.tensor(
        resolution, dtype=dtype, device=device
    )
    values = None
    with torch.no_grad():
        for start in range(0, total, chunk_size):
            flat = torch.arange(start, min(start + chunk_size, total), device=device)
            index = torch.stack([flat // (res_y * res_z), (flat // res_z) % res_y, flat % res_z], dim=-1)
            if jitter:
                offset = torch.rand(flat.shape[0], 3, generator=generator, dtype=dtype, device=device)
            else:
                offset = torch.full((flat.shape[0], 3), 0.5, dtype=dtype, device=device)
            chunk = fn(lo + (index.to(dtype) + offset) * cell)
            if not isinstance(chunk, Tensor):
                raise TypeError(f"fn must return a Tensor, got {type(chunk).__name__}")
            if chunk.dim() not in (1, 2) or chunk.shape[0] != flat.shape[0]:
                raise ValueError(
                    f"fn must map points (M, 3) to values (M,) or (M, C), got {list(chunk.shape)} "
                    f"for M = {flat.shape[0]}"
                )
            if values is None:
                values = chunk.new_empty((total, *chunk.shape[1:]))
            elif chunk.shape[1:] != values.shape[1:]:
                raise ValueError(
                    f"fn must return the same trailing shape for every chunk, got {list(chunk.shape[1:])} "
                    f"after {list(values.shape[1:])}"
                )
            values[start : start + flat.shape[0]] = chunk
    return values.reshape(res_x, res_y, res_z, *values.shape[1:])


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_size(size, name: str) -> list[int]:
    """``size`` as a list of 3 ints >= 1, or TypeError / ValueError naming ``name``."""
    if isinstance(size, Tensor):
        if size.is_floating_point() or size.is_complex() or size.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got a {size.dtype} tensor")
        size = size.reshape(-1).tolist()
    if not isinstance(size, Sequence) or isinstance(size, str):
        raise TypeError(f"{name} must be a sequence of 3 integers, got {type(size).__name__}")
    entries = []
    for entry in size:
        if isinstance(entry, bool):
            raise TypeError(f"{name} must hold integers, got {list(size)}")
        try:
            entries.append(operator.index(entry))
        except TypeError:
            raise TypeError(f"{name} must hold integers, got {list(size)}") from None
    if len(entries) != 3:
        raise ValueError(f"{name} must have 3 entries, got {len(entries)}: {entries}")
    if min(entries) < 1:
        raise ValueError(f"{name} must have every entry >= 1, got {entries}")
    return entries


def _as_box(box, name: str, default: tuple[float, ...] | None = UNIT_BOX) -> list[float]:
    """``box`` as a list of 6 floats, finite, with min < max per axis; ``None`` is ``default``."""
    if box is None and default is not None:
        return list(default)
    if isinstance(box, Tensor):
        if box.is_complex() or box.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got a {box.dtype} tensor")
        box = box.detach().reshape(-1).tolist()
    if not isinstance(box, Sequence) or isinstance(box, str):
        raise TypeError(
            f"{name} must be a sequence of 6 numbers (xmin, ymin, zmin, xmax, ymax, zmax) or a tensor, "
            f"got {type(box).__name__}"
        )
    if not all(isinstance(value, numbers.Real) and not isinstance(value, bool) for value in box):
        raise TypeError(f"{name} must hold real numbers, got {list(box)}")
    values = [float(value) for value in box]
    if len(values) != 6:
        raise ValueError(f"{name} must have 6 entries (xmin, ymin, zmin, xmax, ymax, zmax), got {len(values)}")
    if not all(math.isfinite(value) for value in values):
        raise ValueError(f"{name} must be finite, got {values}")
    for axis, label in enumerate("xyz"):
        if not values[axis] < values[axis + 3]:
            raise ValueError(
                f"{name} must have min < max on every axis, got {label} in [{values[axis]}, {values[axis + 3]}]"
            )
    return values


if library.load():

    @torch.library.register_fake("pointkd::resample_volume")
    def _(
        volume: Tensor,
        size: Sequence[int],
        src_box: Sequence[float] = UNIT_BOX,
        dst_box: Sequence[float] = UNIT_BOX,
        align_corners: bool = True,
        padding_mode: str = "zeros",
    ) -> Tensor:
        torch._check(
            volume.dim() in (4, 5), lambda: f"volume must be [C, D, H, W] or [B, C, D, H, W], got {list(volume.shape)}"
        )
        torch._check(len(size) == 3, lambda: f"size must have 3 entries, got {list(size)}")
        return volume.new_empty((*volume.shape[:-3], *size))

    @torch.library.register_fake("pointkd::resample_volume_backward")
    def _(
        grad_output: Tensor,
        volume_size: Sequence[int],
        src_box: Sequence[float],
        dst_box: Sequence[float],
        align_corners: bool,
        padding_mode: str,
    ) -> Tensor:
        torch._check(
            grad_output.dim() in (4, 5),
            lambda: f"grad_output must be [C, D', H', W'] or [B, C, D', H', W'], got {list(grad_output.shape)}",
        )
        torch._check(len(volume_size) == 3, lambda: f"volume_size must have 3 entries, got {list(volume_size)}")
        return grad_output.new_empty((*grad_output.shape[:-3], *volume_size))

    def _setup_context(ctx, inputs, output) -> None:
        volume, _size, src_box, dst_box, align_corners, padding_mode = inputs
        ctx.volume_size = list(volume.shape[-3:])
        ctx.options = (src_box, dst_box, align_corners, padding_mode)

    def _backward(ctx, grad_output: Tensor):
        grad_volume = torch.ops.pointkd.resample_volume_backward(grad_output, ctx.volume_size, *ctx.options)
        return grad_volume, None, None, None, None, None

    torch.library.register_autograd("pointkd::resample_volume", _backward, setup_context=_setup_context)

    def _setup_context_backward(ctx, inputs, output) -> None:
        grad_output, _volume_size, src_box, dst_box, align_corners, padding_mode = inputs
        ctx.output_size = list(grad_output.shape[-3:])
        ctx.options = (src_box, dst_box, align_corners, padding_mode)

    def _double_backward(ctx, grad_grad_volume: Tensor):
        # The backward is linear in grad_output with the forward as its adjoint.
        grad_grad_output = torch.ops.pointkd.resample_volume(grad_grad_volume, ctx.output_size, *ctx.options)
        return grad_grad_output, None, None, None, None, None

    torch.library.register_autograd(
        "pointkd::resample_volume_backward", _double_backward, setup_context=_setup_context_backward
    )
