import math

import numpy as np
import pytest
import torch

from pointkd.datasets.kitti import (
    Calibration,
    lidar_box_corners,
    load_kitti_frame,
    parse_label_line,
    points_in_boxes,
    read_labels,
    read_velodyne,
)


@pytest.fixture
def kitti_root(shared_data):
    root = shared_data / "kitti_sample"
    if not root.is_dir():
        pytest.skip("kitti_sample not in the shared data")
    return root


def test_frame_000000(kitti_root):
    frame = load_kitti_frame(kitti_root, "000000")
    assert frame.image_size == (370, 1224)
    (pedestrian,) = frame.objects
    assert pedestrian.type == "Pedestrian" and pedestrian.dimensions == (1.89, 0.48, 1.20)
    assert pedestrian.difficulty == 0  # 164.9 px tall, not occluded, not truncated
    # Projected 3D box corners cover the labelled 2D box (annotated separately,
    # tight around the person: a wrong transform would miss it entirely).
    corners = lidar_box_corners(frame.boxes.double())[0]
    pixels, depth = frame.calib.rect_to_image(frame.calib.lidar_to_rect(corners))
    assert (depth > 0).all()
    left, top, right, bottom = pedestrian.box2d
    p_left, p_top = float(pixels[:, 0].min()), float(pixels[:, 1].min())
    p_right, p_bottom = float(pixels[:, 0].max()), float(pixels[:, 1].max())
    inter = max(0.0, min(right, p_right) - max(left, p_left)) * max(0.0, min(bottom, p_bottom) - max(top, p_top))
    union = (right - left) * (bottom - top) + (p_right - p_left) * (p_bottom - p_top) - inter
    assert inter / union > 0.8, (pixels, pedestrian.box2d)
    # The LiDAR sees the pedestrian: points fall inside the box.
    assert int(points_in_boxes(frame.points, frame.boxes).sum()) > 20
    # The crop keeps only points that camera 2 sees.
    full = load_kitti_frame(kitti_root, "000000", crop_to_fov=False)
    assert full.points.shape[0] == 115384 and 0 < frame.points.shape[0] < full.points.shape[0] // 2
    pixels, depth = frame.calib.rect_to_image(frame.calib.lidar_to_rect(frame.points.double()))
    assert (depth > 0).all() and (pixels[:, 0] >= 0).all() and (pixels[:, 0] < 1224).all()


def test_transforms_round_trip_and_yaw(kitti_root):
    calib = Calibration.from_file(kitti_root / "training" / "calib" / "000003.txt")
    points = torch.randn(50, 3, dtype=torch.float64) * 10
    torch.testing.assert_close(calib.rect_to_lidar(calib.lidar_to_rect(points)), points)
    car = read_labels(kitti_root / "training" / "label_2" / "000003.txt")[0]
    assert car.rotation_y == 1.62 and car.alpha == 1.55
    frame = load_kitti_frame(kitti_root, "000003", crop_to_fov=False)
    box = frame.boxes[0]
    # yaw = -rotation_y - pi / 2 (OpenPCDet's convention).
    assert math.isclose(float(box[6]), -1.62 - math.pi / 2, abs_tol=1e-6)
    assert tuple(round(float(v), 2) for v in box[3:6]) == (4.15, 1.73, 1.57)
    # Car centre in front of the sensor, about 13 m ahead (camera z = 13.22).
    assert 12.5 < float(box[0]) < 14.0


def test_frames_without_image_need_no_crop(kitti_root):
    frame = load_kitti_frame(kitti_root, "000002", crop_to_fov=False)
    assert frame.image_size is None and frame.boxes.shape[1] == 7
    with pytest.raises(FileNotFoundError, match="field of view"):
        load_kitti_frame(kitti_root, "000002")


def test_difficulty_levels():
    line = "Car 0.00 0 0 0 100 50 {bottom} 1.5 1.6 4 0 1.6 20 0"
    assert parse_label_line(line.format(bottom=150)).difficulty == 0
    assert parse_label_line(line.format(bottom=130)).difficulty == 1  # 30 px tall
    hard = parse_label_line("Car 0.45 2 0 0 100 50 200 1.5 1.6 4 0 1.6 20 0")
    assert hard.difficulty == 2
    assert parse_label_line("Car 0.9 3 0 0 100 50 200 1.5 1.6 4 0 1.6 20 0").difficulty == -1
    assert parse_label_line("Car 0 0 0 0 100 50 200 1.5 1.6 4 0 1.6 20 0 0.75").score == 0.75


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="expected 15 values"):
        parse_label_line("Car 0 0", "x.txt:1")
    with pytest.raises(ValueError, match="x.txt:3"):
        parse_label_line("Car a 0 0 0 100 50 200 1.5 1.6 4 0 1.6 20 0", "x.txt:3")
    with pytest.raises(ValueError, match="non-finite"):
        parse_label_line("Car nan 0 0 0 100 50 200 1.5 1.6 4 0 1.6 20 0")
    (tmp_path / "calib.txt").write_text(
        "P2: 1 2 3\nR0_rect: 1 0 0 0 1 0 0 0 1\nTr_velo_to_cam: 0 0 0 0 0 0 0 0 0 0 0 0\n"
    )
    with pytest.raises(ValueError, match="P2 must have 12 values"):
        Calibration.from_file(tmp_path / "calib.txt")
    (tmp_path / "calib.txt").write_text("R0_rect: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(ValueError, match="missing P2, Tr_velo_to_cam"):
        Calibration.from_file(tmp_path / "calib.txt")
    np.zeros(6, dtype=np.float32).tofile(tmp_path / "bad.bin")
    with pytest.raises(ValueError, match="not a whole number"):
        read_velodyne(tmp_path / "bad.bin")
    np.array([[0, 0, np.nan, 0], [1, 1, 1, 1]], dtype=np.float32).tofile(tmp_path / "nan.bin")
    with pytest.raises(ValueError, match="row 0 holds NaN"):
        read_velodyne(tmp_path / "nan.bin")
    with pytest.raises(FileNotFoundError):
        read_velodyne(tmp_path / "missing.bin")
    (tmp_path / "empty.txt").write_text("\n")
    assert read_labels(tmp_path / "empty.txt") == []
    np.zeros((0, 4), dtype=np.float32).tofile(tmp_path / "empty.bin")
    assert read_velodyne(tmp_path / "empty.bin").shape == (0, 4)
