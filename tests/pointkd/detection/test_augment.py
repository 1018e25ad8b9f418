import math

import pytest
import torch

from pointkd.datasets.kitti import CLASSES, lidar_box_corners, load_kitti_frame, points_in_boxes
from pointkd.detection.augment import (
    AugmentConfig,
    GroundTruthSampler,
    filter_boxes_in_range,
    filter_points_in_range,
    global_rotation,
    global_scaling,
    random_flip_x,
)

SIZES = {"Car": (3.9, 1.6, 1.56), "Pedestrian": (0.8, 0.6, 1.73), "Cyclist": (1.76, 0.6, 1.73)}
# Corner k of a flipped box is corner FLIP_CORNERS[k] of the original, mirrored (left and right swap).
FLIP_CORNERS = [1, 0, 3, 2, 5, 4, 7, 6]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_scene(num_points: int = 2000, num_boxes: int = 6, seed: int = 0, dtype=torch.float32):
    """Random points (N, 4) and boxes (M, 7) spread over the same area, headings in [-pi, pi)."""
    rng = generator(seed)
    points = torch.rand(num_points, 4, generator=rng, dtype=dtype) * torch.tensor([40, 40, 4, 1], dtype=dtype)
    points[:, :3] -= torch.tensor([20, 20, 2], dtype=dtype)
    centres = torch.rand(num_boxes, 3, generator=rng, dtype=dtype) * torch.tensor([30, 30, 2], dtype=dtype)
    centres -= torch.tensor([15, 15, 1], dtype=dtype)
    sizes = 1 + 5 * torch.rand(num_boxes, 3, generator=rng, dtype=dtype)
    headings = (torch.rand(num_boxes, 1, generator=rng, dtype=dtype) * 2 - 1) * math.pi
    return points, torch.cat([centres, sizes, headings], dim=1)


def box_points(box: torch.Tensor, count: int, rng: torch.Generator) -> torch.Tensor:
    """``count`` points (count, 4) well inside ``box`` (within 80% of each half-size)."""
    local = (torch.rand(count, 3, generator=rng) * 2 - 1) * 0.4 * box[3:6]
    cos, sin = math.cos(float(box[6])), math.sin(float(box[6]))
    xyz = torch.stack([local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos, local[:, 2]], 1)
    return torch.cat([xyz + box[:3], torch.rand(count, 1, generator=rng)], dim=1)


def make_frame(objects: list[tuple[str, float, float]], seed: int, background: int = 300):
    """A scan with the given (class, x, y) objects, 20-40 points each, and background points off the boxes."""
    rng = generator(seed)
    boxes = torch.tensor(
        [
            [x, y, -1.0, *SIZES[name], float(torch.rand((), generator=rng)) * 2 * math.pi - math.pi]
            for name, x, y in objects
        ]
    ).view(-1, 7)
    clouds = [box_points(box, int(torch.randint(20, 41, (), generator=rng)), rng) for box in boxes]
    ground = torch.rand(background, 4, generator=rng) * torch.tensor([70.0, 80.0, 0.1, 1.0])
    ground[:, :3] += torch.tensor([0.0, -40.0, -3.0])  # below every box
    return torch.cat(clouds + [ground]), boxes, [name for name, _, _ in objects]


def grid_objects(name: str, cells: list[tuple[int, int]]) -> list[tuple[str, float, float]]:
    """Objects at cells of an 8 m grid: distinct cells never overlap in BEV."""
    return [(name, 4.0 + 8.0 * i, -36.0 + 8.0 * j) for i, j in cells]


def scene_and_database_frames():
    """Frame 0 is the scene; frames 1-3 hold objects at cells of their own (never colliding with the scene)."""
    scene = make_frame(grid_objects("Car", [(0, 0), (0, 1)]) + grid_objects("Pedestrian", [(0, 2)]), seed=0)
    frames = [
        make_frame(grid_objects("Car", [(1, j) for j in range(8)]) + grid_objects("Pedestrian", [(4, 0), (4, 1)]), 1),
        make_frame(grid_objects("Car", [(2, j) for j in range(8)]) + grid_objects("Cyclist", [(4, 2), (4, 3)]), 2),
        make_frame(grid_objects("Car", [(3, j) for j in range(8)]) + grid_objects("Pedestrian", [(4, 4)]), 3),
    ]
    return scene, frames


