r"""Molecule graph-classification datasets with offline-first raw files.

Two sources of the same kind of graph, with OGB's categorical features
(:func:`ogb.utils.smiles2graph`: 9 atom and 3 bond features per row):

* :class:`OGBGraphDataset` reads an ``ogbg-mol*`` dataset of the
  `Open Graph Benchmark <https://arxiv.org/abs/2005.00687>`_ from its raw CSV
  files with OGB's own reader, and its published scaffold split.
* :class:`SmilesDataset` builds the graphs from a `MoleculeNet
  <https://arxiv.org/abs/1703.00564>`_ SMILES CSV with RDKit (HIV, BBBP, BACE)
  and splits them with :func:`scaffold_split`, the deterministic Bemis--Murcko
  scaffold split OGB published its splits with.

Raw files are staged (copied) from the data root into the writable cache and
processed there; with ``GEOKD_OFFLINE=1`` a missing file raises
:class:`~geokd.paths.MissingDataError`, otherwise it is downloaded from OGB or
from the DeepChem copies of MoleculeNet.

We do not use :class:`ogb.graphproppred.PygGraphPropPredDataset` itself: OGB
1.3.6 loads its processed file with ``torch.load`` defaults (which fail on
torch >= 2.6), asks on stdin when ``RELEASE_v1.txt`` is missing and downloads
whenever ``edge.csv.gz`` is absent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from geokd.log import progress
from geokd.paths import (
    MissingDataError,
    cache_root,
    data_root,
    dataset_lock,
    missing_data_message,
    offline,
    stage_raw_files,
)

SPLIT_NAMES = ("train", "valid", "test")


@lru_cache(maxsize=1)
def _ogb_master() -> dict[str, dict[str, str]]:
    """OGB's table of graph-property datasets (``ogb/graphproppred/master.csv``), restricted to ``ogbg-mol*``."""
    import ogb.graphproppred

    path = Path(ogb.graphproppred.__file__).resolve().parent / "master.csv"
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    names = rows[0][1:]
    table = {name: {row[0]: row[i + 1] for row in rows[1:]} for i, name in enumerate(names)}
    return {name: meta for name, meta in table.items() if name.startswith("ogbg-mol")}


def ogb_molecule_datasets() -> list[str]:
    """Names of the ``ogbg-mol*`` datasets :class:`OGBGraphDataset` knows (from OGB's table)."""
    return sorted(_ogb_master())


