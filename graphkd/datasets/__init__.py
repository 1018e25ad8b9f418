"""Datasets with offline-first raw file resolution (see :mod:`geokd.paths`).

Raw files are looked up in ``$GEOKD_DATA`` (read-only is fine), then in the
copies embedded in the package (Cora, MUTAG), and downloaded from the canonical
source only when found nowhere and ``GEOKD_OFFLINE`` is not set. Processing
happens in the writable cache (``$GEOKD_CACHE`` or ``~/.cache/geokd``).

Molecule graph-classification sets (OGB ``ogbg-mol*`` and MoleculeNet SMILES
CSVs) live in :mod:`graphkd.datasets.molecules`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch_geometric.datasets as pyg_datasets

from geokd.paths import cache_root, dataset_lock
from graphkd.datasets._staging import EMBEDDED_ROOT, StagedRawFiles
from graphkd.datasets.molecules import (
    SMILES_DATASETS,
    OGBGraphDataset,
    SmilesDataset,
    ogb_molecule_datasets,
    scaffold_split,
)

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}


class Planetoid(StagedRawFiles, pyg_datasets.Planetoid):
    r"""The Planetoid citation graphs (Cora, CiteSeer, PubMed) of
    `Yang et al. (2016) <https://arxiv.org/abs/1603.08861>`_, as
    :class:`torch_geometric.datasets.Planetoid` with offline-first raw files.

    Args:
        name (str): ``"Cora"``, ``"CiteSeer"`` or ``"PubMed"`` (any case).
        root (str, optional): writable directory for raw and processed files.
            (default: ``<cache>/Planetoid``)
        **kwargs: passed to :class:`torch_geometric.datasets.Planetoid`
            (``split``, ``transform``, ...).
    """

    def __init__(self, name: str, root: str | None = None, **kwargs):
        canonical = PLANETOID_NAMES.get(name.lower())
        if canonical is None:
            raise ValueError(f"name must be one of {sorted(PLANETOID_NAMES.values())}, got {name!r}")
        self.raw_relpath = f"Planetoid/{canonical}/raw"
        root = str(root or cache_root() / "Planetoid")
        with dataset_lock(Path(root) / canonical):
            super().__init__(root, canonical, **kwargs)


class TUDataset(StagedRawFiles, pyg_datasets.TUDataset):
    r"""A graph-classification dataset of the `TU collection
    <https://chrsmrrs.github.io/datasets/>`_ (MUTAG, PROTEINS, NCI1, DD,
    IMDB-BINARY, ...), as :class:`torch_geometric.datasets.TUDataset` with
    offline-first raw files.

    Args:
        name (str): the dataset's name as published, e.g. ``"MUTAG"``.
        root (str, optional): writable directory for raw and processed files.
            (default: ``<cache>/TUDataset``)
        **kwargs: passed to :class:`torch_geometric.datasets.TUDataset`
            (``use_node_attr``, ``use_edge_attr``, ``transform``, ...).
    """

    def __init__(self, name: str, root: str | None = None, **kwargs):
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"name must be a TU dataset name such as 'MUTAG', got {name!r}")
        self.raw_relpath = f"TUDataset/{name}/raw"
        root = str(root or cache_root() / "TUDataset")
        with dataset_lock(Path(root) / name):
            super().__init__(root, name, **kwargs)

    def _is_raw_file(self, name: str) -> bool:
        # Every <NAME>_*.txt file: labels and attributes are optional in the TU format.
        return name.startswith(f"{self.name}_") and name.endswith(".txt")


def embedded_datasets() -> list[str]:
    """Names of the datasets shipped inside the package."""
    return sorted(p.parent.name for p in EMBEDDED_ROOT.glob("*/*/raw"))


def get_dataset(name: str, root: str | Path | None = None, **kwargs):
    """A dataset by name.

    Args:
        name (str): ``"cora"``, ``"citeseer"``, ``"pubmed"`` (:class:`Planetoid`);
            ``"ogbg-mol*"`` such as ``"ogbg-molbace"`` (:class:`OGBGraphDataset`);
            ``"mol-hiv"``, ``"mol-bbbp"``, ``"mol-bace"`` (:class:`SmilesDataset`);
            any other name is a TU name such as ``"MUTAG"`` (:class:`TUDataset`).
        root (path, optional): writable directory, passed to the class. (default: the cache)
        **kwargs: passed to the class.
    """
    root = None if root is None else str(root)
    factories: dict[str, Callable] = {key: Planetoid for key in PLANETOID_NAMES}
    factory = factories.get(name.lower())
    if factory is not None:
        return factory(name, root=root, **kwargs)
    # Prefixes rather than a fixed list, so that an unknown molecule set gets the
    # molecule classes' error (listing the valid names), not a TU lookup.
    if name.lower().startswith("ogbg-"):
        return OGBGraphDataset(name, root=root, **kwargs)
    if name.lower().startswith("mol-"):
        return SmilesDataset(name[len("mol-") :], root=root, **kwargs)
    return TUDataset(name, root=root, **kwargs)


__all__ = [
    "SMILES_DATASETS",
    "OGBGraphDataset",
    "Planetoid",
    "SmilesDataset",
    "TUDataset",
    "embedded_datasets",
    "get_dataset",
    "ogb_molecule_datasets",
    "scaffold_split",
]
