"""Worker for test_distributed.py, launched by torchrun with 2 processes."""

import json
import sys
from pathlib import Path

import torch

from geokd.checkpoint import CheckpointManager
from geokd.distributed import cleanup, init_distributed, unwrap_model, wrap_model
from geokd.log import get_logger
from geokd.seed import seed_everything


def main(out: str, steps: int) -> None:
    ctx = init_distributed("cpu")
    log = get_logger("ddp-test", ctx, log_dir=out)
    seed_everything(0)  # same initial weights everywhere
    model = wrap_model(torch.nn.Linear(4, 1), ctx)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = CheckpointManager(out, ctx)
    state = manager.resume()
    start = 0
    if state is not None:
        unwrap_model(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"] + 1
    # Each rank sees different data; DDP averages the gradients.
    generator = torch.Generator().manual_seed(100 + ctx.rank)
    for step in range(start, steps):
        x = torch.randn(16, 4, generator=generator)
        loss = (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        log.info("step %d loss %.4f", step, loss.item())
        manager.save({"step": step, "model": unwrap_model(model).state_dict(), "optimizer": optimizer.state_dict()})
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    result = {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "backend": ctx.backend,
        "start": start,
        "weights": weights.tolist(),
        "all_weights": ctx.gather_objects(weights.tolist()),
        "mean_rank": ctx.all_reduce_mean(torch.tensor(float(ctx.rank))).item(),
        "shard": ctx.shard(list(range(5))),
        "broadcast": ctx.broadcast_object(f"from rank {ctx.rank}"),
    }
    log.warning("rank %d done", ctx.rank)
    Path(out, f"rank{ctx.rank}.json").write_text(json.dumps(result))
    cleanup(ctx)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