class OGBGraphDataset(InMemoryDataset):
    r"""A molecule dataset of the `Open Graph Benchmark
    <https://arxiv.org/abs/2005.00687>`_ (``ogbg-molbace``, ``ogbg-molhiv``,
    ...), read from OGB's raw layout with :func:`ogb.io.read_graph_raw.read_csv_graph_raw`.

    The dataset folder ``<root>/ogbg_<name>`` mirrors OGB's download
    (``raw/*.csv.gz``, ``split/scaffold/*.csv.gz``, ``mapping/``); its files are
    staged from ``<data root>/ogb/ogbg_<name>`` and downloaded from OGB's URL
    only when found there neither nor in the cache.

    Each graph holds ``x`` (atom features), ``edge_index`` (every bond in both
    directions, in OGB's order), ``edge_attr`` (bond features) and ``y``. For a
    single-task set ``y`` has shape ``[1]`` (int64 for classification, float for
    regression), so that a batch's ``y`` is ``[B]``. Multi-task sets keep OGB's
    ``[1, T]``: float with NaN for missing labels when any label is missing,
    int64 otherwise.

    Args:
        name (str): an ``ogbg-mol*`` name, e.g. ``"ogbg-molbace"`` (any case).
            (default: ``"ogbg-molbace"``)
        root (str, optional): writable directory holding the dataset folder.
            (default: ``<cache>/ogb``)
        transform (callable, optional): applied to each graph on access. (default: ``None``)
        pre_transform (callable, optional): applied to each graph before saving. (default: ``None``)
        force_reload (bool): re-process even if a processed file exists. (default: ``False``)

    Shapes:
        - x: :math:`(N, 9)` int64
        - edge_index: :math:`(2, E)` int64, :math:`E = 2 \times` bonds
        - edge_attr: :math:`(E, 3)` int64
        - y: :math:`(1,)`, or :math:`(1, T)` for :math:`T > 1` tasks
    """

    def __init__(
        self,
        name: str = "ogbg-molbace",
        root: str | None = None,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
    ):
        known = _ogb_master()
        canonical = name.lower() if isinstance(name, str) else name
        if canonical not in known:
            raise ValueError(f"name must be one of {sorted(known)}, got {name!r}")
        self.name = canonical
        self.meta_info = known[canonical]
        self.dir_name = canonical.replace("-", "_")
        self.num_tasks = int(self.meta_info["num tasks"])
        self.task_type = self.meta_info["task type"]
        self.eval_metric = self.meta_info["eval metric"]
        self.raw_relpath = f"ogb/{self.dir_name}"
        dataset_dir = Path(root or cache_root() / "ogb") / self.dir_name
        with dataset_lock(dataset_dir):
            super().__init__(str(dataset_dir), transform, pre_transform, force_reload=force_reload)
            self.load(self.processed_paths[0])

    @property
    def num_classes(self) -> int:
        """Classes per task as OGB states them: 2 for the binary sets, -1 for regression."""
        return int(self.meta_info["num classes"])

    @property
    def raw_file_names(self) -> list[str]:
        names = ["edge", "num-node-list", "num-edge-list", "graph-label"]
        if self.meta_info["has_node_attr"] == "True":
            names.append("node-feat")
        if self.meta_info["has_edge_attr"] == "True":
            names.append("edge-feat")
        return [f"{name}.csv.gz" for name in names]

    @property
    def processed_file_names(self) -> str:
        # Not OGB's 'geometric_data_processed.pt': a root shared with OGB's own
        # class must not make either load the other's (differently laid out) file.
        return "geokd_data.pt"

    def _split_files(self, split_type: str | None = None) -> list[str]:
        return [f"split/{split_type or self.meta_info['split']}/{part}.csv.gz" for part in SPLIT_NAMES]

    def _stage(self, relative_paths: Sequence[str]) -> tuple[list[str], list[Path]]:
        """Copy files (paths relative to the dataset folder) from the data root.

        Returns:
            tuple: the paths still missing and the folders searched.
        """
        source_root = data_root() / self.raw_relpath
        by_folder: dict[str, list[str]] = {}
        for path in relative_paths:
            folder, _, file_name = path.rpartition("/")
            by_folder.setdefault(folder, []).append(file_name)
        missing = []
        for folder, names in by_folder.items():
            still_missing = stage_raw_files(names, Path(self.root) / folder, [source_root / folder])
            missing.extend(f"{folder}/{name}" if folder else name for name in still_missing)
        return missing, [source_root]

    def download(self) -> None:
        optional = ["mapping/mol.csv.gz", "mapping/README.md", f"RELEASE_v{self.meta_info['version']}.txt"]
        self._stage(optional)
        missing, searched = self._stage([f"raw/{name}" for name in self.raw_file_names] + self._split_files())
        if not missing:
            return
        if offline():
            raise MissingDataError(missing_data_message(type(self).__name__, self.root, missing, searched))
        self._download_from_ogb()

    def _download_from_ogb(self) -> None:
        """Fetch OGB's zip and move in the files still missing; never overwrite staged ones."""
        from ogb.utils import url as ogb_url  # module attribute, so tests can stub the download

        Path(self.root).parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=Path(self.root).parent, prefix=".download-") as scratch:
            # OGB's download_url, not decide_download: the latter asks on stdin above 1 GB.
            archive = ogb_url.download_url(self.meta_info["url"], scratch)
            ogb_url.extract_zip(archive, scratch)
            extracted = Path(scratch) / self.meta_info["download_name"]
            for source in sorted(p for p in extracted.rglob("*") if p.is_file()):
                target = Path(self.root) / source.relative_to(extracted)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(source), target)

    def process(self) -> None:
        import numpy as np
        import pandas as pd
        from ogb.io.read_graph_raw import read_csv_graph_raw

        # OGB's reader prints its stages to stdout; a library call should not.
        with contextlib.redirect_stdout(io.StringIO()):
            graphs = read_csv_graph_raw(self.raw_dir, add_inverse_edge=self.meta_info["add_inverse_edge"] == "True")
        # pandas, as OGB: multi-task label files leave missing labels empty (read as NaN).
        labels = pd.read_csv(Path(self.raw_dir) / "graph-label.csv.gz", header=None).to_numpy(dtype=np.float64)
        if len(labels) != len(graphs):
            raise ValueError(f"{self.name}: graph-label.csv.gz has {len(labels)} rows for {len(graphs)} graphs")
        has_nan = bool(np.isnan(labels).any())
        integer_labels = "classification" in self.task_type and not has_nan
        data_list = []
        for graph, label in zip(graphs, labels):
            y = torch.tensor(label).view(1, -1)  # a copy: pandas' rows are read-only views
            y = y.long() if integer_labels else y.float()
            if self.num_tasks == 1:
                y = y.view(1)
            data = Data(
                x=torch.from_numpy(graph["node_feat"]),
                edge_index=torch.from_numpy(graph["edge_index"]),
                edge_attr=torch.from_numpy(graph["edge_feat"]),
                y=y,
                num_nodes=int(graph["num_nodes"]),
            )
            if self.pre_transform is not None:
                data = self.pre_transform(data)
            data_list.append(data)
        self.save(data_list, self.processed_paths[0])

    def get_idx_split(self, split_type: str | None = None) -> dict[str, Tensor]:
        """OGB's published split.

        Args:
            split_type (str, optional): folder under ``split/``. (default: the
                dataset's own, ``"scaffold"`` for every ``ogbg-mol*``)

        Returns:
            dict[str, Tensor]: ``"train"``, ``"valid"``, ``"test"`` graph indices (int64).
        """
        import pandas as pd

        split_type = split_type or self.meta_info["split"]
        with dataset_lock(self.root):
            missing, searched = self._stage(self._split_files(split_type))
            if missing:
                if offline():
                    raise MissingDataError(missing_data_message(type(self).__name__, self.root, missing, searched))
                self._download_from_ogb()
        folder = Path(self.root) / "split" / split_type
        return {
            part: torch.tensor(pd.read_csv(folder / f"{part}.csv.gz", header=None)[0].to_numpy(), dtype=torch.long)
            for part in SPLIT_NAMES
        }


