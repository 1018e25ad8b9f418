import math
import random
import time
from dataclasses import replace

import pytest

from pointkd.datasets.kitti import KittiObject
from pointkd.detection import kitti_eval
from pointkd.detection.iou import kitti_3d_iou, kitti_bev_iou
from pointkd.detection.kitti_eval import evaluate_kitti, format_kitti_results, recall_thresholds

CAR_SIZE = (1.5, 1.6, 3.9)  # height, width, length


def car(x, z, score=None, *, kind="Car", top=100.0, height=100.0, left=100.0, occlusion=0, truncation=0.0, ry=0.0):
    """A car standing on y = 1.7, 3.9 m long along x at ry = 0, with a 100-pixel-wide 2D box."""
    return KittiObject(
        kind, truncation, occlusion, 0.0, (left, top, left + 100.0, top + height), CAR_SIZE, (x, 1.7, z), ry, score
    )


def dontcare(box2d):
    return KittiObject("DontCare", -1.0, -1, -10.0, box2d, (-1.0, -1.0, -1.0), (-1000.0, -1000.0, -1000.0), -10.0)


def scene(num_cars=41, scores=None):
    """``num_cars`` easy cars in 5 frames, each found exactly; car k's detection scores 1 - k / 100."""
    scores = [1 - 0.01 * k for k in range(num_cars)] if scores is None else scores
    ground_truth, detections = [[] for _ in range(5)], [[] for _ in range(5)]
    for k in range(num_cars):
        frame, slot = k % 5, k // 5
        x, left = -20.0 + 5.0 * slot, 110.0 * slot  # 5 m apart in BEV, disjoint 2D boxes
        ground_truth[frame].append(car(x, 20.0, left=left))
        detections[frame].append(car(x, 20.0, scores[k], left=left))
    return ground_truth, detections


def ap(result, name="Car", metric="bev"):
    return result[name][metric]["R11"], result[name][metric]["R40"]


def assert_ap(actual, expected):
    for actual_values, expected_values in zip(actual, expected, strict=True):
        assert actual_values == pytest.approx(expected_values, abs=1e-9)


ALL_METRICS = ("bbox", "bev", "3d")


# ----------------------------------------------------------------------------- hand-computed cases


def test_recall_thresholds():
    # 41 objects: each true positive's recall (i + 1) / 41 is the closest to i / 40.
    assert recall_thresholds([1 - 0.01 * k for k in range(41)], 41) == [1 - 0.01 * k for k in range(41)]
    # 82 objects: every other score, plus the first and the last.
    scores = [1 - 0.001 * k for k in range(82)]
    thresholds = recall_thresholds(scores, 82)
    assert len(thresholds) == 41 and thresholds[0] == scores[0] and thresholds[-1] == scores[-1]
    assert thresholds[1:3] == [scores[1], scores[3]]
    assert recall_thresholds([0.3, 0.9], 2) == [0.9, 0.3]  # sorted down; the last always kept
    assert recall_thresholds([], 5) == []
    with pytest.raises(ValueError, match="num_ground_truth must be at least the number of true positives"):
        recall_thresholds([0.5, 0.4], 1)


def test_perfect_detections_give_100():
    result = evaluate_kitti(*scene(), metrics=ALL_METRICS)
    for metric in ALL_METRICS:
        assert ap(result, metric=metric) == ([100.0] * 3, [100.0] * 3)


def test_few_objects_cannot_reach_100():
    # The devkit's threshold i stands for recall i / 40 but holds the (i+1)-th
    # true positive: with 40 objects, the 41st point (recall 1) stays at 0.
    r11, r40 = ap(evaluate_kitti(*scene(40)))
    assert r40 == pytest.approx([97.5] * 3) and r11 == pytest.approx([1000 / 11] * 3)
    # One object found behind a false positive: precision 1/2 at the only threshold (index 0).
    ground_truth = [[car(0.0, 20.0)]]
    detections = [[car(10.0, 20.0, 0.9), car(0.0, 20.0, 0.5)]]
    r11, r40 = ap(evaluate_kitti(ground_truth, detections))
    assert r11 == pytest.approx([50 / 11] * 3) and r40 == [0.0] * 3


