import math
import os
from collections import Counter

import numpy as np
import pytest
import torch

from pointkd.datasets import SimLidar, SimLidarConfig, SimObject, SimScene, load_kitti_frame, simlidar_root
from pointkd.datasets.kitti import camera_fov_mask, lidar_box_corners, points_in_boxes, read_labels
from pointkd.datasets.simlidar import Mesh, ground_mesh, simlidar_key

GROUND_Z = -1.73


@pytest.fixture(scope="module")
def sim():
    return SimLidar(seed=0, num_threads=1)


@pytest.fixture(scope="module")
def scans(sim):
    return [sim.simulate(index) for index in range(6)]


def wrap(angle):
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def assert_frames_equal(a, b):
    assert a.frame_id == b.frame_id
    assert torch.equal(a.points, b.points)
    assert torch.equal(a.boxes, b.boxes)
    assert a.objects == b.objects


# -- config ------------------------------------------------------------------


def test_default_beams_and_azimuths():
    config = SimLidarConfig()
    elevations = config.elevations()
    assert elevations.shape == (64,) and elevations[0] == 2.0 and elevations[-1] == pytest.approx(-24.8)
    steps = -np.diff(elevations)
    assert (steps > 0).all()
    # HDL-64E-like: about 1/3 degree apart in the upper block, 1/2 degree in the lower one.
    assert steps[:31] == pytest.approx(1 / 3, abs=0.01) and steps[32:] == pytest.approx(0.515, abs=0.01)
    azimuths = config.azimuths()
    assert len(azimuths) == 501 and azimuths[0] == -45 and azimuths[-1] == pytest.approx(45)
    full = SimLidarConfig(azimuth_range=(-180, 180), azimuth_step=0.2).azimuths()
    assert len(full) == 1800 and full[-1] == pytest.approx(179.8)  # no ray twice
    custom = SimLidarConfig(num_beams=3, beam_elevations=[1, -2, -5.5])
    assert custom.elevations().tolist() == [1.0, -2.0, -5.5] and custom.beam_elevations == (1.0, -2.0, -5.5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_beams", 0),
        ("beam_elevations", (1.0, -2.0)),
        ("beam_elevations", (95.0,) * 64),
        ("elevation_range", (-30.0, 95.0)),
        ("azimuth_step", 0.0),
        ("azimuth_range", (10.0, -10.0)),
        ("azimuth_range", (-190.0, 10.0)),
        ("max_range", -1.0),
        ("range_noise", -0.01),
        ("dropout", 1.0),
        ("intensity_noise", math.nan),
        ("sensor_height", 0.0),
        ("x_range", (5.0, 5.0)),
        ("y_range", (1.0,)),
        ("num_cars", (3, 1)),
        ("num_pedestrians", (-1, 2)),
        ("num_poles", (1.5, 2)),
        ("car_size", (0.0, 1.6, 1.5)),
        ("pedestrian_size_std", (0.1, 0.06)),
        ("cyclist_size_std", (1.0, 0.05, 0.08)),
        ("min_points", -1),
        ("occlusion_thresholds", (0.7, 0.2)),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SimLidarConfig(**{field: value})


def test_bad_argument_types():
    with pytest.raises(TypeError, match="num_beams"):
        SimLidarConfig(num_beams="64")
    with pytest.raises(TypeError, match="max_range"):
        SimLidarConfig(max_range=None)
    with pytest.raises(TypeError, match="config"):
        SimLidar(config={"num_beams": 32})
    with pytest.raises(ValueError, match="seed"):
        SimLidar(seed=-1)
    with pytest.raises(ValueError, match="index"):
        SimLidar().frame(-3)


# -- determinism ---------------------------------------------------------------


def test_frames_depend_only_on_seed_and_index(sim, scans):
    other = SimLidar(seed=0)
    # Another instance, other threads, another order: the same frames.
    assert_frames_equal(other.frame(4), scans[4].frame)
    assert_frames_equal(other.frame(1), scans[1].frame)
    assert scans[1].frame.frame_id == "000001"
    different_seed = SimLidar(seed=1).frame(1)
    assert different_seed.points.shape != scans[1].frame.points.shape or not torch.equal(
        different_seed.points, scans[1].frame.points
    )
    assert not torch.equal(scans[0].frame.boxes[:1], scans[1].frame.boxes[:1])


# -- points ------------------------------------------------------------------


def test_points_are_valid(sim, scans):
    for scan in scans:
        points = scan.frame.points
        assert points.dtype == torch.float32 and points.dim() == 2 and points.shape[1] == 4
        assert 5000 < len(points) < 60000
        assert torch.isfinite(points).all()
        assert (points[:, :3].norm(dim=1) <= sim.config.max_range).all()
        assert (points[:, 3] >= 0).all() and (points[:, 3] <= 1).all() and points[:, 3].std() > 0.02
        # Cropped to camera 2's field of view, as load_kitti_frame does.
        assert camera_fov_mask(points, scan.frame.calib, scan.frame.image_size).all()
        # The ground is at -sensor_height: the lowest points lie on it (to the range noise).
        assert float(points[:, 2].min()) == pytest.approx(GROUND_Z, abs=0.1)
    full = sim.frame(0, crop_to_fov=False)
    assert len(full.points) > len(scans[0].frame.points)
    assert torch.equal(full.points[camera_fov_mask(full.points, full.calib, full.image_size)], scans[0].frame.points)


def test_beam_elevations_and_azimuths_match_the_config():
    config = SimLidarConfig(range_noise=0.0, dropout=0.0, azimuth_range=(-180, 180), azimuth_step=0.5)
    sim = SimLidar(config, seed=3)
    points = sim.frame(0, crop_to_fov=False).points.double()
    assert (points[:, 0] < -5).any()  # a full turn sees behind the sensor
    elevation = torch.rad2deg(torch.atan2(points[:, 2], points[:, :2].norm(dim=1)))
    beams = torch.from_numpy(config.elevations())
    distance = (elevation[:, None] - beams[None, :]).abs()
    assert float(distance.min(dim=1).values.max()) < 0.01
    # Every beam that reaches the ground within range returns points.
    reaching = beams < -math.degrees(math.atan2(config.sensor_height, config.max_range)) - 0.1
    hit_beams = torch.unique(distance.argmin(dim=1))
    assert set(torch.nonzero(reaching).flatten().tolist()) <= set(hit_beams.tolist())
    azimuth = torch.rad2deg(torch.atan2(points[:, 1], points[:, 0]))
    steps = (azimuth - config.azimuth_range[0]) / config.azimuth_step
    assert float((steps - steps.round()).abs().max()) < 0.01


def test_noise_and_dropout():
    quiet = SimLidar(SimLidarConfig(range_noise=0.0, dropout=0.0), seed=5).frame(0)
    noisy = SimLidar(SimLidarConfig(range_noise=0.02, dropout=0.3), seed=5).frame(0)
    assert len(noisy.points) == pytest.approx(0.7 * len(quiet.points), rel=0.05)
    # The scene is the same; only the returns change.
    assert torch.equal(quiet.boxes, noisy.boxes)


# -- boxes and labels ----------------------------------------------------------


def test_objects_points_lie_in_their_boxes(sim, scans):
    config = sim.config
    margin = 3 * config.range_noise + 1e-3
    for scan in scans:
        frame = scan.frame
        assert len(frame.objects) == len(frame.boxes) == len(scan.num_points) > 0
        dont_care = [obj.type == "DontCare" for obj in frame.objects]
        assert dont_care == sorted(dont_care)  # DontCare last, as in KITTI
        for index, (obj, box) in enumerate(zip(frame.objects, frame.boxes)):
            own = frame.points[scan.point_object == index]
            assert len(own) == int(scan.num_points[index])
            if obj.type == "DontCare":
                assert len(own) < config.min_points
                continue
            assert len(own) >= config.min_points
            grown = box.clone()
            grown[3:6] += 2 * margin
            assert points_in_boxes(own, grown[None]).all(), obj
            if obj.occlusion == 0 and len(own) >= 100:
                # Tight: the points of a well-seen object reach close to the box's top.
                assert float(own[:, 2].max()) > float(box[2] + box[5] / 2) - 0.3
        # Bottom on the ground, and the labels carry the same box.
        torch.testing.assert_close(frame.boxes[:, 2] - frame.boxes[:, 5] / 2, torch.full((len(frame.boxes),), GROUND_Z))
        assert ((frame.boxes[:, 6] >= -math.pi) & (frame.boxes[:, 6] < math.pi)).all()


def test_boxes_are_tight_around_the_meshes(scans):
    for scan in scans:
        for obj in scan.scene.objects:
            box = obj.box
            cos, sin = math.cos(box[6]), math.sin(box[6])
            offset = obj.mesh.vertices - box[:3]
            local = np.stack(
                [offset[:, 0] * cos + offset[:, 1] * sin, -offset[:, 0] * sin + offset[:, 1] * cos, offset[:, 2]], 1
            )
            np.testing.assert_allclose(local.min(axis=0), -box[3:6] / 2, atol=1e-9)
            np.testing.assert_allclose(local.max(axis=0), box[3:6] / 2, atol=1e-9)


def test_sizes_lie_in_the_configured_ranges(sim):
    config = sim.config
    seen = Counter()
    for index in range(12):
        for obj in sim.sample_scene(index).objects:
            kind = obj.type.lower()
            mean, std = np.array(getattr(config, f"{kind}_size")), np.array(getattr(config, f"{kind}_size_std"))
            size = obj.box[3:6]
            assert (np.abs(size - mean) <= config.size_clip * std + 1e-9).all(), (obj.type, size)
            seen[obj.type] += 1
    assert set(seen) == {"Car", "Pedestrian", "Cyclist"}
    assert seen["Car"] >= 12 * 4 * 0.8


def _inside_footprint(points, box):
    cos, sin = math.cos(box[6]), math.sin(box[6])
    offset = points - box[None, :2]
    return (np.abs(offset[:, 0] * cos + offset[:, 1] * sin) <= box[3] / 2) & (
        np.abs(-offset[:, 0] * sin + offset[:, 1] * cos) <= box[4] / 2
    )


def test_no_two_boxes_overlap_in_birds_eye_view(sim):
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 21), np.linspace(-0.5, 0.5, 21)), -1).reshape(-1, 2)
    for index in range(10):
        boxes = np.stack([obj.box for obj in sim.sample_scene(index).objects])
        # Sample each footprint densely (corners included) and test it against every other footprint.
        corners = lidar_box_corners(torch.from_numpy(boxes))[:, :4, :2].numpy()
        for a in range(len(boxes)):
            cos, sin = math.cos(boxes[a, 6]), math.sin(boxes[a, 6])
            local = grid * boxes[a, 3:5]
            samples = boxes[a, :2] + np.stack(
                [local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos], 1
            )
            samples = np.concatenate([samples, corners[a]])
            for b in range(len(boxes)):
                if a != b:
                    assert not _inside_footprint(samples, boxes[b]).any(), (index, a, b)
        # And nothing stands on the sensor.
        assert not any(_inside_footprint(np.zeros((1, 2)), box).any() for box in boxes)


