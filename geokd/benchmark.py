"""Timing helpers for the scripts in benchmarks/: warm-up, repeated timed calls, JSON records."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, warmup: int = 2, repeat: int = 7) -> dict:
    """Median and spread of ``repeat`` timed calls after ``warmup`` untimed ones, in milliseconds."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "repeat": repeat}


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def write_json(path: str | None, payload: dict) -> None:
    text = json.dumps(payload, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    else:
        print(text)


def merge_rows(previous: list[dict], new: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """The rows of an earlier table with this run's rows replacing those with the same values under
    ``keys``, in the earlier order, new cells last: a table grows one method or dataset at a time."""
    def key(row: dict) -> tuple:
        return tuple(row[name] for name in keys)

    fresh = {key(row): row for row in new}
    merged = [fresh.pop(key(row), row) for row in previous]
    return merged + [row for row in new if key(row) in fresh]


def benchmark_parser(description: str, sizes: list[int], size_help: str, repeat: int) -> argparse.ArgumentParser:
    """The options every benchmark script shares: a size grid, the device, repetitions, JSON output."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sizes, help=f"{size_help} (default: {sizes})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--repeat", type=int, default=repeat, help=f"timed calls per case (default: {repeat})")
    parser.add_argument("--json", default=None, help="write the results to this file (default: print them)")
    return parser
