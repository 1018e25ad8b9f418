"""From-scratch training of the four radiance fields on NeRF-synthetic lego at reduced resolution.

Each field is trained with its preset (``pointkd.nerf.train.FIELD_PRESETS``) on the 87 training
views at ``--scale`` (0.125: 100x100 px) and evaluated on the 13 held-out views (every 8th of the
100 training views: the official test images are not distributed with the offline copy). Reports
the held-out PSNR and SSIM, training wall time, seconds per step and parameters, one run per field,
in the order given (they share the machine, so run nothing else alongside).

    GEOKD_DATA=../shared/data python benchmarks/pointkd/nerf_fields.py \\
        [--fields hash grid vm mlp] [--iters hash=2000 grid=1500 vm=1000 mlp=1000] [--scale 0.125] \\
        [--out runs/nerf-bench] [--json out.json]

With ``--json`` naming an existing file, rows of fields not run this time are kept (one field can
be re-measured without re-running the others); the table printed covers the fields run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from geokd.benchmark import machine, write_json
from pointkd.nerf.train import FIELD_PRESETS, NerfTrainConfig, train_nerf

DEFAULT_ITERS = {"hash": 2000, "grid": 1500, "vm": 1000, "mlp": 1000}


def parse_iters(items: list[str]) -> dict[str, int]:
    iters = dict(DEFAULT_ITERS)
    for item in items:
        name, _, value = item.partition("=")
        if name not in FIELD_PRESETS or not value.isdigit():
            raise SystemExit(f"--iters takes FIELD=N with FIELD in {sorted(FIELD_PRESETS)}, got {item!r}")
        iters[name] = int(value)
    return iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", nargs="+", default=["hash", "grid", "vm", "mlp"], choices=sorted(FIELD_PRESETS))
    parser.add_argument("--iters", nargs="*", default=[], help="FIELD=N overrides, e.g. hash=3000")
    parser.add_argument("--data", default="lego")
    parser.add_argument("--scale", type=float, default=0.125)
    parser.add_argument("--batch-rays", type=int, default=4096)
    parser.add_argument("--out", default="runs/nerf-bench")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    iters = parse_iters(args.iters)

    rows = []
    for field in args.fields:
        config = NerfTrainConfig(
            field=field, data=args.data, scale=args.scale, iters=iters[field], batch_rays=args.batch_rays
        )
        started = time.perf_counter()
        results = train_nerf(config, Path(args.out) / field)
        rows.append(
            {
                "field": field,
                "iters": config.iters,
                "parameters": results["parameters"],
                "test_psnr": results["test_psnr"],
                "test_ssim": results["test_ssim"],
                "train_time_s": results["train_time_s"],
                "s_per_step": results["train_time_s"] / config.iters,
                "wall_time_s": time.perf_counter() - started,
                "render_time_s_per_view": results["render_time_s_per_view"],
                "held_out_views": len(results["test_views"]),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    print(f"\n{args.data} at scale {args.scale}, {torch.get_num_threads()} threads")
    print("| field | steps | parameters | held-out PSNR | SSIM | training time | s/step |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['field']} | {row['iters']} | {row['parameters']:,} | {row['test_psnr']:.2f} dB | "
            f"{row['test_ssim']:.4f} | {row['train_time_s'] / 60:.1f} min | {row['s_per_step']:.2f} |"
        )
    if args.json and Path(args.json).is_file():
        previous = json.loads(Path(args.json).read_text())
        if previous.get("data") == args.data and previous.get("scale") == args.scale:
            kept = [row for row in previous.get("rows", []) if row["field"] not in args.fields]
            for row in kept:
                row.setdefault("machine", previous.get("machine"))
            rows = kept + rows
    write_json(args.json, {"machine": machine(), "data": args.data, "scale": args.scale, "rows": rows})


if __name__ == "__main__":
    main()
