import numpy as np
import pytest
import torch

from pointkd.datasets.io import read_points, write_points
from pointkd.datasets.kitti import read_velodyne


@pytest.mark.parametrize("suffix", [".bin", ".pcd", ".ply"])
@pytest.mark.parametrize("columns", [3, 4])
def test_round_trip(tmp_path, suffix, columns):
    points = torch.randn(100, columns)
    path = tmp_path / f"cloud{suffix}"
    write_points(path, points)
    torch.testing.assert_close(read_points(path, num_features=columns), points)


def test_lidar_demo_frames(shared_data):
    kitti = shared_data / "lidar_demo" / "kitti" / "000008.bin"
    nuscenes = next((shared_data / "lidar_demo" / "nuscenes").glob("*.pcd.bin"), None)
    if not kitti.is_file() or nuscenes is None:
        pytest.skip("lidar_demo not in the shared data")
    points = read_points(kitti)
    assert points.shape == (17238, 4)
    torch.testing.assert_close(points, read_velodyne(kitti))
    sweep = read_points(nuscenes, num_features=5)
    assert sweep.shape == (34688, 5)
    # Rings of a 32-beam sensor.
    assert set(sweep[:, 4].unique().long().tolist()) <= set(range(32))


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_points(tmp_path / "missing.pcd")
    (tmp_path / "cloud.xyz").write_text("0 0 0\n")
    with pytest.raises(ValueError, match="unknown point-cloud suffix"):
        read_points(tmp_path / "cloud.xyz")
    np.zeros(5, dtype=np.float32).tofile(tmp_path / "odd.bin")
    with pytest.raises(ValueError, match="whole number of rows of 4"):
        read_points(tmp_path / "odd.bin")
    write_points(tmp_path / "nan.pcd", torch.tensor([[0.0, float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="row 0 holds NaN"):
        read_points(tmp_path / "nan.pcd")
    with pytest.raises(ValueError, match="points must be a tensor"):
        write_points(tmp_path / "x.pcd", torch.zeros(3, 2))
    with pytest.raises(ValueError, match="intensity only"):
        write_points(tmp_path / "x.ply", torch.zeros(3, 5))
    write_points(tmp_path / "empty.bin", torch.zeros(0, 4))
    assert read_points(tmp_path / "empty.bin").shape == (0, 4)
