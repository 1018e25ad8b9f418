"""Distributed training from ``torchrun``'s environment.

Every trainer in geokd calls :func:`init_distributed` once. Run as a plain
process it returns a single-process context; under
``torchrun --nproc-per-node N`` it joins the process group (NCCL when the run
uses CUDA, gloo on CPU) and pins each process to its local GPU. The context
then drives DDP wrapping, rank-aware logging (:mod:`geokd.log`) and
checkpointing (:mod:`geokd.checkpoint`)::

    ctx = init_distributed()
    model = wrap_model(model, ctx)
    ...
    cleanup(ctx)
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes checkpoints and reports."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean of ``tensor`` over all ranks (a copy; the input is untouched)."""
        result = tensor.detach().clone()
        if self.is_distributed:
            dist.all_reduce(result, op=dist.ReduceOp.SUM)
            result /= self.world_size
        return result

    def broadcast_object(self, value: Any, source: int = 0) -> Any:
        """``value`` as held by rank ``source``, on every rank."""
        if not self.is_distributed:
            return value
        holder = [value if self.rank == source else None]
        dist.broadcast_object_list(holder, src=source)
        return holder[0]

    def shard(self, items: list) -> list:
        """This rank's share of ``items`` (round robin), e.g. of seeds to run."""
        return list(items)[self.rank :: self.world_size]

    def gather_objects(self, value: Any) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.is_distributed:
            return [value]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def init_distributed(device: str | torch.device | None = None, timeout_s: float = 1800.0) -> DistributedContext:
    """Join ``torchrun``'s process group if launched by it; else a single-process context.

    Args:
        device (str or torch.device, optional): ``"cpu"``, ``"cuda"`` or a
            specific device. ``None`` picks CUDA when available. Under torchrun
            a CUDA run uses ``cuda:<LOCAL_RANK>``. (default: ``None``)
        timeout_s (float): collective timeout in seconds. (default: ``1800``)

    Returns:
        DistributedContext: rank, world size, device and backend.
    """
    wanted = torch.device(device) if device is not None else None
    use_cuda = wanted.type == "cuda" if wanted is not None else torch.cuda.is_available()
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} asks for CUDA, but torch sees no CUDA device")
    if not launched_by_torchrun():
        if use_cuda:
            chosen = wanted if (wanted is not None and wanted.index is not None) else torch.device("cuda", 0)
        else:
            chosen = torch.device("cpu")
        return DistributedContext(device=chosen)

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                "start fewer processes per node"
            )
        chosen, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(chosen)
    else:
        chosen, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen, backend=backend)


def wrap_model(model: torch.nn.Module, ctx: DistributedContext, **ddp_kwargs: Any) -> torch.nn.Module:
    """Move ``model`` to the context's device and wrap it in DDP when distributed."""
    model = model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    if ctx.device.type == "cuda":
        ddp_kwargs.setdefault("device_ids", [ctx.device.index])
    return torch.nn.parallel.DistributedDataParallel(model, **ddp_kwargs)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (for saving and exporting)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def cleanup(ctx: DistributedContext | None = None) -> None:
    """Leave the process group (no-op for a single process).

    Gloo ranks meet at a barrier first (a gloo rank that tears down its group
    while a peer is still using it can abort at exit); the barrier gives up
    after a minute, so a rank that failed does not leave the others hanging.
    """
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "gloo":
            try:
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
            except RuntimeError:
                pass  # a peer failed or already left: tear down anyway
        dist.destroy_process_group()
