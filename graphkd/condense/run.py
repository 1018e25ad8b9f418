"""``graphkd condense``: condense a graph-classification dataset and score GNNs trained on it.

For each seed: a stratified 80/10/10 split (or the dataset's own split, such as
OGB's scaffold split); a GNN trained on the full training set (the reference,
kept in a reference directory that runs of several methods can share); the
condensed set built from the training graphs only;
the same GNN trained on it, selected on the original validation graphs and
scored on the original test graphs. Seeds are spread over the ranks under
``torchrun``; each seed's record is written atomically and a rerun skips the
seeds already done.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np

from geokd.checkpoint import load_checkpoint, save_checkpoint
from geokd.distributed import cleanup, init_distributed
from geokd.log import get_logger, progress
from graphkd.condense.coreset import SELECTORS, graph_embeddings, select_per_class
from graphkd.condense.discretize import discretize
from graphkd.condense.mirage import class_supports, condense, training_set, tree_readout
from graphkd.condense.train import NodeInputs, stratified_split, train_graph_classifier
from graphkd.datasets import get_dataset
from graphkd.nn import GraphClassifier

METHODS = ("mirage", "random", "herding", "kcenter", "doscond", "kidd")

#: Graphs per class the baselines keep unless told otherwise.
GRAPHS_PER_CLASS = 10


def _write_json(path: Path, payload: dict) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temporary, path)


def _random_subset(train_graphs: list, graphs_per_class: int, seed: int) -> list:
    rng = random.Random(seed)
    by_class: dict[int, list] = {}
    for graph in train_graphs:
        by_class.setdefault(int(graph.y), []).append(graph)
    chosen = []
    for label in sorted(by_class):
        members = by_class[label]
        chosen.extend(rng.sample(members, min(graphs_per_class, len(members))))
    return chosen


def _serialize(graphs: list) -> bytes:
    """The subset stored as compactly as Mirage's file: zlib over int32 edges, float32 features, graph
    sizes and labels (so the byte counts compare like with like)."""
    import zlib

    parts = [np.array([g.num_nodes for g in graphs] + [int(g.y) for g in graphs], dtype=np.int32)]
    for graph in graphs:
        parts.append(graph.edge_index.numpy().astype(np.int32))
        if graph.x is not None:
            parts.append(graph.x.numpy().astype(np.float32))
        if getattr(graph, "edge_attr", None) is not None:
            parts.append(graph.edge_attr.numpy().astype(np.float32))
    return zlib.compress(b"".join(part.tobytes() for part in parts), level=9)


def _serialized_size(graphs: list, path: Path) -> int:
    data = _serialize(graphs)
    path.write_bytes(data)
    return len(data)


def fit_budget(choose, budget_bytes: int, max_per_class: int) -> tuple[list, int, bool]:
    """The subset of real graphs with the most graphs per class that is stored in ``budget_bytes``.

    ``choose(k)`` gives the subset with ``k`` graphs per class. ``k`` grows from 1 while the next
    subset's stored size (:func:`_serialize`) fits, up to ``max_per_class``; the scan stops at the first
    ``k`` that does not fit (a random subset's size is not strictly monotone in ``k``). A condensed set
    needs a graph of every class, so where one per class already exceeds the budget, that subset is
    returned over budget. Returns ``(subset, k, over_budget)``.
    """
    k, subset = 1, choose(1)
    over = len(_serialize(subset)) > budget_bytes
    while not over and k < max_per_class:
        bigger = choose(k + 1)
        if len(_serialize(bigger)) > budget_bytes:
            break
        k, subset = k + 1, bigger
    return subset, k, over


def split_indices(dataset, labels: list[int], seed: int) -> tuple[list, list, list]:
    """The dataset's own split when it publishes one (OGB's scaffold split: the same for every seed,
    which then varies the training only), else a random stratified 80/10/10 split by seed."""
    if hasattr(dataset, "get_idx_split"):
        split = dataset.get_idx_split()
        return tuple(sorted(split[key].tolist()) for key in ("train", "valid", "test"))
    return stratified_split(labels, seed)


def _reference_path(args, seed: int) -> Path:
    name = f"{args.dataset}-{args.gnn}-L{args.hops}-h{args.hidden}-e{args.epochs}-seed{seed}.pt"
    return Path(args.reference_dir or Path(args.out) / "reference") / name


def full_data_reference(train, val, test, common: dict, args, seed: int, train_missing: bool = True):
    """The GNN trained on the full training set: its scores, and the model (herding and k-center
    select on its embeddings). Kept in the reference directory, so that runs of several methods
    sharing one train the reference once per dataset, GNN and seed. Without ``train_missing`` a
    reference the directory lacks is not trained: ``(None, None)``."""
    path = _reference_path(args, seed)
    model = GraphClassifier(args.gnn, common["inputs"].size, args.hidden, args.hops, common["num_classes"])
    if path.is_file():
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        return state["result"], model
    if not train_missing:
        return None, None
    result = train_graph_classifier(train, val, test, return_model=True, **common)
    model = result.pop("model").cpu()
    save_checkpoint({"model": model.state_dict(), "result": result}, path)
    return result, model


def mirage_support(support):
    """``--support`` as :func:`condense` takes it: one number for every class, or a list of one per class."""
    if isinstance(support, (list, tuple)):
        return support[0] if len(support) == 1 else list(support)
    return support


def mirage_readout(args) -> str:
    return getattr(args, "readout", "all")


def _earlier_config(record: dict) -> dict | None:
    """A record's config; Mirage records from before ``--readout`` read out every node."""
    config = record.get("config")
    if config is not None and config.get("method") == "mirage" and "readout" not in config:
        config = {**config, "readout": "all"}
    return config