def test_no_detections_give_0():
    ground_truth, _ = scene()
    result = evaluate_kitti(ground_truth, [[] for _ in ground_truth], metrics=ALL_METRICS)
    for name in ("Car", "Pedestrian", "Cyclist"):
        for metric in ALL_METRICS:
            assert ap(result, name, metric) == ([0.0] * 3, [0.0] * 3)


def test_class_without_ground_truth_gives_0():
    # As in both devkits: no valid object, no threshold, AP 0 (not NaN), even
    # for a class with detections.
    ground_truth, detections = scene()
    detections[0].append(car(40.0, 20.0, 0.9, kind="Pedestrian"))
    result = evaluate_kitti(ground_truth, detections)
    assert ap(result, "Pedestrian") == ([0.0] * 3, [0.0] * 3)
    assert ap(result, "Cyclist", "3d") == ([0.0] * 3, [0.0] * 3)
    assert ap(result, "Car") == ([100.0] * 3, [100.0] * 3)


# A false positive scoring between the 20th (0.81) and 21st (0.80) of the 41
# true positives: precision 1 at thresholds 0..19, (t + 1) / (t + 2) at
# t = 20..40, which the running maximum from the right lifts to 41/42:
#   R40 = (19 + 21 * 41/42) / 40 = 98.75 %,
#   R11 = (5 [t = 0, 4, .., 16] + 6 * 41/42 [t = 20, .., 40]) / 11 = 76/77.
ONE_FALSE_POSITIVE = ([7600 / 77] * 3, [98.75] * 3)
FALSE_POSITIVE_SCORE = 0.805


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_one_false_positive_between_true_positives(metric):
    ground_truth, detections = scene()
    detections[2].append(car(40.0, 40.0, FALSE_POSITIVE_SCORE, left=1000.0))
    r11, r40 = ap(evaluate_kitti(ground_truth, detections, metrics=ALL_METRICS), metric=metric)
    assert r11 == pytest.approx(ONE_FALSE_POSITIVE[0], abs=1e-9)
    assert r40 == pytest.approx(ONE_FALSE_POSITIVE[1], abs=1e-9)


def test_detection_in_a_dontcare_region_is_no_false_positive():
    ground_truth, detections = scene()
    detections[2].append(car(40.0, 40.0, FALSE_POSITIVE_SCORE, left=1000.0))  # 2D box x in [1000, 1100]
    ground_truth[2].append(dontcare((990.0, 90.0, 1110.0, 210.0)))
    result = evaluate_kitti(ground_truth, detections, metrics=ALL_METRICS)
    for metric in ALL_METRICS:
        assert ap(result, metric=metric) == ([100.0] * 3, [100.0] * 3)
    # The devkits' BEV / 3D numbers count it (their DontCare test uses the
    # placeholder 3D box); their 2D numbers do not.
    devkit = evaluate_kitti(ground_truth, detections, metrics=ALL_METRICS, dontcare_all_metrics=False)
    assert ap(devkit, metric="bbox") == ([100.0] * 3, [100.0] * 3)
    for metric in ("bev", "3d"):
        assert_ap(ap(devkit, metric=metric), ONE_FALSE_POSITIVE)
    # Overlapping the region by less than the class's minimum overlap (0.7 of the detection's area): counted.
    ground_truth[2][-1] = dontcare((1040.0, 90.0, 1110.0, 210.0))  # covers 60 % of the detection
    assert_ap(ap(evaluate_kitti(ground_truth, detections)), ONE_FALSE_POSITIVE)


