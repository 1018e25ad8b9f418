import math

import pytest
import torch
import torch.nn.functional as F

from pointkd.detection.anchor_head import (
    AnchorConfig,
    AnchorHead,
    assign_targets,
    axis_aligned_iou,
    generate_anchors,
    nearest_bev_boxes,
    sigmoid_focal_loss,
    smooth_l1,
)
from pointkd.detection.box_coder import (
    apply_direction,
    decode_boxes,
    direction_targets,
    encode_boxes,
    limit_period,
    sin_difference,
)

CAR = AnchorConfig("Car", (3.9, 1.6, 1.56), -1.73, matched_threshold=0.6, unmatched_threshold=0.45)
PEDESTRIAN = AnchorConfig("Pedestrian", (0.8, 0.6, 1.73), -1.73, matched_threshold=0.5, unmatched_threshold=0.35)
RANGE = (0.0, -8.0, -3.0, 16.0, 8.0, 1.0)


def random_boxes(count, generator):
    centre = torch.rand(count, 3, generator=generator, dtype=torch.float64) * 20 - 10
    size = torch.rand(count, 3, generator=generator, dtype=torch.float64) * 4 + 0.3
    heading = torch.rand(count, 1, generator=generator, dtype=torch.float64) * 6 - 3
    return torch.cat([centre, size, heading], dim=1)


def test_encode_decode_round_trip():
    generator = torch.Generator().manual_seed(0)
    boxes, anchors = random_boxes(200, generator), random_boxes(200, generator)
    decoded = decode_boxes(encode_boxes(boxes, anchors), anchors)
    torch.testing.assert_close(decoded, boxes)


def test_encoding_by_hand():
    anchor = torch.tensor([[1.0, 2.0, -1.0, 4.0, 3.0, 2.0, 0.5]], dtype=torch.float64)
    box = torch.tensor([[6.0, -3.0, 0.0, 8.0, 3.0, 1.0, 1.5]], dtype=torch.float64)
    expected = torch.tensor([[1.0, -1.0, 0.5, math.log(2.0), 0.0, math.log(0.5), 1.0]], dtype=torch.float64)
    torch.testing.assert_close(encode_boxes(box, anchor), expected)


def test_sin_difference_is_zero_for_a_reversed_box():
    predicted = torch.tensor([[0.0] * 6 + [0.3]])
    target = torch.tensor([[0.0] * 6 + [0.3 + math.pi]])
    a, b = sin_difference(predicted, target)
    torch.testing.assert_close(a - b, torch.zeros_like(a), atol=1e-6, rtol=0)
    a, b = sin_difference(predicted, torch.tensor([[0.0] * 6 + [0.8]]))
    assert float((a - b)[0, 6]) == pytest.approx(math.sin(0.3 - 0.8), abs=1e-6)


@pytest.mark.parametrize("heading", [-3.0, -1.0, 0.0, 0.7, 2.0, 3.1])
def test_direction_classifier_recovers_the_heading(heading):
    headings = torch.tensor([heading, heading + math.pi])
    bins = direction_targets(headings)
    assert bins[0] != bins[1]
    # A regression that got the heading only up to pi is repaired by the bin.
    recovered = apply_direction(torch.tensor([heading + math.pi, heading]), bins)
    torch.testing.assert_close(limit_period(recovered - headings), torch.zeros(2), atol=1e-5, rtol=0)


def test_anchor_positions():
    (anchors,) = generate_anchors((CAR,), RANGE, (4, 8))
    assert anchors.shape == (4, 8, 2, 7)
    # Cells are 2 m x 4 m; the first centre is half a cell in.
    assert anchors[0, 0, 0, :2].tolist() == [1.0, -6.0]
    assert anchors[3, 7, 1, :2].tolist() == [15.0, 6.0]
    assert anchors[..., 2].unique().tolist() == [pytest.approx(-1.73 + 0.78)]
    assert anchors[0, 0, :, 6].tolist() == [0.0, pytest.approx(math.pi / 2)]


def test_nearest_bev_boxes_turn_to_the_closer_axis():
    boxes = torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0, 1.0, 0.1], [0.0, 0.0, 0.0, 4.0, 2.0, 1.0, math.pi / 2 - 0.1]])
    torch.testing.assert_close(nearest_bev_boxes(boxes), torch.tensor([[-2.0, -1.0, 2.0, 1.0], [-1.0, -2.0, 1.0, 2.0]]))


def test_axis_aligned_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    torch.testing.assert_close(axis_aligned_iou(a, b), torch.tensor([[1 / 7, 0.0, 1.0]]))


