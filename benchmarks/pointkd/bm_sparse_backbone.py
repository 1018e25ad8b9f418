"""SECOND's sparse 3D backbone on a real KITTI frame: the CPU shim vs raw spconv.

The frame (``kitti_sample`` 000000 under ``$GEOKD_DATA``, camera-FOV cropped) is voxelized
with OpenPCDet's KITTI SECOND grid (0.05 x 0.05 x 0.1 m, 1408 x 1600 x 40). For each width,
``VoxelBackBone8x`` runs forward (eval) and forward + backward (train) through
``pointkd.detection.sparse``, and forward through raw spconv layers with the same weights;
the raw forward is compared with the shim's (spconv's CPU scatter races with more than one
thread). Raw spconv has no CPU backward. Times are the best of ``--repeat`` runs.

    GEOKD_DATA=../shared/data python benchmarks/pointkd/bm_sparse_backbone.py [--threads 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import spconv.pytorch as spconv
import torch

from geokd.benchmark import machine, write_json
from pointkd.datasets.kitti import load_kitti_frame
from pointkd.detection import sparse
from pointkd.detection.backbone3d import MeanVFE, VoxelBackBone8x
from pointkd.detection.detector import kitti_config
from pointkd.detection.voxelize import voxelize


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def as_raw_spconv(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose shim layers are spconv's own classes (same weights)."""
    raw = copy.deepcopy(model)
    classes = {sparse.SubMConv3d: spconv.SubMConv3d, sparse.SparseConv3d: spconv.SparseConv3d}
    for module in raw.modules():
        if type(module) in classes:
            module.__class__ = classes[type(module)]
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frame", default="000000")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    root = Path(os.environ.get("GEOKD_DATA", "../shared/data")) / "kitti_sample"
    frame = load_kitti_frame(root, args.frame)
    config = kitti_config("second")
    voxels = voxelize(frame.points, config.grid, config.max_points_per_voxel, config.max_voxels[1])
    features = MeanVFE(4)(voxels.voxels, voxels.num_points)
    coords = torch.cat([torch.zeros(len(voxels.voxel_coords), 1, dtype=torch.int32), voxels.voxel_coords], dim=1)
    print(f"frame {args.frame}: {frame.points.shape[0]} points, {coords.shape[0]} voxels", flush=True)

    rows = []
    for width in (1.0, 0.5, 0.25):
        torch.manual_seed(0)
        model = VoxelBackBone8x(4, config.grid.grid_size, width=width)
        raw = as_raw_spconv(model).eval()
        for threads in args.threads:
            torch.set_num_threads(threads)

            def forward(net=model):
                with torch.no_grad():
                    return net(features, coords, 1)["spatial_features"]

            def forward_backward(model=model):
                model.zero_grad()
                model(features, coords, 1)["spatial_features"].square().mean().backward()

            model.eval()
            shim_forward = best_of(forward, args.repeat)
            reference = forward()
            raw_forward = best_of(lambda raw=raw: forward(raw), args.repeat)
            raw_error = float((forward(raw) - reference).abs().max() / reference.abs().max())
            model.train()
            shim_forward_backward = best_of(forward_backward, args.repeat)
            row = {
                "width": width,
                "threads": threads,
                "voxels": coords.shape[0],
                "shim_forward_ms": 1000 * shim_forward,
                "shim_forward_backward_ms": 1000 * shim_forward_backward,
                "raw_spconv_forward_ms": 1000 * raw_forward,
                "raw_over_shim_forward": raw_forward / shim_forward,
                "raw_spconv_relative_error": raw_error,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)

    print(
        "\n| width | threads | shim forward | shim forward+backward | raw spconv forward | raw / shim | raw max error |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['width']:g} | {row['threads']} | {row['shim_forward_ms']:.0f} ms | "
            f"{row['shim_forward_backward_ms']:.0f} ms | {row['raw_spconv_forward_ms']:.0f} ms | "
            f"{row['raw_over_shim_forward']:.2f} | {row['raw_spconv_relative_error']:.1e} |"
        )
    write_json(args.json, {"machine": machine(), "frame": args.frame, "rows": rows})


if __name__ == "__main__":
    main()
