"""``graphkd distill``: train a GNN teacher, distil it into MLPs, score everything on one protocol.

For each seed (split ``i`` from seed ``i``, see :mod:`graphkd.distill.data`):
the teacher trains on the observed graph (validation-selected), then the plain
MLP baseline and each requested method train students from it under the same
loop (:func:`graphkd.distill.student.train_student`). Teacher outputs are cached
in a teacher directory that runs of several methods can share; each seed's
record and student checkpoints are written atomically, and a rerun skips
finished seeds. Seeds are spread over the ranks under ``torchrun``.

Outputs in ``--out``: ``records/seed<k>.json``, ``students/<method>-seed<k>.pt``
(exportable with ``graphkd export``), ``summary.json``, ``accuracy_latency.png``
and ``log.txt``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch

from geokd.checkpoint import load_checkpoint, save_checkpoint
from geokd.distributed import DistributedContext, cleanup, init_distributed
from geokd.log import get_logger, progress
from geokd.seed import seed_everything
from graphkd.distill.data import SETTINGS, load_node_dataset, make_split
from graphkd.distill.student import DistillContext, student_defaults, train_student
from graphkd.distill.teacher import TeacherOutput, train_teacher
from graphkd.nn.teachers import TEACHER_DEFAULTS, TEACHERS, build_teacher

#: Method name -> "module:class" (imported on use).
METHODS = {
    "mlp": "graphkd.distill.glnn:PlainMLP",
    "glnn": "graphkd.distill.glnn:GLNN",
    "ffg2m": "graphkd.distill.ffg2m:FFG2M",
    "vqgraph": "graphkd.distill.vqgraph:VQGraph",
    "nosmog": "graphkd.distill.nosmog:NOSMOG",
}

#: Published transductive / inductive / production accuracies with SAGE teachers on the CPF splits.
PAPER = {
    ("cora", "glnn"): {"tran": 80.54, "ind": 73.82, "prod": 78.28},
    ("citeseer", "glnn"): {"tran": 71.77},
    ("cora", "nosmog"): {"tran": 83.04},
    ("citeseer", "nosmog"): {"tran": 73.78},
    ("cora", "vqgraph"): {"tran": 83.93},
    ("citeseer", "vqgraph"): {"tran": 76.08},
}


def method_class(name: str) -> type:
    """The :class:`DistillMethod` subclass registered as ``name`` in :data:`METHODS`."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    module_name, class_name = METHODS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_method(name: str, **options):
    return method_class(name)(**options)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_options(entries: list[str] | None, methods: list[str]) -> tuple[dict[str, dict], dict]:
    """``--option`` entries as ``(method options, student options)``.

    ``METHOD.ARG=VALUE`` sets a constructor argument of one of ``methods`` (e.g.
    ``vqgraph.use_teacher_logits=true``); ``KEY=VALUE`` sets a student option of every student,
    the plain MLP's included (e.g. ``dropout=0.3``; the keys of :func:`student_defaults`). Values
    are read by :func:`graphkd.distill.search.parse_value`. Every key is checked here, before any
    training: a ValueError names the entry and what was expected.
    """
    import inspect

    from graphkd.distill.search import parse_value

    method_options: dict[str, dict] = {}
    student_options: dict = {}
    student_keys = sorted(set(student_defaults(None)) - {"epochs", "patience"})  # these two are flags
    for entry in entries or []:
        key, sep, text = entry.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key or not text:
            raise ValueError(f"--option entries must look like METHOD.ARG=VALUE or KEY=VALUE, got {entry!r}")
        value = parse_value(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--option {entry!r}: values must be finite, got {value}")
        if "." in key:
            name, _, argument = key.partition(".")
            if name not in methods:
                raise ValueError(f"--option {entry!r} names method {name!r}, which is not among --method {methods}")
            accepted = sorted(set(inspect.signature(method_class(name).__init__).parameters) - {"self"})
            if argument not in accepted:
                raise ValueError(f"--option {entry!r}: {method_class(name).__name__} takes no argument {argument!r} "
                                 f"(it takes {accepted})")
            target = method_options.setdefault(name, {})
        else:
            if key not in student_keys:
                raise ValueError(f"--option {entry!r}: {key!r} is not a student option ({student_keys}); "
                                 "a method's argument is written METHOD.ARG=VALUE")
            argument, target = key, student_options
        if argument in target:
            raise ValueError(f"--option sets {key!r} twice")
        target[argument] = value
    # The values are checked now, not after a teacher's training: methods by their constructors,
    # the student by building its MLP once.
    for name, options in method_options.items():
        build_method(name, **options)
    if student_options:
        from graphkd.nn import MLP

        merged = {**student_defaults(None), **student_options}
        MLP(1, merged["hidden_channels"], 2, merged["num_layers"], merged["dropout"], merged["norm"])
        if not (_finite_number(merged["lr"]) and merged["lr"] > 0):
            raise ValueError(f"--option lr must be a number > 0, got {merged['lr']!r}")
        if not (_finite_number(merged["weight_decay"]) and merged["weight_decay"] >= 0):
            raise ValueError(f"--option weight_decay must be a number >= 0, got {merged['weight_decay']!r}")
        batch = merged["batch_size"]
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            raise ValueError(f"--option batch_size must be an int >= 1 or none, got {batch!r}")
    return method_options, student_options


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temporary, path)