def test_headings_follow_the_road(sim):
    headings = np.array([obj.box[6] for i in range(15) for obj in sim.sample_scene(i).objects if obj.type == "Car"])
    along = np.minimum(np.abs(headings), math.pi - np.abs(headings)) < 0.2
    assert 0.6 < along.mean() < 0.95


# -- occlusion -----------------------------------------------------------------


def _car_behind_wall(wall_right_edge):
    car = SimObject.create("Car", (4.0, 1.6, 1.5), 15.0, 0.0, 0.0, GROUND_Z)
    clutter = [ground_mesh(GROUND_Z)]
    if wall_right_edge is not None:
        clutter.append(Mesh.box((10.0, -5.0, GROUND_Z), (10.3, wall_right_edge, GROUND_Z + 4.0), 0.4))
    return SimScene([car], clutter)


@pytest.mark.parametrize(("wall_edge", "level"), [(None, 0), (0.0, 1), (0.3, 2)])
def test_occlusion_levels(sim, wall_edge, level):
    scan = sim.scan(_car_behind_wall(wall_edge), rng=0)
    (car,) = scan.frame.objects
    assert car.type == "Car" and car.occlusion == level
    if wall_edge is None:
        assert float(scan.visible_fraction[0]) == 1.0 and int(scan.num_points[0]) > 500
    else:
        # The wall hides the car's right side: from y = edge at x = 10 to y = 1.5 edge at x = 15.
        blocked = (0.8 + 1.5 * wall_edge) / 1.6
        assert float(scan.visible_fraction[0]) == pytest.approx(1 - blocked, abs=0.08)
        points = scan.frame.points.double()
        scale = 10.0 / points[:, 0]
        crossing_wall = (
            (points[:, 0] > 10.4)
            & (points[:, 1] * scale > -5.0)
            & (points[:, 1] * scale < wall_edge - 0.01)
            & (points[:, 2] * scale < GROUND_Z + 3.99)
        )
        assert not crossing_wall.any()
        assert (points[:, 0] < 10.4).any() and int(scan.num_points[0]) > 20