# ---------------------------------------------------------------- flip, rotation, scaling


def test_flip_twice_is_identity_and_mirrors():
    points, boxes = random_scene()
    flipped_points, flipped_boxes = random_flip_x(points, boxes, generator(), probability=1.0)
    torch.testing.assert_close(flipped_points[:, 1], -points[:, 1])
    torch.testing.assert_close(flipped_boxes[:, 6], -boxes[:, 6])
    back_points, back_boxes = random_flip_x(flipped_points, flipped_boxes, generator(), probability=1.0)
    torch.testing.assert_close(back_points, points)
    torch.testing.assert_close(back_boxes, boxes)
    kept_points, kept_boxes = random_flip_x(points, boxes, generator(), probability=0.0)
    assert torch.equal(kept_points, points) and torch.equal(kept_boxes, boxes)


def test_flip_probability_is_respected():
    points, boxes = random_scene(num_points=10, num_boxes=1)
    rng = generator(5)
    flips = sum(bool(random_flip_x(points, boxes, rng, 0.3)[0][0, 1] != points[0, 1]) for _ in range(2000))
    assert 0.25 < flips / 2000 < 0.35


@pytest.mark.parametrize(
    "transform",
    [
        lambda p, b, g: global_rotation(p, b, g),
        lambda p, b, g: global_rotation(p, b, g, (math.pi - 0.1, math.pi)),
        lambda p, b, g: global_scaling(p, b, g, (0.5, 2.0)),
        lambda p, b, g: random_flip_x(p, b, g, 1.0),
    ],
    ids=["rotation", "half-turn", "scaling", "flip"],
)
def test_point_in_box_membership_is_preserved(transform):
    points, boxes = random_scene(num_points=20000, dtype=torch.float64)
    inside = points_in_boxes(points, boxes)
    assert inside.any(dim=0).all(), "every box should hold points for the test to mean anything"
    new_points, new_boxes = transform(points, boxes, generator(3))
    assert torch.equal(points_in_boxes(new_points, new_boxes), inside)
    assert torch.equal(new_points[:, 3:], points[:, 3:])  # features untouched


@pytest.mark.parametrize("name", ["rotation", "scaling", "flip"])
def test_corners_transform_like_points(name):
    _, boxes = random_scene(num_boxes=10, dtype=torch.float64)
    corners = lidar_box_corners(boxes)
    transform = {
        "rotation": lambda p, b: global_rotation(p, b, generator(7)),
        "scaling": lambda p, b: global_scaling(p, b, generator(7)),
        "flip": lambda p, b: random_flip_x(p, b, generator(7), 1.0),
    }[name]
    moved_corners, moved_boxes = transform(corners.reshape(-1, 3), boxes)
    moved_corners = moved_corners.view(-1, 8, 3)
    if name == "flip":
        moved_corners = moved_corners[:, FLIP_CORNERS]
    torch.testing.assert_close(lidar_box_corners(moved_boxes), moved_corners)


def test_heading_is_wrapped():
    _, boxes = random_scene(num_boxes=50)
    boxes[:5, 6] = torch.tensor([-math.pi, math.pi - 1e-3, 3.0, -3.0, 0.0])
    for angle in (3.0, -3.0, math.pi / 4, math.pi):
        _, rotated = global_rotation(torch.zeros(0, 4), boxes, generator(), (angle, angle))
        assert ((rotated[:, 6] >= -math.pi) & (rotated[:, 6] < math.pi)).all()
        difference = (rotated[:, 6].double() - boxes[:, 6].double() - angle) / (2 * math.pi)
        torch.testing.assert_close(difference, difference.round(), atol=1e-6, rtol=0)
    _, flipped = random_flip_x(torch.zeros(0, 4), boxes, generator(), 1.0)
    assert ((flipped[:, 6] >= -math.pi) & (flipped[:, 6] < math.pi)).all()


