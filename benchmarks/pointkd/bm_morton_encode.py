"""morton_encode against the pure-torch bit loop, same inputs, same output asserted.

    python benchmarks/pointkd/bm_morton_encode.py [--sizes 100000 1000000 10000000] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import sys

import torch

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from pointkd.ops import morton_encode
from pointkd.ops.morton import _morton_encode_reference


def main() -> None:
    parser = benchmark_parser(__doc__, [100_000, 1_000_000, 10_000_000], "points N", repeat=5)
    args = parser.parse_args()

    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for num_points in args.sizes:
        coords = torch.randint(0, 2**21, (num_points, 3), generator=generator, dtype=torch.int32).to(device)
        assert torch.equal(morton_encode(coords), _morton_encode_reference(coords)), "disagrees with the reference"
        row = {
            "points": num_points,
            "geokd": measure(lambda coords=coords: morton_encode(coords), device, repeat=args.repeat),
            "torch_reference": measure(lambda coords=coords: _morton_encode_reference(coords), device, warmup=1, repeat=args.repeat),
        }
        row["speedup"] = row["torch_reference"]["median_ms"] / row["geokd"]["median_ms"]
        rows.append(row)
        print(
            f"N={num_points:>10,}  geokd {row['geokd']['median_ms']:8.2f} ms"
            f"  torch {row['torch_reference']['median_ms']:9.2f} ms",
            file=sys.stderr,
        )
    write_json(args.json, {"benchmark": "morton_encode", "device": str(device), "machine": machine(), "rows": rows})
    print(f"ratio at N={rows[-1]['points']:,}: {rows[-1]['speedup']:.1f}x the pure-torch bit loop", file=sys.stderr)


if __name__ == "__main__":
    main()
