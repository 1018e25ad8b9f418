import math

import pytest
import torch

from pointkd.detection.voxelize import VoxelGrid, Voxels, _voxelize_reference, collate_voxels, voxelize
from tests.conftest import DEVICES, requires_cuda

PILLARS = VoxelGrid((0.0, -39.68, -3.0, 69.12, 39.68, 1.0), (0.16, 0.16, 4.0))
SMALL = VoxelGrid((-2.0, -2.0, -1.0, 2.0, 2.0, 1.0), (0.5, 0.5, 0.5))


def random_points(count: int, grid: VoxelGrid, seed: int = 0, margin: float = 0.1, features: int = 4) -> torch.Tensor:
    """Points over the grid's range and a ``margin`` (relative) beyond it, so some fall outside."""
    generator = torch.Generator().manual_seed(seed)
    lower = torch.tensor(grid.point_cloud_range[:3])
    extent = torch.tensor(grid.point_cloud_range[3:]) - lower
    xyz = lower - margin * extent + (1 + 2 * margin) * extent * torch.rand(count, 3, generator=generator)
    return torch.cat([xyz, torch.rand(count, features - 3, generator=generator)], dim=1)


def brute_force(points: torch.Tensor, grid: VoxelGrid, max_points: int, max_voxels: int) -> dict:
    """voxel (z, y, x) -> its first ``max_points`` point rows, insertion order = first appearance."""
    nx, ny, nz = grid.grid_size
    buckets: dict[tuple[int, int, int], list[list[float]]] = {}
    lower, size = grid.point_cloud_range[:3], grid.voxel_size
    for point in points.tolist():
        xyz = torch.tensor(point[:3], dtype=points.dtype)
        if not all(grid.point_cloud_range[k] <= xyz[k] < grid.point_cloud_range[k + 3] for k in range(3)):
            continue
        # Same float arithmetic as the op, in the points' dtype.
        cell = torch.floor((xyz - torch.tensor(lower, dtype=points.dtype)) / torch.tensor(size, dtype=points.dtype))
        x, y, z = (min(max(int(c), 0), n - 1) for c, n in zip(cell.tolist(), (nx, ny, nz)))
        if (z, y, x) not in buckets:
            if len(buckets) == max_voxels:
                continue
            buckets[(z, y, x)] = []
        if len(buckets[(z, y, x)]) < max_points:
            buckets[(z, y, x)].append(point)
    return buckets


def assert_matches(result: Voxels, expected: dict, max_points: int, num_features: int) -> None:
    assert result.voxels.shape == (len(expected), max_points, num_features)
    assert result.voxel_coords.dtype == torch.int32 and result.num_points.dtype == torch.int32
    assert result.voxel_coords.tolist() == [list(key) for key in expected]
    assert result.num_points.tolist() == [len(rows) for rows in expected.values()]
    for index, rows in enumerate(expected.values()):
        torch.testing.assert_close(result.voxels[index, : len(rows)], torch.tensor(rows), rtol=0, atol=0)
        assert not result.voxels[index, len(rows) :].any()


@pytest.mark.parametrize("grid", [PILLARS, SMALL], ids=["pillars", "small"])
@pytest.mark.parametrize("max_points", [1, 3, 32])
def test_matches_brute_force(grid, max_points):
    points = random_points(3000, grid)
    result = voxelize(points, grid, max_points, max_voxels=100000)
    assert_matches(result, brute_force(points, grid, max_points, 100000), max_points, 4)
    # The module's own reference agrees too.
    for got, want in zip(result, _voxelize_reference(points, grid, max_points, 100000)):
        assert torch.equal(got, want)


def test_max_voxels_keeps_first_appearing():
    points = random_points(2000, SMALL, seed=1)
    full = brute_force(points, SMALL, 4, 100000)
    assert len(full) > 50
    result = voxelize(points, SMALL, 4, max_voxels=50)
    expected = brute_force(points, SMALL, 4, 50)
    assert list(expected) == list(full)[:50]
    assert_matches(result, expected, 4, 4)


