r"""Choose Mirage's support threshold and tree labels on validation, over several seeds.

Every setting (a support threshold, one value or one per class, times a labelling of the
tree nodes and edges, times a readout of the validation and test graphs) runs as a `graphkd condense --method mirage` run of ``--seeds`` seeds in
its own directory under ``--out`` (so an interrupted search resumes); the chosen setting has the
best mean validation ROC-AUC of the condensed-data GNN over those seeds. Test scores are printed
and recorded but never take part in the choice. A setting that keeps no tree set for some class
(or too many) is reported as such and left out of the choice.

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/mirage_search.py \
        --dataset ogbg-molbace --gnn gcn --supports 0.1 0.2 0.3 0.5 0.03,0.1 --labels auto columns:0 \
        [--readouts trees all] [--seeds 3] [--epochs 50] [--jobs 2] --out runs/mirage_search \
        [--reference-dir runs/condense/reference] [--json out.json]

``--labels auto`` is the dataset's every categorical feature (the default of `graphkd condense`);
any other strategy of `graphkd.condense.discretize` labels both nodes and edges.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from geokd.benchmark import machine, write_json

#: Messages of `graphkd condense` for a support that a class cannot meet (or meets with too many sets).
INFEASIBLE = ("no tree set reaches", "more than max_patterns")


def run_setting(support: str, labels: str, readout: str, args: argparse.Namespace) -> dict:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{labels}-s{support}-r{readout}")
    out = Path(args.out) / f"{args.dataset}-{args.gnn}-L{args.hops}-e{args.epochs}-{safe}"
    command = [sys.executable, "-m", "graphkd.cli", "condense", "--method", "mirage", "--dataset", args.dataset,
               "--gnn", args.gnn, "--hops", str(args.hops), "--support", *support.split(","), "--seeds",
               str(args.seeds), "--epochs", str(args.epochs), "--readout", readout, "--out", str(out), "--json"]
    if labels != "auto":
        command += ["--node-labels", labels, "--edge-labels", labels]
    command += ["--reference-dir", args.reference_dir or str(Path(args.out) / "reference")]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GEOKD_PROGRESS="0")
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    row = {"support": support, "labels": labels, "readout": readout, "out": str(out), "seconds": time.perf_counter() - started}
    if result.returncode != 0:
        if any(message in result.stderr for message in INFEASIBLE):
            return {**row, "infeasible": result.stderr.strip().splitlines()[-1]}
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    summary = json.loads(result.stdout)["summary"]
    auc = summary["condensed_roc_auc"]
    print(f"{args.dataset} {args.gnn} {labels} {support} readout {readout}: validation {100 * auc['val_mean']:.2f}, "
          f"test {100 * auc['mean']:.2f} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return {**row, "val_mean": auc["val_mean"], "val_std": auc["val_std"], "test_mean": auc["mean"],
            "test_std": auc["std"], "bytes": summary["condensed_bytes"]}


def choose(rows: list[dict]) -> int | None:
    """Index of the row with the best mean validation score (the first on ties), ``None`` if none ran."""
    feasible = [i for i, row in enumerate(rows) if row.get("val_mean") is not None]
    return max(feasible, key=lambda i: (rows[i]["val_mean"], -i)) if feasible else None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--gnn", choices=["gcn", "gin", "gat"], default="gcn")
    parser.add_argument("--supports", nargs="+", required=True,
                        help="thresholds to try: a fraction in (0, 1], or one per class joined by commas (0.03,0.1)")
    parser.add_argument("--labels", nargs="+", default=["auto"],
                        help="tree labellings to try: auto (every categorical feature) or a discretize strategy")
    parser.add_argument("--readouts", nargs="+", choices=["all", "trees"], default=["all"],
                        help="which validation and test nodes the GNN sums (graphkd condense --readout)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--hops", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="settings run side by side, one thread each")
    parser.add_argument("--out", default="runs/mirage_search")
    parser.add_argument("--reference-dir", default=None,
                        help="full-data references, shared by every setting (default: OUT/reference)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    for support in args.supports:
        try:
            values = [float(value) for value in support.split(",")]
        except ValueError:
            parser.error(f"--supports: expected numbers joined by commas, got {support!r}")
        if any(not 0 < value <= 1 for value in values):
            parser.error(f"--supports: thresholds are fractions in (0, 1], got {support!r}")

    started = time.perf_counter()
    settings = [(support, labels, readout) for readout in dict.fromkeys(args.readouts)
                for labels in dict.fromkeys(args.labels) for support in dict.fromkeys(args.supports)]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda setting: run_setting(*setting, args), settings))
    chosen = choose(rows)
    print("| labels | support | readout | validation ROC-AUC (%) | test ROC-AUC (%) | bytes |\n|---|---|---|---|---|---|")
    for i, row in enumerate(rows):
        mark = " **chosen**" if i == chosen else ""
        if row.get("val_mean") is None:
            print(f"| {row['labels']} | {row['support']} | {row['readout']} | {row['infeasible']} | | |")
            continue
        print(f"| {row['labels']} | {row['support']}{mark} | {row['readout']} | {100 * row['val_mean']:.2f} ± {100 * row['val_std']:.2f} "
              f"| {100 * row['test_mean']:.2f} ± {100 * row['test_std']:.2f} | {row['bytes']:,.0f} |")
    payload = {"benchmark": "mirage_search", "dataset": args.dataset, "gnn": args.gnn, "hops": args.hops,
               "epochs": args.epochs, "seeds": args.seeds, "rows": rows, "chosen": chosen,
               "seconds": time.perf_counter() - started, "machine": machine()}
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
