r"""How far graph size alone goes: ROC-AUC of ranking graphs by node count and by edge count.

A floor for the condensation table: a condensed set whose GNN scores no more than this has taught
the GNN little beyond the size of a graph. Uses the same splits as `graphkd condense` (the dataset's
own split where it publishes one, else the stratified 80/10/10 split of each seed); binary tasks
only. No training: each graph's score is its number of nodes (or of directed edges), negated where
larger graphs are the negative class on the training graphs (the one thing learned, from training
graphs only).

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/size_baseline.py \
        [--datasets MUTAG NCI1 DD PROTEINS IMDB-BINARY ogbg-molbace mol-bbbp mol-hiv] [--seeds 10] \
        [--json out.json]

Prints, per dataset, the mean ± std over seeds of validation and test ROC-AUC (%) for both scores.
"""

from __future__ import annotations

import argparse
import statistics

from sklearn.metrics import roc_auc_score

from geokd.benchmark import machine, write_json
from graphkd.condense.run import split_indices
from graphkd.datasets import get_dataset

DATASETS = ["MUTAG", "NCI1", "DD", "PROTEINS", "IMDB-BINARY", "ogbg-molbace", "mol-bbbp", "mol-hiv"]


def size(graph, score: str) -> int:
    return graph.num_nodes if score == "nodes" else graph.edge_index.size(1)


def size_auc(graphs, labels, index, score: str, sign: int = 1) -> float:
    """ROC-AUC (%) of ``sign`` x the graphs' sizes (``score``: nodes or edges) on the graphs at ``index``."""
    return 100 * roc_auc_score([labels[i] for i in index], [sign * size(graphs[i], score) for i in index])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", type=int, default=10, help="split seeds (datasets with their own split have one)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")

    rows = []
    print("| dataset | seeds | larger graphs are | nodes: validation | nodes: test | edges: validation | edges: test |\n"
          "|---|---|---|---|---|---|---|")
    for name in args.datasets:
        dataset = get_dataset(name)
        if dataset.num_classes != 2:
            print(f"| {name} | binary tasks only ({dataset.num_classes} classes) | | | | | |")
            continue
        graphs = list(dataset)
        labels = [int(g.y) for g in graphs]
        seeds = [0] if hasattr(dataset, "get_idx_split") else list(range(args.seeds))
        per_seed = []
        for seed in seeds:
            train, val, test = split_indices(dataset, labels, seed)
            entry = {"seed": seed, "sign": {}, "val": {}, "test": {}}
            for score in ("nodes", "edges"):
                sign = 1 if size_auc(graphs, labels, train, score) >= 50 else -1
                entry["sign"][score] = sign
                entry["val"][score] = size_auc(graphs, labels, val, score, sign)
                entry["test"][score] = size_auc(graphs, labels, test, score, sign)
            per_seed.append(entry)
        row = {"dataset": name, "seeds": len(seeds), "per_seed": per_seed,
               "larger_is_positive": {score: [entry["sign"][score] > 0 for entry in per_seed]
                                      for score in ("nodes", "edges")}}
        cells = []
        for score in ("nodes", "edges"):
            for part in ("val", "test"):
                values = [entry[part][score] for entry in per_seed]
                mean, std = statistics.fmean(values), statistics.pstdev(values)
                row[f"{score}_{part}_mean"], row[f"{score}_{part}_std"] = mean, std
                cells.append(f"{mean:.2f} ± {std:.2f}")
        rows.append(row)
        signs = {entry["sign"]["nodes"] for entry in per_seed}
        direction = "positive" if signs == {1} else "negative" if signs == {-1} else "either (by seed)"
        print(f"| {name} | {len(seeds)} | {direction} | " + " | ".join(cells) + " |", flush=True)
    payload = {"benchmark": "size_baseline", "rows": rows, "machine": machine()}
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
