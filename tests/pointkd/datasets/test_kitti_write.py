import math

import pytest
import torch

from pointkd.datasets.kitti import (
    KITTI_IMAGE_SIZE,
    Calibration,
    KittiObject,
    format_label_line,
    image_boxes,
    kitti_default_calibration,
    lidar_boxes_to_objects,
    load_kitti_frame,
    objects_to_lidar_boxes,
    points_in_boxes,
    read_labels,
    write_calibration,
    write_labels,
)


@pytest.fixture
def kitti_root(shared_data):
    root = shared_data / "kitti_sample"
    if not root.is_dir():
        pytest.skip("kitti_sample not in the shared data")
    return root


def wrap(angle):
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def random_boxes(count, generator):
    boxes = torch.empty(count, 7, dtype=torch.float64)
    boxes[:, 0] = torch.rand(count, generator=generator, dtype=torch.float64) * 45 + 5
    boxes[:, 1] = torch.rand(count, generator=generator, dtype=torch.float64) * 30 - 15
    boxes[:, 3:6] = torch.rand(count, 3, generator=generator, dtype=torch.float64) * 3 + 0.5
    boxes[:, 2] = -1.73 + boxes[:, 5] / 2
    boxes[:, 6] = torch.rand(count, generator=generator, dtype=torch.float64) * 20 - 10
    return boxes


def box_iou(a, b):
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_lidar_boxes_to_objects_inverts_objects_to_lidar_boxes():
    calib = kitti_default_calibration()
    boxes = random_boxes(64, torch.Generator().manual_seed(0))
    objects = lidar_boxes_to_objects(boxes, ["Car"] * 64, calib, KITTI_IMAGE_SIZE)
    back = objects_to_lidar_boxes(objects, calib).double()
    torch.testing.assert_close(back[:, :6], boxes[:, :6], atol=1e-5, rtol=0)
    torch.testing.assert_close(wrap(back[:, 6] - boxes[:, 6]), torch.zeros(64, dtype=torch.float64), atol=1e-5, rtol=0)
    for obj, box in zip(objects, boxes):
        assert -math.pi <= obj.rotation_y < math.pi and -math.pi <= obj.alpha < math.pi
        assert obj.dimensions == pytest.approx((float(box[5]), float(box[4]), float(box[3])))
        # KITTI's observation angle: rotation_y minus the ray angle to the object.
        x, _, z = obj.location
        assert float(
            wrap(torch.tensor(obj.alpha - obj.rotation_y + math.atan2(x, z), dtype=torch.float64))
        ) == pytest.approx(0, abs=1e-9)
        assert obj.occlusion == 0 and obj.score is None
    # Given values are passed through.
    objects = lidar_boxes_to_objects(
        boxes[:2],
        ["Car", "Cyclist"],
        calib,
        KITTI_IMAGE_SIZE,
        torch.tensor([0.25, 0.5]),
        torch.tensor([1, 2]),
        [0.9, 0.1],
    )
    assert [(o.type, o.truncation, o.occlusion, o.score) for o in objects] == [
        ("Car", 0.25, 1, 0.9),
        ("Cyclist", 0.5, 2, 0.1),
    ]


def test_lidar_boxes_to_objects_checks_shapes():
    calib = kitti_default_calibration()
    assert lidar_boxes_to_objects(torch.zeros(0, 7), [], calib, KITTI_IMAGE_SIZE) == []
    with pytest.raises(ValueError, match="boxes must have shape"):
        lidar_boxes_to_objects(torch.zeros(3, 6), ["Car"] * 3, calib, KITTI_IMAGE_SIZE)
    with pytest.raises(ValueError, match="types"):
        lidar_boxes_to_objects(torch.zeros(3, 7), ["Car"] * 2, calib, KITTI_IMAGE_SIZE)
    with pytest.raises(ValueError, match="scores"):
        lidar_boxes_to_objects(torch.zeros(1, 7), ["Car"], calib, KITTI_IMAGE_SIZE, scores=[0.1, 0.2])