def test_velocity_columns():
    boxes = torch.tensor([[1.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.0, 1.0, 0.5]])
    _, flipped = random_flip_x(torch.zeros(0, 4), boxes, generator(), 1.0)
    assert flipped[0, 7:].tolist() == [1.0, -0.5]
    _, rotated = global_rotation(torch.zeros(0, 4), boxes, generator(), (math.pi / 2, math.pi / 2))
    torch.testing.assert_close(rotated[0, 7:], torch.tensor([-0.5, 1.0]))
    _, scaled = global_scaling(torch.zeros(0, 4), boxes, generator(), (2.0, 2.0))
    assert scaled[0, 7:].tolist() == [2.0, 1.0]


def test_deterministic_and_inputs_untouched():
    points, boxes = random_scene()
    points_copy, boxes_copy = points.clone(), boxes.clone()
    for transform in (random_flip_x, global_rotation, global_scaling):
        first = transform(points, boxes, generator(42))
        second = transform(points, boxes, generator(42))
        assert all(torch.equal(a, b) for a, b in zip(first, second))
        assert first[0].data_ptr() != points.data_ptr() and first[1].data_ptr() != boxes.data_ptr()
    different = [global_rotation(points, boxes, generator(seed))[1] for seed in range(3)]
    assert not torch.equal(different[0], different[1])
    assert torch.equal(points, points_copy) and torch.equal(boxes, boxes_copy)


def test_bad_arguments():
    points, boxes = random_scene(num_points=5, num_boxes=2)
    with pytest.raises(ValueError, match="probability"):
        random_flip_x(points, boxes, generator(), 1.5)
    with pytest.raises(ValueError, match="angle_range"):
        global_rotation(points, boxes, generator(), (1.0, 0.0))
    with pytest.raises(ValueError, match="scale_range"):
        global_scaling(points, boxes, generator(), (0.0, 1.0))
    with pytest.raises(ValueError, match="boxes must have shape"):
        global_scaling(points, boxes[:, :6], generator())
    with pytest.raises(ValueError, match="points must have shape"):
        global_scaling(points[:, :2], boxes, generator())
    with pytest.raises(TypeError, match="generator must be"):
        global_scaling(points, boxes, 0)


def test_range_filters():
    point_cloud_range = (0.0, -10.0, -3.0, 20.0, 10.0, 1.0)
    points = torch.tensor(
        [[0.0, -10.0, -3.0, 1.0], [20.0, 0.0, 0.0, 2.0], [5.0, 9.99, 0.99, 3.0], [5.0, 0.0, 1.0, 4.0], [-1.0, 0, 0, 5]]
    )
    assert filter_points_in_range(points, point_cloud_range)[:, 3].tolist() == [1.0, 3.0]
    boxes = torch.tensor([[0.0, -10.0, 50.0, 1, 1, 1, 0], [20.0, 0, 0, 1, 1, 1, 0], [19.9, 9.9, 0, 9, 9, 9, 0]])
    kept, names = filter_boxes_in_range(boxes, ["a", "b", "c"], point_cloud_range)
    assert names == ["a", "c"] and torch.equal(kept, boxes[[0, 2]])
    with pytest.raises(ValueError, match="names must hold one class name per box"):
        filter_boxes_in_range(boxes, ["a"], point_cloud_range)
    with pytest.raises(ValueError, match="point_cloud_range"):
        filter_points_in_range(points, (0, 0, 0, 1, 1))


# ---------------------------------------------------------------- ground-truth sampling


def iou_bev(boxes_a, boxes_b):
    from pointkd.detection.iou import boxes_iou_bev

    return boxes_iou_bev(boxes_a, boxes_b)


def database_index(sampler: GroundTruthSampler, box: torch.Tensor) -> int:
    matches = (sampler.boxes == box).all(dim=1).nonzero().flatten().tolist()
    assert len(matches) == 1
    return matches[0]


