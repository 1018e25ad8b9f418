"""hash_grid_encode against its pure-torch version (vectorised over points and corners), forward and backward timed apart.

Instant-NGP's NeRF configuration by default: 16 levels of 2 float32 features, T = 2^19 rows per hashed
level, resolutions 16 to 2048 (5 dense levels, 11 hashed; 12.2 M parameters). N points uniform in
[0, 1]^3. The backward is the gradient of the tables (the training step of a hash-grid NeRF); with
--grad-points the gradient of the points too. The pure-torch version is
pointkd.ops.hash_grid._hash_grid_encode_reference, the same formulas with torch ops (index_select,
whose backward is index_add_), no Python loop over points.

    python benchmarks/pointkd/bm_hash_encode.py [--sizes 262144 1048576] [--levels 16]
        [--log2-table-size 19] [--grad-points] [--quick] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import torch

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from pointkd.ops import HashGridConfig, hash_grid_encode
from pointkd.ops.hash_grid import _hash_grid_encode_reference

CHECK_POINTS = 20_000


def check(points, embeddings, grad_output, config) -> None:
    """Forward and gradients agree with the pure-torch version on the first points."""
    points, grad_output = (
        points[:CHECK_POINTS].detach().requires_grad_(points.requires_grad),
        grad_output[:CHECK_POINTS],
    )
    inputs = (points, embeddings) if points.requires_grad else (embeddings,)
    results = []
    for fn in (hash_grid_encode, _hash_grid_encode_reference):
        out = fn(points, embeddings, config)
        results.append([out, *torch.autograd.grad(out, inputs, grad_output)])
    names = ["output", *("grad_points" for _ in inputs[:-1]), "grad_embeddings"]
    for name, ours, theirs in zip(names, *results):
        scale = theirs.abs().max().item() or 1.0
        error = (ours - theirs).abs().max().item() / scale
        assert error < 1e-4, f"{name} disagrees with the pure-torch version: max error {error:.2e} of the largest value"


def time_forward_backward(fn, points, embeddings, grad_output, config, device, warmup, repeat) -> tuple[dict, dict]:
    """Forward alone, then backward alone through one retained graph."""
    inputs = (points, embeddings) if points.requires_grad else (embeddings,)
    forward = measure(lambda: fn(points, embeddings, config), device, warmup=warmup, repeat=repeat)
    out = fn(points, embeddings, config)
    backward = measure(
        lambda: torch.autograd.grad(out, inputs, grad_output, retain_graph=True), device, warmup=warmup, repeat=repeat
    )
    return forward, backward


def main() -> None:
    parser = benchmark_parser(__doc__, [2**18, 2**20], "points N", repeat=3)
    parser.add_argument("--levels", type=int, default=16, help="levels L (default: 16)")
    parser.add_argument("--features", type=int, default=2, help="features per level F (default: 2)")
    parser.add_argument(
        "--log2-table-size", type=int, default=19, help="log2 of the rows T of a hashed level (default: 19)"
    )
    parser.add_argument("--base-resolution", type=int, default=16, help="coarsest resolution (default: 16)")
    parser.add_argument("--finest-resolution", type=int, default=2048, help="finest resolution (default: 2048)")
    parser.add_argument("--grad-points", action="store_true", help="backward to the points too")
    parser.add_argument("--quick", action="store_true", help="small sizes: N in {16k, 64k}")
    args = parser.parse_args()
    if args.quick:
        args.sizes = [2**14, 2**16]

    device = torch.device(args.device)
    config = HashGridConfig(
        args.levels, args.features, args.log2_table_size, args.base_resolution, args.finest_resolution
    )
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.rand(config.num_embeddings, config.features_per_level, generator=generator) * 2 - 1
    embeddings = embeddings.to(device).requires_grad_()
    rows = []
    for num_points in args.sizes:
        points = torch.rand(num_points, 3, generator=generator).to(device).requires_grad_(args.grad_points)
        grad_output = torch.randn(num_points, config.output_dim, generator=generator).to(device)
        check(points, embeddings, grad_output, config)
        row = {"points": num_points, "config": asdict(config) | {"resolutions": list(config.resolutions)}}
        row["grad_points"] = args.grad_points
        # The pure-torch version takes seconds per call at full size: one warm-up call is enough.
        for name, fn, warmup in (("geokd", hash_grid_encode, 2), ("torch_reference", _hash_grid_encode_reference, 1)):
            forward, backward = time_forward_backward(
                fn, points, embeddings, grad_output, config, device, warmup, args.repeat
            )
            row[f"{name}_forward"], row[f"{name}_backward"] = forward, backward
        for part in ("forward", "backward"):
            row[f"speedup_{part}"] = row[f"torch_reference_{part}"]["median_ms"] / row[f"geokd_{part}"]["median_ms"]
        total = {
            name: row[f"{name}_forward"]["median_ms"] + row[f"{name}_backward"]["median_ms"]
            for name in ("geokd", "torch_reference")
        }
        row["speedup_total"] = total["torch_reference"] / total["geokd"]
        rows.append(row)
        print(
            f"L={config.num_levels} F={config.features_per_level} T=2^{config.log2_table_size} N={num_points:>9,}"
            f"  geokd fwd {row['geokd_forward']['median_ms']:8.1f} ms  bwd {row['geokd_backward']['median_ms']:8.1f} ms"
            f"  | pure torch fwd {row['torch_reference_forward']['median_ms']:8.1f} ms"
            f"  bwd {row['torch_reference_backward']['median_ms']:8.1f} ms",
            file=sys.stderr,
        )
    write_json(
        args.json,
        {"benchmark": "hash_grid_encode", "device": str(device), "machine": machine(), "rows": rows},
    )
    last = rows[-1]
    print(
        f"ratio at N={last['points']:,}: {last['speedup_forward']:.1f}x forward, "
        f"{last['speedup_backward']:.1f}x backward, {last['speedup_total']:.1f}x forward + backward "
        f"the speed of the pure-torch version",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