def test_max_points_truncation_keeps_input_order():
    # 10 points in one voxel, 3 kept: rows 0, 1, 2 of the input.
    points = torch.zeros(10, 4)
    points[:, :3] = 0.1
    points[:, 3] = torch.arange(10.0)
    result = voxelize(points, SMALL, 3, 10)
    assert result.num_points.tolist() == [3]
    assert result.voxels[0, :, 3].tolist() == [0.0, 1.0, 2.0]
    assert result.voxel_coords.tolist() == [[2, 4, 4]]


def test_half_open_range_boundaries():
    x0, y0, z0, x1, y1, z1 = SMALL.point_cloud_range
    points = torch.tensor(
        [
            [x0, y0, z0, 1.0],  # lower corner: kept, voxel (0, 0, 0)
            [x1, 0.0, 0.0, 2.0],  # upper x bound: dropped
            [0.0, y1, 0.0, 3.0],  # upper y bound: dropped
            [0.0, 0.0, z1, 4.0],  # upper z bound: dropped
            [math.nextafter(x1, x0), math.nextafter(y1, y0), math.nextafter(z1, z0), 5.0],  # last voxel
            [math.nextafter(x0, x0 - 1), 0.0, 0.0, 6.0],  # just below x0: dropped
        ],
        dtype=torch.float64,
    )
    nx, ny, nz = SMALL.grid_size
    result = voxelize(points, SMALL, 2, 10)
    assert result.voxel_coords.tolist() == [[0, 0, 0], [nz - 1, ny - 1, nx - 1]]
    assert result.voxels[:, 0, 3].tolist() == [1.0, 5.0]
    # A float32 point just below the upper bound stays in the last cell.
    below = torch.tensor([[x1, y0, z0, 0.0]])
    below[0, 0] = torch.nextafter(below[0, 0], torch.tensor(x0))
    assert voxelize(below, SMALL, 1, 1).voxel_coords.tolist() == [[0, 0, nx - 1]]


def test_empty_and_all_outside():
    for points in (torch.zeros(0, 4), torch.full((5, 4), 100.0)):
        result = voxelize(points, PILLARS, 32, 100)
        assert result.voxels.shape == (0, 32, 4)
        assert result.voxel_coords.shape == (0, 3) and result.voxel_coords.dtype == torch.int32
        assert result.num_points.shape == (0,) and result.num_points.dtype == torch.int32


def test_deterministic_and_noncontiguous_and_dtype():
    points = random_points(5000, PILLARS, seed=2, features=5)
    first = voxelize(points, PILLARS, 8, 3000)
    second = voxelize(points.clone(), PILLARS, 8, 3000)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    # A non-contiguous view (every other column of a wider tensor) gives the same voxels.
    wide = torch.stack([points, torch.zeros_like(points)], dim=2).flatten(1)[:, ::2]
    assert not wide.is_contiguous()
    assert all(torch.equal(a, b) for a, b in zip(first, voxelize(wide, PILLARS, 8, 3000)))
    double = voxelize(points.double(), PILLARS, 8, 3000)
    assert double.voxels.dtype == torch.float64
    assert first.voxel_coords.shape == double.voxel_coords.shape


def test_bad_inputs():
    with pytest.raises(ValueError, match="points must be finite: row 1"):
        voxelize(torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, float("nan"), 0.0, 0.0]]), SMALL, 1, 1)
    with pytest.raises(ValueError, match="points must be finite"):
        voxelize(torch.tensor([[float("inf"), 0.0, 0.0]]), SMALL, 1, 1)
    with pytest.raises(ValueError, match="points must be"):
        voxelize(torch.zeros(4), SMALL, 1, 1)
    with pytest.raises(ValueError, match="points must be"):
        voxelize(torch.zeros(4, 2), SMALL, 1, 1)
    with pytest.raises(ValueError, match="points must be a floating-point"):
        voxelize(torch.zeros(4, 3, dtype=torch.int64), SMALL, 1, 1)
    with pytest.raises(ValueError, match="max_points_per_voxel"):
        voxelize(torch.zeros(4, 3), SMALL, 0, 1)
    with pytest.raises(ValueError, match="max_voxels"):
        voxelize(torch.zeros(4, 3), SMALL, 1, 2.5)
    with pytest.raises(TypeError, match="points must be a Tensor"):
        voxelize([[0.0, 0.0, 0.0]], SMALL, 1, 1)
    with pytest.raises(TypeError, match="grid must be a VoxelGrid"):
        voxelize(torch.zeros(4, 3), (0, 0, 0, 1, 1, 1), 1, 1)


