import math

import pytest
import torch
from torch import nn

from pointkd.nerf.fields import build_field
from pointkd.nerf.render import OccupancyGrid, render_image, render_rays

AABB = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])


class ConstantField(nn.Module):
    """Density ``sigma`` and colour ``rgb`` everywhere (the marcher keeps samples inside the box)."""

    def __init__(self, sigma: float, rgb: tuple[float, float, float]):
        super().__init__()
        self.sigma = nn.Parameter(torch.tensor(sigma))
        self.register_buffer("rgb", torch.tensor(rgb))

    def forward(self, x, d):
        return self.sigma.expand(x.shape[0]), self.rgb.expand(x.shape[0], 3)


def test_constant_slab_matches_closed_form():
    sigma, rgb, background = 0.7, (0.2, 0.5, 0.9), torch.tensor([1.0, 1.0, 1.0])
    field = ConstantField(sigma, rgb)
    # Axis-aligned rays through the box: chord length 2; one ray misses it.
    rays_o = torch.tensor([[-3.0, 0.1, 0.2], [0.3, -3.0, -0.4], [0.0, 0.0, 3.0], [5.0, 5.0, 5.0]])
    rays_d = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    out = render_rays(
        field, rays_o, rays_d, AABB, step_size=0.01, max_samples=400, background=background, transmittance_threshold=0
    )
    opacity = 1 - math.exp(-sigma * 2.0)
    expected = torch.tensor(rgb) * opacity + (1 - opacity) * background
    torch.testing.assert_close(out.opacity[:3], torch.full((3,), opacity), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.color[:3], expected.expand(3, 3), atol=1e-5, rtol=0)
    # The ray that misses renders the background, with no samples spent on it.
    torch.testing.assert_close(out.color[3], background)
    assert out.opacity[3] == 0 and out.num_samples == 3 * 200
    # d(opacity)/d(sigma) = L exp(-sigma L) per ray.
    out.opacity[:3].sum().backward()
    torch.testing.assert_close(field.sigma.grad, torch.tensor(3 * 2.0 * math.exp(-sigma * 2.0)), atol=1e-4, rtol=0)


def test_occupancy_skips_empty_space():
    field = ConstantField(0.7, (0.2, 0.5, 0.9))
    occupancy = torch.zeros(4, 4, 4, dtype=torch.bool)
    occupancy[:2] = True  # the half x < 0 only
    rays_o, rays_d = torch.tensor([[-3.0, 0.1, 0.2]]), torch.tensor([[1.0, 0.0, 0.0]])
    out = render_rays(
        field, rays_o, rays_d, AABB, step_size=0.01, max_samples=400, occupancy=occupancy, transmittance_threshold=0
    )
    assert out.num_samples == 100
    torch.testing.assert_close(out.opacity, torch.tensor([1 - math.exp(-0.7)]), atol=1e-5, rtol=0)


def test_render_image_chunks_agree_and_handle_shapes():
    torch.manual_seed(0)
    field = build_field("grid", AABB, resolution=6, feature_dim=3, hidden_dim=8)
    with torch.no_grad():
        field.volume.normal_()
    rays_o = torch.tensor([0.0, 0.0, 3.0]).expand(5, 7, 3).contiguous()
    rays_d = torch.randn(5, 7, 3) * 0.2 + torch.tensor([0.0, 0.0, -1.0])
    kwargs = {"aabb": AABB, "near": 0.5, "far": 6.0, "step_size": 0.05, "max_samples": 200, "background": torch.ones(3)}
    whole = render_image(field, rays_o, rays_d, chunk_size=1000, **kwargs)
    chunked = render_image(field, rays_o, rays_d, chunk_size=4, **kwargs)
    assert whole["color"].shape == (5, 7, 3) and whole["depth"].shape == (5, 7)
    for key in whole:
        torch.testing.assert_close(whole[key], chunked[key])
    empty = render_image(field, rays_o[:0], rays_d[:0], **kwargs)
    assert empty["color"].shape == (0, 7, 3)


def test_render_rays_bad_shapes():
    field = ConstantField(1.0, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="rays_o and rays_d must both have shape"):
        render_rays(field, torch.zeros(3, 3), torch.ones(2, 3), AABB)


def test_occupancy_grid_marks_a_sphere():
    grid = OccupancyGrid(AABB, resolution=16, alpha_threshold=1e-2, step_size=0.01)
    assert grid.occupied_fraction == 1.0  # full until the first update

    def sphere(points):
        return torch.where(points.norm(dim=-1) < 0.5, 100.0, 0.0)

    fraction = grid.update(sphere, generator=torch.Generator().manual_seed(0))
    centres = (torch.stack(torch.meshgrid(*[torch.arange(16)] * 3, indexing="ij"), -1) + 0.5) / 16 * 2 - 1
    radius = centres.norm(dim=-1)
    # Cells well inside are occupied, cells well outside are not (jitter moves a point by < a cell).
    cell = 2 / 16 * math.sqrt(3)
    assert grid.bitfield[radius < 0.5 - cell].all()
    assert not grid.bitfield[radius > 0.5 + cell].any()
    assert 0 < fraction < 0.2
    # The running density decays by the factor per update once the sphere is gone...
    previous = grid.density.clone()
    for _ in range(100):
        grid.update(lambda points: torch.zeros(points.shape[0]))
    torch.testing.assert_close(grid.density, previous * 0.95**100)
    # ...and, all cells now below the threshold, the grid keeps those denser
    # than the mean (the safeguard that stops an all-transparent field from
    # emptying the grid): the former sphere.
    assert grid.density.max() < grid.density_threshold
    torch.testing.assert_close(grid.bitfield, previous > previous.mean(), rtol=0, atol=0)


def test_occupancy_grid_arguments():
    with pytest.raises(ValueError, match="resolution"):
        OccupancyGrid(AABB, resolution=0)
    with pytest.raises(ValueError, match="decay"):
        OccupancyGrid(AABB, decay=1.0)
    with pytest.raises(ValueError, match="alpha_threshold"):
        OccupancyGrid(AABB, alpha_threshold=0.0)


def test_render_rays_bad_and_empty_rays():
    field = ConstantField(1.0, (0.5, 0.5, 0.5))
    empty = render_rays(field, torch.zeros(0, 3), torch.zeros(0, 3), AABB, background=torch.ones(3))
    assert empty.color.shape == (0, 3) and empty.num_samples == 0
    with pytest.raises(RuntimeError, match="zero-length direction"):
        render_rays(field, torch.zeros(1, 3), torch.zeros(1, 3), AABB)
    with pytest.raises(RuntimeError, match="rays_o must be finite"):
        render_rays(field, torch.full((1, 3), float("nan")), torch.ones(1, 3), AABB)
    with pytest.raises(RuntimeError, match="rays_d must be finite"):
        render_rays(field, torch.zeros(1, 3), torch.tensor([[float("inf"), 0.0, 0.0]]), AABB)
