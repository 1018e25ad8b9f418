"""PointPillars and SECOND, full width and the 0.5 / 0.25 students, trained on SimLidar.

Each run is ``pointkd train`` with the given detector, width and epochs on ``--data``
(SimLidar frames generated once into the cache, plus ``--val-frames`` held-out frames),
evaluated with KITTI AP on the held-out frames. Reports AP (R40, moderate, BEV and 3D) per
class, training time, per-frame latency (batch 1, this machine's threads) and parameters, one
run after the other (they share the machine, so run nothing else alongside).

    GEOKD_PROGRESS=0 python benchmarks/pointkd/detectors.py \\
        [--runs pointpillars:1.0 pointpillars:0.5 pointpillars:0.25 second:1.0] \\
        [--data simlidar:1000] [--epochs 10] [--eval-every 2] [--out runs/detector-bench] [--json out.json]

Rows of runs not repeated are kept when ``--json`` names an existing file with the same data.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from geokd.benchmark import machine, write_json
from pointkd.detection.train import DetectorTrainConfig, train_detector


def parse_run(item: str) -> tuple[str, float, int | None]:
    """``DETECTOR:WIDTH[:EPOCHS]``."""
    parts = item.split(":")
    if len(parts) not in (2, 3):
        raise SystemExit(f"--runs takes DETECTOR:WIDTH[:EPOCHS], got {item!r}")
    return parts[0], float(parts[1]), int(parts[2]) if len(parts) == 3 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["pointpillars:1.0", "pointpillars:0.5", "pointpillars:0.25"])
    parser.add_argument("--data", default="simlidar:1000")
    parser.add_argument("--val-frames", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=0, help="epochs between intermediate evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/detector-bench")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    rows = []
    for item in args.runs:
        detector, width, epochs = parse_run(item)
        config = DetectorTrainConfig(
            detector=detector,
            width=width,
            data=args.data,
            epochs=epochs or args.epochs,
            batch_size=args.batch_size,
            val_frames=args.val_frames,
            eval_every=args.eval_every,
            seed=args.seed,
        )
        started = time.perf_counter()
        results = train_detector(config, Path(args.out) / f"{detector}-{width:g}")
        rows.append(
            {
                "run": f"{detector}:{width:g}",
                "detector": detector,
                "width": width,
                "epochs": config.epochs,
                "steps": results["steps"],
                "parameters": results["parameters"],
                "headline": results["headline"],
                "ap": results["ap"],
                "train_time_s": results["train_time_s"],
                "wall_time_s": time.perf_counter() - started,
                "latency_ms_per_frame": results["latency_ms_per_frame"],
                "train_frames": results["train_frames"],
                "eval_frames": results["eval_frames"],
            }
        )
        print(json.dumps({key: value for key, value in rows[-1].items() if key != "ap"}), flush=True)

    print(f"\n{args.data}, {args.val_frames} held-out frames, {torch.get_num_threads()} threads; AP R40 moderate")
    print(
        "| detector | width | parameters | Car BEV | Car 3D | Ped BEV | Ped 3D | Cyc BEV | Cyc 3D | training | ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ap = row["headline"]
        print(
            f"| {row['detector']} | {row['width']:g} | {row['parameters']:,} | {ap['Car_bev']:.1f} | {ap['Car_3d']:.1f} | "
            f"{ap['Pedestrian_bev']:.1f} | {ap['Pedestrian_3d']:.1f} | {ap['Cyclist_bev']:.1f} | {ap['Cyclist_3d']:.1f} | "
            f"{row['train_time_s'] / 60:.1f} min | {row['latency_ms_per_frame']:.0f} |"
        )
    if args.json and Path(args.json).is_file():
        previous = json.loads(Path(args.json).read_text())
        if previous.get("data") == args.data and previous.get("val_frames") == args.val_frames:
            ran = {row["run"] for row in rows}
            kept = [row for row in previous.get("rows", []) if row["run"] not in ran]
            for row in kept:
                row.setdefault("machine", previous.get("machine"))
            rows = kept + rows
    write_json(args.json, {"machine": machine(), "data": args.data, "val_frames": args.val_frames, "rows": rows})


if __name__ == "__main__":
    main()
