"""ray_march (with and without occupancy skipping) and composite against their pure-torch references.

Rays start on a sphere of radius 3 around the box [-1, 1]^3 and aim at random points inside it;
candidates every 2 sqrt(3) / max_samples along the ray, so that a diagonal fits. The occupancy grid
is 128^3 with about 10 % of its cells set, as a union of random spheres. Throughput is in output
samples per second (the same samples on both sides, checked first). composite then renders the
samples marched with occupancy (float32, 3 channels), forward and backward (to sigmas and rgbs)
timed apart.

    python benchmarks/pointkd/bm_ray_march.py [--sizes 2048 8192] [--max-samples 512]
        [--resolution 128] [--quick] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import math
import sys

import torch

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from pointkd.ops import composite, ray_march
from pointkd.ops.composite import _composite_reference
from pointkd.ops.ray_march import _ray_march_reference


def make_rays(num_rays: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    origins = torch.randn(num_rays, 3, generator=generator)
    origins = 3 * origins / origins.norm(dim=1, keepdim=True)
    targets = torch.rand(num_rays, 3, generator=generator) * 2 - 1
    directions = targets - origins
    return origins, directions / directions.norm(dim=1, keepdim=True)


def make_occupancy(resolution: int, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Union of random spheres until at least `fraction` of the cells are set."""
    axis = (torch.arange(resolution) + 0.5) / resolution * 2 - 1
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    occupancy = torch.zeros(resolution, resolution, resolution, dtype=torch.bool)
    while occupancy.float().mean() < fraction:
        centre = torch.rand(3, generator=generator) * 1.6 - 0.8
        radius = 0.1 + 0.15 * torch.rand((), generator=generator)
        occupancy |= (grid - centre).norm(dim=-1) < radius
    return occupancy


def check(ours, reference) -> None:
    for name, a, b in zip(("ts", "deltas", "positions", "ray_offsets"), ours, reference):
        assert torch.equal(a.cpu(), b.cpu()) or (
            a.shape == b.shape and (a.cpu().double() - b.cpu().double()).abs().max() < 1e-4
        ), f"ray_march {name} disagrees with the reference"


def main() -> None:
    parser = benchmark_parser(__doc__, [2048, 8192], "rays R", repeat=5)
    parser.add_argument("--max-samples", type=int, default=512, help="candidates per ray (default: 512)")
    parser.add_argument("--resolution", type=int, default=128, help="occupancy grid side (default: 128)")
    parser.add_argument("--quick", action="store_true", help="small sizes: R in {512, 2048}, 256 candidates")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.max_samples = [512, 2048], 256

    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], device=device)
    step = 2 * math.sqrt(3) / args.max_samples
    occupancy = make_occupancy(args.resolution, 0.10, generator).to(device)
    print(f"occupancy {args.resolution}^3, {occupancy.float().mean().item():.1%} set", file=sys.stderr)
    rows = []
    for num_rays in args.sizes:
        rays_o, rays_d = (t.to(device) for t in make_rays(num_rays, generator))
        row = {"rays": num_rays, "max_samples": args.max_samples, "resolution": args.resolution}
        for label, grid in (("dense", None), ("occupancy", occupancy)):
            call = (rays_o, rays_d, aabb, 0.0, math.inf, step, args.max_samples, grid)
            marched = ray_march(*call)
            check(marched, _ray_march_reference(*call))
            samples = marched.ts.numel()
            row[f"{label}_samples"] = samples
            for name, fn in (("geokd", ray_march), ("reference", _ray_march_reference)):
                timing = measure(lambda fn=fn, call=call: fn(*call), device, warmup=1, repeat=args.repeat)
                row[f"{name}_{label}"] = timing
                row[f"{name}_{label}_samples_per_s"] = samples / (timing["median_ms"] / 1e3)
            row[f"speedup_{label}"] = row[f"reference_{label}"]["median_ms"] / row[f"geokd_{label}"]["median_ms"]
        row["occupancy_skipping_gain"] = row["geokd_dense"]["median_ms"] / row["geokd_occupancy"]["median_ms"]

        # composite on the samples marched with occupancy.
        marched = ray_march(rays_o, rays_d, aabb, 0.0, math.inf, step, args.max_samples, occupancy)
        sigmas = (torch.rand(marched.ts.shape, generator=generator) * 20).to(device).requires_grad_()
        rgbs = torch.rand(marched.ts.numel(), 3, generator=generator).to(device).requires_grad_()
        inputs = (sigmas, rgbs, marched.deltas, marched.ts, marched.ray_offsets)
        ours, theirs = composite(*inputs), _composite_reference(*inputs)
        for a, b in zip(ours, theirs):
            assert (a - b).abs().max().item() < 1e-4, "composite disagrees with the reference"
        for name, fn in (("geokd", composite), ("reference", _composite_reference)):
            row[f"composite_{name}_forward"] = measure(
                lambda fn=fn, inputs=inputs: fn(*inputs), device, warmup=1, repeat=args.repeat
            )
            out = fn(*inputs)
            loss = out.color.sum() + out.depth.sum()
            row[f"composite_{name}_backward"] = measure(
                lambda loss=loss, wanted=(sigmas, rgbs): torch.autograd.grad(loss, wanted, retain_graph=True),
                device,
                warmup=1,
                repeat=args.repeat,
            )
        for part in ("forward", "backward"):
            row[f"composite_speedup_{part}"] = (
                row[f"composite_reference_{part}"]["median_ms"] / row[f"composite_geokd_{part}"]["median_ms"]
            )
        rows.append(row)
        print(
            f"R={num_rays:>7,}  dense {row['dense_samples']:>10,} samples:"
            f" geokd {row['geokd_dense']['median_ms']:8.2f} ms, reference {row['reference_dense']['median_ms']:8.2f} ms"
            f" | occupancy {row['occupancy_samples']:>9,} samples:"
            f" geokd {row['geokd_occupancy']['median_ms']:8.2f} ms,"
            f" reference {row['reference_occupancy']['median_ms']:8.2f} ms"
            f" | composite fwd {row['composite_geokd_forward']['median_ms']:7.2f}"
            f" vs {row['composite_reference_forward']['median_ms']:7.2f} ms,"
            f" bwd {row['composite_geokd_backward']['median_ms']:7.2f}"
            f" vs {row['composite_reference_backward']['median_ms']:7.2f} ms",
            file=sys.stderr,
        )
    write_json(args.json, {"benchmark": "ray_march", "device": str(device), "machine": machine(), "rows": rows})
    last = rows[-1]
    print(
        f"ratio at R={last['rays']:,}, {last['max_samples']} candidates: ray_march "
        f"{last['speedup_dense']:.1f}x (dense) and {last['speedup_occupancy']:.1f}x (occupancy) the speed of the "
        f"reference, {last['geokd_occupancy_samples_per_s'] / 1e6:.1f} M samples/s with occupancy; composite "
        f"{last['composite_speedup_forward']:.1f}x forward, {last['composite_speedup_backward']:.1f}x backward",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
