"""Training batches for graph classification: PackedGraphs.batch against PyG's collation, same batches asserted.

For each dataset the training graphs of split seed 0 (the scaffold split for molecule sets) are encoded
as the trainer encodes them, and one epoch's worth of shuffled index batches is cut two ways: with
``graphkd.condense.train.PackedGraphs.batch`` and with ``torch_geometric.data.Batch.from_data_list``
(what a PyG ``DataLoader`` does per batch). Every batch's tensors are compared first; the time is one
full epoch of batches, median of the repeats. For scale, one training step (forward, backward, Adam) of
the score table's GNNs (2 layers, width 64; GAT with 4 heads) is timed on the epoch's first
``--steps`` batches. Data: $GEOKD_DATA (offline copies).

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/bm_collate.py \\
        [--datasets NCI1 mol-hiv] [--sizes 32 128] [--gnns gcn gat] [--steps 100] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from geokd.benchmark import benchmark_parser, machine, measure, write_json
from graphkd.condense.run import split_indices
from graphkd.condense.train import NodeInputs, PackedGraphs
from graphkd.datasets import get_dataset
from graphkd.nn import GraphClassifier


def main() -> None:
    parser = benchmark_parser(__doc__, [32, 128], "batch sizes", repeat=3)
    parser.add_argument("--datasets", nargs="+", default=["NCI1", "mol-hiv"])
    parser.add_argument("--gnns", nargs="+", default=["gcn", "gat"], help="GNNs whose training step is timed")
    parser.add_argument("--steps", type=int, default=100, help="batches per timed training pass (default: 100)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cpu")  # batches are cut on the host, then moved
    rows = []
    for name in args.datasets:
        dataset = get_dataset(name)
        graphs = list(dataset)
        train_index, _, _ = split_indices(dataset, [int(g.y) for g in graphs], 0)
        inputs = NodeInputs.for_graphs(graphs)
        train = [inputs(graphs[i]) for i in train_index]
        packed = PackedGraphs(train)
        for size in args.sizes:
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
            batches = list(order.split(size))
            for index in batches:
                ours, theirs = packed.batch(index), Batch.from_data_list([train[i] for i in index.tolist()])
                for key in ("x", "edge_index", "y", "batch"):
                    assert torch.equal(getattr(ours, key), getattr(theirs, key)), f"{name}: {key} differs"

            def cut(batches=batches):
                for index in batches:
                    packed.batch(index)

            def collate(batches=batches):
                for index in batches:
                    Batch.from_data_list([train[i] for i in index.tolist()])

            row = {"dataset": name, "graphs": len(train), "batch_size": size, "batches": len(batches),
                   "packed": measure(cut, device, warmup=1, repeat=args.repeat),
                   "pyg_collate": measure(collate, device, warmup=1, repeat=args.repeat)}
            row["speedup"] = row["pyg_collate"]["median_ms"] / row["packed"]["median_ms"]
            cut_batches = [packed.batch(index) for index in batches[:args.steps]]
            for gnn in args.gnns:
                torch.manual_seed(0)
                model = GraphClassifier(gnn, inputs.size, 64, 2, dataset.num_classes)
                optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)

                def train_pass(model=model, optimizer=optimizer):
                    for batch in cut_batches:
                        optimizer.zero_grad()
                        logits = model(batch.x, batch.edge_index, batch.batch)
                        F.cross_entropy(logits, batch.y.view(-1)).backward()
                        optimizer.step()

                timing = measure(train_pass, device, warmup=1, repeat=args.repeat)
                row[f"{gnn}_step_ms"] = timing["median_ms"] / len(cut_batches)
            rows.append(row)
            print(f"{name:<10} {len(train):>6} graphs, batch {size:>4}: packed {row['packed']['median_ms']:9.1f} ms, "
                  f"PyG collate {row['pyg_collate']['median_ms']:9.1f} ms per epoch ({row['speedup']:.1f}x); "
                  f"training step " + ", ".join(f"{gnn} {row[f'{gnn}_step_ms']:.2f} ms" for gnn in args.gnns))
    write_json(args.json, {"benchmark": "collate", "machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
