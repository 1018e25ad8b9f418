"""Detection samples from KITTI-layout folders: SimLidar scenes or the real KITTI set.

``--data`` strings of the command line resolve here:

- ``simlidar`` or ``simlidar:N``: ``N`` (default 1000) simulated training frames
  and ``val_frames`` further frames of the same simulator held out for
  evaluation, generated once into the cache (:func:`pointkd.datasets.simlidar_root`);
- ``kitti:PATH``: a KITTI 3D-object folder with ``ImageSets/train.txt`` and
  ``ImageSets/val.txt`` (the usual 3,712 / 3,769 split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pointkd.datasets.kitti import load_kitti_frame

DEFAULT_SIMLIDAR_FRAMES = 1000


@dataclass(frozen=True)
class DataSpec:
    """Where the frames of a run come from."""

    kind: str  # "simlidar" or "kitti"
    root: Path
    train_ids: tuple[str, ...]
    val_ids: tuple[str, ...]


def _read_ids(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


def resolve_data(spec: str, val_frames: int = 200, seed: int = 0) -> DataSpec:
    """Parse a ``--data`` string (see the module docstring), generating SimLidar frames when needed."""
    if spec == "simlidar" or spec.startswith("simlidar:"):
        count_text = spec.partition(":")[2] or str(DEFAULT_SIMLIDAR_FRAMES)
        try:
            count = int(count_text)
        except ValueError:
            raise ValueError(f"--data simlidar:N needs an integer N, got {count_text!r}") from None
        if count < 1 or val_frames < 1:
            raise ValueError(
                f"simlidar needs at least one training and one validation frame, got {count} and {val_frames}"
            )
        from pointkd.datasets.simlidar import simlidar_root

        root = simlidar_root(count + val_frames, seed=seed)
        ids = [f"{index:06d}" for index in range(count + val_frames)]
        return DataSpec("simlidar", Path(root), tuple(ids[:count]), tuple(ids[count:]))
    if spec.startswith("kitti:"):
        root = Path(spec.partition(":")[2]).expanduser()
        if not (root / "training" / "velodyne").is_dir():
            raise FileNotFoundError(f"--data kitti:PATH needs PATH/training/velodyne; {root} has none")
        return DataSpec(
            "kitti", root, _read_ids(root / "ImageSets" / "train.txt"), _read_ids(root / "ImageSets" / "val.txt")
        )
    raise ValueError(f"--data must be 'simlidar', 'simlidar:N' or 'kitti:PATH', got {spec!r}")


def in_range_mask(points: Tensor, point_cloud_range: tuple[float, ...]) -> Tensor:
    """Points (or box centres) whose x and y lie in the range's half-open BEV rectangle."""
    x0, y0, _, x1, y1, _ = point_cloud_range
    return (points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)


class DetectionDataset(Dataset):
    """Frames of a KITTI-layout folder as detector samples.

    Each sample holds the camera-FOV-cropped points, the LiDAR boxes of the
    detector's classes whose centres lie in the point-cloud range with their
    1-based labels, and what evaluation needs (objects, calibration, image
    size). With ``augment`` the training augmentation runs with a generator
    seeded by ``(seed, epoch, index)`` (:meth:`set_epoch`), so a resumed run
    sees the same samples.

    Args:
        root (path): the KITTI-layout root.
        frame_ids (sequence[str]): frames of ``root/split``.
        class_names (tuple[str]): classes to detect, in label order.
        point_cloud_range (tuple): ``(x0, y0, z0, x1, y1, z1)``.
        split (str): ``"training"`` or ``"testing"``. (default: ``"training"``)
        augment (AugmentConfig, optional): training augmentation. (default: none)
        sampler (GroundTruthSampler, optional): ground-truth database for ``augment``.
        seed (int): augmentation seed. (default: ``0``)
    """

    def __init__(
        self,
        root: str | Path,
        frame_ids,
        class_names: tuple[str, ...],
        point_cloud_range: tuple[float, ...],
        split: str = "training",
        augment=None,
        sampler=None,
        seed: int = 0,
    ):
        self.root = Path(root)
        self.frame_ids = tuple(frame_ids)
        if not self.frame_ids:
            raise ValueError("frame_ids must not be empty")
        self.class_names = tuple(class_names)
        self.point_cloud_range = tuple(point_cloud_range)
        self.split = split
        self.augment = augment
        self.sampler = sampler
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.frame_ids)

    def frame(self, index: int):
        return load_kitti_frame(self.root, self.frame_ids[index], self.split, crop_to_fov=True)

    def __getitem__(self, index: int) -> dict:
        frame = self.frame(index)
        names = [obj.type for obj in frame.objects]
        keep = [name in self.class_names for name in names]
        boxes = frame.boxes[torch.tensor(keep, dtype=torch.bool)] if names else frame.boxes
        names = [name for name, kept in zip(names, keep) if kept]
        points = frame.points
        if self.augment is not None:
            state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
            generator = torch.Generator().manual_seed(int(state))
            points, boxes, names = self.augment.apply(points, boxes, names, generator, sampler=self.sampler)
        inside = in_range_mask(boxes, self.point_cloud_range) if boxes.shape[0] else torch.zeros(0, dtype=torch.bool)
        boxes = boxes[inside]
        names = [name for name, kept in zip(names, inside.tolist()) if kept]
        labels = torch.tensor([self.class_names.index(name) + 1 for name in names], dtype=torch.long)
        return {
            "frame_id": frame.frame_id,
            "points": points[in_range_mask(points, self.point_cloud_range)],
            "gt_boxes": boxes.float(),
            "gt_labels": labels,
            "objects": frame.objects,
            "calib": frame.calib,
            "image_size": frame.image_size,
        }


def collate(samples: list[dict]) -> dict:
    """Samples to a batch of lists (voxelization happens in the model's ``prepare``)."""
    return {key: [sample[key] for sample in samples] for key in samples[0]}
