import os
import stat
from pathlib import Path

import pytest
import torch

from geokd.paths import MissingDataError
from graphkd.datasets import Planetoid, TUDataset, embedded_datasets, get_dataset


@pytest.fixture
def no_data_root(monkeypatch, tmp_path):
    """No GEOKD_DATA with anything in it, a fresh cache, downloads forbidden."""
    monkeypatch.setenv("GEOKD_DATA", str(tmp_path / "empty-data-root"))
    monkeypatch.setenv("GEOKD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GEOKD_OFFLINE", "1")
    return tmp_path / "cache"


def test_embedded_cora_without_data_root(no_data_root):
    data = Planetoid("cora")[0]
    # Published statistics of Cora (Planetoid split).
    assert (data.num_nodes, data.num_edges, data.num_features) == (2708, 10556, 1433)
    assert int(data.y.max()) + 1 == 7
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (140, 500, 1000)
    assert (no_data_root / "Planetoid" / "Cora" / "raw" / "ind.cora.graph").is_file()
    assert (no_data_root / "Planetoid" / "Cora" / "processed").is_dir()


def test_embedded_mutag_without_data_root(no_data_root):
    dataset = TUDataset("MUTAG")
    assert len(dataset) == 188 and dataset.num_classes == 2
    assert sum(int(g.num_nodes) for g in dataset) == 3371
    assert dataset.num_node_features == 7 and dataset.num_edge_features == 4
    labels = torch.cat([g.y for g in dataset])
    assert torch.bincount(labels).tolist() == [63, 125]
    assert embedded_datasets() == ["Cora", "MUTAG"]


def test_offline_error_lists_files_and_places(no_data_root):
    with pytest.raises(MissingDataError) as error:
        TUDataset("NCI1")
    message = str(error.value)
    assert "NCI1_A.txt" in message and "NCI1_graph_indicator.txt" in message
    assert "empty-data-root/TUDataset/NCI1/raw" in message
    assert "GEOKD_OFFLINE" in message


def test_download_is_attempted_when_online(no_data_root, monkeypatch):
    monkeypatch.setenv("GEOKD_OFFLINE", "0")
    calls = []

    def fake_download(self):
        calls.append(self.raw_dir)
        raise ConnectionError("no network in tests")

    monkeypatch.setattr("torch_geometric.datasets.TUDataset.download", fake_download)
    with pytest.raises(ConnectionError):
        TUDataset("NCI1")
    assert calls == [str(no_data_root / "TUDataset" / "NCI1" / "raw")]


def test_read_only_data_root_is_never_written(tmp_path, monkeypatch, shared_data):
    root = tmp_path / "ro-data" / "TUDataset" / "MUTAG" / "raw"
    root.mkdir(parents=True)
    for source in (shared_data / "TUDataset" / "MUTAG" / "raw").iterdir():
        (root / source.name).write_bytes(source.read_bytes())
    for path in [*root.parents[:3], root, *root.iterdir()]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = sorted(os.listdir(tmp_path / "ro-data" / "TUDataset" / "MUTAG"))
    monkeypatch.setenv("GEOKD_DATA", str(tmp_path / "ro-data"))
    monkeypatch.setenv("GEOKD_CACHE", str(tmp_path / "cache"))
    assert len(TUDataset("MUTAG")) == 188
    assert sorted(os.listdir(tmp_path / "ro-data" / "TUDataset" / "MUTAG")) == before == ["raw"]


def test_data_root_takes_precedence_and_stages_optional_files(shared_data):
    dataset = get_dataset("NCI1")
    assert len(dataset) == 4110 and dataset.num_classes == 2
    assert sum(int(g.num_nodes) for g in dataset) == 122747
    assert dataset.num_node_features == 37  # node labels were staged, not only the required files
    assert Path(dataset.raw_dir, "NCI1_node_labels.txt").is_file()


def test_citeseer_from_data_root(shared_data):
    data = get_dataset("citeseer")[0]
    assert data.num_nodes == 3327 and data.num_features == 3703


def test_bad_names():
    with pytest.raises(ValueError, match="name must be one of"):
        Planetoid("cornell")
    with pytest.raises(ValueError, match="name must be a TU dataset name"):
        TUDataset("../MUTAG")


def test_concurrent_processes_prepare_the_dataset_once(tmp_path):
    """Ranks of a torchrun job load the same dataset at once; none may see a half-written file."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    code = "from graphkd.datasets import Planetoid, TUDataset; print(Planetoid('cora')[0].num_nodes, len(TUDataset('MUTAG')))"
    env = dict(os.environ, GEOKD_CACHE=str(tmp_path / "cache"), GEOKD_DATA=str(tmp_path / "none"), PYTHONPATH=str(REPO_ROOT))
    processes = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        assert out.split() == ["2708", "188"]
