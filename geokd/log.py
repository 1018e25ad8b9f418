"""Rank-aware logging and progress bars.

Only rank 0 logs at INFO level and shows progress bars by default; other ranks
log warnings and errors, each line prefixed with its rank, and may write their
own log file (``log.rank<k>.txt``), so that a run under ``torchrun`` reads like a
single-process run.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from geokd.distributed import DistributedContext

_FORMAT = "%(asctime)s %(rank)s%(levelname)s %(name)s: %(message)s"


class _RankFilter(logging.Filter):
    def __init__(self, ctx: DistributedContext):
        super().__init__()
        self.prefix = f"[rank {ctx.rank}/{ctx.world_size}] " if ctx.is_distributed else ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.rank = self.prefix
        return True


def get_logger(
    name: str,
    ctx: DistributedContext | None = None,
    log_dir: str | os.PathLike | None = None,
    level: int = logging.INFO,
    all_ranks: bool = False,
) -> logging.Logger:
    """A logger that knows its rank.

    Args:
        name (str): logger name, e.g. ``"graphkd.distill"``.
        ctx (DistributedContext, optional): the run's context (single process if ``None``).
        log_dir (path, optional): also write ``log.txt`` (rank 0) or
            ``log.rank<k>.txt`` (other ranks, with ``all_ranks``) there.
        level (int): level on rank 0 (and on every rank with ``all_ranks``). (default: INFO)
        all_ranks (bool): log at ``level`` on every rank, not only rank 0. (default: ``False``)
    """
    ctx = ctx or DistributedContext()
    logger = logging.getLogger(name)
    logger.setLevel(level if (ctx.is_main or all_ranks) else logging.WARNING)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    rank_filter = _RankFilter(ctx)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    stream.addFilter(rank_filter)
    logger.addHandler(stream)
    if log_dir is not None and (ctx.is_main or all_ranks):
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        file_name = "log.txt" if ctx.is_main else f"log.rank{ctx.rank}.txt"
        file_handler = logging.FileHandler(Path(log_dir) / file_name)
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        file_handler.addFilter(rank_filter)
        logger.addHandler(file_handler)
    return logger


def progress(iterable: Iterable | None = None, ctx: DistributedContext | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar shown on rank 0 only; ``GEOKD_PROGRESS=0`` hides it everywhere."""
    ctx = ctx or DistributedContext()
    hidden = os.environ.get("GEOKD_PROGRESS", "1") == "0"
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, disable=hidden or not ctx.is_main, **kwargs)