def test_hidden_and_unseen_objects_are_not_labelled(sim):
    hidden = SimObject.create("Pedestrian", (0.8, 0.6, 1.75), 20.0, 0.0, 0.0, GROUND_Z)
    wall = Mesh.box((10.0, -5.0, GROUND_Z), (10.3, 5.0, GROUND_Z + 4.0), 0.4)
    scan = sim.scan(SimScene([hidden], [ground_mesh(GROUND_Z), wall]), rng=0)
    assert scan.frame.objects == [] and scan.frame.boxes.shape == (0, 7)
    assert (scan.point_object == -1).all()
    # Behind the sensor (scanned by a full turn, not seen by the camera): points but no label.
    turn = SimLidar(SimLidarConfig(azimuth_range=(-180, 180)))
    behind = SimObject.create("Car", (4.0, 1.6, 1.5), -12.0, 0.0, 0.0, GROUND_Z)
    scan = turn.scan(SimScene([behind], [ground_mesh(GROUND_Z)]), crop_to_fov=False)
    assert scan.frame.objects == [] and len(scan.frame.points) > 0
    assert int(points_in_boxes(scan.frame.points, torch.from_numpy(behind.box[None]).float()).sum()) > 100


def test_far_object_with_few_points_is_dont_care(sim):
    far = SimObject.create("Pedestrian", (0.6, 0.5, 1.6), 78.0, 0.0, 0.0, GROUND_Z)
    config = SimLidarConfig(min_points=1000)
    scan = SimLidar(config).scan(SimScene([far], [ground_mesh(GROUND_Z)]))
    (obj,) = scan.frame.objects
    assert obj.type == "DontCare" and 0 < int(scan.num_points[0]) < 1000
    torch.testing.assert_close(scan.frame.boxes[0], torch.from_numpy(far.box).float())


