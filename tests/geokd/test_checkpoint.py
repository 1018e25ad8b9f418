import os

import pytest
import torch

from geokd.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from geokd.distributed import DistributedContext


def test_round_trip(tmp_path):
    state = {"epoch": 3, "weights": torch.arange(5.0), "nested": {"lr": 0.1}}
    path = save_checkpoint(state, tmp_path / "sub" / "ckpt.pt")
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["nested"] == {"lr": 0.1}
    assert torch.equal(loaded["weights"], state["weights"])
    assert os.listdir(tmp_path / "sub") == ["ckpt.pt"]


def test_non_main_rank_writes_nothing(tmp_path):
    ctx = DistributedContext(rank=1, world_size=2)
    assert save_checkpoint({"a": 1}, tmp_path / "ckpt.pt", ctx) is None
    assert not (tmp_path / "ckpt.pt").exists()


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_corrupt_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "corrupt.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a geokd checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"geokd_checkpoint": 99, "state": {}}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="upgrade geokd"):
        load_checkpoint(tmp_path / "future.pt")


def test_manager_resume_and_best(tmp_path):
    manager = CheckpointManager(tmp_path)
    assert manager.resume() is None
    manager.save({"epoch": 0}, best=True)
    manager.save({"epoch": 1})
    assert manager.resume()["epoch"] == 1
    assert manager.load_best()["epoch"] == 0


def test_state_must_be_dict(tmp_path):
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint([1, 2], tmp_path / "x.pt")


def test_manager_refuses_another_configuration(tmp_path):
    manager = CheckpointManager(tmp_path)
    assert manager.resume(config_key={"lr": 0.1}) is None
    manager.save({"step": 3, "config_key": {"lr": 0.1}})
    assert manager.resume(config_key={"lr": 0.1})["step"] == 3
    with pytest.raises(ValueError, match="use another --out"):
        manager.resume(config_key={"lr": 0.2})
