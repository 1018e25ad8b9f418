r"""Epoch schedule ablation for GLNN and NOSMOG: one joint pass per epoch vs the official two passes.

The official GLNN and NOSMOG loops take, every epoch, Adam steps on the label loss over the
training nodes weighted by :math:`\lambda` (0 in their published runs: a zero loss, whose steps
still apply weight decay and momentum) and then on the soft-label loss over the observed nodes
(``schedule="two-pass"``); ``schedule="joint"`` takes one pass with both terms per batch. For each
seed (= CPF split) the same teacher, student initialisation and split serve both schedules.
Teachers come from ``--teacher-dir`` (the files ``graphkd distill --teacher-dir`` writes) when
there, else are trained.

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/g2m_schedule.py \\
        [--methods glnn nosmog] [--cells cora:tran cora:ind] [--seeds 10] \\
        [--teacher-root runs/g2m/teachers] [--json out.json]

Prints accuracy (%, mean ± std over seeds; ``ind`` on the held-out nodes, with ``prod``) per
method, cell and schedule.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from geokd.benchmark import machine, write_json
from geokd.seed import seed_everything
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.glnn import GLNN
from graphkd.distill.nosmog import NOSMOG
from graphkd.distill.student import SCHEDULES, DistillContext, student_defaults, train_student
from graphkd.distill.teacher import cached_teacher

METHODS = {"glnn": GLNN, "nosmog": NOSMOG}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=["glnn", "nosmog"])
    parser.add_argument("--cells", nargs="+", default=["cora:tran", "cora:ind"],
                        help="dataset:setting pairs, setting tran or ind (default: cora:tran cora:ind)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--teacher-root", type=Path, default=None,
                        help="directory holding one teacher directory per dataset (e.g. runs/g2m/teachers)")
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    cells = []
    for cell in args.cells:
        dataset, _, setting = cell.partition(":")
        if setting not in ("tran", "ind"):
            parser.error(f"--cells entries must be dataset:tran or dataset:ind, got {cell!r}")
        cells.append((dataset, setting))
    torch.set_num_threads(1)

    rows, started = [], time.perf_counter()
    for dataset, setting in cells:
        data = load_node_dataset(dataset)
        teacher_dir = None if args.teacher_root is None else args.teacher_root / dataset
        scores = {(method, schedule): [] for method in args.methods for schedule in SCHEDULES}
        for seed in range(args.seeds):
            split = make_split(data, setting, seed)
            ctx = DistillContext(data, split, cached_teacher(data, split, seed, teacher_dir), data.num_classes,
                                 torch.device("cpu"), seed)
            for method in args.methods:
                for schedule in SCHEDULES:
                    seed_everything(seed)
                    result = train_student(METHODS[method](schedule=schedule), ctx, **student_defaults(dataset))
                    scores[(method, schedule)].append({k: 100 * v for k, v in result.scores.items()})
            print(f"{dataset} {setting} seed {seed}: " + "  ".join(
                f"{m}/{s} {v[-1]['test_ind' if setting == 'ind' else 'test']:.2f}" for (m, s), v in scores.items()),
                file=sys.stderr)
        for (method, schedule), per_seed in scores.items():
            row = {"dataset": dataset, "setting": setting, "method": method, "schedule": schedule, "seeds": len(per_seed)}
            for key in ("test", "test_ind", "prod"):
                if key in per_seed[0]:
                    values = [entry[key] for entry in per_seed]
                    row[f"{key}_mean"], row[f"{key}_std"] = statistics.fmean(values), statistics.pstdev(values)
            rows.append(row)

    print("| dataset | setting | method | schedule | accuracy (%) | production (%) |\n|---|---|---|---|---|---|")
    for row in rows:
        key = "test_ind" if row["setting"] == "ind" else "test"
        prod = f"{row['prod_mean']:.2f} ± {row['prod_std']:.2f}" if "prod_mean" in row else ""
        print(f"| {row['dataset']} | {row['setting']} | {row['method']} | {row['schedule']} | "
              f"{row[f'{key}_mean']:.2f} ± {row[f'{key}_std']:.2f} | {prod} |")
    payload = {"benchmark": "g2m_schedule_ablation", "seeds": args.seeds, "rows": rows,
               "seconds": time.perf_counter() - started, "machine": machine()}
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