def check_pasted(sampler, scene_points, scene_boxes, points, boxes, names, original_count):
    """Pasted boxes collide with nothing; the points inside each are exactly its database object's."""
    iou = iou_bev(boxes, boxes)
    iou.fill_diagonal_(0)
    assert (iou[original_count:] == 0).all() and (iou[:, original_count:] == 0).all()
    # Scene points outside the pasted boxes all survive.
    pasted_boxes = boxes[original_count:]
    outside = ~points_in_boxes(scene_points, pasted_boxes).any(dim=1)
    pasted_count = points.shape[0] - int(outside.sum())
    assert torch.equal(points[pasted_count:], scene_points[outside])
    inside = points_in_boxes(points, pasted_boxes)
    for column, box in enumerate(pasted_boxes):
        index = database_index(sampler, box)
        object_points, _, object_name = sampler.object(index)
        assert object_name == names[original_count + column]
        assert torch.equal(points[inside[:, column]], object_points)
    assert torch.equal(boxes[:original_count], scene_boxes)


def test_sampling_reaches_targets_without_collisions():
    (scene_points, scene_boxes, scene_names), frames = scene_and_database_frames()
    sampler = GroundTruthSampler.build(frames)
    assert sampler.class_counts() == {"Car": 24, "Pedestrian": 3, "Cyclist": 2}
    groups = {"Car": 15, "Pedestrian": 10, "Cyclist": 10}
    points, boxes, names = sampler.sample(scene_points, scene_boxes, scene_names, generator(0), groups)
    # 13 more cars; every database pedestrian and cyclist (fewer than the target).
    assert names.count("Car") == 15 and names.count("Pedestrian") == 4 and names.count("Cyclist") == 2
    assert names[:3] == scene_names
    check_pasted(sampler, scene_points, scene_boxes, points, boxes, names, original_count=3)
    # A class at or above its target gets nothing.
    _, _, unchanged = sampler.sample(scene_points, scene_boxes, scene_names, generator(0), {"Car": 2})
    assert unchanged == scene_names


def test_sampling_rejects_collisions():
    (scene_points, scene_boxes, scene_names), frames = scene_and_database_frames()
    # The scene's own objects (IoU 1 with the scene), and objects shifted 1 m off them or off
    # database cars (partial overlaps), must never be pasted.
    shifted = make_frame([("Car", x + 1.0, y) for _, x, y in grid_objects("Car", [(0, 0), (0, 1), (1, 0), (2, 3)])], 9)
    sampler = GroundTruthSampler.build([(scene_points, scene_boxes, scene_names)] + frames + [shifted])
    for seed in range(10):
        points, boxes, names = sampler.sample(scene_points, scene_boxes, scene_names, generator(seed), {"Car": 30})
        check_pasted(sampler, scene_points, scene_boxes, points, boxes, names, original_count=3)
        pasted_frames = sampler.frame_index[[database_index(sampler, box) for box in boxes[3:]]]
        assert not (pasted_frames == 0).any()
        assert len(names) > 3


def test_sampling_is_deterministic_and_leaves_inputs():
    (scene_points, scene_boxes, scene_names), frames = scene_and_database_frames()
    sampler = GroundTruthSampler.build(frames)
    copies = scene_points.clone(), scene_boxes.clone(), list(scene_names)
    first = sampler.sample(scene_points, scene_boxes, scene_names, generator(3), {"Car": 8})
    second = sampler.sample(scene_points, scene_boxes, scene_names, generator(3), {"Car": 8})
    other = sampler.sample(scene_points, scene_boxes, scene_names, generator(4), {"Car": 8})
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]) and first[2] == second[2]
    assert not torch.equal(first[1], other[1])
    assert torch.equal(scene_points, copies[0]) and torch.equal(scene_boxes, copies[1]) and scene_names == copies[2]


def test_sampling_removes_scene_points_in_pasted_boxes():
    (_, _, _), frames = scene_and_database_frames()
    sampler = GroundTruthSampler.build(frames[:1])
    # An empty scene whose only points lie where the database's first car is.
    box = sampler.boxes[0]
    scene_points = torch.cat([box_points(box, 50, generator(8)), torch.tensor([[60.0, 30.0, 0.0, 0.0]])])
    points, boxes, names = sampler.sample(scene_points, torch.zeros(0, 7), [], generator(0), {"Car": 100})
    assert names == ["Car"] * 8 and len(boxes) == 8
    assert torch.equal(points[-1], scene_points[-1])
    assert points.shape[0] == int(sampler.num_points[:8].sum()) + 1


