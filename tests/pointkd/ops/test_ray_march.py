import math

import pytest
import torch

from pointkd.ops import composite, ray_march
from pointkd.ops.ray_march import _ray_march_reference
from tests.conftest import requires_cuda

AABB = [-1.0, -0.5, -1.5, 1.0, 1.5, 0.5]


def _rays(num_rays, dtype=torch.float64, seed=0):
    """Rays from outside and inside the box, some missing it, some axis-parallel."""
    generator = torch.Generator().manual_seed(seed)
    rays_o = (torch.rand(num_rays, 3, generator=generator, dtype=torch.float64) * 6 - 3).to(dtype)
    target = torch.rand(num_rays, 3, generator=generator, dtype=torch.float64) * 2.4 - 1.2
    rays_d = (target.to(dtype) - rays_o) * (torch.rand(num_rays, 1, generator=generator) + 0.5).to(dtype)
    rays_d[: num_rays // 4] = torch.randn(num_rays // 4, 3, generator=generator, dtype=torch.float64).to(dtype)
    rays_o[:3] = torch.tensor([[0.2, 0.1, -0.3], [-5.0, 0.3, 0.0], [-5.0, 3.0, 0.0]], dtype=dtype)
    rays_d[:3] = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)
    return rays_o, rays_d


def _occupancy(shape, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator) < 0.4


def _assert_same(out, expected):
    for ours, theirs in zip(out, expected):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grid", [None, (8, 8, 8), (5, 7, 3)])
@pytest.mark.parametrize("near, far", [(0.0, math.inf), (1.0, 4.5)])
def test_matches_reference(dtype, grid, near, far):
    rays_o, rays_d = _rays(300, dtype)
    aabb = torch.tensor(AABB, dtype=dtype)
    occupancy = None if grid is None else _occupancy(grid)
    args = (rays_o, rays_d, aabb, near, far, 0.03, 96, occupancy)
    out = ray_march(*args)
    _assert_same(out, _ray_march_reference(*args))
    counts = out.ray_offsets.diff()
    assert counts.max() <= 96 and counts.min() >= 0 and int(out.ray_offsets[-1]) == out.ts.numel()
    assert (counts > 0).any() and (counts == 0).any()
    assert torch.equal(out.deltas, torch.full_like(out.ts, 0.03))
    box = aabb.double()
    inside = (out.positions.double() >= box[:3] - 1e-5).all(1) & (out.positions.double() <= box[3:] + 1e-5).all(1)
    assert inside.all()
    if occupancy is not None:
        _assert_same(ray_march(*args[:-1], occupancy.to(torch.uint8)), out)


def test_known_ray():
    # Along +x through the box x in [-1, 1]: t from 4 to 6, samples at 4.25, 4.75, 5.25, 5.75.
    rays_o = torch.tensor([[-5.0, 0.0, 0.0], [-5.0, 0.0, 0.0], [0.0, 5.0, 0.0]], dtype=torch.float64)
    rays_d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    out = ray_march(rays_o, rays_d, aabb, step_size=0.5, max_samples=3)
    torch.testing.assert_close(out.ts, torch.tensor([4.25, 4.75, 5.25, 4.25, 4.75, 5.25], dtype=torch.float64))
    assert out.ray_offsets.tolist() == [0, 3, 6, 6]
    occupancy = torch.zeros(2, 1, 1, dtype=torch.bool)
    occupancy[1] = True  # only x >= 0
    out = ray_march(rays_o[:1], rays_d[:1], aabb, step_size=0.5, max_samples=10, occupancy=occupancy)
    torch.testing.assert_close(out.ts, torch.tensor([5.25, 5.75], dtype=torch.float64))
    torch.testing.assert_close(out.positions[:, 0], torch.tensor([0.25, 0.75], dtype=torch.float64))


