"""The ``graphkd`` command: GNN-to-MLP distillation and graph condensation.

Run ``graphkd --help`` for the subcommands and ``graphkd <command> --help`` for
the options of one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from geokd.cli import make_parser, run_info, run_main

EXAMPLES = """\
examples:
  graphkd info                 what was built: ops with CPU/CUDA kernels, torch and CUDA versions
  graphkd info --json          the same as JSON
  graphkd demo                 train a GCN on the Cora copy shipped with the package (no network needed)
  graphkd demo --out runs/demo --epochs 100   keep checkpoints there; rerun to resume
  torchrun --nproc-per-node 2 -m graphkd.cli demo   the same in 2 processes (gloo on CPU, NCCL on GPU)
"""


def build_parser() -> argparse.ArgumentParser:
    parser, subparsers = make_parser(
        "graphkd",
        "graphkd: distill GNNs into MLPs for serving, and condense graph datasets into tiny training sets.",
        EXAMPLES,
    )

    demo = subparsers.add_parser(
        "demo",
        help="end-to-end run on the embedded Cora and MUTAG (library check, GCN training, test accuracy)",
        description=(
            "Check the compiled library, then train a 2-layer GCN on the Cora copy embedded in the package "
            "(the public Planetoid split), select the epoch on validation accuracy and report test accuracy. "
            "Checkpoints are written atomically to --out and a rerun resumes from them."
        ),
    )
    demo.add_argument("--epochs", type=int, default=200, help="training epochs (default: 200)")
    demo.add_argument("--hidden", type=int, default=16, help="GCN hidden width (default: 16)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--out", default=None, help="run directory for checkpoints, log and result.json (default: none)")
    demo.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    demo.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _info(args: argparse.Namespace) -> int:
    from graphkd import extension_info

    return run_info(extension_info, args.json)


def _demo(args: argparse.Namespace) -> int:
    from graphkd.demo import run_demo

    return run_demo(
        epochs=args.epochs, hidden=args.hidden, seed=args.seed, out=args.out, device=args.device, as_json=args.json
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), {"info": _info, "demo": _demo}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
