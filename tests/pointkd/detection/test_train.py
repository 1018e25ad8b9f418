import json
import os
import subprocess
import sys

import pytest
import torch

from pointkd.cli import main
from pointkd.detection import train as train_module
from pointkd.detection.data import DetectionDataset, resolve_data
from pointkd.detection.detector import Detector
from pointkd.detection.train import DetectorTrainConfig, evaluate_detector, load_detector, train_detector
from tests.conftest import REPO_ROOT

# Narrow detectors on a handful of SimLidar frames keep these tests in seconds; the
# full-width runs are measured by benchmarks/pointkd/detectors.py.
TINY = {"width": 0.25, "data": "simlidar:6", "val_frames": 2, "batch_size": 2, "log_every": 1, "bev_frames": 1}


class _Interrupt(Exception):
    pass


def test_training_writes_its_outputs(tmp_path):
    results = train_detector(DetectorTrainConfig(epochs=1, **TINY), tmp_path / "run")
    out = tmp_path / "run"
    for name in ("model.pt", "last.pt", "results.json", "curve.jsonl", "curves.png", "log.txt", "gt_database.pt"):
        assert (out / name).is_file(), name
    assert len(list((out / "bev").glob("*.png"))) == 1
    assert results["steps"] == 3 and results["train_frames"] == 6 and results["eval_frames"] == 2
    assert set(results["ap"]) == {"Car", "Pedestrian", "Cyclist"}
    assert set(results["headline"]) == {
        f"{name}_{metric}" for name in ("Car", "Pedestrian", "Cyclist") for metric in ("bev", "3d")
    }
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in curve if "loss" in entry] == [1, 2, 3]
    model, metadata = load_detector(out / "model.pt")
    assert model.config.width == 0.25 and metadata["steps"] == 3


def test_resume_is_exact(tmp_path, monkeypatch):
    config = DetectorTrainConfig(epochs=2, checkpoint_every=2, **TINY)
    train_detector(config, tmp_path / "straight")

    calls = {"count": 0}
    collate = train_module.collate

    def interrupted(samples):
        calls["count"] += 1
        if calls["count"] == 5:  # mid-way through the second epoch, after the step-4 checkpoint
            raise _Interrupt
        return collate(samples)

    monkeypatch.setattr(train_module, "collate", interrupted)
    with pytest.raises(_Interrupt):
        train_detector(config, tmp_path / "resumed")
    monkeypatch.setattr(train_module, "collate", collate)
    resumed = train_detector(config, tmp_path / "resumed")
    assert resumed["steps"] == 6
    first, _ = load_detector(tmp_path / "straight" / "model.pt")
    second, _ = load_detector(tmp_path / "resumed" / "model.pt")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)

    with pytest.raises(ValueError, match="use another --out"):
        train_detector(DetectorTrainConfig(epochs=2, seed=1, **{**TINY, "width": 0.5}), tmp_path / "resumed")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="detector must be one of"):
        DetectorTrainConfig(detector="pointrcnn")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        DetectorTrainConfig(epochs=0)
    with pytest.raises(ValueError, match="simlidar:N"):
        resolve_data("simlidar:many")
    with pytest.raises(ValueError, match="--data must be"):
        resolve_data("nuscenes")
    with pytest.raises(FileNotFoundError, match="velodyne"):
        resolve_data("kitti:/nonexistent")


def test_cli_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["train", "--width", "0.25", "--data", "simlidar:4", "--val-frames", "2", "--epochs", "1", "--no-gt-sampling",
         "--out", str(out), "--json"]
    )  # fmt: skip
    assert code == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["steps"] == 2
    code = main(["eval", "--ckpt", str(out / "model.pt"), "--data", "simlidar:4", "--val-frames", "2", "--json",
                 "--bev", str(tmp_path / "bev")])  # fmt: skip
    assert code == 0
    evaluated = json.loads(capsys.readouterr().out)
    # The same frames through the same weights: the same scores.
    assert evaluated["headline"] == trained["headline"] and evaluated["frames"] == 2
    assert len(list((tmp_path / "bev").glob("*.png"))) == 2
    assert main(["eval", "--ckpt", str(out / "last.pt"), "--data", "simlidar:4", "--val-frames", "2"]) == 0
    assert "Car" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert main(["eval", "--ckpt", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err
    assert main(["train", "--data", "kitti:" + str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "velodyne" in capsys.readouterr().err


def test_training_under_torchrun(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", GEOKD_PROGRESS="0")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "pointkd.cli", "train", "--width", "0.25", "--data", "simlidar:4", "--val-frames", "2",
        "--epochs", "1", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["steps"] == 1  # 4 frames, 2 per rank and step
    assert (out / "last.pt").is_file() and (out / "model.pt").is_file()
    assert not (out / "log.rank1.txt").exists()


def test_real_kitti_frames_through_the_kitti_preset(shared_data):
    root = shared_data / "kitti_sample"
    if not root.is_dir():
        pytest.skip("kitti_sample not in the shared data")
    spec = resolve_data(f"kitti:{root}")
    assert spec.train_ids[:2] == ("000000", "000001")
    config = DetectorTrainConfig(data=f"kitti:{root}", width=0.25).detector_config()
    assert config.voxel_size == (0.16, 0.16, 4.0)
    # Frames 000000 and 000001 have their images, which the camera-FOV crop needs.
    dataset = DetectionDataset(root, ("000000", "000001"), config.class_names, config.point_cloud_range)
    samples = [dataset[0], dataset[1]]
    assert samples[0]["gt_labels"].tolist() == [2]  # the pedestrian of frame 000000
    model = Detector(config)
    losses = model.loss(
        model(model.prepare([sample["points"] for sample in samples])),
        [sample["gt_boxes"] for sample in samples],
        [sample["gt_labels"] for sample in samples],
    )
    assert torch.isfinite(losses["loss"])
    evaluation = evaluate_detector(model, dataset)
    assert set(evaluation["ap"]) == {"Car", "Pedestrian", "Cyclist"} and len(evaluation["detections"]) == 2
