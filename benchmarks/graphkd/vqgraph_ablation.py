r"""VQGraph ablation: does the code-assignment (token) loss weight change the student?

For each seed (= CPF split), one VQ tokenizer is trained (validation-selected), then the same
MLP student (same initialisation, same projection head, same batches) is distilled with each
token-loss weight :math:`\alpha` in ``--weights``: ``0`` is soft labels only (GLNN-style, from the
tokenizer), ``1e-8`` is the official code's default weight, larger values give the code
assignments a real say. The SAGE teacher of the seed is loaded from ``--teacher-dir`` when it is
there (the files ``graphkd distill --teacher-dir`` writes), else trained; VQGraph takes its soft
labels from its tokenizer, so the teacher only completes the context.

    GEOKD_DATA=../shared/data GEOKD_OFFLINE=1 python benchmarks/graphkd/vqgraph_ablation.py \\
        [--dataset cora] [--setting tran] [--seeds 5] [--weights 0 1e-8 0.1 1 10] \\
        [--teacher-dir runs/g2m/teachers/cora] [--json out.json]

Prints validation and test accuracy (%, mean ± std over seeds) per weight, and how many seeds'
test accuracy differs from the weight-0 student's.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

from geokd.benchmark import machine, write_json
from geokd.seed import seed_everything
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.student import DistillContext, student_defaults, train_student
from graphkd.distill.teacher import cached_teacher
from graphkd.distill.vqgraph import VQGraph


class Prepared(VQGraph):
    """A VQGraph whose tokenizer and targets are already computed (``prepare`` is a no-op)."""

    def prepare(self, ctx) -> None:
        pass


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cora")
    parser.add_argument("--setting", choices=["tran", "ind"], default="tran")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1e-8, 0.1, 1.0, 10.0])
    parser.add_argument("--teacher-dir", type=Path, default=None)
    parser.add_argument("--json", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    data = load_node_dataset(args.dataset)
    metric = "test" if args.setting == "tran" else "test_ind"
    config = student_defaults(args.dataset)
    results = {weight: [] for weight in args.weights}
    started = time.perf_counter()
    for seed in range(args.seeds):
        split = make_split(data, args.setting, seed)
        ctx = DistillContext(data, split, cached_teacher(data, split, seed, args.teacher_dir), data.num_classes,
                             torch.device("cpu"), seed)
        seed_everything(seed)
        prepared = VQGraph()
        prepared.prepare(ctx)
        prepared.__class__ = Prepared
        for weight in args.weights:
            method = copy.deepcopy(prepared)
            method.token_weight = weight
            seed_everything(seed)
            result = train_student(method, ctx, **config)
            results[weight].append({"val": 100 * result.scores["val"], "test": 100 * result.scores[metric],
                                    "epochs": result.epochs})
        line = "  ".join(f"{w:g}: {results[w][-1]['test']:.2f}" for w in args.weights)
        print(f"seed {seed}: tokenizer {100 * prepared.tokenizer_scores['test']:.2f}; students {line}", file=sys.stderr)

    base = [r["test"] for r in results[args.weights[0]]]
    rows = []
    for weight in args.weights:
        tests, vals = [r["test"] for r in results[weight]], [r["val"] for r in results[weight]]
        rows.append({"token_weight": weight, "test_mean": statistics.fmean(tests),
                     "test_std": statistics.pstdev(tests), "val_mean": statistics.fmean(vals),
                     "val_std": statistics.pstdev(vals),
                     "seeds_differing_from_first": sum(a != b for a, b in zip(tests, base)), "seeds": len(tests)})
    print(f"VQGraph token-loss weight, {args.dataset} {args.setting}, {args.seeds} seeds ({metric} accuracy, %)")
    print("| token weight | validation | test | seeds whose test differs from weight "
          f"{args.weights[0]:g} |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['token_weight']:g} | {row['val_mean']:.2f} ± {row['val_std']:.2f} | {row['test_mean']:.2f} ± "
              f"{row['test_std']:.2f} | {row['seeds_differing_from_first']}/{row['seeds']} |")
    payload = {"benchmark": "vqgraph_token_weight_ablation", "dataset": args.dataset, "setting": args.setting,
               "seeds": args.seeds, "rows": rows, "per_seed": {str(w): r for w, r in results.items()},
               "seconds": time.perf_counter() - started, "machine": machine()}
    if args.json:
        write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