def test_voxel_grid_validation():
    assert PILLARS.grid_size == (432, 496, 1)
    assert VoxelGrid([0, -40, -3, 70.4, 40, 1], [0.05, 0.05, 0.1]).grid_size == (1408, 1600, 40)
    with pytest.raises(ValueError, match="voxel_size .* does not divide the x extent"):
        VoxelGrid((0, 0, 0, 1, 1, 1), (0.3, 0.5, 0.5))
    with pytest.raises(ValueError, match="voxel_size must be positive"):
        VoxelGrid((0, 0, 0, 1, 1, 1), (0.5, -0.5, 0.5))
    with pytest.raises(ValueError, match="voxel_size must be 3 numbers"):
        VoxelGrid((0, 0, 0, 1, 1, 1), (0.5, 0.5))
    with pytest.raises(ValueError, match="point_cloud_range must be 6 numbers"):
        VoxelGrid((0, 0, 1, 1, 1), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="point_cloud_range must have x1 > x0"):
        VoxelGrid((0, 0, 0, 1, -1, 1), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="point_cloud_range must be finite"):
        VoxelGrid((0, 0, 0, float("inf"), 1, 1), (0.5, 0.5, 0.5))


def test_collate():
    samples = [voxelize(random_points(500, SMALL, seed=seed), SMALL, 4, 1000) for seed in range(2)] + [
        voxelize(torch.zeros(0, 4), SMALL, 4, 1000)
    ]
    batch = collate_voxels(samples)
    sizes = [sample.voxels.shape[0] for sample in samples]
    assert batch.voxels.shape == (sum(sizes), 4, 4)
    assert batch.voxel_coords.shape == (sum(sizes), 4) and batch.voxel_coords.dtype == torch.int32
    assert batch.voxel_coords[:, 0].tolist() == [0] * sizes[0] + [1] * sizes[1]
    assert torch.equal(batch.voxel_coords[sizes[0] :, 1:], samples[1].voxel_coords)
    assert torch.equal(batch.num_points, torch.cat([sample.num_points for sample in samples]))
    with pytest.raises(ValueError, match="at least one"):
        collate_voxels([])
    with pytest.raises(ValueError, match=r"samples\[1\].voxels"):
        collate_voxels([samples[0], voxelize(random_points(10, SMALL), SMALL, 2, 10)])


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_devices(device):
    points = random_points(4000, PILLARS, seed=3).to(device)
    result = voxelize(points, PILLARS, 16, 2000)
    assert all(tensor.device.type == device.type for tensor in result)
    expected = voxelize(points.cpu(), PILLARS, 16, 2000)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(result, expected))


@requires_cuda
def test_cuda_matches_reference():
    points = random_points(3000, SMALL, seed=4)
    result = voxelize(points.cuda(), SMALL, 5, 200)
    assert all(torch.equal(a.cpu(), b) for a, b in zip(result, _voxelize_reference(points, SMALL, 5, 200)))


@pytest.mark.parametrize(
    "grid, max_points, max_voxels", [(PILLARS, 32, 16000), (SMALL, 5, 40)], ids=["pillars", "small"]
)
def test_matches_spconv_point_to_voxel(grid, max_points, max_voxels):
    utils = pytest.importorskip("spconv.pytorch.utils")
    points = random_points(20000, grid, seed=5)
    generator = utils.PointToVoxel(
        vsize_xyz=list(grid.voxel_size),
        coors_range_xyz=list(grid.point_cloud_range),
        num_point_features=4,
        max_num_voxels=max_voxels,
        max_num_points_per_voxel=max_points,
    )
    voxels, coords, num_points = generator(points)
    result = voxelize(points, grid, max_points, max_voxels)
    assert torch.equal(result.voxel_coords, coords)
    assert torch.equal(result.num_points, num_points)
    assert torch.equal(result.voxels, voxels)
