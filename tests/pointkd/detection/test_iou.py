import math

import pytest
import torch

from pointkd.detection import iou as iou_module
from pointkd.detection.iou import (
    box_corners_bev,
    boxes_iou3d,
    boxes_iou_bev,
    boxes_overlap_bev,
    camera_to_lidar_convention,
    kitti_3d_iou,
    kitti_bev_iou,
    nms_bev,
)
from tests.conftest import DEVICES

SQRT2 = math.sqrt(2.0)


def box(x, y, dx, dy, heading=0.0, z=0.0, dz=1.0):
    return [x, y, z, dx, dy, dz, heading]


def boxes(*rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 7)


def random_boxes(count: int, seed: int, spread: float = 4.0, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centre = (torch.rand(count, 3, generator=generator, dtype=torch.float64) - 0.5) * spread
    size = 0.2 + 3 * torch.rand(count, 3, generator=generator, dtype=torch.float64)
    heading = (torch.rand(count, 1, generator=generator, dtype=torch.float64) - 0.5) * 4 * math.pi
    return torch.cat([centre, size, heading], dim=1).to(dtype)


# ----------------------------------------------------------------------------- hand-computed values


def test_identical_boxes_have_iou_one():
    samples = random_boxes(50, seed=0)
    torch.testing.assert_close(boxes_iou_bev(samples, samples).diagonal(), torch.ones(50, dtype=torch.float64))
    torch.testing.assert_close(boxes_iou3d(samples, samples).diagonal(), torch.ones(50, dtype=torch.float64))
    areas = samples[:, 3] * samples[:, 4]
    torch.testing.assert_close(boxes_overlap_bev(samples, samples).diagonal(), areas)


def test_disjoint_and_touching_boxes_have_iou_zero():
    a = boxes(box(0, 0, 2, 2))
    b = boxes(box(5, 0, 2, 2), box(2, 0, 2, 2), box(0, 0, 2, 2, z=3.0))  # far, sharing an edge, above
    assert boxes_iou_bev(a, b)[0, :2].tolist() == [0.0, 0.0]
    assert boxes_iou_bev(a, b)[0, 2].item() == pytest.approx(1.0)
    assert boxes_iou3d(a, b).tolist() == [[0.0, 0.0, 0.0]]


def test_axis_aligned_overlaps():
    a = boxes(box(0, 0, 4, 2))
    b = boxes(box(1, 0.5, 4, 2), box(0, 0, 2, 4, heading=math.pi / 2), box(0.5, 0, 1, 1))
    # 3 x 1.5 shared; the same box described rotated by 90 degrees; containment.
    expected_area = [4.5, 8.0, 1.0]
    torch.testing.assert_close(boxes_overlap_bev(a, b)[0], torch.tensor(expected_area, dtype=torch.float64))
    expected_iou = [4.5 / 11.5, 1.0, 1.0 / 8.0]
    torch.testing.assert_close(boxes_iou_bev(a, b)[0], torch.tensor(expected_iou, dtype=torch.float64))


def test_square_and_square_rotated_by_45_degrees_meet_in_a_regular_octagon():
    # Each corner of the square loses an isosceles right triangle of legs
    # 1 - sqrt(2) / 2, so the octagon's area is 1 - 2 (1 - sqrt(2) / 2)^2 = 2 (sqrt(2) - 1).
    a = boxes(box(0, 0, 1, 1))
    b = boxes(box(0, 0, 1, 1, heading=math.pi / 4))
    octagon = 2 * (SQRT2 - 1)
    assert boxes_overlap_bev(a, b).item() == pytest.approx(octagon, abs=1e-12)
    assert boxes_iou_bev(a, b).item() == pytest.approx(octagon / (2 - octagon), abs=1e-12)
    assert boxes_iou_bev(a, b).item() == pytest.approx(1 / SQRT2, abs=1e-12)


def test_asymmetric_rotated_rectangles():
    # Square [-1, 1]^2 and a 2 sqrt(2) x sqrt(2) box centred at (1, 1). With its
    # long side along (1, 1) it covers {x + y >= 0, |y - x| <= 1} of the square:
    # half of (4 - two corner triangles of 1/2), 3/2. Along (1, -1) it covers
    # only the corner triangle x + y >= 1, of area 1/2.
    square = boxes(box(0, 0, 2, 2))
    along_diagonal = boxes(box(1, 1, 2 * SQRT2, SQRT2, heading=math.pi / 4))
    across_diagonal = boxes(box(1, 1, 2 * SQRT2, SQRT2, heading=-math.pi / 4))
    assert boxes_overlap_bev(square, along_diagonal).item() == pytest.approx(1.5, abs=1e-12)
    assert boxes_iou_bev(square, along_diagonal).item() == pytest.approx(1.5 / 6.5, abs=1e-12)
    assert boxes_overlap_bev(square, across_diagonal).item() == pytest.approx(0.5, abs=1e-12)
    assert boxes_iou_bev(square, across_diagonal).item() == pytest.approx(0.5 / 7.5, abs=1e-12)


def test_iou3d_with_partial_height_overlap():
    a = boxes(box(0, 0, 2, 2, z=0.0, dz=2.0))  # z in [-1, 1]
    b = boxes(box(1, 0, 2, 2, z=1.0, dz=2.0), box(1, 0, 2, 2, z=0.5, dz=1.0))  # [0, 2], [0, 1]
    # BEV intersection 1 x 2 = 2; heights shared 1 and 1; volumes 8, 8 and 4.
    torch.testing.assert_close(boxes_iou3d(a, b)[0], torch.tensor([2 / 14, 2 / 10], dtype=torch.float64))
    torch.testing.assert_close(boxes_iou_bev(a, b)[0], torch.tensor([2 / 6, 2 / 6], dtype=torch.float64))


def test_box_corners_are_counter_clockwise_from_front_left():
    corners = box_corners_bev(boxes(box(1, 2, 4, 2, heading=math.pi / 2)))[0]
    # Heading along +y: the front-left corner is at (1 - 1, 2 + 2).
    torch.testing.assert_close(corners[0], torch.tensor([0.0, 4.0], dtype=torch.float64))
    random_corners = box_corners_bev(random_boxes(30, seed=1))
    following = torch.roll(random_corners, -1, dims=1)
    signed_area = 0.5 * (random_corners[..., 0] * following[..., 1] - random_corners[..., 1] * following[..., 0])
    samples = random_boxes(30, seed=1)
    torch.testing.assert_close(signed_area.sum(1), samples[:, 3] * samples[:, 4])


# ----------------------------------------------------------------------------- against shapely


def shapely_overlaps(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    geometry = pytest.importorskip("shapely.geometry")
    polygons_a = [geometry.Polygon(corners) for corners in box_corners_bev(boxes_a).tolist()]
    polygons_b = [geometry.Polygon(corners) for corners in box_corners_bev(boxes_b).tolist()]
    return torch.tensor([[pa.intersection(pb).area for pb in polygons_b] for pa in polygons_a], dtype=torch.float64)


def test_matches_shapely_on_random_rotated_boxes():
    samples = random_boxes(400, seed=2)
    boxes_a, boxes_b = samples[:200], samples[200:]
    reference = shapely_overlaps(boxes_a, boxes_b)
    assert (reference > 0).sum() > 2000  # most pairs overlap: the test exercises the polygon code
    torch.testing.assert_close(boxes_overlap_bev(boxes_a, boxes_b), reference, atol=1e-9, rtol=0)
    area_a, area_b = boxes_a[:, 3] * boxes_a[:, 4], boxes_b[:, 3] * boxes_b[:, 4]
    reference_iou = reference / (area_a[:, None] + area_b[None] - reference)
    torch.testing.assert_close(boxes_iou_bev(boxes_a, boxes_b), reference_iou, atol=1e-9, rtol=0)


def test_matches_shapely_on_touching_and_nested_boxes():
    # Shared edges and corners, equal headings, containment, near-parallel edges:
    # the configurations where candidate vertices coincide.
    base = random_boxes(60, seed=3)
    variants = [
        base,
        base + torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, math.pi]),
        base + torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-7]),
        base * torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0]),
        base + torch.tensor([0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ]
    shifted = base.clone()  # neighbours sharing a full edge
    shifted[:, 0] += base[:, 3] * torch.cos(base[:, 6])
    shifted[:, 1] += base[:, 3] * torch.sin(base[:, 6])
    variants.append(shifted)
    others = torch.cat(variants)
    torch.testing.assert_close(boxes_overlap_bev(base, others), shapely_overlaps(base, others), atol=1e-9, rtol=0)


# ----------------------------------------------------------------------------- invariances and edge cases


def test_iou_is_symmetric():
    boxes_a, boxes_b = random_boxes(40, seed=4), random_boxes(30, seed=5)
    torch.testing.assert_close(boxes_iou_bev(boxes_a, boxes_b), boxes_iou_bev(boxes_b, boxes_a).T)
    torch.testing.assert_close(boxes_iou3d(boxes_a, boxes_b), boxes_iou3d(boxes_b, boxes_a).T)


@pytest.mark.parametrize("angle", [0.3, -2.0, math.pi / 2])
def test_iou_is_invariant_to_rotating_both_boxes_about_the_origin(angle):
    boxes_a, boxes_b = random_boxes(30, seed=6), random_boxes(30, seed=7)

    def rotate(samples):
        rotated = samples.clone()
        cos, sin = math.cos(angle), math.sin(angle)
        rotated[:, 0] = cos * samples[:, 0] - sin * samples[:, 1]
        rotated[:, 1] = sin * samples[:, 0] + cos * samples[:, 1]
        rotated[:, 6] += angle
        return rotated

    torch.testing.assert_close(boxes_iou_bev(rotate(boxes_a), rotate(boxes_b)), boxes_iou_bev(boxes_a, boxes_b))
    torch.testing.assert_close(boxes_iou3d(rotate(boxes_a), rotate(boxes_b)), boxes_iou3d(boxes_a, boxes_b))


def test_heading_plus_pi_is_the_same_box():
    boxes_a, boxes_b = random_boxes(30, seed=8), random_boxes(30, seed=9)
    flipped = boxes_a.clone()
    flipped[:, 6] += math.pi
    torch.testing.assert_close(boxes_iou_bev(flipped, boxes_b), boxes_iou_bev(boxes_a, boxes_b))
    torch.testing.assert_close(boxes_iou_bev(flipped, boxes_a).diagonal(), torch.ones(30, dtype=torch.float64))


def test_degenerate_boxes_give_zero_not_nan():
    a = boxes(box(0, 0, 0, 0), box(0, 0, 0, 2), box(0, 0, 2, 2, dz=0.0), box(0, 0, 2, 2))
    for result in (boxes_iou_bev(a, a), boxes_iou3d(a, a), boxes_overlap_bev(a, a)):
        assert torch.isfinite(result).all()
    assert boxes_iou_bev(a, a)[:2].abs().max() == 0 and boxes_iou_bev(a, a)[:, :2].abs().max() == 0
    assert boxes_iou3d(a, a)[2].abs().max() == 0  # flat box: no volume
    assert boxes_iou_bev(a, a)[2, 3].item() == pytest.approx(1.0)


def test_empty_inputs():
    assert boxes_iou_bev(torch.zeros(0, 7), random_boxes(3, seed=0).float()).shape == (0, 3)
    assert boxes_iou3d(random_boxes(3, seed=0), torch.zeros(0, 7, dtype=torch.float64)).shape == (3, 0)
    assert boxes_overlap_bev(torch.zeros(0, 7), torch.zeros(0, 7), aligned=True).shape == (0,)


def test_dtypes_and_float32_accuracy():
    samples = random_boxes(60, seed=10)
    reference = boxes_iou_bev(samples, samples)
    single = boxes_iou_bev(samples.float(), samples.float())
    assert single.dtype == torch.float32
    # float32 inputs are rounded once, then computed in float64.
    torch.testing.assert_close(single.double(), reference, atol=1e-5, rtol=0)
    assert boxes_iou3d(samples.half(), samples.half()).dtype == torch.float16
    assert boxes_iou_bev(samples.float(), samples).dtype == torch.float64


def test_aligned_is_the_diagonal():
    boxes_a, boxes_b = random_boxes(50, seed=11), random_boxes(50, seed=12)
    torch.testing.assert_close(
        boxes_iou_bev(boxes_a, boxes_b, aligned=True), boxes_iou_bev(boxes_a, boxes_b).diagonal()
    )
    torch.testing.assert_close(boxes_iou3d(boxes_a, boxes_b, aligned=True), boxes_iou3d(boxes_a, boxes_b).diagonal())


def test_chunking_does_not_change_the_result(monkeypatch):
    boxes_a, boxes_b = random_boxes(70, seed=13), random_boxes(50, seed=14)
    expected = boxes_overlap_bev(boxes_a, boxes_b)
    monkeypatch.setattr(iou_module, "_CANDIDATE_CHUNK", 64)
    monkeypatch.setattr(iou_module, "_POLYGON_CHUNK", 7)
    torch.testing.assert_close(boxes_overlap_bev(boxes_a, boxes_b), expected)


def test_large_grid_runs_in_bounded_chunks():
    # 1000 x 1000 pairs spread over a KITTI-sized area.
    samples = random_boxes(2000, seed=15, spread=80.0).float()
    result = boxes_iou_bev(samples[:1000], samples[1000:])
    assert result.shape == (1000, 1000) and torch.isfinite(result).all()
    assert 0 < int((result > 0).sum()) < 1000 * 1000


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: boxes_iou_bev(torch.zeros(3, 6), torch.zeros(2, 7)),
            r"boxes_a must be a floating tensor of shape \(N, 7\)",
        ),
        (lambda: boxes_iou_bev(torch.zeros(3, 7), torch.zeros(2, 7, dtype=torch.long)), "boxes_b .* got int64"),
        (lambda: boxes_iou3d(torch.zeros(7), torch.zeros(2, 7)), r"boxes_a .* got float32 \(7,\)"),
        (lambda: boxes_iou_bev([[0.0] * 7], torch.zeros(2, 7)), "boxes_a .* got list"),
        (lambda: boxes_iou_bev(torch.full((1, 7), math.nan), torch.zeros(2, 7)), "boxes_a must be finite"),
        (lambda: boxes_overlap_bev(torch.zeros(1, 7), -torch.ones(1, 7)), "boxes_b must have non-negative sizes"),
        (lambda: boxes_iou_bev(torch.zeros(2, 7), torch.zeros(3, 7), aligned=True), "aligned=True"),
        (lambda: box_corners_bev(torch.zeros(2, 5)), "boxes must be"),
        (lambda: kitti_bev_iou(torch.zeros(2, 6), torch.zeros(2, 7)), r"boxes_a .* \(x, y, z, l, h, w, ry\)"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_devices_agree(device):
    boxes_a, boxes_b = random_boxes(40, seed=16), random_boxes(30, seed=17)
    expected = boxes_iou3d(boxes_a, boxes_b)
    result = boxes_iou3d(boxes_a.to(device), boxes_b.to(device))
    assert result.device.type == device.type
    torch.testing.assert_close(result.cpu(), expected)
    scores = torch.rand(40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kept = nms_bev(boxes_a.to(device), scores.to(device), 0.2)
    assert kept.device.type == device.type
    assert kept.cpu().tolist() == nms_bev(boxes_a, scores, 0.2).tolist()


# ----------------------------------------------------------------------------- KITTI camera boxes


def camera_box(x, z, length, width, rotation_y, y=1.0, height=1.0):
    return [x, y, z, length, height, width, rotation_y]


def test_camera_rotation_sign_on_an_asymmetric_case():
    # Camera BEV is the (x, z) plane and a box heads along (cos ry, -sin ry).
    # The 2 sqrt(2) x sqrt(2) box centred at (x, z) = (1, 1): ry = -pi/4 lays
    # it along (1, 1), overlapping the square [-1, 1]^2 by 3/2; ry = +pi/4 lays
    # it along (1, -1), overlapping by the corner triangle 1/2 (see
    # test_asymmetric_rotated_rectangles for the areas).
    square = torch.tensor([camera_box(0, 0, 2, 2, 0.0)], dtype=torch.float64)
    candidates = torch.tensor(
        [camera_box(1, 1, 2 * SQRT2, SQRT2, -math.pi / 4), camera_box(1, 1, 2 * SQRT2, SQRT2, math.pi / 4)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(
        kitti_bev_iou(square, candidates)[0], torch.tensor([1.5 / 6.5, 0.5 / 7.5], dtype=torch.float64)
    )
    # A 4 x 2 box at ry = 0 spans x in [-2, 2], z in [-1, 1]; at ry = pi/2, x in [-1, 1], z in [-2, 2].
    long_box = torch.tensor([camera_box(0, 0, 4, 2, 0.0), camera_box(0, 0, 4, 2, math.pi / 2)], dtype=torch.float64)
    probe = torch.tensor([camera_box(1.5, 0, 1, 1, 0.0)], dtype=torch.float64)  # x in [1, 2]
    torch.testing.assert_close(kitti_bev_iou(probe, long_box)[0], torch.tensor([1 / 8, 0.0], dtype=torch.float64))


def test_camera_3d_iou_uses_the_bottom_centre():
    # Boxes stand on y (y points down): heights [y - h, y] = [0, 2] and [1, 2.5].
    a = torch.tensor([camera_box(0, 0, 2, 2, 0.3, y=2.0, height=2.0)], dtype=torch.float64)
    b = torch.tensor([camera_box(0, 0, 2, 2, 0.3, y=2.5, height=1.5)], dtype=torch.float64)
    # Same footprint (area 4); shared height 1; volumes 8 and 6.
    assert kitti_3d_iou(a, b).item() == pytest.approx(4 / 10, abs=1e-12)
    assert kitti_bev_iou(a, b).item() == pytest.approx(1.0, abs=1e-12)


def test_camera_conversion_matches_the_kitti_lidar_yaw():
    camera = torch.tensor([camera_box(1.0, 5.0, 4.0, 2.0, 0.4, y=1.5, height=1.6)], dtype=torch.float64)
    lidar = camera_to_lidar_convention(camera)[0]
    # (x, y, z) -> (z, -x, -y): centre (5, -1, -1.5 + 0.8), sizes (l, w, h), yaw = -ry - pi/2.
    torch.testing.assert_close(
        lidar, torch.tensor([5.0, -1.0, -0.7, 4.0, 2.0, 1.6, -0.4 - math.pi / 2], dtype=torch.float64)
    )


# ----------------------------------------------------------------------------- NMS


def brute_force_nms(samples, scores, threshold, max_output=None):
    order = sorted(range(len(scores)), key=lambda index: (-float(scores[index]), index))
    kept = []
    for index in order:
        if max_output is not None and len(kept) == max_output:
            break
        if all(
            boxes_iou_bev(samples[index : index + 1], samples[other : other + 1]).item() <= threshold for other in kept
        ):
            kept.append(index)
    return kept


@pytest.mark.parametrize("threshold", [-0.1, 0.0, 0.1, 0.3, 0.7])
def test_nms_matches_brute_force(threshold):
    samples = random_boxes(80, seed=20, spread=8.0)
    scores = torch.rand(80, generator=torch.Generator().manual_seed(21), dtype=torch.float64)
    assert nms_bev(samples, scores, threshold).tolist() == brute_force_nms(samples, scores, threshold)


def test_nms_ties_keep_the_lower_index_and_max_output():
    samples = boxes(box(0, 0, 2, 2), box(0.1, 0, 2, 2), box(10, 0, 2, 2), box(10.1, 0, 2, 2), box(20, 0, 1, 1))
    scores = torch.tensor([0.5, 0.5, 0.9, 0.9, 0.1], dtype=torch.float64)
    assert nms_bev(samples, scores, 0.5).tolist() == [2, 0, 4]
    assert nms_bev(samples, scores, 0.5, max_output=2).tolist() == [2, 0]
    assert nms_bev(samples, scores, 0.5, max_output=0).tolist() == []
    assert nms_bev(samples, scores, 1.0).tolist() == [2, 3, 0, 1, 4]  # nothing overlaps by more than 1
    random_samples = random_boxes(60, seed=22, spread=8.0)
    random_scores = torch.rand(60, generator=torch.Generator().manual_seed(23), dtype=torch.float64)
    assert nms_bev(random_samples, random_scores, 0.2, max_output=5).tolist() == brute_force_nms(
        random_samples, random_scores, 0.2, max_output=5
    )


def test_nms_empty_input():
    kept = nms_bev(torch.zeros(0, 7), torch.zeros(0), 0.5)
    assert kept.dtype == torch.long and kept.shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": torch.zeros(3)}, r"scores must be a floating tensor of shape \(2,\)"),
        ({"scores": torch.zeros(2, dtype=torch.long)}, "scores .* got int64"),
        ({"scores": torch.tensor([0.0, math.nan])}, "scores must be finite"),
        ({"iou_threshold": math.nan}, "iou_threshold"),
        ({"max_output": -1}, "max_output"),
        ({"boxes": torch.zeros(2, 5)}, "boxes must be"),
    ],
)
def test_nms_bad_input(kwargs, message):
    arguments = {"boxes": torch.zeros(2, 7), "scores": torch.zeros(2), "iou_threshold": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        nms_bev(**arguments)