def test_van_is_ignored_for_car():
    # A Car detection on a Van is neither a true nor a false positive...
    ground_truth, detections = scene()
    ground_truth[2].append(car(40.0, 40.0, kind="Van", left=1000.0))
    detections[2].append(car(40.0, 40.0, FALSE_POSITIVE_SCORE, left=1000.0))
    assert ap(evaluate_kitti(ground_truth, detections)) == ([100.0] * 3, [100.0] * 3)
    # ...while on an object of another class (Truck) it is a false positive.
    ground_truth[2][-1] = car(40.0, 40.0, kind="Truck", left=1000.0)
    assert_ap(ap(evaluate_kitti(ground_truth, detections)), ONE_FALSE_POSITIVE)
    # A Van detection is not a Car detection: the car it covers is missed, and it is no false positive.
    ground_truth, detections = scene()
    detections[0][0] = car(-20.0, 20.0, 1.0, kind="Van", left=0.0)
    r11, r40 = ap(evaluate_kitti(ground_truth, detections))
    assert r40 == pytest.approx([97.5] * 3) and r11 == pytest.approx([1000 / 11] * 3)  # 40 of 41, precision 1


def test_person_sitting_is_ignored_for_pedestrian():
    ground_truth, detections = scene()
    ground_truth = [[replace(obj, type="Pedestrian") for obj in frame] for frame in ground_truth]
    detections = [[replace(obj, type="Pedestrian") for obj in frame] for frame in detections]
    ground_truth[2].append(car(40.0, 40.0, kind="Person_sitting", left=1000.0))
    detections[2].append(car(40.0, 40.0, FALSE_POSITIVE_SCORE, kind="Pedestrian", left=1000.0))
    assert ap(evaluate_kitti(ground_truth, detections), "Pedestrian") == ([100.0] * 3, [100.0] * 3)


def test_difficulty_filtering_of_ground_truth():
    # A car occluded at level 2 counts only in "hard". Missed, it costs hard
    # alone: 41 of 42 found, precision 1 at the 40 thresholds (not at recall 1).
    ground_truth, detections = scene()
    ground_truth[2].append(car(40.0, 40.0, occlusion=2, left=1000.0))
    r11, r40 = ap(evaluate_kitti(ground_truth, detections))
    assert r40[:2] == [100.0, 100.0] and r40[2] == pytest.approx(97.5)
    assert r11[:2] == [100.0, 100.0] and r11[2] == pytest.approx(1000 / 11)
    # Found, its detection is ignored in easy and moderate (no false positive).
    detections[2].append(car(40.0, 40.0, FALSE_POSITIVE_SCORE, left=1000.0))
    assert ap(evaluate_kitti(ground_truth, detections)) == ([100.0] * 3, [100.0] * 3)
    # Height: the devkit wants objects taller than the minimum (40 px for easy),
    # so a 40 px car is ignored in easy and counts in moderate.
    ground_truth, detections = scene()
    ground_truth[2].append(car(40.0, 40.0, height=40.0, left=1000.0))
    r11, r40 = ap(evaluate_kitti(ground_truth, detections))
    assert r40[0] == 100.0 and r40[1:] == pytest.approx([97.5, 97.5])


def test_difficulty_of_detections_by_2d_height():
    # A 30 px false positive is below easy's 40 px (ignored) but not below 25 px.
    ground_truth, detections = scene()
    detections[2].append(car(40.0, 40.0, FALSE_POSITIVE_SCORE, left=1000.0, height=30.0))
    r11, r40 = ap(evaluate_kitti(ground_truth, detections))
    assert r40[0] == 100.0 and r40[1:] == pytest.approx(ONE_FALSE_POSITIVE[1][1:], abs=1e-9)
    assert r11[0] == 100.0 and r11[1:] == pytest.approx(ONE_FALSE_POSITIVE[0][1:], abs=1e-9)