# name: (DeepChem file, label column). DeepChem's CSVs carry more columns and,
# for BACE, call the SMILES column "mol"; _read_smiles_csv accepts both layouts.
SMILES_DATASETS = {
    "hiv": ("HIV.csv", "HIV_active"),
    "bbbp": ("BBBP.csv", "p_np"),
    "bace": ("bace.csv", "Class"),
}
DEEPCHEM_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/{}"
_SMILES_COLUMNS = ("smiles", "mol")


def _read_smiles_csv(path: Path, label_column: str) -> list[tuple[str, int]]:
    """``(smiles, label)`` per row of a MoleculeNet CSV, in file order."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        smiles_column = next((c for c in _SMILES_COLUMNS if c in header), None)
        if smiles_column is None or label_column not in header:
            raise ValueError(
                f"{path} must have a SMILES column (one of {list(_SMILES_COLUMNS)}) and a "
                f"{label_column!r} column, got columns {header}"
            )
        rows = []
        for line, record in enumerate(reader, start=2):
            try:
                label = int(float(record[label_column]))
            except (TypeError, ValueError):
                raise ValueError(f"{path}, line {line}: label {record[label_column]!r} is not a number") from None
            rows.append((record[smiles_column], label))
    return rows


def _smiles_to_graph(smiles: str) -> dict | None:
    """OGB's graph of a SMILES string, or ``None`` if RDKit cannot build a molecule from it."""
    from ogb.utils import smiles2graph

    try:
        graph = smiles2graph(smiles)
    except AttributeError:
        # smiles2graph does not check Chem.MolFromSmiles' result: an unparseable
        # SMILES (e.g. a valence RDKit rejects) surfaces as None.GetAtoms().
        return None
    return graph if graph["num_nodes"] > 0 else None


def _scaffold(smiles: str) -> str:
    from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles

    try:
        return MurckoScaffoldSmiles(smiles=smiles, includeChirality=True)
    except Exception as error:  # RDKit raises assorted Boost.Python errors on bad input
        raise ValueError(f"smiles {smiles!r}: RDKit cannot compute its Murcko scaffold ({error})") from error


