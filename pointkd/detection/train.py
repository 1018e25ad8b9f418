"""Training and evaluating PointPillars / SECOND on KITTI-layout data.

Reads top to bottom: data (SimLidar or KITTI, augmentation with a ground-truth
database), detector, optimizer (AdamW with a one-cycle schedule, as OpenPCDet),
loop (voxelize, forward, anchor targets, loss, clipped step), evaluation on the
held-out frames (KITTI AP, R11 and R40, BEV and 3D), outputs. Runs as a plain
process or under ``torchrun`` (DDP: each rank takes its share of every epoch's
frames, gradients are averaged).

A run directory holds ``last.pt`` (resumed automatically with the same
configuration, also mid-epoch), ``model.pt`` (:func:`load_detector`),
``results.json``, ``curve.jsonl`` (losses and evaluations along training),
``curves.png``, ``bev/`` (bird's-eye views of held-out frames) and ``log.txt``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geokd.checkpoint import CheckpointManager, atomic_save
from geokd.distributed import DistributedContext, init_distributed, wrap_model
from geokd.log import get_logger, progress
from geokd.seed import seed_everything
from pointkd.detection.data import DetectionDataset, collate, resolve_data
from pointkd.detection.detector import (
    DETECTORS,
    Detector,
    DetectorConfig,
    count_parameters,
    kitti_config,
    simlidar_config,
)

MODEL_FORMAT_VERSION = 1


@dataclass
class DetectorTrainConfig:
    """Options of :func:`train_detector` (the ``pointkd train`` flags).

    Args:
        detector (str): ``pointpillars`` or ``second``.
        width (float): channel multiplier (``0.5``, ``0.25`` for students). (default: ``1.0``)
        data (str): ``simlidar[:N]`` or ``kitti:PATH`` (:func:`~pointkd.detection.data.resolve_data`).
        epochs (int): passes over the training frames.
        batch_size (int): frames per step and rank. (default: ``2``)
        lr (float): peak learning rate of the one-cycle schedule. (default: ``3e-3``)
        weight_decay (float): AdamW weight decay. (default: ``0.01``)
        grad_clip (float): gradient norm clip. (default: ``10``)
        val_frames (int): held-out SimLidar frames. (default: ``200``)
        eval_every (int): epochs between evaluations (``0``: only at the end). (default: ``0``)
        max_eval_frames (int): evaluate on at most this many held-out frames (``0``: all).
        augment (bool): flip, rotation, scaling. (default: ``True``)
        gt_sampling (bool): paste objects from the ground-truth database. (default: ``True``)
        checkpoint_every (int): steps between ``last.pt`` writes. (default: ``200``)
        log_every (int): steps between curve entries. (default: ``50``)
        bev_frames (int): held-out frames drawn in ``bev/``. (default: ``4``)
        seed (int): seed of data generation, initialisation and augmentation. (default: ``0``)
    """

    detector: str = "pointpillars"
    width: float = 1.0
    data: str = "simlidar"
    epochs: int = 10
    batch_size: int = 2
    lr: float = 3e-3
    weight_decay: float = 0.01
    grad_clip: float = 10.0
    val_frames: int = 200
    eval_every: int = 0
    max_eval_frames: int = 0
    augment: bool = True
    gt_sampling: bool = True
    checkpoint_every: int = 200
    log_every: int = 50
    bev_frames: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        for name in ("epochs", "batch_size", "val_frames", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be positive and weight_decay non-negative")

    def resume_key(self) -> dict[str, Any]:
        """What must match for a run directory to be resumed."""
        keep = ("detector", "width", "data", "epochs", "batch_size", "lr", "weight_decay", "augment", "gt_sampling")
        return {name: getattr(self, name) for name in keep} | {"seed": self.seed}

    def detector_config(self) -> DetectorConfig:
        preset = kitti_config if self.data.startswith("kitti:") else simlidar_config
        return preset(self.detector, self.width)


def save_detector(model: Detector, path: str | Path, metadata: dict | None = None) -> None:
    """Write the detector's configuration and weights atomically (``load_detector`` reads it back)."""
    payload = {
        "format_version": MODEL_FORMAT_VERSION,
        "config": model.config.to_dict(),
        "in_channels": model.in_channels,
        "state_dict": model.state_dict(),
        "metadata": metadata or {},
    }
    atomic_save(payload, path)