@pytest.mark.parametrize(("iou", "expected"), [(0.71, 100.0), (0.69, 0.0)])
def test_min_overlap_boundary_for_car(iou, expected):
    # Shifting a 3.9 m car by d along its length leaves IoU (3.9 - d) / (3.9 + d) (BEV and 3D).
    shift = 3.9 * (1 - iou) / (1 + iou)
    ground_truth, detections = scene()
    detections = [
        [car(obj.location[0] + shift, obj.location[2], obj.score, left=obj.box2d[0]) for obj in frame]
        for frame in detections
    ]
    boxes_gt = kitti_eval.camera_boxes(ground_truth[0][:1])
    boxes_det = kitti_eval.camera_boxes(detections[0][:1])
    assert kitti_bev_iou(boxes_det, boxes_gt).item() == pytest.approx(iou, abs=1e-12)
    assert kitti_3d_iou(boxes_det, boxes_gt).item() == pytest.approx(iou, abs=1e-12)
    result = evaluate_kitti(ground_truth, detections)
    for metric in ("bev", "3d"):
        assert ap(result, metric=metric) == ([expected] * 3, [expected] * 3)
    # A looser overlap for Car accepts the shifted boxes.
    loose = evaluate_kitti(ground_truth, detections, min_overlaps={"Car": 0.5})
    assert ap(loose) == ([100.0] * 3, [100.0] * 3)


def test_class_names_ignore_case_and_other_classes_are_dropped():
    ground_truth, detections = scene()
    detections = [[replace(obj, type="car") for obj in frame] for frame in detections]
    detections[0].append(car(40.0, 40.0, 0.99, kind="Tram"))
    result = evaluate_kitti(ground_truth, detections, classes=("Car",))
    assert list(result) == ["Car"] and ap(result) == ([100.0] * 3, [100.0] * 3)


def test_format_results():
    result = evaluate_kitti(*scene(), classes=("Car", "Cyclist"))
    table = format_kitti_results(result)
    lines = table.splitlines()
    assert "easy" in lines[0] and "moderate" in lines[0] and "hard" in lines[0]
    assert len(lines) == 2 + 2 * 2 * 2  # header, rule, classes x metrics x (R11, R40)
    assert lines[2].split() == ["Car", "bev", "R11", "100.00", "100.00", "100.00"]
    assert lines[-1].split() == ["Cyclist", "3d", "R40", "0.00", "0.00", "0.00"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"detections": [[]]}, "one entry per frame, got 5 and 1"),
        ({"metrics": ("bev", "2d")}, "unknown metric '2d'"),
        ({"metrics": "bev"}, "metrics must be a non-empty sequence"),
        ({"classes": ("Car", "Truck")}, "unknown class 'Truck'"),
        ({"min_overlaps": {"Car": 1.5}}, r"min_overlaps\['Car'\] must be a number in \[0, 1\)"),
        ({"ground_truth": "labels"}, "ground_truth must be a list"),
        ({"detections": [[car(0, 0, 0.5)], [], [], [], ["Car"]]}, r"detections\[4\]\[0\] must be a KittiObject"),
        ({"detections": [[car(0, 0)], [], [], [], []]}, r"detections\[0\]\[0\] needs a finite score"),
        (
            {"ground_truth": [[replace(car(0, 0), dimensions=(-1.0, 1.0, 1.0))], [], [], [], []]},
            "ground_truth must have non-negative",
        ),
        ({"min_overlaps": ["Car"]}, "min_overlaps must map class names"),
    ],
)
def test_bad_input(kwargs, message):
    ground_truth, detections = scene()
    arguments = {"ground_truth": ground_truth, "detections": detections, **kwargs}
    with pytest.raises(ValueError, match=message):
        evaluate_kitti(**arguments)


# ----------------------------------------------------------------------------- against the devkit's loops

MIN_HEIGHT, MAX_OCCLUSION, MAX_TRUNCATION = (40, 25, 25), (0, 1, 2), (0.15, 0.3, 0.5)
NEIGHBOURS = {"car": "van", "pedestrian": "person_sitting"}


