"""Atomic, rank-aware checkpoints with resume.

A checkpoint is written to a temporary file in the same directory, flushed to
disk and renamed over the target, so a crash mid-write leaves the previous
checkpoint intact. Under ``torchrun`` only rank 0 writes; every rank reads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from geokd.distributed import DistributedContext

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable or not one of ours."""


def atomic_save(payload: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``payload`` to a temporary file beside ``path``, flush it to disk and rename it over ``path``.

    Readers see the old file or the new one, never a partial write; the directory is created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(payload, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def save_checkpoint(
    state: dict[str, Any], path: str | os.PathLike, ctx: DistributedContext | None = None
) -> Path | None:
    """Atomically write ``state`` to ``path`` (rank 0 only).

    Args:
        state (dict): what to save; tensors, modules' ``state_dict()``s, plain values.
        path (path): the target file; its directory is created.
        ctx (DistributedContext, optional): the run's context; non-zero ranks
            write nothing. (default: single process)

    Returns:
        Path or None: the file written, or ``None`` on a non-zero rank.
    """
    ctx = ctx or DistributedContext()
    if not ctx.is_main:
        return None
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    return atomic_save({"geokd_checkpoint": FORMAT_VERSION, "state": state}, path)


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", weights_only: bool = False
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file is corrupt or not a geokd checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as error:  # torch raises several types for a damaged file
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict) or "geokd_checkpoint" not in payload:
        raise CheckpointError(f"{path} is not a geokd checkpoint")
    if payload["geokd_checkpoint"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['geokd_checkpoint']}, newer than this geokd "
            f"understands ({FORMAT_VERSION}); upgrade geokd"
        )
    return payload["state"]


class CheckpointManager:
    """Keeps ``last.pt`` (for resuming) and optionally ``best.pt`` in a run directory.

    Args:
        directory (path): the run directory.
        ctx (DistributedContext, optional): the run's context. (default: single process)

    Example::

        manager = CheckpointManager(out_dir, ctx)
        state = manager.resume()          # None on a fresh run
        start = state["epoch"] + 1 if state else 0
        for epoch in range(start, epochs):
            ...
            manager.save({"epoch": epoch, "model": model.state_dict()}, best=improved)
    """

    def __init__(self, directory: str | os.PathLike, ctx: DistributedContext | None = None):
        self.directory = Path(directory)
        self.ctx = ctx or DistributedContext()

    @property
    def last_path(self) -> Path:
        return self.directory / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.directory / "best.pt"

    def save(self, state: dict[str, Any], best: bool = False) -> None:
        save_checkpoint(state, self.last_path, self.ctx)
        if best:
            save_checkpoint(state, self.best_path, self.ctx)
        # Other ranks may read right after; wait until the file is in place.
        self.ctx.barrier()

    def resume(
        self, map_location: str | torch.device | None = None, config_key: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The last checkpoint's state, or ``None`` when there is none.

        With ``config_key``, the state must have been saved with the same value
        under ``"config_key"``; otherwise a ``ValueError`` says both, so that a
        run directory is never resumed with other options.
        """
        if not self.last_path.is_file():
            return None
        state = load_checkpoint(self.last_path, map_location=map_location or self.ctx.device)
        if config_key is not None and state.get("config_key") != config_key:
            raise ValueError(
                f"{self.last_path} was written with {state.get('config_key')}, not {config_key}: "
                "use another --out or the same options"
            )
        return state

    def load_best(self, map_location: str | torch.device | None = None) -> dict[str, Any]:
        return load_checkpoint(self.best_path, map_location=map_location or self.ctx.device)
