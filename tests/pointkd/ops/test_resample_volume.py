import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from pointkd.ops import evaluate_on_grid, grid_sample3d, resample_volume
from pointkd.ops.ray_march import _ray_march_reference
from pointkd.ops.resample import _resample_volume_reference
from tests.conftest import requires_cuda

MODES = [(align_corners, padding_mode) for align_corners in (True, False) for padding_mode in ("zeros", "border")]


def _tolerances(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


def _random_box(generator, low=-2.0, high=2.0):
    """(xmin, ymin, zmin, xmax, ymax, zmax) with each side at least 0.5."""
    corner = torch.rand(3, generator=generator, dtype=torch.float64) * (high - low - 1) + low
    extent = torch.rand(3, generator=generator, dtype=torch.float64) * 1.5 + 0.5
    return torch.cat([corner, corner + extent]).tolist()


def _interpolate(volume, size, align_corners):
    batched = volume.dim() == 5
    out = F.interpolate(volume if batched else volume[None], size, mode="trilinear", align_corners=align_corners)
    return out if batched else out[0]


# (volume D, H, W) -> (D', H', W'): up, down, mixed, and axes of one sample.
SIZES = [
    ((4, 5, 6), (7, 9, 11)),
    ((8, 7, 9), (3, 4, 5)),
    ((5, 3, 6), (5, 6, 2)),
    ((1, 4, 1), (3, 2, 5)),
    ((3, 4, 5), (1, 6, 1)),
    ((2, 2, 2), (1, 1, 1)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("shape, size", SIZES)
def test_default_boxes_match_interpolate(dtype, batched, align_corners, shape, size):
    generator = torch.Generator().manual_seed(0)
    prefix = (2, 3) if batched else (3,)
    volume = torch.randn(*prefix, *shape, generator=generator, dtype=dtype)
    # F.interpolate clamps positions to the volume: "border". With align_corners=True every position lies
    # inside, so the default "zeros" agrees too.
    padding_modes = ["zeros", "border"] if align_corners else ["border"]
    if align_corners:
        # A single output sample sits at the centre of the box, where F.interpolate takes sample 0: compare
        # with the middle of three samples (-1, 0, 1) along those axes instead.
        wide = tuple(3 if out == 1 else out for out in size)
        middle = tuple(slice(1, 2) if out == 1 else slice(None) for out in size)
        expected = _interpolate(volume, wide, True)[(..., *middle)]
    else:
        expected = _interpolate(volume, size, False)
    for padding_mode in padding_modes:
        out = resample_volume(volume, size, align_corners=align_corners, padding_mode=padding_mode)
        assert out.shape == (*prefix, *size) and out.dtype == dtype and out.is_contiguous()
        torch.testing.assert_close(out, expected, **_tolerances(dtype))
    if all(out > 1 for out in size):
        torch.testing.assert_close(
            resample_volume(volume, size, align_corners=align_corners, padding_mode=padding_modes[0]),
            _interpolate(volume, size, align_corners),
            **_tolerances(dtype),
        )


def test_defaults_are_interpolate_with_align_corners():
    volume = torch.randn(2, 4, 3, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(
        resample_volume(volume, (6, 4, 9)), _interpolate(volume, (6, 4, 9), True), rtol=1e-12, atol=1e-12
    )


def test_zeros_padding_blends_outer_half_cells():
    """Upsampling with align_corners=False: the outer half cells lie past the centres of the corner samples."""
    volume = torch.ones(1, 4, 4, 4, dtype=torch.float64)
    out = resample_volume(volume, (8, 8, 8), align_corners=False, padding_mode="zeros")
    torch.testing.assert_close(out[:, 1:-1, 1:-1, 1:-1], torch.ones(1, 6, 6, 6, dtype=torch.float64))
    # Position 1/4 of a cell outside along one axis: weight 3/4 inside.
    torch.testing.assert_close(out[0, 0, 3, 3], torch.tensor(0.75, dtype=torch.float64))
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor(0.75**3, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_random_boxes_match_reference(dtype, batched, align_corners, padding_mode):
    generator = torch.Generator().manual_seed(1)
    prefix = (2, 3) if batched else (3,)
    volume = torch.randn(*prefix, 5, 4, 6, generator=generator, dtype=dtype)
    for size in [(6, 7, 3), (1, 5, 2), (9, 1, 8)]:
        src_box, dst_box = _random_box(generator), _random_box(generator)
        out = resample_volume(volume, size, src_box, dst_box, align_corners, padding_mode)
        expected = _resample_volume_reference(volume, size, src_box, dst_box, align_corners, padding_mode)
        assert out.shape == expected.shape == (*prefix, *size)
        torch.testing.assert_close(out, expected, **_tolerances(dtype))


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_matches_grid_sample3d_at_explicit_positions(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(2)
    volume = torch.randn(2, 4, 6, 5, 7, generator=generator, dtype=torch.float64)
    src_box = [0.0, -1.0, 2.0, 3.0, 1.0, 4.0]
    dst_box = [-0.5, -0.2, 1.5, 2.0, 1.6, 3.0]  # crosses the source box's faces on every axis
    size = (5, 7, 4)  # (D', H', W'): z, y, x
    axes = []
    for axis, count in zip(range(3), size[::-1]):  # x, y, z
        lo, hi = dst_box[axis], dst_box[axis + 3]
        if align_corners:
            world = torch.linspace(lo, hi, count, dtype=torch.float64)
        else:
            edges = torch.linspace(lo, hi, count + 1, dtype=torch.float64)
            world = (edges[:-1] + edges[1:]) / 2
        axes.append((world - src_box[axis]) / (src_box[axis + 3] - src_box[axis]) * 2 - 1)
    x, y, z = axes
    points = torch.cartesian_prod(z, y, x).flip(-1)  # rows (x, y, z), z slowest
    sampled = grid_sample3d(volume, points.expand(2, -1, -1), align_corners, padding_mode)  # (B, M, C)
    expected = sampled.transpose(1, 2).reshape(2, 4, *size)
    out = resample_volume(volume, size, src_box, dst_box, align_corners, padding_mode)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_boxes_as_tensors_and_integers():
    volume = torch.randn(3, 4, 5, 6)
    expected = resample_volume(volume, [3, 3, 3], (0.0, 0.0, 0.0, 1.0, 2.0, 3.0), (0.5, 0.5, 0.5, 1.5, 1.5, 1.5))
    out = resample_volume(
        volume,
        torch.Size([3, 3, 3]),
        torch.tensor([0, 0, 0, 1, 2, 3]),
        torch.tensor([[0.5, 0.5, 0.5], [1.5, 1.5, 1.5]], dtype=torch.float64, requires_grad=True),
    )
    assert torch.equal(out, expected)


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_gradcheck(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(3)
    volume = torch.randn(2, 3, 4, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    src_box = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    dst_box = [-0.3, 0.1, 0.2, 1.1, 0.9, 1.3]

    def fn(tensor):
        return resample_volume(tensor, (3, 4, 6), src_box, dst_box, align_corners, padding_mode)

    assert torch.autograd.gradcheck(fn, (volume,))
    assert torch.autograd.gradgradcheck(fn, (volume,))
    batched = torch.randn(2, 2, 3, 2, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda tensor: resample_volume(tensor, (4, 1, 3), dst_box, src_box, align_corners, padding_mode), (batched,)
    )


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_backward_matches_reference_and_is_reproducible(align_corners, padding_mode):
    """One channel, many output slices: several per source slice (up), gaps (down), slices outside (zeros)."""
    generator = torch.Generator().manual_seed(4)
    volume = torch.randn(1, 1, 9, 6, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    cases = [
        ((40, 12, 13), None, None),
        ((4, 3, 3), None, None),
        ((23, 5, 11), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [-0.4, 0.3, -0.2, 1.5, 0.7, 1.2]),
    ]
    for size, src_box, dst_box in cases:
        grad_output = torch.randn(1, 1, *size, generator=generator, dtype=torch.float64)
        args = (size, src_box, dst_box, align_corners, padding_mode)
        (grad,) = torch.autograd.grad(resample_volume(volume, *args), volume, grad_output)
        (expected,) = torch.autograd.grad(_resample_volume_reference(volume, *args), volume, grad_output)
        torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-10)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(4)
            (parallel,) = torch.autograd.grad(resample_volume(volume, *args), volume, grad_output)
            torch.set_num_threads(1)
            (serial,) = torch.autograd.grad(resample_volume(volume, *args), volume, grad_output)
        finally:
            torch.set_num_threads(threads)
        assert torch.equal(parallel, serial) and torch.equal(grad, serial)


def test_double_backward_is_the_forward():
    generator = torch.Generator().manual_seed(5)
    volume = torch.randn(2, 3, 4, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    grad_output = torch.randn(2, 5, 2, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    args = ((5, 2, 7), [0, 0, 0, 1, 1, 1], [0.1, -0.2, 0.3, 0.8, 1.1, 0.9], False, "border")
    (grad_volume,) = torch.autograd.grad(resample_volume(volume, *args), volume, grad_output, create_graph=True)
    grad_grad = torch.randn(grad_volume.shape, generator=generator, dtype=torch.float64)
    (second,) = torch.autograd.grad(grad_volume, grad_output, grad_grad)
    torch.testing.assert_close(second, resample_volume(grad_grad, *args), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_opcheck(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(6)
    src_box, dst_box = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [-0.2, 0.1, 0.0, 1.1, 0.8, 1.2]
    for prefix in ((3,), (2, 3)):
        volume = torch.randn(*prefix, 4, 3, 5, generator=generator, dtype=torch.float64)
        torch.library.opcheck(
            torch.ops.pointkd.resample_volume.default,
            (volume, [3, 5, 2], src_box, dst_box, align_corners, padding_mode),
        )
        grad_output = torch.randn(*prefix, 3, 5, 2, generator=generator, dtype=torch.float64)
        torch.library.opcheck(
            torch.ops.pointkd.resample_volume_backward.default,
            (grad_output, [4, 3, 5], src_box, dst_box, align_corners, padding_mode),
        )


def test_non_contiguous_input():
    generator = torch.Generator().manual_seed(7)
    base = torch.randn(7, 6, 5, 3, generator=generator, dtype=torch.float64)  # (W, H, D, C) in memory
    volume = base.permute(3, 2, 1, 0)  # (C, D, H, W)
    assert not volume.is_contiguous()
    args = ((4, 8, 3), [0, 0, 0, 2, 2, 2], [0.2, -0.1, 0.4, 1.7, 2.3, 1.9], False, "zeros")
    expected_volume = volume.contiguous().requires_grad_()
    expected = resample_volume(expected_volume, *args)
    volume.requires_grad_()
    out = resample_volume(volume, *args)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    grad_output = torch.randn(3, 8, 4, 3, generator=generator, dtype=torch.float64).permute(3, 2, 1, 0)
    assert not grad_output.is_contiguous()
    (grad,) = torch.autograd.grad(out, volume, grad_output)
    (expected_grad,) = torch.autograd.grad(expected, expected_volume, grad_output.contiguous())
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)
    sliced = torch.randn(2, 3, 8, 10, 12, generator=generator)[:, :, ::2, 1::3, ::4]
    torch.testing.assert_close(resample_volume(sliced, (5, 5, 5)), _interpolate(sliced.contiguous(), (5, 5, 5), True))


def test_empty_batch_and_channels():
    volume = torch.randn(0, 3, 4, 5, 6, requires_grad=True)
    out = resample_volume(volume, (2, 3, 4))
    assert out.shape == (0, 3, 2, 3, 4)
    (grad,) = torch.autograd.grad(out.sum(), volume)
    assert grad.shape == volume.shape
    volume = torch.randn(2, 0, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    out = resample_volume(volume, (2, 3, 4), align_corners=False)
    assert out.shape == (2, 0, 2, 3, 4) and out.dtype == torch.float64
    (grad,) = torch.autograd.grad(out.sum(), volume)
    assert grad.shape == volume.shape
    assert resample_volume(torch.randn(0, 4, 5, 6), (1, 1, 1)).shape == (0, 1, 1, 1)


@pytest.mark.parametrize(
    "volume, kwargs, error, message",
    [
        (torch.zeros(3, 3, 3), {}, RuntimeError, r"volume must be a float32 or float64 tensor of shape \[C, D, H, W\]"),
        (torch.zeros(1, 1, 1, 3, 3, 3), {}, RuntimeError, r"volume must be a float32 or float64 tensor.*\[1, 1, 1"),
        (torch.zeros(2, 3, 3, 3, dtype=torch.long), {}, RuntimeError, r"volume must be a float32 or float64.*Long"),
        (torch.zeros(2, 3, 0, 3), {}, RuntimeError, r"volume must have at least one sample along each of D, H, W"),
        (torch.zeros(2, 3, 3, 3), {"size": (2, 2)}, ValueError, r"size must have 3 entries, got 2"),
        (torch.zeros(2, 3, 3, 3), {"size": (2, 0, 2)}, ValueError, r"size must have every entry >= 1, got \[2, 0, 2\]"),
        (torch.zeros(2, 3, 3, 3), {"size": (2, -1, 2)}, ValueError, r"size must have every entry >= 1"),
        (torch.zeros(2, 3, 3, 3), {"size": (2.0, 2, 2)}, TypeError, r"size must hold integers"),
        (torch.zeros(2, 3, 3, 3), {"size": 4}, TypeError, r"size must be a sequence of 3 integers, got int"),
        (torch.zeros(2, 3, 3, 3), {"src_box": [0, 0, 0, 1, 1]}, ValueError, r"src_box must have 6 entries.*got 5"),
        (
            torch.zeros(2, 3, 3, 3),
            {"dst_box": [0, 0, 0, 1, math.nan, 1]},
            ValueError,
            r"dst_box must be finite, got \[0.0, 0.0, 0.0, 1.0, nan, 1.0\]",
        ),
        (torch.zeros(2, 3, 3, 3), {"src_box": [0, 0, 0, 1, 1, math.inf]}, ValueError, r"src_box must be finite"),
        (
            torch.zeros(2, 3, 3, 3),
            {"src_box": [0, 2, 0, 1, 1, 1]},
            ValueError,
            r"src_box must have min < max on every axis, got y in \[2.0, 1.0\]",
        ),
        (
            torch.zeros(2, 3, 3, 3),
            {"dst_box": [0, 0, 1, 1, 1, 1]},
            ValueError,
            r"dst_box must have min < max on every axis, got z in \[1.0, 1.0\]",
        ),
        (torch.zeros(2, 3, 3, 3), {"dst_box": "box"}, TypeError, r"dst_box must be a sequence of 6 numbers"),
        (torch.zeros(2, 3, 3, 3), {"dst_box": [0, 0, 0, 1, 1, "1"]}, TypeError, r"dst_box must hold real numbers"),
        (
            torch.zeros(2, 3, 3, 3),
            {"padding_mode": "reflection"},
            RuntimeError,
            r"padding_mode must be 'zeros' or 'border', got 'reflection'",
        ),
        (torch.zeros(2, 3, 3, 3), {"padding_mode": None}, TypeError, r"padding_mode must be a str"),
        ([[[[0.0]]]], {}, TypeError, r"volume must be a Tensor, got list"),
    ],
)
def test_bad_input(volume, kwargs, error, message):
    kwargs = {"size": (2, 2, 2), **kwargs}
    with pytest.raises(error, match=message):
        resample_volume(volume, **kwargs)


def test_bad_input_to_the_compiled_ops():
    """Callers of torch.ops directly get the same checks, from the C++ side."""
    volume, unit = torch.zeros(2, 3, 3, 3), [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]
    op, backward = torch.ops.pointkd.resample_volume, torch.ops.pointkd.resample_volume_backward
    with pytest.raises(RuntimeError, match=r"size must be 3 integers \(D', H', W'\), each >= 1, got \[2, 0, 2\]"):
        op(volume, [2, 0, 2])
    with pytest.raises(RuntimeError, match=r"size must be 3 integers"):
        op(volume, [2, 2])
    with pytest.raises(RuntimeError, match=r"src_box must have 6 entries \(xmin, ymin, zmin, xmax, ymax, zmax\)"):
        op(volume, [2, 2, 2], [0.0, 1.0])
    with pytest.raises(RuntimeError, match=r"dst_box must be finite"):
        op(volume, [2, 2, 2], unit, [0.0, 0.0, 0.0, 1.0, 1.0, math.nan])
    with pytest.raises(RuntimeError, match=r"dst_box must have min < max on every axis, got x in \[1, 0\]"):
        op(volume, [2, 2, 2], unit, [1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    with pytest.raises(RuntimeError, match=r"grad_output must be a float32 or float64 tensor of shape"):
        backward(torch.zeros(3, 3, 3), [2, 2, 2], unit, unit, True, "zeros")
    with pytest.raises(RuntimeError, match=r"volume_size must be 3 integers \(D, H, W\), each >= 1"):
        backward(torch.zeros(2, 3, 3, 3), [2, 0, 2], unit, unit, True, "zeros")
    with pytest.raises(RuntimeError, match=r"padding_mode must be 'zeros' or 'border'"):
        backward(torch.zeros(2, 3, 3, 3), [2, 2, 2], unit, unit, True, "wrap")


def _sphere_sdf(points):
    return points.norm(dim=-1) - 0.7


def test_evaluate_on_grid_matches_loop():
    aabb = [-1.0, -0.5, 0.0, 1.0, 1.0, 1.5]
    resolution = (5, 3, 4)
    grid = evaluate_on_grid(_sphere_sdf, resolution, torch.tensor(aabb, dtype=torch.float64))
    assert grid.shape == resolution and grid.dtype == torch.float64
    expected = torch.empty(resolution, dtype=torch.float64)
    for i, j, k in itertools.product(*(range(count) for count in resolution)):
        centre = [
            aabb[a] + (index + 0.5) * (aabb[a + 3] - aabb[a]) / resolution[a] for a, index in enumerate((i, j, k))
        ]
        expected[i, j, k] = math.sqrt(sum(value * value for value in centre)) - 0.7
    torch.testing.assert_close(grid, expected, rtol=1e-12, atol=1e-12)
    # An int resolution is a cube; several channels give a trailing axis.
    grid = evaluate_on_grid(lambda points: torch.stack([_sphere_sdf(points), points[:, 0]], -1), 3, aabb)
    assert grid.shape == (3, 3, 3, 2) and grid.dtype == torch.get_default_dtype()


def test_evaluate_on_grid_cells_are_those_of_ray_march():
    """grid[i, j, k] is the cell that ray_march's occupancy[i, j, k] describes."""
    aabb = torch.tensor([-1.0, 0.0, 2.0, 1.0, 3.0, 2.5])
    resolution = (4, 6, 3)
    grid = evaluate_on_grid(lambda points: points, resolution, aabb, jitter=True)
    lo, hi = aabb[:3], aabb[3:]
    cell = torch.floor((grid - lo) / (hi - lo) * torch.tensor(resolution)).long()
    index = torch.stack(torch.meshgrid(*(torch.arange(count) for count in resolution), indexing="ij"), -1)
    assert torch.equal(cell, index)
    # A ray along x through the middle of the y and z ranges keeps only samples in occupied cells.
    occupancy = evaluate_on_grid(lambda points: points[:, 0] > 0, resolution, aabb)
    rays_o = torch.tensor([[-2.0, 1.6, 2.2]])
    rays_d = torch.tensor([[1.0, 0.0, 0.0]])
    samples = _ray_march_reference(rays_o, rays_d, aabb, step_size=0.1, occupancy=occupancy)
    assert samples.positions.shape[0] > 0 and bool((samples.positions[:, 0] > 0).all())


def test_evaluate_on_grid_jitter_inside_cells_and_reproducible():
    aabb = torch.tensor([0.0, -1.0, 1.0, 2.0, 1.0, 4.0], dtype=torch.float64)
    resolution = (6, 5, 7)
    grid = evaluate_on_grid(lambda points: points, resolution, aabb, chunk_size=50, jitter=True)
    size = (aabb[3:] - aabb[:3]) / torch.tensor(resolution, dtype=torch.float64)
    index = torch.stack(torch.meshgrid(*(torch.arange(count) for count in resolution), indexing="ij"), -1)
    low = aabb[:3] + index * size
    assert bool(((grid >= low) & (grid <= low + size)).all())
    centres = evaluate_on_grid(lambda points: points, resolution, aabb)
    assert not torch.allclose(grid, centres)
    first = evaluate_on_grid(
        lambda points: points, resolution, aabb, 50, True, generator=torch.Generator().manual_seed(8)
    )
    second = evaluate_on_grid(
        lambda points: points, resolution, aabb, 50, True, generator=torch.Generator().manual_seed(8)
    )
    assert torch.equal(first, second)


def test_evaluate_on_grid_chunking_is_invisible():
    calls = []

    def fn(points):
        calls.append(points.shape[0])
        return torch.stack([_sphere_sdf(points), points.sum(-1)], -1)

    aabb = [-1.0, -1.0, -1.0, 1.0, 0.5, 2.0]
    whole = evaluate_on_grid(fn, (7, 4, 5), aabb)
    assert calls == [140]
    for chunk_size in (1, 9, 64, 139):
        calls.clear()
        assert torch.equal(evaluate_on_grid(fn, (7, 4, 5), aabb, chunk_size=chunk_size), whole)
        assert max(calls) == chunk_size and sum(calls) == 140


def test_evaluate_on_grid_runs_without_grad():
    weight = torch.ones(3, requires_grad=True)
    grid = evaluate_on_grid(lambda points: points @ weight, 2, [0, 0, 0, 1, 1, 1])
    assert not grid.requires_grad


@pytest.mark.parametrize("channels", [None, 2])
def test_layout_conversion_with_resample_volume(channels):
    """The docstring's one-liners: an [x, y, z] grid as a (C, D, H, W) volume over aabb (align_corners=False)."""
    coefficients = torch.tensor([[0.3, -1.2, 0.7], [2.0, 0.5, -0.4]], dtype=torch.float64)

    def affine(points):
        values = points @ coefficients.T + torch.tensor([0.1, -0.3], dtype=torch.float64)
        return values if channels else values[:, 0]

    aabb = torch.tensor([-1.0, -2.0, 0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    resolution = (8, 10, 12)
    grid = evaluate_on_grid(affine, resolution, aabb)
    volume = grid.permute(3, 2, 1, 0) if channels else grid.permute(2, 1, 0)[None]
    assert volume.shape == (channels or 1, 12, 10, 8)
    if channels:
        assert torch.equal(volume.permute(3, 2, 1, 0), grid)
    # A box inside the span of the cell centres: trilinear interpolation reproduces the affine field.
    cell = (aabb[3:] - aabb[:3]) / torch.tensor(resolution, dtype=torch.float64)
    box = torch.cat([aabb[:3] + cell, aabb[3:] - cell])
    size = (5, 9, 4)  # (D', H', W') = (Rz', Ry', Rx')
    resampled = resample_volume(volume, size, src_box=aabb, dst_box=box, align_corners=False)
    expected = evaluate_on_grid(affine, size[::-1], box)
    expected = expected.permute(3, 2, 1, 0) if channels else expected.permute(2, 1, 0)[None]
    torch.testing.assert_close(resampled, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"fn": "sdf"}, TypeError, r"fn must be callable, got str"),
        ({"resolution": 0}, ValueError, r"resolution must have every entry >= 1, got \[0, 0, 0\]"),
        ({"resolution": (2, 2)}, ValueError, r"resolution must have 3 entries"),
        ({"resolution": 2.5}, TypeError, r"resolution must be a sequence of 3 integers, got float"),
        ({"aabb": [0, 0, 0, 1, 1]}, ValueError, r"aabb must have 6 entries"),
        ({"aabb": [0, 0, 0, 1, 0, 1]}, ValueError, r"aabb must have min < max on every axis, got y"),
        ({"aabb": None}, TypeError, r"aabb must be a sequence of 6 numbers"),
        ({"chunk_size": 0}, ValueError, r"chunk_size must be >= 1, got 0"),
        ({"chunk_size": 2.0}, TypeError, r"chunk_size must be an int"),
        ({"fn": lambda points: points.tolist()}, TypeError, r"fn must return a Tensor, got list"),
        ({"fn": lambda points: points[:1]}, ValueError, r"fn must map points \(M, 3\) to values \(M,\) or \(M, C\)"),
        ({"fn": lambda points: points[:, None]}, ValueError, r"fn must map points"),
        (
            {"fn": lambda points: points[:, : 1 + points.shape[0] % 2], "chunk_size": 3},
            ValueError,
            r"fn must return the same trailing shape for every chunk",
        ),
    ],
)
def test_evaluate_on_grid_bad_input(kwargs, error, message):
    kwargs = {"fn": _sphere_sdf, "resolution": 2, "aabb": [0, 0, 0, 1, 1, 1], **kwargs}
    with pytest.raises(error, match=message):
        evaluate_on_grid(**kwargs)


@requires_cuda
@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_cuda_matches_cpu(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(9)
    volume = torch.randn(2, 5, 9, 10, 11, generator=generator, dtype=torch.float64)
    args = ((17, 6, 13), [0, 0, 0, 1, 1, 1], [-0.2, 0.1, 0.3, 1.3, 0.8, 0.9], align_corners, padding_mode)
    grad_output = torch.randn(2, 5, 17, 6, 13, generator=generator, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        tensor = volume.to(device).requires_grad_()
        out = resample_volume(tensor, *args)
        results.append([out, *torch.autograd.grad(out, tensor, grad_output.to(device))])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-10, atol=1e-10)
    grid = evaluate_on_grid(_sphere_sdf, 6, torch.tensor([-1.0, -1, -1, 1, 1, 1], device="cuda"))
    assert grid.is_cuda and grid.shape == (6, 6, 6)
