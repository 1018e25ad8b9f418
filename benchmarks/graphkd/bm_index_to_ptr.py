"""index_to_ptr against PyG's index2ptr and torch.searchsorted, same inputs, same output asserted.

    python benchmarks/graphkd/bm_index_to_ptr.py [--sizes 100000 1000000 10000000] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import sys

import torch

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from graphkd.ops import index_to_ptr
from graphkd.ops.index_to_ptr import _index_to_ptr_reference


def main() -> None:
    parser = benchmark_parser(__doc__, [100_000, 1_000_000, 10_000_000], "entries E", repeat=7)
    parser.add_argument("--rows-per-entry", type=float, default=0.1, help="rows = E * this (default: 0.1)")
    args = parser.parse_args()

    from torch_geometric.utils.sparse import index2ptr

    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for numel in args.sizes:
        size = max(1, int(numel * args.rows_per_entry))
        index = torch.sort(torch.randint(0, size, (numel,), generator=generator))[0].to(device)
        expected = _index_to_ptr_reference(index, size)
        assert torch.equal(index_to_ptr(index, size), expected), "index_to_ptr disagrees with searchsorted"
        assert torch.equal(index2ptr(index, size), expected), "PyG's index2ptr disagrees with searchsorted"
        row = {
            "entries": numel,
            "rows": size,
            "geokd": measure(lambda index=index, size=size: index_to_ptr(index, size), device, repeat=args.repeat),
            "pyg_index2ptr": measure(lambda index=index, size=size: index2ptr(index, size), device, repeat=args.repeat),
            "searchsorted": measure(lambda index=index, size=size: _index_to_ptr_reference(index, size), device, repeat=args.repeat),
        }
        # Includes the input checks (range and order), which the peers skip.
        row["speedup_vs_pyg"] = row["pyg_index2ptr"]["median_ms"] / row["geokd"]["median_ms"]
        row["speedup_vs_searchsorted"] = row["searchsorted"]["median_ms"] / row["geokd"]["median_ms"]
        rows.append(row)
        print(
            f"E={numel:>10,}  geokd {row['geokd']['median_ms']:8.2f} ms  pyg {row['pyg_index2ptr']['median_ms']:8.2f} ms"
            f"  searchsorted {row['searchsorted']['median_ms']:8.2f} ms",
            file=sys.stderr,
        )
    write_json(args.json, {"benchmark": "index_to_ptr", "device": str(device), "machine": machine(), "rows": rows})
    last = rows[-1]
    print(
        f"ratio at E={last['entries']:,}: {last['speedup_vs_pyg']:.2f}x PyG index2ptr, "
        f"{last['speedup_vs_searchsorted']:.2f}x torch.searchsorted",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
