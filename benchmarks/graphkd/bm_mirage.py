"""Mirage end to end, GNN training excluded: tree ids, mining and unrolling on a training split.

For each dataset, the training graphs of split seed 0 (the scaffold split for molecule sets) are
condensed at each depth L; the time of one `graphkd.condense.condense` call is split into hashing
(batching the graphs, discretizing features, `tree_hash`), mining (FP-growth per class) and the rest
(unrolling the kept trees), with the condensed file's size. Loading the dataset is not timed.
Data: $GEOKD_DATA (offline copies; mol-hiv is converted from SMILES with RDKit on first use).

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/bm_mirage.py \\
        [--datasets NCI1 DD mol-hiv] [--sizes 2 3] [--support S] [--node-labels L] [--edge-labels L] \\
        [--json out.json]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from geokd.benchmark import benchmark_parser, machine, write_json
from graphkd.condense import condense
from graphkd.condense.mining import TooManyItemsetsError
from graphkd.condense.mirage import EmptyClassError
from graphkd.condense.run import mirage_support, split_indices
from graphkd.datasets import get_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from condense import MIRAGE_OPTIONS


def main() -> None:
    parser = benchmark_parser(__doc__, [2, 3], "depths L", repeat=3)
    parser.add_argument("--datasets", nargs="+", default=["NCI1", "DD", "mol-hiv"])
    parser.add_argument("--support", type=float, nargs="+", default=None,
                        help="per-class support fraction, one value or one per class (default: 0.1, or the score "
                             "table's MIRAGE_OPTIONS)")
    parser.add_argument("--node-labels", default=None,
                        help="node categories, e.g. columns:0 (default: auto, or MIRAGE_OPTIONS's)")
    parser.add_argument("--edge-labels", default=None,
                        help="edge categories, e.g. columns:0 (default: auto, or MIRAGE_OPTIONS's)")
    args = parser.parse_args()

    rows = []
    for name in args.datasets:
        dataset = get_dataset(name)
        graphs = list(dataset)
        labels = [int(g.y) for g in graphs]
        train_index, _, _ = split_indices(dataset, labels, seed=0)
        train = [graphs[i] for i in train_index]
        options = MIRAGE_OPTIONS.get(name, {})
        support = mirage_support(args.support if args.support is not None else options.get("support", 0.1))
        node_labels = args.node_labels or options.get("node_labels", "auto")
        edge_labels = args.edge_labels or options.get("edge_labels", "auto")
        for num_hops in args.sizes:
            runs = []
            try:
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    condensed = condense(train, num_hops=num_hops, min_support=support, node_strategy=node_labels,
                                         edge_strategy=edge_labels, dataset_name=name)
                    total = time.perf_counter() - started
                    runs.append((total, condensed))
            except (EmptyClassError, TooManyItemsetsError) as error:
                # A support that fits one depth may leave a class with no tree set (or too many) at another:
                # reported, not fatal.
                rows.append({"dataset": name, "num_hops": num_hops, "train_graphs": len(train), "support": support,
                             "node_labels": node_labels, "edge_labels": edge_labels, "error": str(error)})
                print(f"{name:10} L={num_hops} {len(train):6d} graphs: {error}", flush=True)
                continue
            seconds = [run[0] for run in runs]
            condensed = runs[-1][1]
            with tempfile.TemporaryDirectory() as folder:
                size = condensed.save(Path(folder) / "condensed.mirage")
            meta = condensed.meta
            row = {
                "dataset": name, "num_hops": num_hops, "train_graphs": len(train),
                "train_nodes": sum(g.num_nodes for g in train), "support": support, "node_labels": node_labels,
                "edge_labels": edge_labels,
                "seconds_median": statistics.median(seconds), "seconds_min": min(seconds),
                "seconds_hash": meta["seconds_hash"], "seconds_mine": meta["seconds_mine"],
                "distinct_trees": meta["distinct_trees"], "patterns_per_class": condensed.num_patterns(),
                "class_specific_patterns": meta["class_specific_patterns"],
                "mean_set_size_per_class": [round(statistics.mean(len(trees) for trees, _ in patterns), 2)
                                            for patterns in condensed.patterns],
                "trees_kept": len(condensed.trees), "condensed_bytes": size,
            }
            rows.append(row)
            print(f"{name:10} L={num_hops} {len(train):6d} graphs: {row['seconds_median']:7.3f} s "
                  f"(hash {row['seconds_hash']:.3f} s, mine {row['seconds_mine']:.3f} s), "
                  f"{row['distinct_trees']} distinct trees, patterns per class {row['patterns_per_class']} "
                  f"({row['class_specific_patterns']} in no other class; mean trees per set "
                  f"{row['mean_set_size_per_class']}), {len(condensed.trees)} trees, "
                  f"{size} bytes", flush=True)
    write_json(args.json, {"benchmark": "mirage_end_to_end", "machine": machine(),
                           "threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
