"""The ``pointkd`` command: point-cloud detector compression and radiance-field conversion.

Run ``pointkd --help`` for the subcommands and ``pointkd <command> --help`` for
the options of one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from geokd.cli import make_parser, run_info, run_main

EXAMPLES = """\
examples:
  pointkd info                 what was built: ops with CPU/CUDA kernels, torch and CUDA versions
  pointkd info --json          the same as JSON
"""


def build_parser() -> argparse.ArgumentParser:
    parser, _ = make_parser(
        "pointkd",
        "pointkd: compress point-cloud 3D detectors and convert radiance fields between architectures.",
        EXAMPLES,
    )
    return parser


def _info(args: argparse.Namespace) -> int:
    from pointkd import extension_info

    return run_info(extension_info, args.json)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(build_parser(), {"info": _info}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
