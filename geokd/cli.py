"""Pieces shared by the ``graphkd`` and ``pointkd`` command-line interfaces."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from geokd.extension import format_info

ENVIRONMENT_HELP = """
environment:
  GEOKD_DATA     folder with raw datasets (read-only is fine), laid out as in its documentation
  GEOKD_CACHE    writable folder for staged and processed files (default ~/.cache/geokd)
  GEOKD_OFFLINE  1 = never download; missing files raise an error saying which and where
  GEOKD_PROGRESS 0 = no progress bars
"""


def make_parser(package: str, description: str, examples: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The top-level parser of a package's command, with its ``info`` subcommand."""
    parser = argparse.ArgumentParser(
        prog=package,
        description=description,
        epilog=examples + ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_info_command(subparsers, package)
    return parser, subparsers


def add_info_command(subparsers: argparse._SubParsersAction, package: str) -> None:
    parser = subparsers.add_parser(
        "info",
        help=f"show what the compiled {package} library provides (CPU/CUDA kernels, versions)",
        description=(
            f"Report whether {package}._C is loaded, which ops have CPU and CUDA kernels, and the torch/CUDA "
            "versions it was built with and runs under. Exit code 1 if the library is not loaded."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")


def run_info(extension_info: Callable[[], dict], as_json: bool) -> int:
    info = extension_info()
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_info(info))
    return 0 if info["loaded"] else 1


def run_main(parser: argparse.ArgumentParser, handlers: dict[str, Callable], argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and call the handler of the chosen subcommand."""
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handlers[args.command](args) or 0)
    except (ValueError, FileNotFoundError) as error:
        # Bad arguments or missing data: the message says what to change; no traceback.
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