def scaffold_split(
    smiles: Sequence[str],
    frac_train: float = 0.8,
    frac_valid: float = 0.1,
    frac_test: float = 0.1,
) -> dict[str, Tensor]:
    r"""The deterministic scaffold split of MoleculeNet and OGB.

    Molecules are grouped by their Bemis--Murcko scaffold (with chirality;
    acyclic molecules share the empty scaffold). Groups go, largest first,
    into train until it would exceed :math:`f_\text{train} n`, then into valid
    until train + valid would exceed :math:`(f_\text{train} + f_\text{valid}) n`,
    the rest into test. Groups of equal size are taken in descending order of
    their first (smallest) index: the order of the reference implementation
    (a reverse sort on ``(size, first index)``), and the only one of the two
    tie orders that reproduces OGB's published ``ogbg-molbace`` split.

    Args:
        smiles (Sequence[str]): one SMILES per molecule, parseable by RDKit.
        frac_train (float): train fraction. (default: ``0.8``)
        frac_valid (float): validation fraction. (default: ``0.1``)
        frac_test (float): test fraction; the three must sum to 1. (default: ``0.1``)

    Returns:
        dict[str, Tensor]: ``"train"``, ``"valid"``, ``"test"`` indices into ``smiles`` (int64),
        each sorted ascending, as in OGB's split files.
    """
    fractions = (frac_train, frac_valid, frac_test)
    if min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"frac_train, frac_valid, frac_test must be >= 0 and sum to 1, got {fractions}")
    from rdkit import rdBase

    groups: dict[str, list[int]] = {}
    with rdBase.BlockLogs():
        for index, molecule in enumerate(progress(smiles, desc="scaffolds", unit="mol", leave=False)):
            groups.setdefault(_scaffold(molecule), []).append(index)
    ordered = sorted(groups.values(), key=lambda group: (len(group), group[0]), reverse=True)
    train_cutoff = frac_train * len(smiles)
    valid_cutoff = (frac_train + frac_valid) * len(smiles)
    parts: dict[str, list[int]] = {part: [] for part in SPLIT_NAMES}
    for group in ordered:
        if len(parts["train"]) + len(group) <= train_cutoff:
            parts["train"].extend(group)
        elif len(parts["train"]) + len(parts["valid"]) + len(group) <= valid_cutoff:
            parts["valid"].extend(group)
        else:
            parts["test"].extend(group)
    return {part: torch.tensor(sorted(indices), dtype=torch.long) for part, indices in parts.items()}


