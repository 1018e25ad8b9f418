"""The ``pointkd`` command: point-cloud detector compression and radiance-field conversion.

Run ``pointkd --help`` for the subcommands and ``pointkd <command> --help`` for
the options of one.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from geokd.cli import make_parser, run_info, run_main

EXAMPLES = """\
examples:
  pointkd train --detector pointpillars --data simlidar:200 --epochs 2 --out runs/pp-demo
                               train PointPillars on 200 simulated LiDAR frames, evaluate KITTI AP on 200 more
  pointkd train --detector second --width 0.5 --data kitti:/data/kitti --epochs 80 --out runs/second-half
                               a half-width SECOND student on the KITTI train split, AP on val
  pointkd eval --ckpt runs/pp-demo/model.pt --data simlidar:200 --json
                               KITTI AP (R11/R40, BEV/3D) of a trained detector
  pointkd info                 what was built: ops with CPU/CUDA kernels, torch and CUDA versions
  pointkd info --json          the same as JSON
  pointkd nerf train --field hash --data procedural --iters 500 --out runs/nerf-demo
                               train a hash-grid radiance field on the embedded analytic scene
  pointkd nerf train --field grid --data lego --scale 0.125 --iters 3000 --out runs/lego-grid --json
                               a voxel-grid field on NeRF-synthetic lego at 100x100 (every 8th view held out)