def devkit_overlaps(detections, objects, metric):
    """Overlaps (detection, object) as the devkit computes them: 2D IoU, or polygons on (x, z)
    built from the label (corners rotated by [[cos ry, sin ry], [-sin ry, cos ry]]) times the
    height overlap of [y - h, y]."""
    geometry = pytest.importorskip("shapely.geometry")

    def polygon(obj):
        _, width, length = obj.dimensions
        x, _, z = obj.location
        cos, sin = math.cos(obj.rotation_y), math.sin(obj.rotation_y)
        corners = [
            (length / 2, width / 2),
            (length / 2, -width / 2),
            (-length / 2, -width / 2),
            (-length / 2, width / 2),
        ]
        return geometry.Polygon([(x + cos * u + sin * v, z - sin * u + cos * v) for u, v in corners])

    def overlap(det, obj):
        if metric == "bbox":
            width = min(det.box2d[2], obj.box2d[2]) - max(det.box2d[0], obj.box2d[0])
            height = min(det.box2d[3], obj.box2d[3]) - max(det.box2d[1], obj.box2d[1])
            if width <= 0 or height <= 0:
                return 0.0
            area = lambda box: (box[2] - box[0]) * (box[3] - box[1])
            return width * height / (area(det.box2d) + area(obj.box2d) - width * height)
        a, b = polygon(det), polygon(obj)
        inter = a.intersection(b).area
        if metric == "bev":
            return inter / (a.area + b.area - inter)
        top = min(det.location[1], obj.location[1])
        bottom = max(det.location[1] - det.dimensions[0], obj.location[1] - obj.dimensions[0])
        inter *= max(0.0, top - bottom)
        volume = lambda o: o.dimensions[0] * o.dimensions[1] * o.dimensions[2]
        return inter / (volume(det) + volume(obj) - inter)

    return [[overlap(det, obj) for obj in objects] for det in detections]


def devkit_statistics(
    overlaps, objects, detections, dontcare_regions, ignored_gt, ignored_det, min_overlap, thresh, compute_fp
):
    assigned = [False] * len(detections)
    below = [compute_fp and det.score < thresh for det in detections]
    tp = fp = fn = 0
    scores = []
    for i in range(len(objects)):
        if ignored_gt[i] == -1:
            continue
        det_idx, valid_detection, max_overlap, assigned_ignored_det = -1, -1e7, 0.0, False
        for j, det in enumerate(detections):
            if ignored_det[j] == -1 or assigned[j] or below[j]:
                continue
            overlap = overlaps[j][i]
            if not compute_fp and overlap > min_overlap and det.score > valid_detection:
                det_idx, valid_detection = j, det.score
            elif (
                compute_fp
                and overlap > min_overlap
                and (overlap > max_overlap or assigned_ignored_det)
                and ignored_det[j] == 0
            ):
                max_overlap, det_idx, valid_detection, assigned_ignored_det = overlap, j, 1, False
            elif compute_fp and overlap > min_overlap and valid_detection == -1e7 and ignored_det[j] == 1:
                det_idx, valid_detection, assigned_ignored_det = j, 1, True
        if valid_detection == -1e7 and ignored_gt[i] == 0:
            fn += 1
        elif valid_detection != -1e7 and (ignored_gt[i] == 1 or ignored_det[det_idx] == 1):
            assigned[det_idx] = True
        elif valid_detection != -1e7:
            tp += 1
            scores.append(detections[det_idx].score)
            assigned[det_idx] = True
    if compute_fp:
        fp = sum(not (assigned[j] or ignored_det[j] != 0 or below[j]) for j in range(len(detections)))
        stuff = 0
        for region in dontcare_regions:
            for j, det in enumerate(detections):
                if assigned[j] or ignored_det[j] != 0 or below[j]:
                    continue
                box = det.box2d
                width = min(box[2], region[2]) - max(box[0], region[0])
                height = min(box[3], region[3]) - max(box[1], region[1])
                if width > 0 and height > 0 and width * height / ((box[2] - box[0]) * (box[3] - box[1])) > min_overlap:
                    assigned[j] = True
                    stuff += 1
        fp -= stuff
    return tp, fp, fn, scores