class SmilesDataset(InMemoryDataset):
    r"""A `MoleculeNet <https://arxiv.org/abs/1703.00564>`_ binary
    classification set (HIV, BBBP, BACE) built from its SMILES CSV with
    :func:`ogb.utils.smiles2graph`, i.e. with the features of ``ogbg-mol*``.

    The CSV ``<name>.csv`` is staged from ``<data root>/molecules/`` (or
    ``<data root>/molecules/<name>/raw/``) into ``<root>/<name>/raw``; online, a
    missing file is downloaded from DeepChem's copy (``HIV.csv``, ``BBBP.csv``,
    ``bace.csv``), whose extra columns and SMILES column ``mol`` (BACE) are
    understood as well. DeepChem's BBBP has 2,050 rows, the MoleculeNet copy
    in the data root 2,039.

    SMILES that RDKit cannot parse (or that give no atom) are skipped with a
    warning that counts them; :attr:`skipped_rows` lists their CSV rows
    (0-based, header excluded) and each graph's ``csv_row`` its own, so graph
    ``i`` is not CSV row ``i`` once a row was skipped.

    Each graph holds ``x``, ``edge_index`` (both directions), ``edge_attr``,
    ``y`` (int64, shape ``[1]``), ``csv_row`` (int64, shape ``[1]``) and
    ``smiles`` (str).

    Args:
        name (str): ``"hiv"``, ``"bbbp"`` or ``"bace"`` (any case).
        root (str, optional): writable directory holding ``<name>/raw`` and
            ``<name>/processed``. (default: ``<cache>/molecules``)
        transform (callable, optional): applied to each graph on access. (default: ``None``)
        pre_transform (callable, optional): applied to each graph before saving. (default: ``None``)
        force_reload (bool): re-process even if a processed file exists. (default: ``False``)

    Shapes:
        - x: :math:`(N, 9)` int64
        - edge_index: :math:`(2, E)` int64, :math:`E = 2 \times` bonds
        - edge_attr: :math:`(E, 3)` int64
        - y: :math:`(1,)` int64
    """

    def __init__(
        self,
        name: str,
        root: str | None = None,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
    ):
        canonical = name.lower() if isinstance(name, str) else name
        if canonical not in SMILES_DATASETS:
            raise ValueError(f"name must be one of {sorted(SMILES_DATASETS)}, got {name!r}")
        self.name = canonical
        self.raw_relpath = f"molecules/{canonical}/raw"
        dataset_dir = Path(root or cache_root() / "molecules") / canonical
        with dataset_lock(dataset_dir):
            super().__init__(str(dataset_dir), transform, pre_transform, force_reload=force_reload)
            self.load(self.processed_paths[0])
            report = json.loads(Path(self.processed_paths[1]).read_text())
        #: CSV rows (0-based, header excluded) whose SMILES RDKit could not parse.
        self.skipped_rows: list[int] = report["skipped_rows"]
        #: rows in the CSV, parsed or not.
        self.num_rows: int = report["num_rows"]

    @property
    def num_classes(self) -> int:
        return 2

    @property
    def raw_file_names(self) -> list[str]:
        return [f"{self.name}.csv"]

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "skipped.json"]

    def _source_dirs(self) -> list[Path]:
        # The shared data root keeps the three CSVs side by side; a layout that
        # mirrors the cache (molecules/<name>/raw) works too.
        return [data_root() / "molecules", data_root() / self.raw_relpath]

    def download(self) -> None:
        sources = self._source_dirs()
        missing = stage_raw_files(self.raw_file_names, self.raw_dir, sources)
        if not missing:
            return
        if offline():
            raise MissingDataError(missing_data_message(type(self).__name__, self.raw_dir, missing, sources))
        import torch_geometric.data as pyg_data  # module attribute, so tests can stub the download

        pyg_data.download_url(DEEPCHEM_URL.format(SMILES_DATASETS[self.name][0]), self.raw_dir, filename=missing[0])

    def process(self) -> None:
        from rdkit import rdBase

        rows = _read_smiles_csv(Path(self.raw_paths[0]), SMILES_DATASETS[self.name][1])
        data_list, skipped = [], []
        # RDKit logs every SMILES it rejects; the count below says it once.
        with rdBase.BlockLogs():
            for row, (smiles, label) in enumerate(progress(rows, desc=f"{self.name}: SMILES to graphs", unit="mol")):
                graph = _smiles_to_graph(smiles)
                if graph is None:
                    skipped.append(row)
                    continue
                data = Data(
                    x=torch.from_numpy(graph["node_feat"]),
                    edge_index=torch.from_numpy(graph["edge_index"]),
                    edge_attr=torch.from_numpy(graph["edge_feat"]),
                    y=torch.tensor([label], dtype=torch.long),
                    num_nodes=int(graph["num_nodes"]),
                    csv_row=torch.tensor([row], dtype=torch.long),
                    smiles=smiles,
                )
                if self.pre_transform is not None:
                    data = self.pre_transform(data)
                data_list.append(data)
        if skipped:
            shown = ", ".join(str(row) for row in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
            warnings.warn(
                f"{self.name}: skipped {len(skipped)} of {len(rows)} SMILES that RDKit cannot parse "
                f"(CSV rows {shown}; see .skipped_rows)",
                stacklevel=2,
            )
        if not data_list:
            raise ValueError(f"{self.name}: none of the {len(rows)} SMILES in {self.raw_paths[0]} could be parsed")
        self.save(data_list, self.processed_paths[0])
        report = {"num_rows": len(rows), "skipped_rows": skipped, "skipped_smiles": [rows[r][0] for r in skipped]}
        Path(self.processed_paths[1]).write_text(json.dumps(report, indent=1))

    def get_idx_split(self) -> dict[str, Tensor]:
        """The scaffold split (80/10/10) of :func:`scaffold_split`, computed once and cached.

        Returns:
            dict[str, Tensor]: ``"train"``, ``"valid"``, ``"test"`` graph indices (int64).
        """
        path = Path(self.processed_dir) / "scaffold_split.pt"
        with dataset_lock(self.root):
            if not path.is_file():
                split = scaffold_split(list(self._data.smiles))
                # Write then rename: a reader in another process never sees half a file.
                temporary = path.with_name(f".{path.name}.tmp")
                torch.save(split, temporary)
                temporary.replace(path)
            return torch.load(path, weights_only=True)


__all__ = [
    "SMILES_DATASETS",
    "OGBGraphDataset",
    "SmilesDataset",
    "ogb_molecule_datasets",
    "scaffold_split",
]
