import itertools
import json

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from graphkd.cli import main
from graphkd.condense.coreset import herding, kcenter, select_per_class


def _herding_by_hand(points: np.ndarray, k: int) -> list[int]:
    mean = points.mean(axis=0)
    chosen: list[int] = []
    for step in range(1, k + 1):
        best, best_distance = None, None
        for i in range(len(points)):
            if i in chosen:
                continue
            distance = np.linalg.norm(mean - (points[chosen].sum(axis=0) + points[i]) / step)
            if best_distance is None or distance < best_distance - 1e-12:
                best, best_distance = i, distance
        chosen.append(best)
    return chosen


def _covering_radius(points: np.ndarray, centers: list[int]) -> float:
    return float(cdist(points, points[centers]).min(axis=1).max())


@pytest.mark.parametrize("seed", range(5))
def test_herding_matches_the_greedy_rule(seed):
    points = np.random.default_rng(seed).normal(size=(30, 4))
    assert herding(torch.from_numpy(points), 8) == _herding_by_hand(points, 8)


def test_herding_tracks_the_mean_better_than_random_picks():
    points = np.random.default_rng(0).normal(size=(200, 8))
    chosen = herding(torch.from_numpy(points), 10)
    gap = np.linalg.norm(points[chosen].mean(axis=0) - points.mean(axis=0))
    rng = np.random.default_rng(1)
    random_gaps = [np.linalg.norm(points[rng.choice(200, 10, replace=False)].mean(axis=0) - points.mean(axis=0))
                   for _ in range(100)]
    assert gap < min(random_gaps)


@pytest.mark.parametrize("seed", range(5))
def test_kcenter_is_farthest_first_and_a_2_approximation(seed):
    points = np.random.default_rng(seed).normal(size=(12, 3))
    chosen = kcenter(torch.from_numpy(points), 3)
    assert len(set(chosen)) == 3
    assert chosen[0] == int(np.argmin(np.linalg.norm(points - points.mean(axis=0), axis=1)))
    distances = cdist(points, points)
    for step in range(1, 3):
        assert chosen[step] == int(np.argmax(distances[:, chosen[:step]].min(axis=1)))
    optimum = min(_covering_radius(points, list(c)) for c in itertools.combinations(range(12), 3))
    assert _covering_radius(points, chosen) <= 2 * optimum + 1e-9


def test_small_classes_and_duplicates():
    same = torch.zeros(4, 2)
    assert sorted(kcenter(same, 10)) == [0, 1, 2, 3]  # all of a class smaller than k, none twice
    assert sorted(herding(same, 10)) == [0, 1, 2, 3]


def test_select_per_class_stays_within_classes():
    embeddings = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    labels = [i % 3 for i in range(50)]
    for method in ("herding", "kcenter"):
        chosen = select_per_class(embeddings, labels, 4, method)
        assert len(chosen) == 12 and len(set(chosen)) == 12
        assert [labels[i] for i in chosen] == [0] * 4 + [1] * 4 + [2] * 4


def test_bad_inputs():
    with pytest.raises(ValueError, match="embeddings must be a floating-point tensor of shape"):
        herding(torch.zeros(3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="embeddings must be finite"):
        kcenter(torch.tensor([[0.0], [float("nan")]]), 1)
    with pytest.raises(ValueError, match="k must be a positive int"):
        kcenter(torch.zeros(3, 2), 0)
    with pytest.raises(ValueError, match="method must be one of"):
        select_per_class(torch.zeros(3, 2), [0, 1, 0], 1, "kmeans")
    with pytest.raises(ValueError, match="labels must hold one class per embedding row"):
        select_per_class(torch.zeros(3, 2), [0, 1], 1, "herding")


def test_condense_cli_shares_the_full_data_reference(tmp_path, capsys):
    reference = tmp_path / "reference"
    common = ["--dataset", "MUTAG", "--graphs-per-class", "3", "--seeds", "1", "--epochs", "2",
              "--reference-dir", str(reference), "--json"]
    assert main(["condense", "--method", "herding", "--out", str(tmp_path / "herding"), *common]) == 0
    herding_run = json.loads(capsys.readouterr().out)
    assert len(list(reference.glob("*.pt"))) == 1
    assert main(["condense", "--method", "kcenter", "--out", str(tmp_path / "kcenter"), *common]) == 0
    kcenter_run = json.loads(capsys.readouterr().out)
    assert len(list(reference.glob("*.pt"))) == 1  # trained once, reused
    assert herding_run["summary"]["full_roc_auc"] == kcenter_run["summary"]["full_roc_auc"]
    for run in ("herding", "kcenter"):
        assert json.loads((tmp_path / run / "seed0.json").read_text())["graphs"] == 6
