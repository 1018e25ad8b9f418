import math
from dataclasses import replace

import pytest
import torch

from pointkd.datasets.kitti import points_in_boxes
from pointkd.detection.detector import (
    Detector,
    DetectorConfig,
    build_detector,
    count_parameters,
    kitti_config,
    simlidar_config,
)
from pointkd.detection.iou import boxes_iou_bev
from pointkd.detection.train import load_detector, save_detector

SMALL_RANGE = (0.0, -6.4, -3.0, 20.48, 6.4, 1.0)


def box_surface_points(box, count, generator):
    """Points on the four sides and the top of a LiDAR box (what a scanner sees)."""
    local = torch.rand(count, 3, generator=generator) - 0.5
    face = torch.randint(0, 3, (count,), generator=generator)
    local[face == 0, 0] = 0.5 * torch.sign(local[face == 0, 0])
    local[face == 1, 1] = 0.5 * torch.sign(local[face == 1, 1])
    local[face == 2, 2] = 0.5
    local = local * box[3:6]
    cos, sin = math.cos(box[6]), math.sin(box[6])
    world = (
        torch.stack([local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos, local[:, 2]], dim=1)
        + box[:3]
    )
    return torch.cat([world, torch.full((count, 1), 0.6)], dim=1)


def synthetic_frame(seed):
    generator = torch.Generator().manual_seed(seed)
    ground = torch.rand(1500, 4, generator=generator) * torch.tensor([20.48, 12.8, 0.0, 0.2])
    ground += torch.tensor([0.0, -6.4, -1.73, 0.0])
    boxes = torch.tensor(
        [
            [8.0, -3.0, -0.95, 3.9, 1.6, 1.56, 0.2],
            [15.0, 3.0, -0.95, 4.2, 1.7, 1.5, -1.4],
            [6.0, 4.0, -0.865, 0.8, 0.6, 1.73, 0.0],
        ]
    )
    objects = [box_surface_points(box, 300 if index < 2 else 120, generator) for index, box in enumerate(boxes)]
    points = torch.cat([ground] + objects)
    return points, boxes, torch.tensor([1, 1, 2])


def small_config(detector="pointpillars", width=0.25):
    config = simlidar_config(detector, width)
    return replace(config, point_cloud_range=SMALL_RANGE)


@pytest.mark.parametrize("detector", ["pointpillars", "second"])
def test_detector_learns_a_frame(detector):
    torch.manual_seed(0)
    model = Detector(small_config(detector))
    points, boxes, labels = synthetic_frame(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = model.prepare([points])
    first = None
    for _ in range(40):
        losses = model.loss(model(batch), [boxes], [labels])
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = first if first is not None else float(losses["loss"].detach())
    assert float(losses["loss"].detach()) < first / 10
    # Batch statistics, not running ones: at OpenPCDet's BatchNorm momentum of 0.01
    # the running averages need hundreds of steps to settle.
    with torch.no_grad():
        (result,) = model.detect(model(model.prepare([points])))
    assert result["boxes"].shape[1] == 7 and result["scores"].shape == result["labels"].shape
    assert (result["scores"][:-1] >= result["scores"][1:]).all()
    # Both cars are found with a tight box by a confident detection of the right class.
    cars = result["labels"] == 1
    iou = boxes_iou_bev(boxes[:2], result["boxes"][cars])
    assert (iou.max(dim=1).values > 0.5).all(), iou


def test_empty_frame_and_frame_without_objects():
    model = Detector(small_config())
    batch = model.prepare([torch.zeros(0, 4), synthetic_frame(1)[0]])
    predictions = model(batch)
    losses = model.loss(predictions, [torch.zeros(0, 7), torch.zeros(0, 7)], [torch.zeros(0, dtype=torch.long)] * 2)
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    model.eval()
    assert len(model.detect(model(model.prepare([torch.zeros(0, 4)])))) == 1


def test_bad_points_are_refused():
    model = Detector(small_config())
    with pytest.raises(ValueError, match=r"points\[0\] must be a \(N, 4\) tensor"):
        model.prepare([torch.zeros(10, 3)])
    nan_points = synthetic_frame(0)[0]
    nan_points[5, 1] = float("nan")
    with pytest.raises(ValueError, match="points"):
        model.prepare([nan_points])
    # Points outside the range are dropped, not an error.
    outside = torch.tensor([[100.0, 0.0, 0.0, 0.5], [5.0, 50.0, 0.0, 0.5], [5.0, 0.0, 0.0, 0.5]])
    assert model.prepare([outside])["voxels"].shape[0] == 1


def test_widths_shrink_the_detector():
    sizes = [count_parameters(build_detector("pointpillars", width)) for width in (1.0, 0.5, 0.25)]
    assert sizes[0] > 3.5 * sizes[1] > 3.5 * 3.5 * sizes[2]
    # PointPillars as published has 4.8 M parameters for three classes.
    assert 4.5e6 < sizes[0] < 5.2e6


def test_presets():
    assert Detector(simlidar_config("pointpillars")).feature_size == (80, 80)
    assert kitti_config("pointpillars").grid.grid_size == (432, 496, 1)
    assert kitti_config("second").grid.grid_size == (1408, 1600, 40)
    with pytest.raises(ValueError, match="detector"):
        DetectorConfig(detector="pointrcnn")
    with pytest.raises(ValueError, match="width"):
        DetectorConfig(width=0.0)
    with pytest.raises(ValueError, match="pillars"):
        Detector(replace(simlidar_config(), voxel_size=(0.32, 0.32, 0.5)))


def test_save_and_load(tmp_path):
    model = Detector(small_config())
    save_detector(model, tmp_path / "model.pt", {"note": "x"})
    loaded, metadata = load_detector(tmp_path / "model.pt")
    assert metadata == {"note": "x"} and loaded.config == model.config
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_detector(tmp_path / "missing.pt")


def test_points_on_synthetic_objects_are_inside_them():
    points, boxes, _ = synthetic_frame(2)
    inside = points_in_boxes(points[-720:], boxes * torch.tensor([1, 1, 1, 1.01, 1.01, 1.01, 1]))
    assert inside[:300, 0].all() and inside[300:600, 1].all() and inside[600:, 2].all()