def devkit_thresholds(scores, num_gt):
    scores = sorted(scores, reverse=True)
    current, thresholds = 0.0, []
    for i, score in enumerate(scores):
        left = (i + 1) / num_gt
        right = (i + 2) / num_gt if i < len(scores) - 1 else left
        if right - current < current - left and i < len(scores) - 1:
            continue
        thresholds.append(score)
        current += 1 / 40.0
    return thresholds


def devkit_ap(ground_truth, detections, name, metric, level, min_overlap, dontcare_all_metrics):
    """One class, metric and level, as the devkit's loops (with this module's two documented choices)."""
    key = name.lower()
    frames, num_gt, scores = [], 0, []
    for frame_gt, frame_det in zip(ground_truth, detections, strict=True):
        objects = [obj for obj in frame_gt if obj.type.lower() != "dontcare"]
        regions = [obj.box2d for obj in frame_gt if obj.type.lower() == "dontcare"]
        if metric != "bbox" and not dontcare_all_metrics:
            regions = []
        ignored_gt = []
        for obj in objects:
            kind = obj.type.lower()
            valid_class = 1 if kind == key else 0 if NEIGHBOURS.get(key) == kind else -1
            ignore = (
                obj.occlusion > MAX_OCCLUSION[level]
                or obj.truncation > MAX_TRUNCATION[level]
                or obj.box2d[3] - obj.box2d[1] <= MIN_HEIGHT[level]
            )
            if valid_class == 1 and not ignore:
                ignored_gt.append(0)
                num_gt += 1
            else:
                ignored_gt.append(1 if valid_class == 0 or (ignore and valid_class == 1) else -1)
        ignored_det = [
            -1 if det.type.lower() != key else 1 if abs(det.box2d[3] - det.box2d[1]) < MIN_HEIGHT[level] else 0
            for det in frame_det
        ]
        overlaps = devkit_overlaps(frame_det, objects, metric)
        frame = (overlaps, objects, frame_det, regions, ignored_gt, ignored_det)
        frames.append(frame)
        scores += devkit_statistics(*frame, min_overlap, 0.0, False)[3]
    thresholds = devkit_thresholds(scores, num_gt) if num_gt else []
    precision = [0.0] * 41
    for t, thresh in enumerate(thresholds):
        tp = fp = 0
        for frame in frames:
            stats = devkit_statistics(*frame, min_overlap, thresh, True)
            tp, fp = tp + stats[0], fp + stats[1]
        precision[t] = tp / (tp + fp)
    for t in range(len(thresholds)):
        precision[t] = max(precision[t:])
    return sum(precision[::4]) / 11 * 100, sum(precision[1:]) / 40 * 100