"""


def build_parser() -> argparse.ArgumentParser:
    parser, subparsers = make_parser(
        "pointkd",
        "pointkd: compress point-cloud 3D detectors and convert radiance fields between architectures.",
        EXAMPLES,
    )
    add_detector_parsers(subparsers)
    add_nerf_parser(subparsers)
    return parser


def add_detector_parsers(subparsers: argparse._SubParsersAction) -> None:
    from pointkd.detection.detector import DETECTORS
    from pointkd.detection.train import DetectorTrainConfig

    defaults = DetectorTrainConfig()
    data_help = (
        "'simlidar[:N]' (N simulated training frames, default 1000, plus --val-frames held out; generated once "
        "into the cache) or 'kitti:PATH' (a KITTI 3D-object folder with ImageSets/train.txt and val.txt)"
    )
    train = subparsers.add_parser(
        "train",
        help="train a PointPillars or SECOND detector",
        description=(
            "Train a LiDAR 3D detector and evaluate KITTI AP (R11/R40, BEV/3D, easy/moderate/hard) on held-out "
            "frames. Resumes from OUT/last.pt when it exists. Runs under torchrun for data-parallel training."
        ),
    )
    train.add_argument("--detector", choices=DETECTORS, default=defaults.detector)
    train.add_argument(
        "--width", type=float, default=defaults.width, help="channel multiplier: 0.5 and 0.25 build students"
    )
    train.add_argument("--data", default=defaults.data, help=data_help)
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="frames per step and process")
    train.add_argument(
        "--lr", type=float, default=defaults.lr, help="peak one-cycle learning rate (default: %(default)s)"
    )
    train.add_argument("--val-frames", type=int, default=defaults.val_frames, help="held-out SimLidar frames")
    train.add_argument(
        "--eval-every", type=int, default=defaults.eval_every, help="epochs between evaluations (0: at the end)"
    )
    train.add_argument("--max-eval-frames", type=int, default=0, help="evaluate on at most N held-out frames")
    train.add_argument("--no-augment", action="store_true", help="no flip, rotation or scaling")
    train.add_argument("--no-gt-sampling", action="store_true", help="no ground-truth database sampling")
    train.add_argument(
        "--checkpoint-every", type=int, default=defaults.checkpoint_every, help="steps between last.pt writes"
    )
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--out", required=True, help="run directory (checkpoints, curves, BEV pictures, results)")
    train.add_argument("--json", action="store_true", help="print the results as JSON")

    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate a trained detector (KITTI AP)",
        description="KITTI AP (R11/R40, BEV/3D, easy/moderate/hard) of a detector on held-out frames.",
    )
    evaluate.add_argument("--ckpt", required=True, help="a model.pt (or a run's last.pt)")
    evaluate.add_argument("--data", default=defaults.data, help=data_help)
    evaluate.add_argument("--val-frames", type=int, default=defaults.val_frames, help="held-out SimLidar frames")
    evaluate.add_argument("--max-eval-frames", type=int, default=0, help="evaluate on at most N held-out frames")
    evaluate.add_argument("--seed", type=int, default=defaults.seed, help="SimLidar seed of the data")
    evaluate.add_argument("--bev", default=None, help="write bird's-eye-view PNGs of the first frames to this folder")
    evaluate.add_argument("--json", action="store_true", help="print the results as JSON")


def add_nerf_parser(subparsers: argparse._SubParsersAction) -> None:
    from pointkd.nerf.train import FIELD_PRESETS, NerfTrainConfig

    defaults = NerfTrainConfig()
    nerf = subparsers.add_parser("nerf", help="radiance fields: train from scratch")
    nerf_commands = nerf.add_subparsers(dest="nerf_command", metavar="NERF_COMMAND")
    train = nerf_commands.add_parser(
        "train",
        help="train a radiance field from scratch",
        description=(
            "Train a radiance field (mlp: NeRF MLP, grid: dense voxels, vm: TensoRF, hash: Instant-NGP) on posed "
            "images, evaluate held-out views (PSNR, SSIM, PNG renders). Resumes from OUT/last.pt when it exists. "
            "Runs under torchrun for data-parallel training."
        ),
    )
    train.add_argument("--field", choices=sorted(FIELD_PRESETS), default=defaults.field)
    train.add_argument(
        "--data",
        default=defaults.data,
        help="'procedural' (embedded analytic scene), 'lego' (NeRF-synthetic under GEOKD_DATA) or a scene folder "
        f"(default: {defaults.data})",
    )
    train.add_argument(
        "--scale", type=float, default=defaults.scale, help=f"image downscaling (default: {defaults.scale})"
    )
    train.add_argument("--iters", type=int, default=defaults.iters, help=f"training steps (default: {defaults.iters})")
    train.add_argument(
        "--batch-rays", type=int, default=defaults.batch_rays, help=f"rays per step (default: {defaults.batch_rays})"
    )
    train.add_argument(
        "--samples-per-diagonal",
        type=int,
        default=defaults.samples_per_diagonal,
        help="ray-marching step = scene-box diagonal / this (default: %(default)s)",
    )
    train.add_argument("--lr-scale", type=float, default=defaults.lr_scale, help="multiplies the preset learning rates")
    train.add_argument(
        "--holdout-every", type=int, default=defaults.holdout_every, help="hold out every k-th view for evaluation"
    )
    train.add_argument(
        "--num-views", type=int, default=defaults.num_views, help="views of the procedural scene (default: %(default)s)"
    )
    train.add_argument(
        "--resolution",
        type=int,
        default=defaults.resolution,
        help="image size of the procedural scene (default: %(default)s)",
    )
    train.add_argument(
        "--field-options",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="constructor arguments overriding the field preset, e.g. '{\"resolution\": 96}'",
    )
    train.add_argument("--eval-views", type=int, default=None, help="evaluate only the first N held-out views")
    train.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--out", required=True, help="run directory (checkpoints, renders, results)")
    train.add_argument("--json", action="store_true", help="print the results as JSON")


def _info(args: argparse.Namespace) -> int:
    from pointkd import extension_info

    return run_info(extension_info, args.json)


def _nerf(args: argparse.Namespace) -> int:
    if args.nerf_command != "train":
        raise ValueError("choose a nerf command: pointkd nerf train --help")
    from geokd.distributed import cleanup, init_distributed
    from pointkd.nerf.train import NerfTrainConfig, train_nerf

    config = NerfTrainConfig(
        field=args.field,
        data=args.data,
        scale=args.scale,
        iters=args.iters,
        batch_rays=args.batch_rays,
        lr_scale=args.lr_scale,
        samples_per_diagonal=args.samples_per_diagonal,
        holdout_every=args.holdout_every,
        num_views=args.num_views,
        resolution=args.resolution,
        field_options=args.field_options,
        eval_views=args.eval_views,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    ctx = init_distributed()
    try:
        results = train_nerf(config, args.out, ctx)
    finally:
        cleanup(ctx)
    if ctx.is_main:
        if args.json:
            print(json.dumps({key: value for key, value in results.items() if key != "test_views"}, indent=2))
        else:
            print(
                f"{config.field} on {config.data}: held-out PSNR {results['test_psnr']:.2f} dB, "
                f"SSIM {results['test_ssim']:.4f}, {config.iters} steps in {results['train_time_s']:.0f} s -> {args.out}"
            )
    return 0


def _train(args: argparse.Namespace) -> int:
    from geokd.distributed import cleanup, init_distributed
    from pointkd.detection.kitti_eval import format_kitti_results
    from pointkd.detection.train import DetectorTrainConfig, train_detector

    config = DetectorTrainConfig(
        detector=args.detector,
        width=args.width,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        val_frames=args.val_frames,
        eval_every=args.eval_every,
        max_eval_frames=args.max_eval_frames,
        augment=not args.no_augment,
        gt_sampling=not args.no_gt_sampling,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    ctx = init_distributed()
    try:
        results = train_detector(config, args.out, ctx)
    finally:
        cleanup(ctx)
    if ctx.is_main:
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(format_kitti_results(results["ap"]))
            print(
                f"{config.detector} width {config.width:g}: {results['steps']} steps in {results['train_time_s']:.0f} s, "
                f"{results['latency_ms_per_frame']:.0f} ms per frame -> {args.out}"
            )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pointkd.detection.data import DetectionDataset, resolve_data
    from pointkd.detection.kitti_eval import format_kitti_results
    from pointkd.detection.train import evaluate_detector, headline, load_detector
    from pointkd.detection.vis import draw_bev

    model, metadata = load_detector(args.ckpt)
    spec = resolve_data(args.data, args.val_frames, args.seed)
    ids = spec.val_ids[: args.max_eval_frames] if args.max_eval_frames else spec.val_ids
    config = model.config
    dataset = DetectionDataset(spec.root, ids, config.class_names, config.point_cloud_range)
    evaluation = evaluate_detector(model, dataset)
    if args.bev:
        for index in range(min(4, len(dataset))):
            sample, detection = dataset[index], evaluation["detections"][index]
            draw_bev(
                Path(args.bev) / f"{sample['frame_id']}.png", sample["points"], sample["gt_boxes"],
                detection["boxes"], detection["scores"], config.point_cloud_range,
            )  # fmt: skip
    if args.json:
        payload = {
            "ckpt": str(args.ckpt),
            "data": args.data,
            "frames": len(dataset),
            "detector": config.detector,
            "width": config.width,
            "ap": evaluation["ap"],
            "headline": headline(evaluation["ap"]),
            "latency_ms_per_frame": evaluation["latency_ms"],
            "metadata": metadata,
        }
        print(json.dumps(payload, indent=2))
    else:
        print(format_kitti_results(evaluation["ap"]))
        print(f"{len(dataset)} frames, {evaluation['latency_ms']:.0f} ms per frame")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), {"info": _info, "train": _train, "eval": _eval, "nerf": _nerf}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
