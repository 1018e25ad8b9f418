import json
import os
import subprocess
import sys

import pytest
import torch

from pointkd.cli import main
from pointkd.nerf import train as train_module
from pointkd.nerf.data import procedural_scene
from pointkd.nerf.fields import load_field
from pointkd.nerf.metrics import psnr
from pointkd.nerf.train import NerfTrainConfig, train_nerf
from tests.conftest import REPO_ROOT

# Small fields and images keep these tests in seconds; the presets are measured by benchmarks/pointkd/nerf_fields.py.
TINY_FIELDS = {
    "hash": {"config": {"num_levels": 8, "log2_table_size": 14, "finest_resolution": 128}},
    "grid": {"resolution": 32},
    "vm": {"resolution": 32, "density_components": 4, "appearance_components": 8},
    "mlp": {"width": 32, "depth": 2, "position_frequencies": 6},
}
SMALL = {
    "data": "procedural",
    "num_views": 16,
    "resolution": 32,
    "batch_rays": 1024,
    "render_views": 1,
    "log_every": 10,
    "samples_per_diagonal": 128,
    "occupancy_resolution": 32,
}


def test_hash_field_learns_the_procedural_scene(tmp_path):
    options = dict(SMALL, num_views=40)
    config = NerfTrainConfig(
        field="hash", iters=200, checkpoint_every=100, field_options=TINY_FIELDS["hash"], **options
    )
    results = train_nerf(config, tmp_path)
    # The baseline a field that learnt nothing could reach: each held-out view's mean colour.
    test_scene = procedural_scene(split="test", num_views=40, height=32, width=32)
    flat = test_scene.images.mean(dim=(1, 2), keepdim=True).expand_as(test_scene.images)
    baseline = float(psnr(flat, test_scene.images))
    assert results["test_psnr"] > baseline + 7, (results["test_psnr"], baseline)
    assert 0 < results["occupied_fraction"] < 0.5
    field, metadata = load_field(tmp_path / "field.pt")
    assert field.kind == "hash" and metadata["iterations"] == 200
    assert (tmp_path / "renders").is_dir() and len(list((tmp_path / "renders").glob("*.png"))) == 1
    curve = [json.loads(line) for line in (tmp_path / "curve.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in curve] == list(range(10, 201, 10))
    assert curve[-1]["loss"] < curve[0]["loss"] / 4


@pytest.mark.parametrize("kind", ["grid", "vm", "mlp"])
def test_other_fields_train(kind, tmp_path):
    config = NerfTrainConfig(
        field=kind, iters=40, checkpoint_every=40, eval_views=1, field_options=TINY_FIELDS[kind], **SMALL
    )
    results = train_nerf(config, tmp_path)
    curve = [json.loads(line) for line in (tmp_path / "curve.jsonl").read_text().splitlines()]
    assert curve[-1]["loss"] < curve[0]["loss"], curve
    assert results["test_psnr"] > 10


class _Interrupt(Exception):
    pass


def test_resume_is_exact(tmp_path, monkeypatch):
    config = NerfTrainConfig(
        field="hash", iters=30, checkpoint_every=15, eval_views=1, field_options=TINY_FIELDS["hash"], **SMALL
    )
    straight = train_nerf(config, tmp_path / "straight")

    calls = {"count": 0}
    render_rays = train_module.render_rays

    def interrupted(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 20:
            raise _Interrupt
        return render_rays(*args, **kwargs)

    monkeypatch.setattr(train_module, "render_rays", interrupted)
    with pytest.raises(_Interrupt):
        train_nerf(config, tmp_path / "resumed")
    monkeypatch.setattr(train_module, "render_rays", render_rays)
    resumed = train_nerf(config, tmp_path / "resumed")
    first, _ = load_field(tmp_path / "straight" / "field.pt")
    second, _ = load_field(tmp_path / "resumed" / "field.pt")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert resumed["test_psnr"] == straight["test_psnr"]

    # Another configuration in the same directory is refused, not mixed in.
    with pytest.raises(ValueError, match="use another --out"):
        train_nerf(NerfTrainConfig(field="hash", iters=30, seed=1, **SMALL), tmp_path / "resumed")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="field must be one of"):
        NerfTrainConfig(field="nope")
    with pytest.raises(ValueError, match="iters must be >= 1"):
        NerfTrainConfig(iters=0)
    with pytest.raises(ValueError, match="scale must be in"):
        NerfTrainConfig(scale=0)


def test_cli_train_json(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["nerf", "train", "--field", "grid", "--iters", "20", "--num-views", "16", "--resolution", "24", "--samples-per-diagonal", "128", "--field-options", '{"resolution": 24}',
         "--batch-rays", "512", "--eval-views", "1", "--out", str(out), "--json"]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["field"] == "grid" and printed["iterations"] == 20
    assert json.loads((out / "results.json").read_text())["test_psnr"] == printed["test_psnr"]


def test_cli_missing_scene_is_an_error(tmp_path, capsys):
    code = main(["nerf", "train", "--data", str(tmp_path / "nowhere"), "--iters", "1", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_training_under_torchrun(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", GEOKD_PROGRESS="0")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "pointkd.cli", "nerf", "train", "--field", "grid", "--iters", "20", "--num-views", "16",
        "--resolution", "24", "--samples-per-diagonal", "128", "--field-options", '{"resolution": 24}', "--batch-rays", "512", "--eval-views", "1", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2
    assert (out / "last.pt").is_file() and (out / "field.pt").is_file()
    assert not (out / "log.rank1.txt").exists()