def test_build_filters_and_crops():
    (scene_points, scene_boxes, scene_names), _ = scene_and_database_frames()
    difficulty = list(range(len(scene_names)))  # 0, 1, 2
    sampler = GroundTruthSampler.build([(scene_points, scene_boxes, scene_names, difficulty)])
    inside = points_in_boxes(scene_points, scene_boxes)
    assert sampler.num_points.tolist() == inside.sum(dim=0).tolist()
    for index in range(len(sampler)):
        object_points, _, _ = sampler.object(index)
        torch.testing.assert_close(object_points, scene_points[inside[:, index]])
        # Stored relative to the centre.
        offsets = sampler.object_points[sampler.point_offsets[index] : sampler.point_offsets[index + 1], :3]
        assert (offsets[:, :2].norm(dim=1) <= scene_boxes[index, 3:5].norm() / 2 + 1e-5).all()
        assert (offsets[:, 2].abs() <= scene_boxes[index, 5] / 2 + 1e-5).all()
    assert sampler.filter(exclude_difficulties=(1,)).names == ["Car", "Pedestrian"]
    assert sampler.filter(classes=("Pedestrian",)).names == ["Pedestrian"]
    fewest = int(sampler.num_points[:2].min())
    assert len(sampler.filter(min_points={"Car": fewest + 1000})) == 1
    filtered = sampler.filter(min_points={"Car": fewest})
    assert len(filtered) == 3 and torch.equal(filtered.object_points, sampler.object_points)
    assert GroundTruthSampler.build([(scene_points, scene_boxes, scene_names)], classes=("Car",)).names == ["Car"] * 2
    empty = GroundTruthSampler.build([])
    assert len(empty) == 0
    points, boxes, names = empty.sample(scene_points, scene_boxes, scene_names, generator())
    assert torch.equal(points, scene_points) and torch.equal(boxes, scene_boxes) and names == scene_names
    with pytest.raises(ValueError, match="names must hold one class name per box"):
        GroundTruthSampler.build([(scene_points, scene_boxes, scene_names[:1])])
    with pytest.raises(ValueError, match="the database's objects only 4"):
        sampler.sample(torch.zeros(3, 5), scene_boxes, scene_names, generator())
    with pytest.raises(ValueError, match="the database's boxes 7"):
        sampler.sample(scene_points, torch.zeros(0, 9), [], generator())
    with pytest.raises(TypeError, match="generator must be"):
        sampler.sample(scene_points, scene_boxes, scene_names, 0)