def random_frames(num_frames, num_objects, num_detections, seed, spread=40.0):
    """Frames with every complication: neighbour classes, DontCare regions, heights around the
    difficulty limits, detections near objects (noisy copies, wrong classes), tied scores."""
    rng = random.Random(seed)
    kinds = ["Car", "Car", "Car", "Pedestrian", "Pedestrian", "Cyclist", "Van", "Person_sitting", "Truck", "DontCare"]
    sizes = {"Car": (1.5, 1.6, 3.9), "Van": (2.2, 1.9, 5.0), "Truck": (3.0, 2.5, 10.0)}
    ground_truth, detections = [], []
    for _ in range(num_frames):
        objects = []
        for _ in range(num_objects):
            kind = rng.choice(kinds)
            left, top = rng.uniform(0, 1100), rng.uniform(100, 250)
            box2d = (left, top, left + rng.uniform(20, 120), top + rng.choice([20, 25, 30, 39.5, 40, 40.5, 60, 100]))
            if kind == "DontCare":
                objects.append(dontcare(box2d))
                continue
            location = (rng.uniform(-spread / 2, spread / 2), rng.uniform(1.0, 2.0), rng.uniform(5, 5 + spread))
            objects.append(
                KittiObject(
                    kind, rng.choice([0.0, 0.15, 0.3, 0.5, 0.8]), rng.choice([0, 1, 2, 3]), 0.0, box2d,
                    sizes.get(kind, (1.7, 0.6, 1.2)), location, rng.uniform(-math.pi, math.pi),
                )
            )  # fmt: skip
        frame_detections = []
        for _ in range(num_detections):
            source = rng.choice(objects)
            kind = (
                source.type
                if source.type in ("Car", "Pedestrian", "Cyclist")
                else rng.choice(["Car", "Pedestrian", "Cyclist"])
            )
            if rng.random() < 0.15:
                kind = rng.choice(["Car", "Pedestrian", "Cyclist", "Van"])
            if source.type == "DontCare" or rng.random() < 0.2:
                location = (rng.uniform(-spread / 2, spread / 2), rng.uniform(1.0, 2.0), rng.uniform(5, 5 + spread))
                dimensions, rotation_y = sizes.get(kind, (1.7, 0.6, 1.2)), rng.uniform(-math.pi, math.pi)
            else:
                location = tuple(value + rng.gauss(0, 0.15) for value in source.location)
                dimensions = tuple(value * rng.uniform(0.9, 1.1) for value in source.dimensions)
                rotation_y = source.rotation_y + rng.gauss(0, 0.1) + rng.choice([0.0, 0.0, math.pi])
            box2d = tuple(value + rng.gauss(0, 4) for value in source.box2d)
            score = round(rng.random(), 1)  # ties
            frame_detections.append(KittiObject(kind, 0.0, 0, 0.0, box2d, dimensions, location, rotation_y, score))
        ground_truth.append(objects)
        detections.append(frame_detections)
    return ground_truth, detections


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dontcare_all_metrics", [True, False])
def test_matches_the_devkit_loops_on_random_frames(seed, dontcare_all_metrics):
    ground_truth, detections = random_frames(12, 10, 14, seed, spread=12.0)
    min_overlaps = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.3}  # loose, so that many detections match
    result = evaluate_kitti(
        ground_truth,
        detections,
        metrics=ALL_METRICS,
        min_overlaps=min_overlaps,
        dontcare_all_metrics=dontcare_all_metrics,
    )
    nonzero = 0
    for name, overlap in min_overlaps.items():
        for metric in ALL_METRICS:
            for level in range(3):
                r11, r40 = devkit_ap(ground_truth, detections, name, metric, level, overlap, dontcare_all_metrics)
                assert result[name][metric]["R11"][level] == pytest.approx(r11, abs=1e-9), (name, metric, level)
                assert result[name][metric]["R40"][level] == pytest.approx(r40, abs=1e-9), (name, metric, level)
                nonzero += r11 > 0
    assert nonzero >= 12  # the random frames produce real precision curves


def test_matching_chunks_do_not_change_the_result(monkeypatch):
    ground_truth, detections = random_frames(20, 10, 14, seed=3, spread=12.0)
    min_overlaps = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.3}
    expected = evaluate_kitti(ground_truth, detections, min_overlaps=min_overlaps)
    monkeypatch.setattr(kitti_eval, "_MATCH_CHUNK", 1)
    assert evaluate_kitti(ground_truth, detections, min_overlaps=min_overlaps) == expected


def test_speed_on_300_frames():
    # 300 frames of 20 objects and 100 detections: a KITTI val-sized run in seconds.
    ground_truth, detections = random_frames(300, 20, 100, seed=4)
    start = time.perf_counter()
    result = evaluate_kitti(ground_truth, detections)
    elapsed = time.perf_counter() - start
    assert set(result) == {"Car", "Pedestrian", "Cyclist"}
    assert elapsed < 20.0, elapsed
