"""GNN-to-MLP accuracy table: SAGE teacher, plain MLP, GLNN, FF-G2M, VQGraph and NOSMOG on the CPF splits.

For each dataset and setting, one `graphkd distill` run (10 seeds = 10 splits, validation-only
selection everywhere); the inductive runs give both the `ind` column (held-out test nodes) and the
`prod` column (0.8 observed test + 0.2 held-out). Runs go to --out and resume; teachers are shared
between the settings' runs of a dataset. Independent runs go in parallel (--jobs, one torch thread
each). Prints a markdown table beside the papers' figures and writes JSON; an existing --json file
keeps its other cells, so the table can be grown or refreshed one method at a time.
With --option (passed to `graphkd distill --option`), the runs go to their own directories and the
students' rows are named `MODEL [LABEL]` (--label, default: the options joined), beside the defaults'.
With --teachers (default: sage, the papers' teacher), each other teacher gets its own runs; its row is
the teacher's name and its students' rows are named `MODEL [TEACHER teacher]` (with LABEL after it).

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/g2m_accuracy.py \\
        [--datasets cora citeseer] [--settings tran ind] [--methods glnn ffg2m vqgraph nosmog] \\
        [--seeds 10] [--teacher-select loss|accuracy] [--jobs 2] --out runs/g2m [--json table.json] \\
        [--markdown table.md] [--option vqgraph.use_teacher_logits=true ... [--label soft-labels]] \\
        [--teachers sage gcn gat appnp]
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

from geokd.benchmark import machine, merge_rows, write_json
from graphkd.nn import TEACHERS

#: Published accuracies (%) with GraphSAGE teachers on the CPF splits: GLNN (Zhang et al., ICLR 2022,
#: Tables 3 and 5), NOSMOG (Tian et al., ICLR 2023, Table 1), VQGraph (Yang et al., ICLR 2024, Table 1).
PAPER = {
    ("cora", "sage", "tran"): 80.52, ("cora", "mlp", "tran"): 59.58, ("cora", "glnn", "tran"): 80.54,
    ("citeseer", "sage", "tran"): 70.33, ("citeseer", "mlp", "tran"): 59.32, ("citeseer", "glnn", "tran"): 71.77,
    ("cora", "glnn", "ind"): 73.82, ("cora", "glnn", "prod"): 78.28,
    ("cora", "nosmog", "tran"): 83.04, ("citeseer", "nosmog", "tran"): 73.78,
    ("cora", "vqgraph", "tran"): 83.93, ("citeseer", "vqgraph", "tran"): 76.08,
}


DEFAULT_TEACHER = "sage"


def options_label(args: argparse.Namespace, teacher: str = DEFAULT_TEACHER) -> str | None:
    """The name that tells the students of runs with another teacher or --option from the defaults'
    (``None`` for the SAGE teacher without options)."""
    parts = [] if teacher == DEFAULT_TEACHER else [f"{teacher} teacher"]
    if args.option:
        parts.append(args.label or " ".join(args.option))
    return ", ".join(parts) or None


def run_one(dataset: str, setting: str, teacher: str, args: argparse.Namespace) -> dict:
    label = options_label(args, teacher)
    # graphkd distill refuses to resume a run directory with other options, so each set has its own.
    suffix = "" if label is None else "-" + "".join(c if c.isalnum() or c in "._=-" else "_" for c in label)
    out = Path(args.out) / f"{dataset}-{setting}{suffix}"
    # SAGE teachers keep the layout of earlier runs (teachers/DATASET), so their caches still resume.
    teacher_dir = Path(args.out) / "teachers" / dataset
    if teacher != DEFAULT_TEACHER:
        teacher_dir = Path(args.out) / "teachers" / teacher / dataset
    command = [sys.executable, "-m", "graphkd.cli", "distill", "--dataset", dataset, "--teacher", teacher,
               "--setting", setting, "--seeds", str(args.seeds), "--method", *args.methods, "--out", str(out),
               "--teacher-dir", str(teacher_dir), "--json"]
    if args.fan_out:
        command += ["--fan-out", args.fan_out]
    if args.teacher_select:
        command += ["--teacher-select", args.teacher_select]
    if args.option:
        command += ["--option", *args.option]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GEOKD_PROGRESS="0")
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    summary = json.loads(result.stdout)
    summary["wall_seconds"] = time.perf_counter() - started
    if label is not None:
        # The teacher is shared through --teacher-dir and keeps its name; the students carry the label.
        summary["rows"] = [row if row["model"] in TEACHERS else {**row, "model": f"{row['model']} [{label}]"}
                           for row in summary["rows"]]
        summary["options_label"] = label
    print(f"{dataset} {setting} {teacher}: done in {summary['wall_seconds']:.0f} s", file=sys.stderr)
    return summary


def table_rows(summaries: list[dict]) -> list[dict]:
    rows = []
    for summary in summaries:
        columns = ["tran"] if summary["setting"] == "tran" else ["ind", "prod"]
        for row in summary["rows"]:
            for column in columns:
                key = {"tran": "test", "ind": "test_ind", "prod": "prod"}[column]
                if f"{key}_mean" not in row:
                    continue
                # Papers' figures are for the SAGE teacher and the default students; other teachers have none.
                labelled = summary.get("options_label") and row["model"] not in TEACHERS
                paper = None if labelled else PAPER.get((summary["dataset"], row["model"], column))
                rows.append({"dataset": summary["dataset"], "setting": column, "model": row["model"],
                             "mean": row[f"{key}_mean"], "std": row[f"{key}_std"], "seeds": row["seeds"],
                             "val_mean": row.get("val_mean"), "val_std": row.get("val_std"),
                             "latency_ms": row.get("latency_ms"), "paper": paper})
    return rows


def merge_summaries(previous: list[dict], new: list[dict]) -> list[dict]:
    """Per (dataset, setting) run summary, the earlier one with this run's models replacing its own."""
    def key(summary: dict) -> tuple:
        return summary["dataset"], summary["setting"], summary.get("options_label")

    fresh = {key(summary): summary for summary in new}
    merged = []
    for summary in previous:
        update = fresh.pop(key(summary), None)
        if update is not None:
            summary = {**summary, **{k: v for k, v in update.items() if k != "rows"},
                       "rows": merge_rows(summary["rows"], update["rows"], ("model",))}
        merged.append(summary)
    return merged + [summary for summary in new if key(summary) in fresh]


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | setting | model | accuracy (%) mean ± std | validation (%) | paper | latency, 10 new nodes |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        paper = "" if row["paper"] is None else f"{row['paper']:.2f}"
        # Rows of runs summarised before validation was recorded have none.
        validation = "" if row.get("val_mean") is None else f"{row['val_mean']:.2f} ± {row['val_std']:.2f}"
        latency = "" if row["latency_ms"] is None else f"{row['latency_ms']:.3f} ms"
        lines.append(f"| {row['dataset']} | {row['setting']} | {row['model']} | {row['mean']:.2f} ± {row['std']:.2f} "
                     f"| {validation} | {paper} | {latency} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--settings", nargs="+", default=["tran", "ind"], choices=["tran", "ind"])
    parser.add_argument("--methods", nargs="+", default=["glnn", "ffg2m", "vqgraph", "nosmog"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--fan-out", default=None, help="teacher sampling, e.g. 5,5 or full (default: the CLI's)")
    parser.add_argument("--teacher-select", choices=["loss", "accuracy"], default=None,
                        help="validation score that keeps the teacher's epoch (default: the CLI's, loss); "
                             "use a fresh --out for another choice, its teachers are cached there")
    parser.add_argument("--option", nargs="+", default=None, metavar="KEY=VALUE",
                        help="passed to graphkd distill --option (METHOD.ARG=VALUE or KEY=VALUE); the runs get "
                             "their own directories and rows named 'MODEL [LABEL]'")
    parser.add_argument("--label", default=None,
                        help="the rows' label for --option (default: the options themselves)")
    parser.add_argument("--teachers", nargs="+", default=[DEFAULT_TEACHER], choices=TEACHERS,
                        help="GNN teachers, each with its own runs; students of a teacher other than sage "
                             "get rows named 'MODEL [TEACHER teacher]' (default: sage)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, one torch thread each (default: 2)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    if args.label is not None and not args.option:
        parser.error("--label names the rows of --option runs; give --option too")

    # The teacher of a dataset is shared by its settings' runs only within a setting (the inductive
    # teacher never sees held-out nodes), so the runs are independent and can go side by side.
    jobs = [(dataset, setting, teacher) for dataset in args.datasets for setting in args.settings
            for teacher in dict.fromkeys(args.teachers)]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        summaries = list(pool.map(lambda job: run_one(*job, args), jobs))
    rows, methods = table_rows(summaries), list(args.methods)
    if args.json and Path(args.json).is_file():
        # Grow the earlier table: this run's cells replace the same (dataset, setting, model) cells.
        previous = json.loads(Path(args.json).read_text())
        rows = merge_rows(previous["rows"], rows, ("dataset", "setting", "model"))
        summaries = merge_summaries(previous["summaries"], summaries)
        methods = list(dict.fromkeys(previous["methods"] + methods))
    table = markdown(rows)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    write_json(args.json, {"benchmark": "g2m_accuracy", "machine": machine(), "seeds": args.seeds,
                           "teacher_select": args.teacher_select or "loss", "methods": methods, "rows": rows, "summaries": summaries})


if __name__ == "__main__":
    main()