def _teacher(args, data, split, seed: int, teacher_dir: Path, ctx: DistributedContext, log) -> tuple[TeacherOutput, torch.nn.Module]:
    """Train the seed's teacher, or load it from the teacher directory."""
    defaults = TEACHER_DEFAULTS[args.teacher]
    fan_out = defaults.get("fan_out") if args.fan_out is None else (args.fan_out or None)
    model = build_teacher(args.teacher, data.num_features, data.num_classes)
    path = teacher_dir / f"{args.teacher}-{split.setting}-seed{seed}.pt"
    if path.is_file():
        state = load_checkpoint(path)
        if state.get("select", "accuracy") != args.teacher_select:
            raise ValueError(f"{path} holds a teacher selected on validation {state.get('select', 'accuracy')}, "
                             f"not {args.teacher_select} (--teacher-select); use another --teacher-dir")
        model.load_state_dict(state["model"])
        return TeacherOutput(state["logits"], state["hidden"], state["scores"], state["seconds"], state["epochs"],
                             state["best_epoch"]), model
    seed_everything(seed)
    output = train_teacher(model, data, split, lr=defaults["lr"], weight_decay=defaults["weight_decay"],
                           epochs=args.teacher_epochs, patience=args.patience, fan_out=fan_out,
                           select=args.teacher_select,
                           batch_size=defaults.get("batch_size", 512), seed=seed, device=ctx.device, ctx=ctx,
                           desc=f"{args.teacher} teacher, seed {seed}")
    # Every rank trains its own seeds, so every rank writes (distinct files); not rank 0 only.
    save_checkpoint({"model": model.state_dict(), "logits": output.logits, "hidden": output.hidden,
                     "scores": output.scores, "seconds": output.seconds, "epochs": output.epochs,
                     "best_epoch": output.best_epoch, "fan_out": fan_out, "select": args.teacher_select}, path,
                    DistributedContext())
    log.info("seed %d: %s teacher %s in %.1f s", seed, args.teacher,
             {k: round(v, 4) for k, v in output.scores.items()}, output.seconds)
    return output, model