def test_difficulty_levels_are_all_present(sim):
    difficulty, occlusion = Counter(), Counter()
    for index in range(20):
        for obj in sim.frame(index).objects:
            if obj.type == "Car":
                difficulty[obj.difficulty] += 1
                occlusion[obj.occlusion] += 1
    cars = sum(difficulty.values())
    assert cars > 20 * 4
    for level in (0, 1, 2):
        assert difficulty[level] > 0.08 * cars, difficulty
        assert occlusion[level] > 0.05 * cars, occlusion


# -- writing -------------------------------------------------------------------


def test_write_kitti_round_trip_and_resume(tmp_path, sim):
    root = tmp_path / "sim"
    assert sim.write_kitti(root, 3, progress=False) == root
    training = root / "training"
    for index in range(3):
        expected = sim.frame(index)
        loaded = load_kitti_frame(root, f"{index:06d}")
        assert torch.equal(loaded.points, expected.points)  # FOV crop included
        assert loaded.image_size == (375, 1242)
        assert [o.type for o in loaded.objects] == [o.type for o in expected.objects]
        assert [o.occlusion for o in loaded.objects] == [o.occlusion for o in expected.objects]
        torch.testing.assert_close(loaded.boxes[:, :6], expected.boxes[:, :6], atol=0.01, rtol=0)
        torch.testing.assert_close(
            wrap(loaded.boxes[:, 6] - expected.boxes[:, 6]), torch.zeros(len(expected.boxes)), atol=0.006, rtol=0
        )
        full = load_kitti_frame(root, f"{index:06d}", crop_to_fov=False)
        assert torch.equal(full.points, sim.frame(index, crop_to_fov=False).points)
        assert (training / "image_2" / f"{index:06d}.png").stat().st_size < 2000
    assert (root / "ImageSets" / "train.txt").read_text() == "000000\n000001\n000002\n"
    assert (root / "ImageSets" / "val.txt").read_text() == ""
    # Resuming writes only the missing frames.
    written = {path: path.stat().st_mtime_ns for path in training.rglob("*.*")}
    os.remove(training / "label_2" / "000001.txt")  # an interrupted frame is written again
    sim.write_kitti(root, 6, progress=False)
    for path, mtime in written.items():
        if "000001" not in path.name and path.name != "simlidar.json":
            assert path.stat().st_mtime_ns == mtime, path
    assert read_labels(training / "label_2" / "000001.txt")
    assert sorted(p.stem for p in (training / "velodyne").iterdir()) == [f"{i:06d}" for i in range(6)]
    assert (root / "ImageSets" / "val.txt").read_text() == "000004\n"
    assert not [p for p in training.rglob(".*") if p.is_file() and p.name != "simlidar.json"]  # no temporaries
    # Another generator may not mix its frames in.
    with pytest.raises(ValueError, match="seed"):
        SimLidar(seed=1).write_kitti(root, 2, progress=False)
    SimLidar(seed=1).write_kitti(root, 1, progress=False, overwrite=True)
    assert not torch.equal(load_kitti_frame(root, "000000").points, sim.frame(0).points)