def test_save_load_round_trip(tmp_path):
    (scene_points, scene_boxes, scene_names), frames = scene_and_database_frames()
    sampler = GroundTruthSampler.build(frames, min_points={"Car": 25})
    path = sampler.save(tmp_path / "db" / "gt_database.pt")
    assert [entry.name for entry in path.parent.iterdir()] == ["gt_database.pt"]  # no temporary left
    loaded = GroundTruthSampler.load(path)
    for name in ("object_points", "point_offsets", "boxes", "difficulty", "frame_index"):
        assert torch.equal(getattr(loaded, name), getattr(sampler, name))
    assert loaded.names == sampler.names
    first = sampler.sample(scene_points, scene_boxes, scene_names, generator(1))
    second = loaded.sample(scene_points, scene_boxes, scene_names, generator(1))
    assert torch.equal(first[0], second[0]) and first[2] == second[2]

    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="database format 99"):
        GroundTruthSampler.load(tmp_path / "future.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a ground-truth database"):
        GroundTruthSampler.load(tmp_path / "other.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="unreadable"):
        GroundTruthSampler.load(tmp_path / "broken.pt")
    with pytest.raises(FileNotFoundError):
        GroundTruthSampler.load(tmp_path / "missing.pt")


def test_augment_config_apply():
    (scene_points, scene_boxes, scene_names), frames = scene_and_database_frames()
    sampler = GroundTruthSampler.build(frames)
    config = AugmentConfig()
    first = config.apply(scene_points, scene_boxes, scene_names, generator(2), sampler)
    second = config.apply(scene_points, scene_boxes, scene_names, generator(2), sampler)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]) and first[2] == second[2]
    assert first[2].count("Car") == 15

    # The same steps by hand, in OpenPCDet's order, give the same result.
    rng = generator(2)
    points, boxes, names = sampler.sample(scene_points, scene_boxes, scene_names, rng, config.sample_groups)
    points, boxes = random_flip_x(points, boxes, rng, config.flip_probability)
    points, boxes = global_rotation(points, boxes, rng, config.rotation_range)
    points, boxes = global_scaling(points, boxes, rng, config.scale_range)
    assert torch.equal(points, first[0]) and torch.equal(boxes, first[1]) and names == first[2]
    # Membership survives the whole pipeline: every pasted box holds its object's points.
    sampled_boxes = sampler.sample(scene_points, scene_boxes, scene_names, generator(2), config.sample_groups)[1]
    expected = [int(sampler.num_points[database_index(sampler, box)]) for box in sampled_boxes[3:]]
    assert points_in_boxes(points, boxes).sum(dim=0)[3:].tolist() == expected

    identity = AugmentConfig(flip_probability=0.0, rotation_range=(0.0, 0.0), scale_range=(1.0, 1.0))
    points, boxes, names = identity.apply(scene_points, scene_boxes, scene_names, generator())
    assert torch.equal(points, scene_points) and torch.equal(boxes, scene_boxes) and names == scene_names
    with pytest.raises(ValueError, match="flip_probability"):
        AugmentConfig(flip_probability=2.0)


def test_kitti_database(shared_data):
    root = shared_data / "kitti_sample"
    frame_ids = sorted(path.stem for path in (root / "training" / "label_2").glob("*.txt"))
    if not frame_ids:
        pytest.skip("kitti_sample not in the shared data")
    kitti = [load_kitti_frame(root, frame_id, crop_to_fov=False) for frame_id in frame_ids]
    frames = [
        (frame.points, frame.boxes, [obj.type for obj in frame.objects], [obj.difficulty for obj in frame.objects])
        for frame in kitti
    ]
    # Labelled objects of the three classes with at least 5 points, counted independently.
    expected = [
        name
        for points, boxes, names, _ in frames
        for name, count in zip(names, points_in_boxes(points, boxes).sum(dim=0).tolist())
        if name in CLASSES and count >= 5
    ]
    sampler = GroundTruthSampler.build(frames, min_points={name: 5 for name in CLASSES}, classes=CLASSES)
    assert sampler.names == expected and len(expected) > 3
    assert set(sampler.names) <= set(CLASSES)
    assert (sampler.num_points >= 5).all()
    for index in range(len(sampler)):
        object_points, box, _ = sampler.object(index)
        source = frames[int(sampler.frame_index[index])][0]
        torch.testing.assert_close(object_points, source[points_in_boxes(source, box[None])[:, 0]])

    # A scan holding DontCare placeholders (negative sizes), which block nothing.
    points, boxes, names = next(frame[:3] for frame in frames if "DontCare" in frame[2])
    keep = [index for index, name in enumerate(names) if name in CLASSES]
    scene_boxes, scene_names = boxes[keep], [names[index] for index in keep]
    new_points, new_boxes, new_names = sampler.sample(points, scene_boxes, scene_names, generator(0))
    assert len(new_names) > len(scene_names) and new_names[: len(scene_names)] == scene_names
    iou = iou_bev(new_boxes, new_boxes)
    iou.fill_diagonal_(0)
    assert (iou[len(scene_names) :] == 0).all()
    with_placeholders = sampler.sample(points, boxes, names, generator(0))
    assert with_placeholders[2][len(names) :] == new_names[len(scene_names) :]
    for box in new_boxes[len(scene_names) :]:
        assert int(points_in_boxes(new_points, box[None]).sum()) == int(
            sampler.num_points[database_index(sampler, box)]
        )