def measure_latency(model: torch.nn.Module, data, nodes_per_query: int = 10, repeat: int = 20,
                    num_hops: int | None = None, seed: int = 0) -> float:
    """Median milliseconds to answer ``nodes_per_query`` random nodes (GLNN's inductive protocol).

    A GNN (``num_hops`` given) first fetches the nodes' ``num_hops``-hop neighbourhood and runs on
    that subgraph; an MLP reads only the nodes' feature rows.
    """
    from torch_geometric.utils import k_hop_subgraph

    generator = torch.Generator().manual_seed(seed)
    model.eval()
    times = []
    with torch.inference_mode():
        for index in range(repeat + 3):
            nodes = torch.randint(0, data.num_nodes, (nodes_per_query,), generator=generator)
            started = time.perf_counter()
            if num_hops is None:
                model(data.x[nodes])
            else:
                subset, edge_index, mapping, _ = k_hop_subgraph(nodes, num_hops, data.edge_index, relabel_nodes=True,
                                                                num_nodes=data.num_nodes)
                model(data.x[subset], edge_index)[mapping]
            if index >= 3:
                times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def student_latency(student: torch.nn.Module, data, **kwargs) -> tuple[float, str | None]:
    """:func:`measure_latency` of an MLP student, and a note when its input is wider than ``data.x``.

    NOSMOG's students read ``[x || position features]``; the extra columns are fed as zeros, so the
    time is the MLP's alone: computing a new node's position features (the mean over its observed
    neighbours) is not timed.
    """
    extra = student.in_channels - data.num_features
    if extra < 0:
        raise ValueError(f"the student reads {student.in_channels} features, the data has {data.num_features}")
    if extra == 0:
        return measure_latency(student, data, **kwargs), None
    padded = data.clone()
    padded.x = torch.cat([data.x, data.x.new_zeros(data.num_nodes, extra)], dim=1)
    return (measure_latency(student, padded, **kwargs),
            f"MLP forward on {student.in_channels} inputs; the {extra} position features are not timed")


def _run_seed(args, data, seed: int, teacher_dir: Path, out: Path, ctx: DistributedContext, log,
              previous: dict | None = None, parsed_options: tuple[dict, dict] | None = None) -> dict:
    """Train what the seed's record lacks; methods already in ``previous`` are kept. ``parsed_options``
    is :func:`parse_options`'s result for ``args.option``."""
    setting = "tran" if args.setting == "tran" else "ind"
    split = make_split(data, setting, seed)
    teacher, teacher_model = _teacher(args, data, split, seed, teacher_dir, ctx, log)
    teacher_scores = dict(teacher.scores)
    if "test_ind" in teacher_scores:
        teacher_scores["prod"] = 0.8 * teacher_scores["test"] + 0.2 * teacher_scores["test_ind"]
    options = list(getattr(args, "option", None) or [])
    record = {"seed": seed, "setting": args.setting, "dataset": args.dataset, "teacher": args.teacher,
              "options": options, "models": {args.teacher: {"scores": teacher_scores, "seconds": teacher.seconds}}}
    method_options, student_options = parsed_options or ({}, {})
    config = student_defaults(args.dataset)
    config.update({"epochs": args.epochs, "patience": args.patience, **student_options})
    for name in ["mlp"] + [m for m in args.method if m != "mlp"]:
        if previous and name in previous.get("models", {}) and (out / "students" / f"{name}-seed{seed}.pt").is_file():
            record["models"][name] = previous["models"][name]
            continue
        seed_everything(seed)
        method = build_method(name, **method_options.get(name, {}))
        distill_ctx = DistillContext(data, split, teacher, data.num_classes, ctx.device, seed, teacher_model)
        result = train_student(method, distill_ctx, dist_ctx=ctx, desc=f"{name}, seed {seed}", **config)
        record["models"][name] = {"scores": result.scores, "seconds": result.seconds, "epochs": result.epochs,
                                  "best_epoch": result.best_epoch}
        save_checkpoint({"kind": "graphkd.student", "student_config": result.student.config(),
                         "student": result.student.state_dict(), "preprocess": None,
                         "meta": {"dataset": args.dataset, "method": name, "setting": args.setting, "seed": seed,
                                  "teacher": args.teacher, "class_names": None, "feature_names": None,
                                  "scores": result.scores}},
                        out / "students" / f"{name}-seed{seed}.pt", DistributedContext())
        log.info("seed %d: %s %s in %.1f s", seed, name, {k: round(v, 4) for k, v in result.scores.items()},
                 result.seconds)
    return record


def _metric(setting: str) -> str:
    return {"tran": "test", "ind": "test_ind", "prod": "prod"}[setting]