def test_write_kitti_splits_and_image_sets(tmp_path, sim):
    sim.write_kitti(tmp_path, 2, start=10, split="testing", progress=False)
    assert (tmp_path / "ImageSets" / "test.txt").read_text() == "000010\n000011\n"
    sim.write_kitti(tmp_path, 1, progress=False, image_sets={"mine": [0, 7]})
    assert (tmp_path / "ImageSets" / "mine.txt").read_text() == "000000\n000007\n"
    (tmp_path / "foreign" / "velodyne").mkdir(parents=True)
    (tmp_path / "foreign" / "velodyne" / "000000.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not written by SimLidar"):
        sim.write_kitti(tmp_path, 1, split="foreign", progress=False)
    with pytest.raises(ValueError, match="split"):
        sim.write_kitti(tmp_path, 1, split="../x", progress=False)
    with pytest.raises(ValueError, match="num_frames"):
        sim.write_kitti(tmp_path, -1, progress=False)


def test_simlidar_root_generates_once():
    from geokd.paths import cache_root

    config = SimLidarConfig(num_beams=16, azimuth_step=0.5)
    root = simlidar_root(2, seed=4, config=config, progress=False)
    assert root == cache_root() / "simlidar" / simlidar_key(config, 4)
    label = root / "training" / "label_2" / "000001.txt"
    mtime = label.stat().st_mtime_ns
    assert simlidar_root(2, seed=4, config=config, progress=False) == root and label.stat().st_mtime_ns == mtime
    assert simlidar_root(1, seed=5, config=config, progress=False) != root
    assert simlidar_key(config, 4) != simlidar_key(SimLidarConfig(num_beams=16, azimuth_step=0.4), 4)
    assert torch.equal(load_kitti_frame(root, "000001").points, SimLidar(config, seed=4).frame(1).points)
