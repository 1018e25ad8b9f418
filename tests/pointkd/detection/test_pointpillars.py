import pytest
import torch

from pointkd.detection.pointpillars import BEVBackbone, PillarFeatureNet, scaled_channels, scatter_to_bev
from pointkd.detection.voxelize import VoxelGrid, collate_voxels, voxelize

GRID = VoxelGrid((0.0, -4.0, -3.0, 8.0, 4.0, 1.0), (0.5, 0.5, 4.0))


def random_points(count, seed):
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(count, 4, generator=generator)
    return points * torch.tensor([8.0, 8.0, 4.0, 1.0]) + torch.tensor([0.0, -4.0, -3.0, 0.0])


def test_pillar_features_match_a_per_pillar_loop():
    torch.manual_seed(0)
    encoder = PillarFeatureNet(4, GRID.voxel_size, GRID.point_cloud_range, out_channels=16).eval()
    with torch.no_grad():
        encoder.norm.running_mean.uniform_(-0.5, 0.5)
        encoder.norm.running_var.uniform_(0.5, 2.0)
    voxels, coords, num_points = collate_voxels([voxelize(random_points(300, 1), GRID, 8, 1000)])
    output = encoder(voxels, num_points, coords)
    for index in range(0, voxels.shape[0], 7):
        count = int(num_points[index])
        points = voxels[index, :count]
        z, y, x = coords[index, 1:].tolist()
        centre = torch.tensor([(x + 0.5) * 0.5 + 0.0, (y + 0.5) * 0.5 - 4.0, (z + 0.5) * 4.0 - 3.0])
        decorated = torch.cat([points, points[:, :3] - points[:, :3].mean(0), points[:, :3] - centre], dim=1)
        # OpenPCDet's PFN also pools the zero-padded rows, which encode to relu(bn(0)).
        padded = torch.cat([decorated, torch.zeros(voxels.shape[1] - count, 10)])
        expected = torch.relu(encoder.norm(encoder.linear(padded))).max(dim=0).values
        torch.testing.assert_close(output[index], expected, atol=1e-5, rtol=1e-5)


def test_pillar_encoder_with_no_pillars():
    encoder = PillarFeatureNet(4, GRID.voxel_size, GRID.point_cloud_range, out_channels=16)
    assert encoder(
        torch.zeros(0, 8, 4), torch.zeros(0, dtype=torch.int32), torch.zeros(0, 4, dtype=torch.int32)
    ).shape == (0, 16)


def test_scatter_places_each_pillar_at_its_cell():
    coords = torch.tensor([[0, 0, 2, 3], [1, 0, 15, 0], [1, 0, 0, 15]], dtype=torch.int32)
    features = torch.arange(6, dtype=torch.float32).view(3, 2) + 1
    canvas = scatter_to_bev(features, coords, 2, (16, 16))
    assert canvas.shape == (2, 2, 16, 16)
    assert canvas[0, :, 2, 3].tolist() == [1.0, 2.0]
    assert canvas[1, :, 15, 0].tolist() == [3.0, 4.0]
    assert canvas[1, :, 0, 15].tolist() == [5.0, 6.0]
    assert int((canvas != 0).sum()) == 6


@pytest.mark.parametrize("width, expected", [(1.0, 64), (0.5, 32), (0.25, 16), (0.1, 8), (0.3, 16)])
def test_scaled_channels(width, expected):
    assert scaled_channels(64, width) == expected


def test_bev_backbone_shapes_and_widths():
    backbone = BEVBackbone(16, layers=(1, 1, 1), channels=(16, 32, 64), upsample_channels=(32, 32, 32))
    output = backbone(torch.randn(2, 16, 32, 48))
    assert output["spatial_features_2d"].shape == (2, 96, 16, 24)
    assert [feature.shape[-1] for feature in output["stage_features"]] == [24, 12, 6]
    assert backbone.stride == 2
    with pytest.raises(ValueError, match="length"):
        BEVBackbone(16, layers=(1, 1), channels=(16, 32, 64))
