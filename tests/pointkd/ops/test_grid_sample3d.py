import pytest
import torch
import torch.nn.functional as F

from pointkd.ops import grid_sample3d
from pointkd.ops.grid_sample import _grid_sample3d_reference
from tests.conftest import requires_cuda

MODES = [(align_corners, padding_mode) for align_corners in (True, False) for padding_mode in ("zeros", "border")]


def _torch_grid_sample(volume, points, align_corners, padding_mode):
    """F.grid_sample in this op's convention: (B, C, D, H, W) x (B, M, 3) -> (B, M, C)."""
    batched = volume.dim() == 5
    if not batched:
        volume, points = volume.unsqueeze(0), points.unsqueeze(0)
    batch, num_points = points.shape[:2]
    out = F.grid_sample(volume, points.reshape(batch, 1, 1, num_points, 3), "bilinear", padding_mode, align_corners)
    out = out.reshape(batch, volume.shape[1], num_points).transpose(1, 2)
    return out if batched else out.squeeze(0)


def _points(shape, generator, dtype=torch.float64, spread=1.3):
    """Random points reaching past [-1, 1], plus the exact corners, centre and borders."""
    points = (torch.rand(*shape, 3, generator=generator, dtype=torch.float64) * 2 - 1) * spread
    special = torch.tensor([[-1, -1, -1], [1, 1, 1], [0, 0, 0], [1, -1, 0.5], [-1, 1, -0.25]], dtype=torch.float64)
    points[..., : special.shape[0], :] = special
    return points.to(dtype)