def summarize(records: list[dict], setting: str, dataset: str) -> dict:
    """Mean ± std over seeds of each model's accuracy in the setting (in %), validation included.

    The papers' figures (:data:`PAPER`) are attached only to runs with the SAGE teacher they used.
    """
    models = list(records[0]["models"]) if records else []
    sage_teacher = all(r.get("teacher", "sage") == "sage" for r in records)
    rows = []
    for model in models:
        entry = {"model": model, "seeds": len(records)}
        for key in (["val", "test"] if setting == "tran" else ["val", "test", "test_ind", "prod"]):
            values = [100 * r["models"][model]["scores"][key] for r in records if key in r["models"][model]["scores"]]
            if values:
                entry[f"{key}_mean"] = statistics.fmean(values)
                entry[f"{key}_std"] = statistics.pstdev(values) if len(values) > 1 else 0.0
        entry["accuracy"] = entry.get(f"{_metric(setting)}_mean")
        entry["accuracy_std"] = entry.get(f"{_metric(setting)}_std", 0.0)
        entry["paper"] = PAPER.get((dataset, model), {}).get(setting) if sage_teacher else None
        rows.append(entry)
    return {"dataset": dataset, "setting": setting, "metric": _metric(setting), "rows": rows}


def format_table(summary: dict) -> str:
    lines = [(f"{summary['dataset']}, setting {summary['setting']} (accuracy on {summary['metric']}, %, mean ± std over "
             f"seeds)"), f"{'model':<10} {'accuracy':>16} {'validation':>16} {'paper':>7} {'latency (10 nodes)':>20}"]
    for row in summary["rows"]:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.2f} ± {row['accuracy_std']:.2f}"
        validation = "n/a" if row.get("val_mean") is None else f"{row['val_mean']:.2f} ± {row['val_std']:.2f}"
        paper = "" if row.get("paper") is None else f"{row['paper']:.2f}"
        latency = "" if row.get("latency_ms") is None else f"{row['latency_ms']:.3f} ms"
        lines.append(f"{row['model']:<10} {accuracy:>16} {validation:>16} {paper:>7} {latency:>20}")
    return "\n".join(lines)


def plot_accuracy_latency(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4))
    for row in summary["rows"]:
        if row.get("latency_ms") is None or row["accuracy"] is None:
            continue
        axis.errorbar(row["latency_ms"], row["accuracy"], yerr=row["accuracy_std"], fmt="o", capsize=3)
        axis.annotate(row["model"], (row["latency_ms"], row["accuracy"]), textcoords="offset points", xytext=(5, 5))
    axis.set_xscale("log")
    axis.set_xlabel("inference latency for 10 new nodes (ms, log scale)")
    axis.set_ylabel(f"accuracy on {summary['metric']} (%)")
    axis.set_title(f"{summary['dataset']}, {summary['setting']}")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    os.replace(temporary, path)