def budget_bytes(args) -> int | None:
    return getattr(args, "budget_bytes", None)


def run_config(args) -> dict:
    """The options a seed's record depends on: a run directory is resumed only with the same ones."""
    config = {"method": args.method, "dataset": args.dataset, "gnn": args.gnn, "hops": args.hops,
              "hidden": args.hidden, "epochs": args.epochs}
    if args.method == "mirage":
        config.update(support=mirage_support(args.support), node_labels=args.node_labels,
                      edge_labels=args.edge_labels, max_length=args.max_length, readout=mirage_readout(args))
    elif budget_bytes(args) is not None:
        config["budget_bytes"] = budget_bytes(args)
    else:
        config["graphs_per_class"] = args.graphs_per_class
        if args.method in ("doscond", "kidd"):
            config["iterations"] = args.iterations
        if args.method == "kidd":
            config["init"] = args.init
    return config


def run_seed(dataset, method: str, seed: int, args, out: Path) -> dict:
    graphs = list(dataset)
    labels = [int(g.y) for g in graphs]
    train_index, val_index, test_index = split_indices(dataset, labels, seed)
    train = [graphs[i] for i in train_index]
    val = [graphs[i] for i in val_index]
    test = [graphs[i] for i in test_index]
    inputs = NodeInputs.for_graphs(graphs)
    common = {"inputs": inputs, "num_classes": dataset.num_classes, "gnn": args.gnn, "num_layers": args.hops,
              "hidden": args.hidden, "epochs": args.epochs, "seed": seed, "device": args.device}
    seed_dir = out / f"seed{seed}"
    if method == "mirage":
        # Mining needs no trained model, so a support that leaves a class without a tree set fails here,
        # before the full-data reference trains (minutes a seed on mol-hiv).
        started = time.perf_counter()
        condensed = condense(train, num_hops=args.hops, min_support=mirage_support(args.support),
                             dataset_name=args.dataset, node_strategy=args.node_labels,
                             edge_strategy=args.edge_labels, max_length=args.max_length)
        condense_seconds = time.perf_counter() - started
    full, full_model = full_data_reference(train, val, test, common, args, seed,
                                           train_missing=not getattr(args, "no_reference", False))

    seed_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if method == "mirage":
        size = condensed.save(seed_dir / "condensed.mirage")
        train_set, weights = training_set(condensed)
        extra = {"patterns_per_class": condensed.num_patterns(), "trees": len(condensed.trees),
                 "class_specific_patterns": condensed.meta["class_specific_patterns"]}
        if mirage_readout(args) == "trees":
            # The graphs the GNN is selected and scored on, read out at the nodes whose trees were kept.
            val, val_whole = tree_readout(condensed, val)
            test, test_whole = tree_readout(condensed, test)
            extra["read_out_whole"] = {"val": val_whole, "test": test_whole}
        result = train_graph_classifier(train_set, val, test, sample_weights=weights,
                                        steps_per_epoch=max(1, len(train) // 32), **common)
    else:
        budget_record = {}
        if method in ("random", *SELECTORS):
            if method == "random":
                def choose(k):
                    return _random_subset(train, k, seed)
            else:
                # Selection time counts the embedding pass, not the reference training it shares with the table.
                embeddings = graph_embeddings(full_model, train, inputs)
                train_labels = [int(g.y) for g in train]

                def choose(k):
                    return [train[i] for i in select_per_class(embeddings, train_labels, k, method)]
            if budget_bytes(args) is None:
                subset = choose(args.graphs_per_class)
            else:
                largest = max(np.bincount([int(g.y) for g in train]))
                subset, per_class, over = fit_budget(choose, budget_bytes(args), int(largest))
                budget_record = {"graphs_per_class": per_class, "over_budget": over}
                if over:
                    logging.getLogger("graphkd.condense").warning(
                        "seed %d: one graph per class takes %d bytes, over --budget-bytes %d; keeping one per class",
                        seed, len(_serialize(subset)), budget_bytes(args))
        elif method == "doscond":
            from graphkd.condense.doscond import doscond

            options = {} if args.iterations is None else {"iterations": args.iterations}
            subset = doscond(train, inputs, dataset.num_classes, graphs_per_class=args.graphs_per_class,
                             hidden=args.hidden, num_layers=args.hops, seed=seed, device=args.device,
                             show_progress=False, **options)
        else:  # kidd
            from graphkd.condense.kidd import kidd

            options = {} if args.iterations is None else {"iterations": args.iterations}
            init_order = None
            if args.init in SELECTORS:
                # The authors start from herding (or k-center) selections; ordered per class, best first.
                embeddings = graph_embeddings(full_model, train, inputs)
                init_order = select_per_class(embeddings, [int(g.y) for g in train], args.graphs_per_class, args.init)
            subset = kidd(train, inputs, dataset.num_classes, graphs_per_class=args.graphs_per_class,
                          init_order=init_order, seed=seed, device=args.device, show_progress=False, **options)
        condense_seconds = time.perf_counter() - started
        size = _serialized_size(subset, seed_dir / "condensed.bin")
        result = train_graph_classifier(subset, val, test, **common)
        extra = {"graphs": len(subset), **budget_record}
    return {
        "seed": seed,
        "method": method,
        "full": full,
        "condensed": result,
        "condensed_bytes": size,
        "condense_seconds": round(condense_seconds, 4),
        **extra,
        "config": run_config(args),
    }


def summarize(records: list[dict]) -> dict:
    """Mean ± std over seeds of test and validation scores, and the test mean of the 5 best seeds ranked
    by validation (Mirage's protocol)."""
    summary = {}
    for part in ("full", "condensed"):
        for metric in ("roc_auc", "accuracy"):
            # Seeds whose split leaves ROC-AUC undefined (a single class) are left out and counted.
            # Seeds run without the full-data reference have no "full" part; a mean over the others would
            # stand beside the condensed mean of every seed, so then the full-data scores stay empty.
            missing = part == "full" and any(r["full"] is None for r in records)
            usable = [] if missing else [r for r in records if r[part]["test"][metric] is not None
                                         and r[part]["val"][metric] is not None]
            if not usable:
                summary[f"{part}_{metric}"] = {"mean": None, "std": None, "top5_by_val_mean": None, "val_mean": None,
                                               "val_std": None, "seeds": 0}
                continue
            test = np.array([r[part]["test"][metric] for r in usable])
            val = np.array([r[part]["val"][metric] for r in usable])
            best = test[np.argsort(-val, kind="stable")[: min(5, len(usable))]]
            summary[f"{part}_{metric}"] = {"mean": float(test.mean()), "std": float(test.std()),
                                           "top5_by_val_mean": float(best.mean()), "val_mean": float(val.mean()),
                                           "val_std": float(val.std()), "seeds": len(usable)}
    for key in ("condensed_bytes", "condense_seconds"):
        summary[key] = float(np.mean([r[key] for r in records]))
    if all("graphs_per_class" in r for r in records):  # runs at a byte budget
        summary["graphs_per_class"] = float(np.mean([r["graphs_per_class"] for r in records]))
        summary["graphs"] = float(np.mean([r["graphs"] for r in records]))
        summary["over_budget_seeds"] = sum(bool(r["over_budget"]) for r in records)
    summary["train_seconds_full"] = (None if any(r["full"] is None for r in records)
                                     else float(np.mean([r["full"]["train_seconds"] for r in records])))
    summary["train_seconds_condensed"] = float(np.mean([r["condensed"]["train_seconds"] for r in records]))
    return summary


def format_table(args, summary: dict, num_seeds: int) -> str:
    def cell(key):
        entry = summary[key]
        if entry["mean"] is None and key.startswith("full") and summary["train_seconds_full"] is None:
            return "not trained (--no-reference)"
        if entry["mean"] is None:
            return "undefined (single-class splits)"
        return f"{100 * entry['mean']:6.2f} ± {100 * entry['std']:5.2f} (top-5 {100 * entry['top5_by_val_mean']:6.2f})"

    lines = [
        f"{args.method} on {args.dataset}, {args.gnn.upper()} with {args.hops} layers, {num_seeds} seeds",
        f"{'':12} {'ROC-AUC':32} {'accuracy':32}",
        f"{'full data':12} {cell('full_roc_auc'):32} {cell('full_accuracy'):32}",
        f"{'condensed':12} {cell('condensed_roc_auc'):32} {cell('condensed_accuracy'):32}",
        (f"condensed size {summary['condensed_bytes']:.0f} bytes; condensation {summary['condense_seconds']:.3f} s; "
         + "training " + ("" if summary["train_seconds_full"] is None else f"{summary['train_seconds_full']:.1f} s full vs ")
         + f"{summary['train_seconds_condensed']:.1f} s condensed"),
    ]
    return "\n".join(lines)


def run_condense(args) -> int:
    if args.method not in METHODS:
        raise ValueError(f"--method must be one of {METHODS}, got {args.method!r}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if getattr(args, "iterations", None) is not None and args.iterations < 1:
        raise ValueError(f"--iterations must be >= 1, got {args.iterations}")
    if getattr(args, "graphs_per_class", None) is None:  # a budget in bytes, or the default count
        args.graphs_per_class = None if budget_bytes(args) is not None else GRAPHS_PER_CLASS
    elif args.graphs_per_class < 1:
        raise ValueError(f"--graphs-per-class must be >= 1, got {args.graphs_per_class}")
    if budget_bytes(args) is not None:
        if args.method not in ("random", *SELECTORS):
            raise ValueError(f"--budget-bytes: {args.method} does not keep real graphs; only random, herding and "
                             "kcenter fit their subset to a byte budget")
        if args.graphs_per_class is not None:
            raise ValueError("give --graphs-per-class or --budget-bytes, not both")
        if args.budget_bytes < 1:
            raise ValueError(f"--budget-bytes must be >= 1, got {args.budget_bytes}")
    if getattr(args, "no_reference", False) and (
            args.method in SELECTORS or (args.method == "kidd" and getattr(args, "init", None) in SELECTORS)):
        raise ValueError(f"--no-reference: {args.method} selects on the embeddings of the full-data GNN, which "
                         "--no-reference does not train" + (" (use --init random)" if args.method == "kidd" else ""))
    ctx = init_distributed(args.device)
    args.device = str(ctx.device)
    out = Path(args.out)
    log = get_logger("graphkd.condense", ctx, log_dir=out)
    try:
        dataset = get_dataset(args.dataset)
        if args.method == "mirage":
            class_supports(mirage_support(args.support), dataset.num_classes)  # bad values fail before training
            first = dataset[0]  # and so do label strategies the features do not fit
            discretize(first.x, first.edge_index, first.num_nodes, args.node_labels, "nodes")
            discretize(getattr(first, "edge_attr", None), first.edge_index, first.num_nodes, args.edge_labels, "edges")
        config = run_config(args)
        for seed in range(args.seeds):
            # Records of runs older than the check carry no config and are taken as they are.
            record_path = out / f"seed{seed}.json"
            earlier = _earlier_config(json.loads(record_path.read_text())) if record_path.is_file() else None
            if earlier is not None and earlier != config:
                changed = sorted(key for key in config.keys() | earlier.keys() if config.get(key) != earlier.get(key))
                then = ", ".join(f"{key}={earlier.get(key)!r}" for key in changed)
                now = ", ".join(f"{key}={config.get(key)!r}" for key in changed)
                raise ValueError(f"{record_path} was run with {then}, not {now}; use another --out for other options")
        mine = ctx.shard(list(range(args.seeds)))
        for seed in progress(mine, ctx, desc=f"{args.method} on {args.dataset}", unit="seed"):
            record_path = out / f"seed{seed}.json"
            if record_path.is_file():
                log.info("seed %d already done (%s)", seed, record_path)
                continue
            record = run_seed(dataset, args.method, seed, args, out)
            _write_json(record_path, record)
            def auc(part):
                value = part["test"]["roc_auc"] if part is not None else None
                return "n/a" if value is None else f"{value:.4f}"

            log.info("seed %d: condensed test ROC-AUC %s (full %s), %d bytes", seed, auc(record["condensed"]),
                     auc(record["full"]), record["condensed_bytes"])
        ctx.barrier()
        if not ctx.is_main:
            return 0
        records = [json.loads((out / f"seed{seed}.json").read_text()) for seed in range(args.seeds)]
        summary = summarize(records)
        result = {"method": args.method, "dataset": args.dataset, "gnn": args.gnn, "hops": args.hops,
                  "support": mirage_support(args.support) if args.method == "mirage" else None, "seeds": args.seeds,
                  "node_labels": args.node_labels if args.method == "mirage" else None,
                  "edge_labels": args.edge_labels if args.method == "mirage" else None,
                  "readout": mirage_readout(args) if args.method == "mirage" else None,
                  "budget_bytes": budget_bytes(args), "summary": summary}
        _write_json(out / "results.json", {**result, "records": records})
        print(json.dumps(result, indent=2) if args.json else format_table(args, summary, args.seeds))
        return 0
    finally:
        cleanup(ctx)