def test_assignment_positive_negative_ignored_and_forced():
    (anchors_car, anchors_ped) = generate_anchors((CAR, PEDESTRIAN), RANGE, (4, 8))
    # A car exactly on the anchor of cell (1, 2), rotation 0; a pedestrian off the
    # anchors of cell (1, 4): nearest-BEV IoU 0.1 / 0.86 with the 0-degree one and
    # 0.2 / 0.76 with the 90-degree one, both below 0.5.
    car = torch.tensor([[5.0, -2.0, -0.95, 3.9, 1.6, 1.56, 0.0]])
    pedestrian = torch.tensor([[9.3, -1.8, -0.865, 0.8, 0.6, 1.73, 0.3]])
    targets = assign_targets(
        [anchors_car, anchors_ped], (CAR, PEDESTRIAN), [torch.cat([car, pedestrian])], [torch.tensor([1, 2])]
    )
    labels = targets.labels[0].view(4, 8, 4)  # per cell: car 0, car 90, pedestrian 0, pedestrian 90
    assert labels[1, 2, 0] == 1 and (targets.box_targets[0].view(4, 8, 4, 7)[1, 2, 0].abs() < 1e-5).all()
    # The rotated car anchor at the same cell overlaps 1.6*1.6 / (2*3.9*1.6 - 1.6^2) = 0.258: negative.
    assert labels[1, 2, 1] == 0
    # No pedestrian anchor reaches 0.5, yet the best one is forced positive.
    assert (labels[..., 2:] == 2).nonzero().tolist() == [[1, 4, 1]]
    assert (labels == 2).sum() == (labels[..., 2:] == 2).sum()  # only pedestrian anchors carry label 2
    car_ious = axis_aligned_iou(nearest_bev_boxes(anchors_car.reshape(-1, 7)), nearest_bev_boxes(car))[:, 0]
    car_labels = labels[..., :2].reshape(-1)
    assert ((car_ious >= 0.6) == (car_labels == 1)).all()
    assert (car_labels[(car_ious >= 0.45) & (car_ious < 0.6)] == -1).all()
    assert (car_labels[car_ious < 0.45] == 0).all()


def test_box_overlapping_no_anchor_gets_none():
    anchors = generate_anchors((PEDESTRIAN,), RANGE, (4, 8))
    # Half-way between anchor rows 2 m apart: a 0.8 m box touches none of them.
    pedestrian = torch.tensor([[9.0, 0.0, -0.865, 0.8, 0.6, 1.73, 0.0]])
    targets = assign_targets(anchors, (PEDESTRIAN,), [pedestrian], [torch.tensor([1])])
    assert (targets.labels <= 0).all()


def test_frame_without_objects_is_all_negative():
    anchors = generate_anchors((CAR,), RANGE, (4, 8))
    targets = assign_targets(anchors, (CAR,), [torch.zeros(0, 7)], [torch.zeros(0, dtype=torch.long)])
    assert (targets.labels == 0).all()


def test_focal_loss_by_formula():
    logits = torch.tensor([-2.0, 0.0, 3.0, 1.0])
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0])
    p = torch.sigmoid(logits)
    expected = torch.where(targets > 0, -0.25 * (1 - p) ** 2 * torch.log(p), -0.75 * p**2 * torch.log(1 - p))
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets), expected)


def test_smooth_l1_matches_torch():
    difference = torch.linspace(-1, 1, 101)
    expected = F.smooth_l1_loss(difference, torch.zeros_like(difference), beta=1 / 9, reduction="none")
    torch.testing.assert_close(smooth_l1(difference), expected)


def test_head_loss_is_zero_only_for_perfect_predictions():
    head = AnchorHead(8, (CAR,), RANGE, (4, 8))
    car = torch.tensor([[5.0, -2.0, -0.95, 3.9, 1.6, 1.56, 0.0]])
    targets = head.targets([car], [torch.tensor([1])])
    predictions = head(torch.randn(1, 8, 4, 8))
    losses = head.loss(predictions, targets)
    assert all(torch.isfinite(value) for value in losses.values()) and losses["loss"] > 0
    # Perfect box and direction outputs leave only the classification term.
    perfect = dict(predictions)
    perfect["box"] = targets.box_targets.clone()
    perfect["direction"] = F.one_hot(targets.direction, 2).float() * 50
    losses = head.loss(perfect, targets)
    assert float(losses["box_loss"]) == pytest.approx(0.0, abs=1e-6)
    assert float(losses["direction_loss"]) == pytest.approx(0.0, abs=1e-6)
    # And decoding the perfect outputs gives the ground truth back at the positive anchor.
    boxes, _, _ = head.decode(perfect)
    positive = targets.labels[0] > 0
    torch.testing.assert_close(boxes[0, positive][0], car[0], atol=1e-5, rtol=0)


def test_anchor_config_rejects_bad_values():
    with pytest.raises(ValueError, match="size"):
        AnchorConfig("Car", (3.9, 0.0, 1.5), -1.7)
    with pytest.raises(ValueError, match="threshold"):
        AnchorConfig("Car", (3.9, 1.6, 1.5), -1.7, matched_threshold=0.3, unmatched_threshold=0.5)
