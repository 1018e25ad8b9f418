import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geokd.distributed import DistributedContext, init_distributed, unwrap_model, wrap_model
from tests.conftest import REPO_ROOT

WORKER = Path(__file__).with_name("ddp_worker.py")


def _torchrun(args, out_dir, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.run(command, env=env, cwd=out_dir, capture_output=True, text=True, timeout=timeout, check=False)


def test_single_process_context():
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    assert ctx.device == torch.device("cpu") and ctx.backend is None
    model = wrap_model(torch.nn.Linear(2, 2), ctx)
    assert isinstance(model, torch.nn.Linear) and unwrap_model(model) is model
    assert ctx.all_reduce_mean(torch.tensor(3.0)).item() == 3.0
    assert ctx.shard([1, 2, 3]) == [1, 2, 3]
    assert ctx.gather_objects("x") == ["x"]


def test_cuda_request_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="asks for CUDA"):
        init_distributed("cuda")


def test_shard_round_robin():
    assert DistributedContext(rank=1, world_size=3).shard(list(range(7))) == [1, 4]


def test_two_gloo_processes_train_checkpoint_and_resume(tmp_path):
    result = _torchrun([str(WORKER), str(tmp_path), "3"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank, record in enumerate(ranks):
        assert record["rank"] == rank and record["world_size"] == 2 and record["backend"] == "gloo"
        assert record["mean_rank"] == 0.5
        assert record["broadcast"] == "from rank 0"
    assert ranks[0]["shard"] == [0, 2, 4] and ranks[1]["shard"] == [1, 3]
    # DDP kept the replicas identical although each rank saw different data.
    assert ranks[0]["all_weights"][0] == ranks[0]["all_weights"][1]
    assert ranks[0]["weights"] == ranks[1]["weights"]

    # Rank 0 alone wrote the checkpoint and the INFO log; rank 1's warnings carry its rank.
    assert (tmp_path / "last.pt").is_file()
    assert not list(tmp_path.glob(".last.pt.*"))
    log_text = (tmp_path / "log.txt").read_text()
    assert "step 2 loss" in log_text and "[rank 0/2]" in log_text
    assert not (tmp_path / "log.rank1.txt").exists()
    assert "[rank 1/2] WARNING ddp-test: rank 1 done" in result.stderr

    # A second launch resumes after the last saved step and continues identically on both ranks.
    result = _torchrun([str(WORKER), str(tmp_path), "5"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert resumed[0]["start"] == resumed[1]["start"] == 3
    assert resumed[0]["weights"] == resumed[1]["weights"] != ranks[0]["weights"]


def test_demo_under_torchrun(tmp_path):
    out = tmp_path / "run"
    result = _torchrun(["-m", "graphkd.cli", "demo", "--epochs", "20", "--out", str(out), "--json"], tmp_path, 300)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "result.json").read_text())
    assert record["world_size"] == 2 and record["epochs"] == 20
    assert record["test_acc"] > 0.6
