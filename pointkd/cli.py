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
    add_nerf_parser(subparsers)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), {"info": _info, "nerf": _nerf}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