def load_detector(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Detector, dict]:
    """A :class:`Detector` and its metadata from :func:`save_detector`'s file (or a run's ``last.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if "state" in payload and "format_version" not in payload:  # a run's last.pt
        state = payload["state"]
        payload = {
            "format_version": MODEL_FORMAT_VERSION,
            "config": state["detector_config"],
            "in_channels": state["in_channels"],
            "state_dict": state["model"],
            "metadata": {"step": state["step"]},
        }
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(
            f"{path}: detector format version {payload.get('format_version')}, this geokd reads {MODEL_FORMAT_VERSION}"
        )
    model = Detector(DetectorConfig.from_dict(payload["config"]), payload["in_channels"])
    model.load_state_dict(payload["state_dict"])
    return model.to(map_location), payload["metadata"]


def build_datasets(
    config: DetectorTrainConfig, detector_config: DetectorConfig, out_dir: Path, ctx: DistributedContext
):
    """The training dataset (augmented) and the held-out one."""
    spec = resolve_data(config.data, config.val_frames, config.seed) if ctx.is_main else None
    ctx.barrier()  # rank 0 generated any SimLidar frames; now every rank resolves from the cache
    spec = spec or resolve_data(config.data, config.val_frames, config.seed)
    names, point_range = detector_config.class_names, detector_config.point_cloud_range
    augment = sampler = None
    if config.augment or config.gt_sampling:
        from pointkd.detection.augment import AugmentConfig, GroundTruthSampler

        augment = (
            AugmentConfig()
            if config.augment
            else AugmentConfig(flip_probability=0.0, rotation_range=(0.0, 0.0), scale_range=(1.0, 1.0))
        )
        if config.gt_sampling:
            database = out_dir / "gt_database.pt"
            if ctx.is_main and not database.is_file():
                plain = DetectionDataset(spec.root, spec.train_ids, names, point_range)
                frames = (
                    (
                        frame.points,
                        frame.boxes,
                        [obj.type for obj in frame.objects],
                        [obj.difficulty for obj in frame.objects],
                    )
                    for frame in (plain.frame(index) for index in range(len(plain)))
                )
                # OpenPCDet's KITTI database: at least 5 points, no object outside the difficulty levels.
                GroundTruthSampler.build(
                    progress(frames, ctx, total=len(plain), desc="ground-truth database"),
                    min_points={name: 5 for name in names},
                    exclude_difficulties=(-1,),
                    classes=names,
                ).save(database)
            ctx.barrier()
            sampler = GroundTruthSampler.load(database)
    train_set = DetectionDataset(
        spec.root, spec.train_ids, names, point_range, augment=augment, sampler=sampler, seed=config.seed
    )
    val_ids = spec.val_ids[: config.max_eval_frames] if config.max_eval_frames else spec.val_ids
    return train_set, DetectionDataset(spec.root, val_ids, names, point_range)


@torch.no_grad()
def evaluate_detector(model: Detector, dataset: DetectionDataset, ctx: DistributedContext | None = None) -> dict:
    """KITTI AP of ``model`` on ``dataset`` (frame by frame) and its per-frame latency.

    Returns ``{"ap": evaluate_kitti's result, "latency_ms": mean per frame,
    "detections": per frame (boxes, scores, labels)}``.
    """
    from pointkd.datasets.kitti import lidar_boxes_to_objects
    from pointkd.detection.kitti_eval import evaluate_kitti

    ctx = ctx or DistributedContext()
    was_training = model.training
    model.eval()
    ground_truth, detections, raw, seconds = [], [], [], 0.0
    for index in progress(range(len(dataset)), ctx, desc="eval", leave=False):
        sample = dataset[index]
        tic = time.perf_counter()
        batch = model.prepare([sample["points"]])
        (result,) = model.detect(model(batch))
        seconds += time.perf_counter() - tic
        result = {key: value.cpu() for key, value in result.items()}
        raw.append(result)
        types = [model.class_names[label - 1] for label in result["labels"].tolist()]
        detections.append(
            lidar_boxes_to_objects(
                result["boxes"].double(), types, sample["calib"], sample["image_size"], scores=result["scores"]
            )
        )
        ground_truth.append(sample["objects"])
    model.train(was_training)
    ap = evaluate_kitti(ground_truth, detections, classes=model.class_names)
    return {"ap": ap, "latency_ms": 1000 * seconds / max(len(dataset), 1), "detections": raw}


def headline(ap: dict) -> dict[str, float]:
    """Moderate R40 BEV and 3D AP per class, flat (``Car_bev``, ``Car_3d``, ...)."""
    return {
        f"{name}_{metric}": float(values[metric]["R40"][1]) for name, values in ap.items() for metric in ("bev", "3d")
    }


def write_curves_png(path: Path, curve: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = [entry for entry in curve if "loss" in entry]
    evals = [entry for entry in curve if "ap" in entry]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if losses:
        steps = [entry["step"] for entry in losses]
        for key in ("loss", "cls_loss", "box_loss", "direction_loss"):
            axes[0].plot(steps, [entry[key] for entry in losses], label=key)
        axes[0].set_yscale("log")
        axes[0].set_xlabel("step")
        axes[0].legend()
    for key in sorted(evals[0]["ap"]) if evals else []:
        axes[1].plot([entry["step"] for entry in evals], [entry["ap"][key] for entry in evals], marker="o", label=key)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("AP R40 moderate")
    if evals:
        axes[1].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def epoch_order(num_frames: int, seed: int, epoch: int) -> list[int]:
    """The frames of one epoch in their shuffled order (the same on every rank and after a resume)."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    return torch.randperm(num_frames, generator=generator).tolist()


