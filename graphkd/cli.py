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
  graphkd demo                 SAGE teacher -> GLNN MLP student on the Cora copy shipped with the package (no network)
  graphkd demo --out runs/demo --epochs 100   keep checkpoints there; rerun to resume
  torchrun --nproc-per-node 2 -m graphkd.cli demo   the same in 2 processes (gloo on CPU, NCCL on GPU)
  graphkd distill --dataset cora --teacher sage --method glnn nosmog --setting tran --seeds 10 --out runs/cora
                               SAGE teacher, plain MLP, GLNN and NOSMOG students on the CPF splits, table and plot
  graphkd distill --dataset citeseer --method vqgraph --option vqgraph.use_teacher_logits=true dropout=0.3 --out runs/vq
                               a method's argument (METHOD.ARG=VALUE) and a student option of every student
  graphkd export --ckpt runs/cora/students/glnn-seed0.pt --out serve/   TorchScript + ONNX, checked against eager
  graphkd condense --method mirage --dataset MUTAG --hops 2 --support 0.3 --gnn gin --seeds 3 --out runs/mutag
  graphkd condense --method mirage --dataset mol-hiv --support 0.2 --node-labels columns:0 \\
                   --edge-labels columns:0 --out runs/hiv
                               trees of atoms by element, bonds by type (--support 0.03 0.1: one per class)