def _tolerances(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_matches_grid_sample_and_reference(dtype, batched, align_corners, padding_mode):
    generator = torch.Generator().manual_seed(0)
    shape_volume = (2, 5, 4, 6, 7) if batched else (5, 4, 6, 7)
    volume = torch.randn(*shape_volume, generator=generator, dtype=dtype)
    points = _points((2, 400) if batched else (400,), generator, dtype)
    out = grid_sample3d(volume, points, align_corners, padding_mode)
    expected = _torch_grid_sample(volume, points, align_corners, padding_mode)
    assert out.shape == ((2, 400, 5) if batched else (400, 5)) and out.dtype == dtype and out.is_contiguous()
    torch.testing.assert_close(out, expected, **_tolerances(dtype))
    torch.testing.assert_close(
        _grid_sample3d_reference(volume, points, align_corners, padding_mode), expected, **_tolerances(dtype)
    )


@pytest.mark.parametrize("align_corners", [True, False])
def test_far_outside(align_corners):
    volume = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    points = torch.tensor([[2.0, 0, 0], [0, -3, 0], [0, 0, 1e30], [-1e30, 5, -2]], dtype=torch.float64)
    assert torch.equal(grid_sample3d(volume, points, align_corners, "zeros"), torch.zeros(4, 3, dtype=torch.float64))
    clamped = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, 1], [-1, 1, -1]], dtype=torch.float64)
    torch.testing.assert_close(
        grid_sample3d(volume, points, align_corners, "border"), grid_sample3d(volume, clamped, True, "border")
    )


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
def test_gradients_match_grid_sample(align_corners, padding_mode, needs):
    generator = torch.Generator().manual_seed(1)
    volume = torch.randn(2, 3, 5, 4, 6, generator=generator, dtype=torch.float64)
    points = _points((2, 300), generator)
    grad_output = torch.randn(2, 300, 3, generator=generator, dtype=torch.float64)
    grads = []
    for fn in (grid_sample3d, _torch_grid_sample, _grid_sample3d_reference):
        inputs = [volume.clone().requires_grad_(needs[0]), points.clone().requires_grad_(needs[1])]
        wanted = [tensor for tensor in inputs if tensor.requires_grad]
        grads.append(torch.autograd.grad(fn(*inputs, align_corners, padding_mode), wanted, grad_output))
    for ours, theirs, reference in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(reference, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_gradcheck(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(2)
    volume = torch.randn(2, 3, 4, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    # Inside and outside the volume, away from grid lines (kinks of the interpolant).
    points = (torch.rand(12, 3, generator=generator, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda v, p: grid_sample3d(v, p, align_corners, padding_mode), (volume, points))
    batched_volume = torch.randn(2, 2, 3, 3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    batched_points = (torch.rand(2, 6, 3, generator=generator, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda v, p: grid_sample3d(v, p, align_corners, padding_mode), (batched_volume, batched_points)
    )


def test_non_contiguous_inputs():
    generator = torch.Generator().manual_seed(3)
    base = torch.randn(7, 6, 5, 4, generator=generator, dtype=torch.float64)  # (W, H, D, C) in memory
    volume = base.permute(3, 2, 1, 0)  # (C, D, H, W), no unit stride on W
    points = _points((3, 200), generator)[1].t().contiguous().t()  # (M, 3) with strides (1, M)
    assert not volume.is_contiguous() and not points.is_contiguous()
    grad_output = torch.randn(4, 200, generator=generator, dtype=torch.float64).t()  # (M, C), strided
    expected_volume = volume.contiguous().requires_grad_()
    expected_points = points.contiguous().requires_grad_()
    expected = _torch_grid_sample(expected_volume, expected_points, True, "zeros")
    volume.requires_grad_(), points.requires_grad_()
    out = grid_sample3d(volume, points)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    ours = torch.autograd.grad(out, (volume, points), grad_output)
    theirs = torch.autograd.grad(expected, (expected_volume, expected_points), grad_output)
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine, reference, rtol=1e-10, atol=1e-10)
    # A channels-last volume is read in place; a sliced batch of points is fine too.
    batched = torch.randn(2, 4, 5, 6, 7, generator=generator).contiguous(memory_format=torch.channels_last_3d)
    sliced_points = _points((2, 300), generator, torch.float32)[:, ::3]
    torch.testing.assert_close(
        grid_sample3d(batched, sliced_points, False, "border"),
        _torch_grid_sample(batched, sliced_points, False, "border"),
    )


@pytest.mark.parametrize("align_corners", [True, False])
def test_single_sample_axes(align_corners):
    generator = torch.Generator().manual_seed(4)
    volume = torch.randn(3, 1, 2, 1, generator=generator, dtype=torch.float64)
    points = _points((50,), generator)
    for padding_mode in ("zeros", "border"):
        torch.testing.assert_close(
            grid_sample3d(volume, points, align_corners, padding_mode),
            _torch_grid_sample(volume, points, align_corners, padding_mode),
            rtol=1e-10,
            atol=1e-10,
        )


def test_many_points_parallel_and_reproducible():
    """Enough points for several threads and every bucket phase, clustered and spread."""
    generator = torch.Generator().manual_seed(5)
    volume = torch.randn(2, 8, 12, 10, 9, generator=generator, requires_grad=True)
    points = torch.rand(2, 30_000, 3, generator=generator) * 2.2 - 1.1
    points[1, :10_000, 2] = 0.1  # a third of a batch on one slice (one bucket row): load imbalance
    points.requires_grad_()
    grad_output = torch.randn(2, 30_000, 8, generator=generator)
    out = grid_sample3d(volume, points, False, "zeros")
    torch.testing.assert_close(out, _torch_grid_sample(volume, points, False, "zeros"))
    grads = torch.autograd.grad(out, (volume, points), grad_output)
    expected = torch.autograd.grad(_torch_grid_sample(volume, points, False, "zeros"), (volume, points), grad_output)
    torch.testing.assert_close(grads[0], expected[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grads[1], expected[1], rtol=1e-4, atol=1e-4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = torch.autograd.grad(grid_sample3d(volume, points, False, "zeros"), (volume, points), grad_output)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(serial[0], grads[0]) and torch.equal(serial[1], grads[1])


def test_empty():
    volume = torch.randn(4, 3, 3, 3, requires_grad=True)
    points = torch.empty(0, 3, requires_grad=True)
    out = grid_sample3d(volume, points)
    assert out.shape == (0, 4)
    grad_volume, grad_points = torch.autograd.grad(out.sum(), (volume, points), allow_unused=True)
    assert torch.equal(grad_volume, torch.zeros_like(volume)) and grad_points.shape == (0, 3)
    assert grid_sample3d(torch.randn(0, 4, 3, 3, 3), torch.empty(0, 5, 3)).shape == (0, 5, 4)
    assert grid_sample3d(torch.randn(0, 3, 3, 3), torch.rand(6, 3)).shape == (6, 0)


@pytest.mark.parametrize(
    "volume, points, kwargs, message",
    [
        (
            torch.zeros(3, 3, 3),
            torch.zeros(5, 3),
            {},
            r"volume must be a float32 or float64 tensor of shape \[C, D, H, W\] or \[B, C, D, H, W\], got Float \[3, 3, 3\]",
        ),
        (
            torch.zeros(2, 3, 3, 3, dtype=torch.long),
            torch.zeros(5, 3),
            {},
            r"volume must be a float32 or float64 tensor.*got Long",
        ),
        (
            torch.zeros(2, 3, 3, 3),
            torch.zeros(5, 2),
            {},
            r"points must be of shape \[M, 3\] for a volume of shape \[C, D, H, W\], got Float \[5, 2\]",
        ),
        (torch.zeros(2, 3, 3, 3), torch.zeros(1, 5, 3), {}, r"points must be of shape \[M, 3\]"),
        (
            torch.zeros(1, 2, 3, 3, 3),
            torch.zeros(5, 3),
            {},
            r"points must be of shape \[B, M, 3\] for a volume of shape \[B, C, D, H, W\]",
        ),
        (
            torch.zeros(2, 3, 3, 3),
            torch.zeros(5, 3, dtype=torch.float64),
            {},
            r"points must have the dtype of volume \(Float\), got Double",
        ),
        (
            torch.zeros(2, 2, 3, 3, 3),
            torch.zeros(3, 5, 3),
            {},
            r"points must have as many batches as volume \(B = 2\), got Float \[3, 5, 3\]",
        ),
        (torch.zeros(2, 0, 3, 3), torch.zeros(5, 3), {}, r"volume must have at least one sample along each of D, H, W"),
        (
            torch.zeros(2, 3, 3, 3),
            torch.tensor([[0.0, 0, 0], [0, float("nan"), 0]]),
            {},
            r"points must be finite.*points\[1\] = \(0, nan, 0\)",
        ),
        (
            torch.zeros(2, 2, 3, 3, 3),
            torch.zeros(2, 4, 3).index_put_(
                (torch.tensor(1), torch.tensor(2), torch.tensor(0)), torch.tensor(float("inf"))
            ),
            {},
            r"points must be finite.*points\[1, 2\]",
        ),
        (
            torch.zeros(2, 3, 3, 3),
            torch.zeros(5, 3),
            {"padding_mode": "reflection"},
            r"padding_mode must be 'zeros' or 'border', got 'reflection'",
        ),
    ],
)
def test_bad_input(volume, points, kwargs, message):
    with pytest.raises(RuntimeError, match=message):
        grid_sample3d(volume, points, **kwargs)


def test_bad_input_types_and_grad_output():
    with pytest.raises(TypeError, match="points must be a Tensor"):
        grid_sample3d(torch.zeros(1, 2, 2, 2), [[0.0, 0.0, 0.0]])
    volume, points = torch.zeros(2, 3, 3, 3), torch.zeros(5, 3)
    with pytest.raises(
        RuntimeError, match=r"grad_output must have the shape of the output \(\[M, C\]\), got Float \[5, 3\]"
    ):
        torch.ops.pointkd.grid_sample3d_backward(torch.zeros(5, 3), volume, points, True, "zeros", [True, True])


def test_double_backward_raises():
    volume = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    points = (torch.rand(5, 3, dtype=torch.float64) - 0.5).requires_grad_()
    (grad_points,) = torch.autograd.grad(grid_sample3d(volume, points).sum(), points, create_graph=True)
    with pytest.raises(RuntimeError, match="grid_sample3d has no double backward"):
        grad_points.norm().backward()


@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_opcheck(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(6)
    for batched in (False, True):
        prefix = (2,) if batched else ()
        volume = torch.randn(*prefix, 3, 4, 5, 6, generator=generator, dtype=torch.float64)
        points = torch.rand(*prefix, 9, 3, generator=generator, dtype=torch.float64) * 2.4 - 1.2
        torch.library.opcheck(torch.ops.pointkd.grid_sample3d.default, (volume, points, align_corners, padding_mode))
        grad_output = torch.randn(*prefix, 9, 3, generator=generator, dtype=torch.float64)
        for output_mask in ([True, True], [True, False], [False, True]):
            torch.library.opcheck(
                torch.ops.pointkd.grid_sample3d_backward.default,
                (grad_output, volume, points, align_corners, padding_mode, output_mask),
            )


@requires_cuda
@pytest.mark.parametrize("align_corners, padding_mode", MODES)
def test_cuda_matches_cpu(align_corners, padding_mode):
    generator = torch.Generator().manual_seed(7)
    volume = torch.randn(2, 16, 9, 10, 11, generator=generator, dtype=torch.float64)
    points = _points((2, 5000), generator)
    grad_output = torch.randn(2, 5000, 16, generator=generator, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        inputs = [volume.to(device).requires_grad_(), points.to(device).requires_grad_()]
        out = grid_sample3d(*inputs, align_corners, padding_mode)
        results.append([out, *torch.autograd.grad(out, inputs, grad_output.to(device))])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-10, atol=1e-10)
    with pytest.raises(RuntimeError, match=r"points must be on the device of volume \(cuda:0\)"):
        grid_sample3d(volume.cuda(), points)