def train_detector(config: DetectorTrainConfig, out_dir: str | Path, ctx: DistributedContext | None = None) -> dict:
    """Train ``config.detector`` on ``config.data``; see the module docstring for the outputs."""
    ctx = ctx or init_distributed()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = get_logger("pointkd.detection", ctx, log_dir=out_dir)
    seed_everything(config.seed)

    # -- data -------------------------------------------------------------------
    detector_config = config.detector_config()
    train_set, val_set = build_datasets(config, detector_config, out_dir, ctx)
    logger.info("data %s: %d training frames, %d held-out frames", config.data, len(train_set), len(val_set))
    steps_per_epoch = math.ceil(len(train_set) / (config.batch_size * ctx.world_size))
    total_steps = steps_per_epoch * config.epochs

    # -- detector, optimizer ------------------------------------------------------
    model = Detector(detector_config).to(ctx.device)
    # The fused kernel (CPU and CUDA) takes a quarter of the time of the per-tensor loop here.
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.95, 0.99), weight_decay=config.weight_decay, fused=True
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.4, div_factor=10.0,
        base_momentum=0.85, max_momentum=0.95, cycle_momentum=True,
    )  # fmt: skip
    manager = CheckpointManager(out_dir, ctx)
    step, elapsed, curve = 0, 0.0, []
    state = manager.resume(config_key=config.resume_key())
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, elapsed, curve = state["step"], state["elapsed_s"], state["curve"]
        logger.info("resumed from %s at step %d", manager.last_path, step)
    logger.info(
        "%s width %.2f: %s parameters, head map %dx%d", config.detector, config.width,
        f"{count_parameters(model):,}", *model.feature_size,
    )  # fmt: skip
    ddp_model = wrap_model(model, ctx)

    def checkpoint() -> None:
        manager.save(
            {
                "step": step,
                "elapsed_s": elapsed + time.perf_counter() - tic - eval_seconds,
                "config_key": config.resume_key(),
                "detector_config": detector_config.to_dict(),
                "in_channels": model.in_channels,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "curve": curve,
            }
        )

    eval_seconds = 0.0  # intermediate evaluations, not counted as training time

    def evaluate_now() -> None:
        nonlocal eval_seconds
        started = time.perf_counter()
        if ctx.is_main:
            result = evaluate_detector(model, val_set, ctx)
            entry = {"step": step, "ap": headline(result["ap"]), "latency_ms": result["latency_ms"]}
            curve.append(entry)
            logger.info("step %d: %s", step, ", ".join(f"{key} {value:.2f}" for key, value in entry["ap"].items()))
        ctx.barrier()
        eval_seconds += time.perf_counter() - started

    # -- loop -------------------------------------------------------------------
    model.train()
    bar = progress(total=total_steps, initial=step, ctx=ctx, desc=f"{config.detector} x{config.width:g}")
    window: dict[str, float] = {}
    window_steps = 0
    tic = time.perf_counter()
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        train_set.set_epoch(epoch)
        order = epoch_order(len(train_set), config.seed, epoch)
        per_step = config.batch_size * ctx.world_size
        for batch_index in range(offset, steps_per_epoch):
            chunk = order[batch_index * per_step : (batch_index + 1) * per_step]
            mine = chunk[ctx.rank :: ctx.world_size] or chunk[:1]
            batch = collate([train_set[index] for index in mine])
            inputs = model.prepare(batch["points"])
            predictions = ddp_model(inputs)
            losses = model.loss(
                predictions,
                [boxes.to(ctx.device) for boxes in batch["gt_boxes"]],
                [labels.to(ctx.device) for labels in batch["gt_labels"]],
            )
            if not math.isfinite(float(losses["loss"].detach())):
                raise FloatingPointError(
                    f"loss became {float(losses['loss'].detach())} at step {step + 1}; last.pt holds the run before it"
                )
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            for key, value in losses.items():
                window[key] = window.get(key, 0.0) + float(value.detach())
            window_steps += 1
            if step % config.log_every == 0 or step == total_steps:
                entry = {"step": step, "epoch": epoch} | {key: value / window_steps for key, value in window.items()}
                entry["lr"] = scheduler.get_last_lr()[0]
                entry["elapsed_s"] = elapsed + time.perf_counter() - tic - eval_seconds
                curve.append(entry)
                bar.set_postfix(loss=f"{entry['loss']:.3f}")
                logger.info(
                    "step %d/%d epoch %d: loss %.4f (cls %.4f, box %.4f, dir %.4f), lr %.2e, %.0f s",
                    step, total_steps, epoch, entry["loss"], entry["cls_loss"], entry["box_loss"],
                    entry["direction_loss"], entry["lr"], entry["elapsed_s"],
                )  # fmt: skip
                window, window_steps = {}, 0
            if step % config.checkpoint_every == 0 and step < total_steps:
                checkpoint()
        if config.eval_every and (epoch + 1) % config.eval_every == 0 and step < total_steps:
            evaluate_now()
            checkpoint()
    bar.close()
    train_time = elapsed + time.perf_counter() - tic - eval_seconds
    checkpoint()

    # -- evaluation, outputs ---------------------------------------------------------
    results: dict[str, Any] = {"config": dataclasses.asdict(config), "train_time_s": train_time}
    if ctx.is_main:
        evaluation = evaluate_detector(model, val_set, ctx)
        curve.append({"step": step, "ap": headline(evaluation["ap"]), "latency_ms": evaluation["latency_ms"]})
        results.update(
            {
                "detector": config.detector,
                "width": config.width,
                "parameters": count_parameters(model),
                "steps": step,
                "train_frames": len(train_set),
                "eval_frames": len(val_set),
                "ap": evaluation["ap"],
                "headline": headline(evaluation["ap"]),
                "latency_ms_per_frame": evaluation["latency_ms"],
                "device": str(ctx.device),
                "world_size": ctx.world_size,
                "torch_threads": torch.get_num_threads(),
            }
        )
        save_detector(
            model, out_dir / "model.pt", {"data": config.data, "steps": step, "headline": results["headline"]}
        )
        from pointkd.detection.vis import draw_bev

        for index in range(min(config.bev_frames, len(val_set))):
            sample = val_set[index]
            detection = evaluation["detections"][index]
            draw_bev(
                out_dir / "bev" / f"{sample['frame_id']}.png", sample["points"], sample["gt_boxes"],
                detection["boxes"], detection["scores"], detector_config.point_cloud_range,
            )  # fmt: skip
        (out_dir / "curve.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in curve))
        write_curves_png(out_dir / "curves.png", curve)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        logger.info(
            "%s width %g on %s: %s; %d steps in %.0f s, %.0f ms per frame",
            config.detector, config.width, config.data,
            ", ".join(f"{key} {value:.2f}" for key, value in results["headline"].items()),
            step, train_time, results["latency_ms_per_frame"],
        )  # fmt: skip
    ctx.barrier()
    return results