def test_empty_and_feeds_composite():
    aabb = torch.tensor(AABB)
    out = ray_march(torch.zeros(0, 3), torch.ones(0, 3), aabb)
    assert out.ts.shape == (0,) and out.positions.shape == (0, 3) and out.ray_offsets.tolist() == [0]
    out = ray_march(*_rays(20, torch.float32), aabb, step_size=0.1, max_samples=0)
    assert out.ts.numel() == 0 and out.ray_offsets.shape == (21,)
    rays_o, rays_d = _rays(50, torch.float32)
    marched = ray_march(rays_o, rays_d, aabb, step_size=0.05, max_samples=64)
    sigmas = torch.ones_like(marched.ts)
    rendered = composite(sigmas, torch.ones(sigmas.numel(), 3), marched.deltas, marched.ts, marched.ray_offsets)
    assert rendered.color.shape == (50, 3)


def test_not_differentiable():
    rays_o, rays_d = _rays(10)
    out = ray_march(rays_o.requires_grad_(), rays_d.requires_grad_(), torch.tensor(AABB, dtype=torch.float64))
    assert not out.ts.requires_grad and not out.positions.requires_grad


def test_opcheck():
    rays_o, rays_d = _rays(30)
    aabb = torch.tensor(AABB, dtype=torch.float64)
    for occupancy in (None, _occupancy((4, 4, 4))):
        torch.library.opcheck(
            torch.ops.pointkd.ray_march.default, (rays_o, rays_d, aabb, 0.0, 10.0, 0.1, 32, occupancy)
        )


def test_bad_inputs():
    rays_o, rays_d = _rays(6)
    aabb = torch.tensor(AABB, dtype=torch.float64)
    good = {"rays_o": rays_o, "rays_d": rays_d, "aabb": aabb, "step_size": 0.1, "max_samples": 8}
    cases = [
        ({"rays_d": torch.cat([rays_d[:5], torch.zeros(1, 3, dtype=torch.float64)])}, r"rays_d must have no zero"),
        ({"rays_o": torch.where(torch.arange(6)[:, None] == 3, float("nan"), rays_o)}, r"rays_o must be finite"),
        ({"rays_d": torch.full_like(rays_d, float("nan"))}, r"rays_d must be finite"),
        ({"rays_o": rays_o[:, :2]}, r"rays_o must be a float32 or float64 tensor of shape \[R, 3\]"),
        ({"rays_d": rays_d[:5]}, r"rays_d must have the shape of rays_o"),
        ({"rays_d": rays_d.float()}, r"rays_d must have the dtype and device of rays_o"),
        ({"aabb": aabb[:5]}, r"aabb must be a tensor of shape \[6\]"),
        ({"aabb": aabb.flip(0)}, r"aabb must be finite with min < max"),
        ({"step_size": 0.0}, r"step_size must be finite and > 0"),
        ({"max_samples": -1}, r"max_samples must be >= 0"),
        ({"near": 2.0, "far": 1.0}, r"near and far must satisfy near <= far"),
        ({"occupancy": torch.ones(4, 4)}, r"occupancy must be a non-empty bool or uint8 tensor"),
        ({"occupancy": torch.ones(4, 4, 4)}, r"occupancy must be a non-empty bool or uint8 tensor"),
    ]
    for changes, message in cases:
        with pytest.raises(RuntimeError, match=message):
            ray_march(**{**good, **changes})
    with pytest.raises(TypeError, match=r"aabb must be a Tensor"):
        ray_march(rays_o, rays_d, AABB)


@requires_cuda
def test_cuda_matches_cpu():
    rays_o, rays_d = _rays(2000)
    aabb = torch.tensor(AABB, dtype=torch.float64)
    occupancy = _occupancy((16, 16, 16))
    cpu = ray_march(rays_o, rays_d, aabb, 0.0, math.inf, 0.01, 256, occupancy)
    cuda = ray_march(rays_o.cuda(), rays_d.cuda(), aabb.cuda(), 0.0, math.inf, 0.01, 256, occupancy.cuda())
    # FMA contraction on the GPU may move a sample across a cell border: compare where both agree on the counts.
    assert (cuda.ray_offsets.cpu().diff() - cpu.ray_offsets.diff()).abs().sum() <= 5
    same = torch.equal(cuda.ray_offsets.cpu(), cpu.ray_offsets)
    if same:
        torch.testing.assert_close(cuda.ts.cpu(), cpu.ts, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(cuda.positions.cpu(), cpu.positions, rtol=1e-12, atol=1e-12)