def test_image_boxes_truncation_and_boxes_behind_the_camera():
    calib = kitti_default_calibration()
    height, width = KITTI_IMAGE_SIZE
    boxes = torch.tensor(
        [
            [20.0, 0.0, -0.95, 4.0, 1.6, 1.5, 0.0],  # ahead, inside the image
            [-15.0, 0.0, -0.95, 4.0, 1.6, 1.5, 0.0],  # behind the sensor
            [12.0, -10.5, -0.95, 4.0, 1.6, 1.5, 0.0],  # across the image's right edge
            [1.0, -2.5, -0.95, 4.0, 1.6, 1.5, 0.0],  # beside the camera, partly behind it
            [10.0, -40.0, -0.95, 4.0, 1.6, 1.5, 0.0],  # in front, wholly right of the image
        ],
        dtype=torch.float64,
    )
    box2d, truncation = image_boxes(boxes, calib, KITTI_IMAGE_SIZE)
    assert torch.isfinite(box2d).all()
    assert truncation[0] == 0 and 300 < box2d[0, 0] < box2d[0, 2] < 900
    assert box2d[1].tolist() == [0, 0, 0, 0] and truncation[1] == 1
    assert 0.1 < truncation[2] < 0.9 and box2d[2, 2] == width - 1
    assert 0.5 < truncation[3] < 1 and box2d[3, 2] == width - 1 and box2d[3, 3] == height - 1
    assert truncation[4] == 1 and box2d[4, 0] == box2d[4, 2] == width - 1
    # The box of a visible object contains its corners' projections (those in front of the camera).
    pixels, depth = calib.rect_to_image(calib.lidar_to_rect(_corners(boxes[2])))
    inside = pixels[(depth > 0) & (pixels[:, 0] < width - 1)]
    assert (inside[:, 0] >= box2d[2, 0] - 1e-6).all() and (inside[:, 1] >= box2d[2, 1] - 1e-6).all()


def _corners(box):
    from pointkd.datasets.kitti import lidar_box_corners

    return lidar_box_corners(box[None])[0]


def test_2d_boxes_match_labels_of_a_real_frame(kitti_root):
    # The sample has no image for this frame; its recording's images are 375 x 1242.
    frame = load_kitti_frame(kitti_root, "000003", crop_to_fov=False)
    height, width = KITTI_IMAGE_SIZE
    objects = lidar_boxes_to_objects(frame.boxes, [o.type for o in frame.objects], frame.calib, KITTI_IMAGE_SIZE)
    car, labelled = objects[0], frame.objects[0]
    assert labelled.type == "Car" and labelled.occlusion == 0 and labelled.truncation == 0
    # The 2D box drawn by the annotators and the projection of the 3D box agree.
    assert box_iou(car.box2d, labelled.box2d) > 0.7, (car.box2d, labelled.box2d)
    assert car.truncation == 0
    assert car.location == pytest.approx(labelled.location, abs=1e-4)
    assert car.rotation_y == pytest.approx(labelled.rotation_y, abs=1e-4)
    assert car.alpha == pytest.approx(labelled.alpha, abs=0.02)
    # The LiDAR points in the 3D box project into the 2D box.
    points = frame.points[points_in_boxes(frame.points, frame.boxes[:1])[:, 0]]
    assert len(points) > 50
    pixels, depth = frame.calib.rect_to_image(frame.calib.lidar_to_rect(points.double()))
    left, top, right, bottom = car.box2d
    assert (depth > 0).all()
    assert ((pixels[:, 0] >= left) & (pixels[:, 0] <= right) & (pixels[:, 1] >= top) & (pixels[:, 1] <= bottom)).all()
    # Every box lies within the image (the DontCare placeholders, at -1000 m, are behind the camera).
    for obj in objects:
        left, top, right, bottom = obj.box2d
        assert 0 <= left <= right <= width - 1 and 0 <= top <= bottom <= height - 1


def test_write_labels_round_trip(tmp_path):
    objects = [
        KittiObject("Car", 0.123, 1, -1.5751, (10.0, 20.555, 300.25, 374.0), (1.5, 1.6, 3.9), (1.0, 1.7, 20.1), 1.6),
        KittiObject(
            "Pedestrian", 0.0, 0, 0.2, (1.0, 2.0, 3.0, 4.0), (1.7, 0.6, 0.8), (-3.0, 1.73, 9.0), -3.14159, 0.87654
        ),
        KittiObject("DontCare", 0.0, 2, 0.0, (5.0, 6.0, 7.0, 8.0), (1.5, 1.6, 3.9), (4.0, 1.7, 60.0), 0.0),
    ]
    path = tmp_path / "label_2" / "000000.txt"
    write_labels(path, objects)
    lines = path.read_text().splitlines()
    assert lines[0] == "Car 0.12 1 -1.58 10.00 20.55 300.25 374.00 1.50 1.60 3.90 1.00 1.70 20.10 1.60"
    assert lines[1].split()[-1] == "0.8765" and len(lines[1].split()) == 16
    back = read_labels(path)
    assert [o.type for o in back] == ["Car", "Pedestrian", "DontCare"]
    for written, read in zip(objects, back):
        assert read.occlusion == written.occlusion
        for field in ("truncation", "alpha", "rotation_y"):
            assert getattr(read, field) == pytest.approx(getattr(written, field), abs=0.005 + 1e-9)
        for field in ("box2d", "dimensions", "location"):
            assert getattr(read, field) == pytest.approx(getattr(written, field), abs=0.005 + 1e-9)
    assert back[1].score == pytest.approx(0.8765) and back[0].score is None
    assert sorted(p.name for p in path.parent.iterdir()) == ["000000.txt"]  # no temporary file left
    write_labels(path, [])
    assert path.read_text() == "" and read_labels(path) == []


