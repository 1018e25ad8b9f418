"""grid_sample3d against F.grid_sample (mode="bilinear"), same inputs, forward and backward timed apart.

Volume (1, C, R, R, R) float32 in the ordinary contiguous layout, M points uniform in [-1, 1]^3,
gradients to both the volume and the points. Both sides are timed producing the same (1, M, C)
channels-last result: F.grid_sample's (1, C, 1, 1, M) output is transposed and made contiguous,
and grid_sample3d's copy of the volume to channels last happens inside the op, so it is timed too.

    python benchmarks/pointkd/bm_grid_sample3d.py [--sizes 100000 1000000] [--channels 32]
        [--resolution 128] [--quick] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from pointkd.ops import grid_sample3d

CHECK_POINTS = 20_000


def torch_grid_sample(volume, points):
    """F.grid_sample with the layouts it needs, returning (B, M, C) like grid_sample3d."""
    batch, channels = volume.shape[:2]
    num_points = points.shape[1]
    out = F.grid_sample(volume, points.view(batch, 1, 1, num_points, 3), mode="bilinear", align_corners=True)
    return out.view(batch, channels, num_points).transpose(1, 2).contiguous()


def check(volume, points, grad_output) -> None:
    """Forward and both gradients agree with F.grid_sample on the first points."""
    points, grad_output = points[:, :CHECK_POINTS].detach().requires_grad_(), grad_output[:, :CHECK_POINTS]
    results = []
    for fn in (grid_sample3d, torch_grid_sample):
        out = fn(volume, points)
        results.append([out, *torch.autograd.grad(out, (volume, points), grad_output)])
    for name, ours, theirs in zip(("output", "grad_volume", "grad_points"), *results):
        scale = theirs.abs().max().item() or 1.0
        error = (ours - theirs).abs().max().item() / scale
        assert error < 1e-4, f"{name} disagrees with F.grid_sample: max error {error:.2e} of the largest value"


def time_forward_backward(fn, volume, points, grad_output, device, warmup: int, repeat: int) -> tuple[dict, dict]:
    """Forward alone, then backward alone (both gradients) through one retained graph."""
    forward = measure(lambda: fn(volume, points), device, warmup=warmup, repeat=repeat)
    out = fn(volume, points)
    backward = measure(
        lambda: torch.autograd.grad(out, (volume, points), grad_output, retain_graph=True),
        device,
        warmup=warmup,
        repeat=repeat,
    )
    return forward, backward


def main() -> None:
    parser = benchmark_parser(__doc__, [100_000, 1_000_000], "points M", repeat=3)
    parser.add_argument("--channels", type=int, default=32, help="feature channels C (default: 32)")
    parser.add_argument("--resolution", type=int, default=128, help="volume side R (default: 128)")
    parser.add_argument("--quick", action="store_true", help="small sizes: R = 32, M in {10k, 100k}")
    args = parser.parse_args()
    if args.quick:
        args.resolution, args.sizes = 32, [10_000, 100_000]

    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    size = args.resolution
    volume = torch.randn(1, args.channels, size, size, size, generator=generator).to(device).requires_grad_()
    rows = []
    for num_points in args.sizes:
        points = (torch.rand(1, num_points, 3, generator=generator) * 2 - 1).to(device).requires_grad_()
        grad_output = torch.randn(1, num_points, args.channels, generator=generator).to(device)
        check(volume, points, grad_output)
        row = {"points": num_points, "channels": args.channels, "resolution": size}
        # F.grid_sample takes seconds per call at full size: one warm-up call is enough.
        for name, fn, warmup in (("geokd", grid_sample3d, 2), ("torch_grid_sample", torch_grid_sample, 1)):
            forward, backward = time_forward_backward(fn, volume, points, grad_output, device, warmup, args.repeat)
            row[f"{name}_forward"], row[f"{name}_backward"] = forward, backward
        for part in ("forward", "backward"):
            row[f"speedup_{part}"] = row[f"torch_grid_sample_{part}"]["median_ms"] / row[f"geokd_{part}"]["median_ms"]
        total = {
            name: row[f"{name}_forward"]["median_ms"] + row[f"{name}_backward"]["median_ms"]
            for name in ("geokd", "torch_grid_sample")
        }
        row["speedup_total"] = total["torch_grid_sample"] / total["geokd"]
        rows.append(row)
        print(
            f"C={args.channels} R={size}^3 M={num_points:>9,}"
            f"  geokd fwd {row['geokd_forward']['median_ms']:9.1f} ms  bwd {row['geokd_backward']['median_ms']:9.1f} ms"
            f"  | F.grid_sample fwd {row['torch_grid_sample_forward']['median_ms']:9.1f} ms"
            f"  bwd {row['torch_grid_sample_backward']['median_ms']:9.1f} ms",
            file=sys.stderr,
        )
    write_json(
        args.json,
        {"benchmark": "grid_sample3d", "device": str(device), "machine": machine(), "rows": rows},
    )
    last = rows[-1]
    print(
        f"ratio at C={last['channels']} R={last['resolution']}^3 M={last['points']:,}: "
        f"{last['speedup_forward']:.1f}x forward, {last['speedup_backward']:.1f}x backward, "
        f"{last['speedup_total']:.1f}x forward + backward the speed of F.grid_sample",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
