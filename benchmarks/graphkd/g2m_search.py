r"""Validation-selected hyperparameter search for one G2M method on the CPF splits.

Every setting of the grid runs on every seed (= split) with that seed's SAGE teacher (from
``--teacher-root`` when cached there, else trained); the chosen setting has the best mean
validation accuracy, and its test accuracy is the searched result. Test accuracy never takes
part in the choice. Runs are saved to ``--results`` after each one, so the search resumes.

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/g2m_search.py \\
        --dataset cora --setting tran --method nosmog \\
        --grid adv_eps=0.02,0.04,0.08 rsd_weight=0.05,0.1,0.3 [--seeds 10] \\
        [--first-seed 0] [--teacher-root runs/g2m/teachers] --results runs/g2m_search/cora-nosmog.json \\
        [--merge other-process.json ...] [--json out.json]

Prints one row per setting (mean ± std of validation and test accuracy, %), the chosen one marked.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from geokd.benchmark import machine, write_json
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.run import METHODS
from graphkd.distill.search import grid_search, merge_results, parse_grid
from graphkd.distill.student import DistillContext
from graphkd.distill.teacher import cached_teacher


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--setting", choices=["tran", "ind"], default="tran")
    parser.add_argument("--method", choices=sorted(METHODS), default="nosmog")
    parser.add_argument("--grid", nargs="*", default=[], help="key=value1,value2 ... (student or method options)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="run seeds first-seed .. first-seed + seeds - 1 (to split a search between "
                             "processes, each with its own --results)")
    parser.add_argument("--merge", nargs="+", type=Path, default=[],
                        help="results files of such processes, joined into --results before the search")
    parser.add_argument("--teacher-root", type=Path, default=None,
                        help="directory holding one teacher directory per dataset (e.g. runs/g2m/teachers)")
    parser.add_argument("--results", type=Path, required=True, help="JSON file of finished runs (resumed)")
    parser.add_argument("--json", default=None, help="write the table here as JSON")
    args = parser.parse_args(argv)
    grid = parse_grid(args.grid)
    torch.set_num_threads(1)

    data = load_node_dataset(args.dataset)
    teacher_dir = None if args.teacher_root is None else args.teacher_root / args.dataset

    def context(seed: int) -> DistillContext:
        split = make_split(data, args.setting, seed)
        return DistillContext(data, split, cached_teacher(data, split, seed, teacher_dir), data.num_classes,
                              torch.device("cpu"), seed)

    started = time.perf_counter()
    if args.merge:
        merge_results([*args.merge, *([args.results] if args.results.is_file() else [])], args.results)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    outcome = grid_search(args.method, context, seeds, grid, dataset=args.dataset, results=args.results,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    test = "test_ind" if args.setting == "ind" else "test"
    print(f"| setting | validation (%) | {test} (%) |\n|---|---|---|")
    for i, row in enumerate(outcome["rows"]):
        mark = " **chosen**" if i == outcome["chosen"] else ""
        print(f"| {row['setting']}{mark} | {row['val_mean']:.2f} ± {row['val_std']:.2f} | "
              f"{row[f'{test}_mean']:.2f} ± {row[f'{test}_std']:.2f} |")
    payload = {"benchmark": "g2m_search", "dataset": args.dataset, "setting": args.setting, "method": args.method,
               "seeds": list(seeds), **outcome, "seconds": time.perf_counter() - started, "machine": machine()}
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