def test_write_labels_reproduces_kitti_lines(kitti_root, tmp_path):
    source = kitti_root / "training" / "label_2" / "000003.txt"
    objects = [o for o in read_labels(source) if o.type != "DontCare"]
    write_labels(tmp_path / "000003.txt", objects)
    original = [line for line in source.read_text().splitlines() if line and not line.startswith("DontCare")]
    assert (tmp_path / "000003.txt").read_text().splitlines() == original


def test_write_labels_rejects_bad_objects(tmp_path):
    good = KittiObject("Car", 0.0, 0, 0.0, (0.0, 0.0, 1.0, 1.0), (1.5, 1.6, 3.9), (1.0, 1.7, 20.0), 0.0)
    with pytest.raises(ValueError, match="type"):
        format_label_line(KittiObject("Big car", *list(good.__dict__.values())[1:]))
    with pytest.raises(ValueError, match="non-finite"):
        format_label_line(KittiObject("Car", 0.0, 0, math.nan, good.box2d, good.dimensions, good.location, 0.0))
    with pytest.raises(ValueError, match="non-finite"):
        write_labels(
            tmp_path / "x.txt",
            [KittiObject("Car", 0.0, 0, 0.0, good.box2d, good.dimensions, good.location, 0.0, math.inf)],
        )
    assert not (tmp_path / "x.txt").exists()


def test_write_calibration_round_trip(tmp_path):
    calib = kitti_default_calibration()
    path = tmp_path / "calib" / "000000.txt"
    write_calibration(path, calib)
    keys = [line.split(":")[0] for line in path.read_text().splitlines()]
    assert keys == ["P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam", "Tr_imu_to_velo"]
    back = Calibration.from_file(path)
    # Exactly: a frame's FOV crop must not change when its calibration is read back.
    assert torch.equal(back.P2, calib.P2) and torch.equal(back.R0_rect, calib.R0_rect)
    assert torch.equal(back.Tr_velo_to_cam, calib.Tr_velo_to_cam)
    # Any calibration to the 13 digits written.
    generator = torch.Generator().manual_seed(1)
    random = Calibration(
        torch.randn(3, 4, generator=generator, dtype=torch.float64) * 500,
        torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))[0],
        torch.randn(3, 4, generator=generator, dtype=torch.float64),
    )
    write_calibration(path, random)
    back = Calibration.from_file(path)
    for name in ("P2", "R0_rect", "Tr_velo_to_cam"):
        torch.testing.assert_close(getattr(back, name), getattr(random, name), rtol=1e-12, atol=0)


def test_default_calibration_is_a_kitti_one(kitti_root, tmp_path):
    # Frame 000001 of the sample was recorded on 2011-09-26.
    real = Calibration.from_file(kitti_root / "training" / "calib" / "000001.txt")
    calib = kitti_default_calibration()
    for name in ("P2", "R0_rect", "Tr_velo_to_cam"):
        assert torch.equal(getattr(calib, name), getattr(real, name)), name
    # LiDAR x forward is camera z forward; camera 0 is ~0.27 m ahead of the LiDAR.
    origin_in_lidar = calib.rect_to_lidar(torch.zeros(1, 3, dtype=torch.float64))[0]
    assert 0.2 < float(origin_in_lidar[0]) < 0.35 and abs(float(origin_in_lidar[1])) < 0.05
    ahead = calib.lidar_to_rect(torch.tensor([[10.0, 0.0, 0.0]], dtype=torch.float64))[0]
    assert float(ahead[2]) == pytest.approx(9.73, abs=0.05)
    # The extra lines are close to the real file's (nominal rig).
    write_calibration(tmp_path / "calib.txt", real)
    written = _lines(tmp_path / "calib.txt")
    original = _lines(kitti_root / "training" / "calib" / "000001.txt")
    for key in ("P0", "P1", "P3"):
        torch.testing.assert_close(written[key], original[key], atol=3.0, rtol=0.01)


def _lines(path):
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, _, values = line.partition(":")
            entries[key] = torch.tensor([float(v) for v in values.split()], dtype=torch.float64)
    return entries