def run_distill(args: argparse.Namespace) -> int:
    options = list(getattr(args, "option", None) or [])
    parsed_options = parse_options(options, list(args.method))  # bad options fail before any process group
    ctx = init_distributed(args.device)
    try:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        log = get_logger("graphkd.distill", ctx, log_dir=out)
        teacher_dir = Path(args.teacher_dir) if args.teacher_dir else out / "teachers"
        data = load_node_dataset(args.dataset)
        log.info("%s: %d nodes (largest component), %d edges, %d features, %d classes", args.dataset,
                 data.num_nodes, data.edge_index.shape[1] // 2, data.num_features, data.num_classes)
        records_dir = out / "records"
        for seed in progress(ctx.shard(list(range(args.seeds))), ctx, desc="seeds", unit="seed"):
            path = records_dir / f"seed{seed}.json"
            previous = None
            if path.is_file():
                previous = json.loads(path.read_text())
                if previous.get("setting") != args.setting or previous.get("teacher") != args.teacher:
                    raise ValueError(f"{path} records setting {previous.get('setting')!r} with teacher "
                                     f"{previous.get('teacher')!r}; use another --out for {args.setting!r} / "
                                     f"{args.teacher!r}")
                if sorted(previous.get("options", [])) != sorted(options):
                    raise ValueError(f"{path} records --option {previous.get('options', [])}, not "
                                     f"{options}; use another --out for other options")
                if set(args.method) | {"mlp"} <= set(previous["models"]):
                    continue
            _write_json(path, _run_seed(args, data, seed, teacher_dir, out, ctx, log, previous, parsed_options))
        ctx.barrier()
        if not ctx.is_main:
            return 0
        records = [json.loads((records_dir / f"seed{s}.json").read_text()) for s in range(args.seeds)]
        wanted = [args.teacher, "mlp"] + [m for m in args.method if m != "mlp"]
        for record in records:
            record["models"] = {name: record["models"][name] for name in wanted}
        summary = summarize(records, args.setting, args.dataset)
        # Latency of the seed-0 models (inductive queries on the full graph, GLNN's protocol).
        teacher_state = load_checkpoint(teacher_dir / f"{args.teacher}-{'tran' if args.setting == 'tran' else 'ind'}-seed0.pt")
        teacher = build_teacher(args.teacher, data.num_features, data.num_classes)
        teacher.load_state_dict(teacher_state["model"])
        num_hops = len(getattr(teacher, "convs", [])) or 10
        for row in summary["rows"]:
            if row["model"] == args.teacher:
                row["latency_ms"] = measure_latency(teacher, data, num_hops=num_hops)
            else:
                from graphkd.distill.export import load_student

                student, _ = load_student(out / "students" / f"{row['model']}-seed0.pt")
                row["latency_ms"], note = student_latency(student, data)
                if note:
                    row["latency_note"] = note
        summary["seeds"] = args.seeds
        summary["options"] = options
        _write_json(out / "summary.json", summary)
        plot_accuracy_latency(summary, out / "accuracy_latency.png")
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(format_table(summary))
            print(f"plot: {out / 'accuracy_latency.png'}")
        return 0
    finally:
        cleanup(ctx)


def add_distill_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "distill",
        help="train a GNN teacher and distil it into MLP students (GLNN, FF-G2M, VQGraph, NOSMOG)",
        description=(
            "GLNN/CPF protocol: largest connected component, 20 training and 30 validation nodes per class, the rest "
            "for test; split i from seed i; transductive, inductive (20%% of test nodes held out with their edges) or "
            "production (0.8 tran + 0.2 ind) setting; every model selected on validation accuracy only. Prints "
            "mean ± std per model (teacher, plain MLP, methods) with the inference latency for 10 new nodes and "
            "writes a PNG of accuracy against latency. A rerun with the same --out skips finished seeds."
        ),
    )
    parser.add_argument("--dataset", default="cora", help="cora, citeseer (offline copies), pubmed, a-computer, a-photo "
                                                          "(downloaded when online) (default: cora)")
    parser.add_argument("--teacher", default="sage", choices=list(TEACHERS), help="GNN teacher (default: sage)")
    parser.add_argument("--method", nargs="+", default=["glnn"], choices=sorted(METHODS),
                        help="one or more methods; the plain MLP is always trained too (default: glnn)")
    parser.add_argument("--setting", default="tran", choices=list(SETTINGS), help="tran, ind or prod (default: tran)")
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds / splits (default: 10)")
    parser.add_argument("--epochs", type=int, default=500, help="most student epochs (default: 500)")
    parser.add_argument("--teacher-epochs", type=int, default=500, help="most teacher epochs (default: 500)")
    parser.add_argument("--teacher-select", choices=["loss", "accuracy"], default="loss",
                        help="validation score that picks the teacher's epoch: loss (default) or accuracy (GLNN)")
    parser.add_argument("--patience", type=int, default=50, help="early-stopping patience on validation (default: 50)")
    parser.add_argument("--fan-out", type=lambda s: [] if s == "full" else [int(v) for v in s.split(",")],
                        default=None, help="teacher neighbour sampling per layer, e.g. 5,5, or 'full' for full-batch "
                                           "training (default: the teacher's, 5,5 for sage)")
    parser.add_argument("--option", nargs="+", default=None, metavar="KEY=VALUE",
                        help="METHOD.ARG=VALUE sets a method's argument (e.g. vqgraph.use_teacher_logits=true); "
                             "KEY=VALUE a student option of every student (e.g. dropout=0.3)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--teacher-dir", default=None,
                        help="where teachers are cached, to share them between runs (default: OUT/teachers)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser
