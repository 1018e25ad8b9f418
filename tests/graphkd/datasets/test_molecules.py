"""Molecule datasets against statistics and splits published by OGB / MoleculeNet."""

import csv
from pathlib import Path

import pytest
import torch
from rdkit import rdBase
from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles
from torch_geometric.loader import DataLoader

from geokd.paths import MissingDataError
from graphkd.datasets import OGBGraphDataset, SmilesDataset, get_dataset, scaffold_split


@pytest.fixture
def no_data_root(monkeypatch, tmp_path):
    """No GEOKD_DATA with anything in it, a fresh cache, downloads forbidden."""
    monkeypatch.setenv("GEOKD_DATA", str(tmp_path / "empty-data-root"))
    monkeypatch.setenv("GEOKD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GEOKD_OFFLINE", "1")
    return tmp_path / "cache"


def _assert_partition(split, num_graphs):
    parts = [set(split[name].tolist()) for name in ("train", "valid", "test")]
    assert all(split[name].dtype == torch.long for name in split)
    assert sum(len(part) for part in parts) == num_graphs  # no index repeated within a part
    assert set.union(*parts) == set(range(num_graphs))
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_ogbg_molbace_matches_published_statistics(shared_data):
    dataset = get_dataset("ogbg-molbace")
    assert isinstance(dataset, OGBGraphDataset)
    # OGB's published statistics of ogbg-molbace.
    assert len(dataset) == 1513 and dataset.num_classes == 2 and dataset.num_tasks == 1
    store = dataset._data
    assert store.x.dtype == torch.long and store.x.shape == (51577, 9)
    assert store.edge_index.dtype == torch.long and store.edge_index.shape == (2, 2 * 55768)
    assert store.edge_attr.dtype == torch.long and store.edge_attr.shape == (2 * 55768, 3)
    assert store.y.dtype == torch.long and store.y.shape == (1513,)
    assert set(store.y.tolist()) == {0, 1}
    graph = dataset[0]
    assert graph.y.shape == (1,)
    # Every bond appears in both directions, the reverse right after it, as OGB stores it.
    assert torch.equal(graph.edge_index[:, 0::2], graph.edge_index.flip(0)[:, 1::2])
    assert torch.equal(graph.edge_attr[0::2], graph.edge_attr[1::2])

    split = dataset.get_idx_split()
    assert [len(split[name]) for name in ("train", "valid", "test")] == [1210, 151, 152]
    _assert_partition(split, len(dataset))


def test_smiles_bace_graphs_equal_ogb_raw_graphs(shared_data):
    """bace.csv lists the molecules of ogbg-molbace in the same order; RDKit of today must
    rebuild exactly the graphs OGB published (measured: all 1,513 agree)."""
    ogb = OGBGraphDataset("ogbg-molbace")
    smiles = SmilesDataset("bace")
    assert len(smiles) == len(ogb) == 1513 and smiles.skipped_rows == []
    different = [
        index
        for index in range(len(ogb))
        if not all(torch.equal(ogb[index][key], smiles[index][key]) for key in ("x", "edge_index", "edge_attr", "y"))
    ]
    assert different == [], f"{len(different)} graphs differ from OGB's, e.g. {different[:10]}"
    with open(shared_data / "molecules" / "bace.csv", newline="") as handle:
        assert smiles._data.smiles == [row["smiles"] for row in csv.DictReader(handle)]


def test_bace_scaffold_split_reproduces_ogb_split(shared_data):
    """Measured: the scaffold split of bace.csv is OGB's published split, index for index."""
    ours = get_dataset("mol-bace").get_idx_split()
    published = get_dataset("ogbg-molbace").get_idx_split()
    for name in ("train", "valid", "test"):
        assert torch.equal(ours[name], published[name]), name


def test_bbbp_scaffold_split_properties(shared_data):
    dataset = get_dataset("mol-bbbp")
    assert isinstance(dataset, SmilesDataset) and dataset.num_classes == 2
    assert len(dataset) == dataset.num_rows == 2039 and dataset.skipped_rows == []
    assert set(dataset._data.y.tolist()) == {0, 1}
    split = dataset.get_idx_split()
    _assert_partition(split, len(dataset))
    # 80/10/10 up to one scaffold set: no set crosses a boundary.
    assert len(split["train"]) <= 0.8 * len(dataset) and len(split["train"]) + len(split["valid"]) <= 0.9 * len(dataset)
    with rdBase.BlockLogs():
        scaffolds = {
            name: {MurckoScaffoldSmiles(smiles=dataset[i].smiles, includeChirality=True) for i in split[name].tolist()}
            for name in split
        }
    assert not scaffolds["train"] & scaffolds["test"]
    assert not scaffolds["train"] & scaffolds["valid"] and not scaffolds["valid"] & scaffolds["test"]
    # Deterministic: recomputed from scratch, and the cached copy, give the same split.
    again = scaffold_split(list(dataset._data.smiles))
    cached = get_dataset("mol-bbbp").get_idx_split()
    for name in split:
        assert torch.equal(split[name], again[name]) and torch.equal(split[name], cached[name])


def test_scaffold_split_orders_groups_by_size_then_first_index_descending():
    benzenes = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "c1ccccc1Cl"]
    cyclohexanes = ["C1CCCCC1C", "C1CCCCC1O", "C1CCCCC1N", "C1CCCCC1Cl"]
    # index 0: acyclic (empty scaffold); 1-4 benzene; 5 pyridine; 6-9 cyclohexane.
    smiles = ["CCO", *benzenes, "c1ccncc1C", *cyclohexanes]
    split = scaffold_split(smiles)
    # Both size-4 groups fill train (8 = 0.8 n); of the two singletons the later one
    # (pyridine, first index 5) is taken first, so it is valid and the acyclic one test.
    assert split["train"].tolist() == [1, 2, 3, 4, 6, 7, 8, 9]
    assert split["valid"].tolist() == [5] and split["test"].tolist() == [0]
    with pytest.raises(ValueError, match="sum to 1"):
        scaffold_split(smiles, frac_train=0.9, frac_valid=0.1, frac_test=0.1)


def test_unparseable_smiles_are_skipped_and_deepchem_columns_read(tmp_path, monkeypatch):
    """DeepChem's bace.csv names its SMILES column 'mol'; unparseable rows are skipped and counted."""
    raw = tmp_path / "data" / "molecules"
    raw.mkdir(parents=True)
    rows = [("CCO", 1), ("C1CC", 0), ("c1ccccc1O", 0), ("C(C)(C)(C)(C)C", 1), ("CCN", 1)]
    with open(raw / "bace.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mol", "CID", "Class", "Model"])
        writer.writerows([smiles, f"BACE_{i}", label, "Train"] for i, (smiles, label) in enumerate(rows))
    monkeypatch.setenv("GEOKD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GEOKD_CACHE", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match=r"skipped 2 of 5 SMILES .*rows 1, 3"):
        dataset = SmilesDataset("BACE")
    assert len(dataset) == 3 and dataset.num_rows == 5 and dataset.skipped_rows == [1, 3]
    assert dataset._data.csv_row.tolist() == [0, 2, 4] and dataset._data.y.tolist() == [1, 0, 1]
    assert dataset._data.smiles == ["CCO", "c1ccccc1O", "CCN"]
    assert (tmp_path / "cache" / "molecules" / "bace" / "raw" / "bace.csv").is_file()

    # The processed file is reused: a second load neither parses nor warns.
    def no_processing(self):
        raise AssertionError("processed again")

    monkeypatch.setattr(SmilesDataset, "process", no_processing)
    assert SmilesDataset("bace").skipped_rows == [1, 3]

    batch = next(iter(DataLoader(dataset, batch_size=3)))
    # Graph-level attributes batch as [B]; csv_row is not shifted by node counts.
    assert batch.y.shape == (3,) and batch.csv_row.tolist() == [0, 2, 4] and len(batch.smiles) == 3


def test_bad_names_list_valid_ones():
    with pytest.raises(ValueError, match=r"name must be one of \['bace', 'bbbp', 'hiv'\], got 'tox21'"):
        SmilesDataset("tox21")
    with pytest.raises(
        ValueError, match=r"name must be one of \[.*'ogbg-molbace'.*'ogbg-molhiv'.*\], got 'ogbg-molfoo'"
    ):
        OGBGraphDataset("ogbg-molfoo")
    with pytest.raises(ValueError, match="name must be one of"):
        get_dataset("mol-tox21")
    with pytest.raises(ValueError, match="name must be one of"):
        get_dataset("ogbg-ppa")  # OGB, but not a molecule set


def test_offline_missing_ogb_files(no_data_root):
    with pytest.raises(MissingDataError) as error:
        OGBGraphDataset("ogbg-molbace")
    message = str(error.value)
    assert "raw/edge.csv.gz" in message and "raw/graph-label.csv.gz" in message
    assert "split/scaffold/train.csv.gz" in message
    assert "empty-data-root/ogb/ogbg_molbace" in message and "GEOKD_OFFLINE" in message


def test_offline_missing_smiles_csv(no_data_root):
    with pytest.raises(MissingDataError) as error:
        SmilesDataset("hiv")
    message = str(error.value)
    assert "hiv.csv" in message and "empty-data-root/molecules" in message and "GEOKD_OFFLINE" in message


def test_downloads_are_attempted_when_online(no_data_root, monkeypatch):
    monkeypatch.setenv("GEOKD_OFFLINE", "0")
    urls = []

    def fake_download(url, folder, *args, **kwargs):
        urls.append((url, Path(folder)))
        raise ConnectionError("no network in tests")

    monkeypatch.setattr("ogb.utils.url.download_url", fake_download)
    monkeypatch.setattr("torch_geometric.data.download_url", fake_download)
    with pytest.raises(ConnectionError):
        OGBGraphDataset("ogbg-molhiv")
    with pytest.raises(ConnectionError):
        get_dataset("mol-bbbp")
    assert urls[0][0] == "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/hiv.zip"
    assert urls[0][1].parent == no_data_root / "ogb"
    assert urls[1] == (
        "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/BBBP.csv",
        no_data_root / "molecules" / "bbbp" / "raw",
    )