"""


def build_parser() -> argparse.ArgumentParser:
    parser, subparsers = make_parser(
        "graphkd",
        "graphkd: distill GNNs into MLPs for serving, and condense graph datasets into tiny training sets.",
        EXAMPLES,
    )

    demo = subparsers.add_parser(
        "demo",
        help="end-to-end run on the embedded Cora and MUTAG (library check, GNN teacher, MLP distilled with GLNN)",
        description=(
            "Check the compiled library, then train a GraphSAGE teacher on the Cora copy embedded in the package "
            "(CPF/GLNN protocol, split --seed), distil it into an MLP with GLNN, train the same MLP on labels alone, "
            "select every model on validation accuracy, report test accuracies and the latency of answering 10 new "
            "nodes (GNN with neighbour fetching vs MLP). Teacher checkpoints are written atomically to --out and a "
            "rerun resumes from them."
        ),
    )
    demo.add_argument("--epochs", type=int, default=200, help="training epochs (default: 200)")
    demo.add_argument("--hidden", type=int, default=128, help="teacher hidden width (default: 128)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--out", default=None, help="run directory for checkpoints, log and result.json (default: none)")
    demo.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    demo.add_argument("--json", action="store_true", help="print the result as JSON")

    from graphkd.distill.run import add_distill_parser

    add_distill_parser(subparsers)

    from graphkd.distill.export import add_export_parser

    add_export_parser(subparsers)

    condense = subparsers.add_parser(
        "condense",
        help="condense a graph-classification dataset and compare GNNs trained on it with full-data training",
        description=(
            "For each seed: split the dataset 80/10/10 (stratified; OGB sets keep their scaffold split), train the GNN on the full training set, "
            "condense the training graphs, train the same GNN on the condensed set, select on the original "
            "validation graphs and score on the original test graphs. Prints ROC-AUC and accuracy (mean ± std over "
            "seeds, and the mean of the 5 best seeds by validation), the condensed size in bytes and the times. "
            "Records go to --out; a rerun skips finished seeds."
        ),
    )
    condense.add_argument("--method", required=True,
                          choices=["mirage", "random", "herding", "kcenter", "doscond", "kidd"],
                          help="mirage: frequent computation-tree sets; random: a random per-class subset; herding, "
                               "kcenter: per-class subsets chosen on the full-data GNN's graph embeddings; doscond: "
                               "learned synthetic graphs (one-step gradient matching); kidd: learned synthetic "
                               "graphs (kernel ridge regression with a graph neural tangent kernel)")
    condense.add_argument("--dataset", required=True,
                          help="a TU dataset (MUTAG, NCI1, PROTEINS, DD, IMDB-BINARY, ...), ogbg-molbace (scaffold "
                               "split), or molecules from SMILES: mol-hiv, mol-bbbp, mol-bace")
    condense.add_argument("--hops", type=int, default=2, help="GNN layers = computation-tree depth (default: 2)")
    condense.add_argument("--support", type=float, nargs="+", default=[0.1],
                          help="mirage: per-class support, a fraction of the class's graphs; one value for every "
                               "class or one per class, in class order (default: 0.1)")
    condense.add_argument("--node-labels", default="auto", type=_label_strategy("nodes"),
                          help="mirage: node categories of the trees: auto, argmax, categorical, degree, or "
                               "columns:I,J,... (categorical on those feature columns; columns:0 labels atoms by "
                               "element) (default: auto, from the features)")
    condense.add_argument("--edge-labels", default="auto", type=_label_strategy("edges"),
                          help="mirage: edge categories of the trees: auto, argmax, categorical, or columns:I,J,... "
                               "(columns:0 labels bonds by type) (default: auto, from the features)")
    condense.add_argument("--max-length", type=int, default=None,
                          help="mirage: largest tree set kept (default: no limit)")
    condense.add_argument("--readout", choices=("all", "trees"), default="all",
                          help="mirage: which nodes of a validation or test graph the GNN sums: all, every node; "
                               "trees, those whose computation tree the condensed set holds (the whole graph when "
                               "none does), as Mirage's authors score. Which is better depends on the data: choose "
                               "on validation (default: all)")
    condense.add_argument("--graphs-per-class", type=int, default=None,
                          help="random, herding, kcenter, doscond, kidd: graphs per class (default: 10)")
    condense.add_argument("--budget-bytes", type=int, default=None,
                          help="random, herding, kcenter: instead of --graphs-per-class, keep the most graphs per "
                               "class whose stored subset fits in this many bytes (one per class at least), e.g. "
                               "the size of a Mirage file, to compare at the same budget")
    condense.add_argument("--iterations", type=int, default=None,
                          help="doscond, kidd: optimisation steps (default: the method's, 200 and 300)")
    condense.add_argument("--init", default="herding", choices=["herding", "kcenter", "random"],
                          help="kidd: the real graphs the synthetic ones start from (default: herding, the authors')")
    condense.add_argument("--gnn", default="gcn", choices=["gcn", "gin", "gat"], help="the GNN trained (default: gcn)")
    condense.add_argument("--hidden", type=int, default=64, help="GNN width (default: 64)")
    condense.add_argument("--epochs", type=int, default=100, help="training epochs (default: 100)")
    condense.add_argument("--seeds", type=int, default=10, help="number of seeds / splits (default: 10)")
    condense.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    condense.add_argument("--out", required=True, help="run directory for records, condensed files and the log")
    condense.add_argument("--reference-dir", default=None,
                          help="where full-data reference models are kept, to share them between runs of several "
                               "methods (default: OUT/reference)")
    condense.add_argument("--no-reference", action="store_true",
                          help="do not train the GNN on the full training set: use it where the reference "
                               "directory holds it, else leave the full-data scores empty; not for herding, kcenter "
                               "or kidd's herding and kcenter starts, which select on its embeddings")
    condense.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _label_strategy(what: str):
    """An argparse type for --node-labels / --edge-labels: a strategy graphkd.condense.discretize knows."""
    def parse(text: str) -> str:
        from graphkd.condense.discretize import STRATEGIES, is_strategy

        try:
            known = is_strategy(text) and not (what == "edges" and text == "degree")
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if not known:
            names = [name for name in STRATEGIES if what == "nodes" or name != "degree"]
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(names)} for {what}, got {text!r}")
        return text

    return parse


def _info(args: argparse.Namespace) -> int:
    from graphkd import extension_info

    return run_info(extension_info, args.json)


def _demo(args: argparse.Namespace) -> int:
    from graphkd.demo import run_demo

    return run_demo(
        epochs=args.epochs, hidden=args.hidden, seed=args.seed, out=args.out, device=args.device, as_json=args.json
    )


def _distill(args: argparse.Namespace) -> int:
    from graphkd.distill.run import run_distill

    return run_distill(args)


def _export(args: argparse.Namespace) -> int:
    from graphkd.distill.export import run_export

    return run_export(args)


def _condense(args: argparse.Namespace) -> int:
    from graphkd.condense.run import run_condense

    return run_condense(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), {"info": _info, "demo": _demo, "distill": _distill, "export": _export, "condense": _condense}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
