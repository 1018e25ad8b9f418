import json

import pytest

from graphkd.cli import main


def test_condense_mirage_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["condense", "--method", "mirage", "--dataset", "MUTAG", "--gnn", "gin", "--hops", "2",
            "--support", "0.3", "--seeds", "2", "--epochs", "3", "--out", str(out), "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    summary = printed["summary"]
    assert printed["method"] == "mirage" and printed["seeds"] == 2
    assert 200 < summary["condensed_bytes"] < 8192
    for key in ("full_roc_auc", "condensed_roc_auc", "full_accuracy", "condensed_accuracy"):
        assert set(summary[key]) == {"mean", "std", "top5_by_val_mean", "val_mean", "val_std", "seeds"}
    assert summary["condensed_roc_auc"]["val_mean"] == pytest.approx(
        sum(json.loads((out / f"seed{seed}.json").read_text())["condensed"]["val"]["roc_auc"] for seed in (0, 1)) / 2)
    assert (out / "seed0" / "condensed.mirage").is_file() and (out / "seed1.json").is_file()
    records = json.loads((out / "results.json").read_text())["records"]
    assert [r["seed"] for r in records] == [0, 1]

    assert main(argv[:-1]) == 0  # finished seeds are skipped, the table is printed again
    assert "already done" in (out / "log.txt").read_text()
    assert "condensed size" in capsys.readouterr().out


def test_condense_random_baseline(tmp_path, capsys):
    assert main(["condense", "--method", "random", "--dataset", "MUTAG", "--graphs-per-class", "5", "--seeds", "1",
                 "--epochs", "2", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["condensed_bytes"] > 0
    assert json.loads((tmp_path / "seed0.json").read_text())["graphs"] == 10


def test_condense_doscond(tmp_path, capsys):
    assert main(["condense", "--method", "doscond", "--dataset", "MUTAG", "--graphs-per-class", "2", "--seeds", "1",
                 "--epochs", "2", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["condensed_bytes"] > 0 and summary["condense_seconds"] > 0
    assert json.loads((tmp_path / "seed0.json").read_text())["graphs"] == 4


@pytest.mark.parametrize("init", ["herding", "random"])
def test_condense_kidd(tmp_path, capsys, init):
    assert main(["condense", "--method", "kidd", "--dataset", "MUTAG", "--graphs-per-class", "2", "--seeds", "1",
                 "--iterations", "4", "--init", init, "--epochs", "2", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["condensed_bytes"] > 0 and summary["condense_seconds"] > 0
    assert json.loads((tmp_path / "seed0.json").read_text())["graphs"] == 4
    assert main(["condense", "--method", "kidd", "--dataset", "MUTAG", "--iterations", "0", "--seeds", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--iterations must be >= 1" in capsys.readouterr().err


def test_condense_rejects_unknown_method(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["condense", "--method", "gcond", "--dataset", "MUTAG", "--out", str(tmp_path)])
    assert exit_info.value.code == 2

def test_condense_bad_arguments_exit_2_with_a_message(tmp_path, capsys):
    assert main(["condense", "--method", "mirage", "--dataset", "MUTAG", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "graphkd: error: --seeds must be >= 1" in capsys.readouterr().err
    assert main(["condense", "--method", "mirage", "--dataset", "MUTAG", "--support", "5.0", "--seeds", "1",
                 "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "min_support as a fraction must lie in (0, 1]" in capsys.readouterr().err
    # Checked before any training: a wrong count of per-class values, or one bad value among them.
    assert main(["condense", "--method", "mirage", "--dataset", "MUTAG", "--support", "0.3", "0.3", "0.3",
                 "--out", str(tmp_path / "three")]) == 2
    assert "min_support must hold one threshold per class (2), got 3" in capsys.readouterr().err
    assert main(["condense", "--method", "mirage", "--dataset", "MUTAG", "--support", "0.3", "0", "--out",
                 str(tmp_path / "zero")]) == 2
    assert "min_support as a fraction must lie in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "three" / "seed0.json").exists() and not (tmp_path / "zero" / "seed0.json").exists()


def test_condense_support_without_tree_sets_fails_before_the_reference_trains(tmp_path, capsys):
    # PROTEINS at 10% leaves its second class without a tree set; mining comes before any training.
    out = tmp_path / "run"
    assert main(["condense", "--method", "mirage", "--dataset", "PROTEINS", "--support", "0.1", "--seeds", "1",
                 "--epochs", "1", "--out", str(out)]) == 2
    assert "class 1: no tree set reaches min_support=0.1" in capsys.readouterr().err
    assert not list((out / "reference").glob("*.pt")) and not (out / "seed0.json").exists()


def test_condense_mirage_per_class_support(tmp_path, capsys):
    assert main(["condense", "--method", "mirage", "--dataset", "MUTAG", "--support", "0.3", "0.6", "--seeds", "1",
                 "--epochs", "1", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["support"] == [0.3, 0.6]
    from graphkd.condense import CondensedDataset

    assert CondensedDataset.load(tmp_path / "seed0" / "condensed.mirage").meta["min_support"] == [0.3, 0.6]


def test_summary_leaves_out_undefined_roc_auc():
    from graphkd.condense.run import summarize

    def record(auc):
        part = {"val": {"roc_auc": auc, "accuracy": 0.5}, "test": {"roc_auc": auc, "accuracy": 0.5},
                "train_seconds": 1.0}
        return {"full": part, "condensed": part, "condensed_bytes": 10, "condense_seconds": 0.1}

    summary = summarize([record(0.8), record(None)])
    assert summary["condensed_roc_auc"] == {"mean": 0.8, "std": 0.0, "top5_by_val_mean": 0.8, "val_mean": 0.8,
                                            "val_std": 0.0, "seeds": 1}
    assert summary["condensed_accuracy"]["seeds"] == 2
    assert summarize([record(None)])["full_roc_auc"]["mean"] is None
    # Seeds without the full-data reference leave every full-data score empty, not a mean of the others.
    partial = summarize([record(0.8), {**record(0.7), "full": None}])
    assert partial["full_roc_auc"]["mean"] is None and partial["full_accuracy"]["mean"] is None
    assert partial["train_seconds_full"] is None and partial["condensed_roc_auc"]["seeds"] == 2


def test_condense_mirage_label_columns_and_options_kept_with_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["condense", "--method", "mirage", "--dataset", "MUTAG", "--support", "0.3", "--node-labels", "columns:0",
            "--edge-labels", "columns:0,1", "--seeds", "1", "--epochs", "1", "--out", str(out), "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["node_labels"] == "columns:0" and printed["edge_labels"] == "columns:0,1"
    config = json.loads((out / "seed0.json").read_text())["config"]
    assert config["node_labels"] == "columns:0" and config["support"] == 0.3
    from graphkd.condense import CondensedDataset

    # MUTAG's one-hot column 0 (carbon or not): trees with two node categories only.
    condensed = CondensedDataset.load(out / "seed0" / "condensed.mirage")
    assert {label for tree in condensed.trees for label in tree["labels"]} <= {0, 1}

    # The same options resume; other options are refused before anything runs.
    assert main(argv) == 0
    capsys.readouterr()
    other = [*argv[:6], "0.2", *argv[7:]]
    assert main(other) == 2
    assert "was run with support=0.3, not support=0.2; use another --out" in capsys.readouterr().err
    random_run = ["condense", "--method", "random", "--dataset", "MUTAG", "--seeds", "1", "--epochs", "1",
                  "--out", str(tmp_path / "random")]
    assert main([*random_run, "--graphs-per-class", "2"]) == 0
    assert main([*random_run, "--graphs-per-class", "3"]) == 2
    assert "graphs_per_class=2, not graphs_per_class=3" in capsys.readouterr().err
    # A strategy the features do not fit fails before any training.
    assert main([*argv[:7], "--node-labels", "columns:7", "--out", str(tmp_path / "wide")]) == 2
    assert "column 7 is out of range for nodes features with 7 columns" in capsys.readouterr().err
    assert not (tmp_path / "wide" / "reference").exists()


@pytest.mark.parametrize("flag,value,message", [
    ("--node-labels", "kmeans", "expected one of auto, argmax, categorical, degree"),
    ("--node-labels", "columns:x", "distinct non-negative column indices"),
    ("--edge-labels", "degree", "expected one of auto, argmax, categorical, columns:I,J,... for edges"),
])
def test_condense_bad_label_strategies_exit_2(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["condense", "--method", "mirage", "--dataset", "MUTAG", flag, value, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_condense_mirage_readout_trees_or_all(tmp_path, capsys):
    base = ["condense", "--method", "mirage", "--dataset", "MUTAG", "--gnn", "gin", "--support", "0.3", "--seeds",
            "1", "--epochs", "2", "--reference-dir", str(tmp_path / "reference"), "--json"]
    assert main([*base, "--readout", "trees", "--out", str(tmp_path / "trees")]) == 0
    assert json.loads(capsys.readouterr().out)["readout"] == "trees"
    trees = json.loads((tmp_path / "trees" / "seed0.json").read_text())
    assert trees["config"]["readout"] == "trees"
    assert set(trees["read_out_whole"]) == {"val", "test"}
    assert 0 <= trees["read_out_whole"]["test"] < 19  # MUTAG's 10% test split: most graphs hold kept trees
    assert main([*base, "--out", str(tmp_path / "all")]) == 0  # the default
    assert json.loads(capsys.readouterr().out)["readout"] == "all"
    every = json.loads((tmp_path / "all" / "seed0.json").read_text())
    assert every["config"]["readout"] == "all" and "read_out_whole" not in every
    # Same condensed set and training; only the graphs scored differ.
    from graphkd.condense import CondensedDataset

    sets = [CondensedDataset.load(tmp_path / d / "seed0" / "condensed.mirage") for d in ("trees", "all")]
    assert sets[0].patterns == sets[1].patterns and sets[0].trees == sets[1].trees
    assert every["condensed"]["val"] != trees["condensed"]["val"]

    # Records from before --readout read out every node: they resume under --readout all only.
    record = tmp_path / "all" / "seed0.json"
    old = json.loads(record.read_text())
    del old["config"]["readout"]
    record.write_text(json.dumps(old))
    assert main([*base, "--out", str(tmp_path / "all")]) == 0
    capsys.readouterr()
    assert main([*base, "--readout", "trees", "--out", str(tmp_path / "all")]) == 2
    assert "was run with readout='all', not readout='trees'" in capsys.readouterr().err


def test_condense_without_reference(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["condense", "--method", "mirage", "--dataset", "MUTAG", "--support", "0.3", "--seeds", "1", "--epochs",
            "1", "--no-reference", "--out", str(out)]
    assert main(argv) == 0
    assert "not trained (--no-reference)" in capsys.readouterr().out
    assert json.loads((out / "seed0.json").read_text())["full"] is None
    assert not (out / "reference").exists()
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["full_roc_auc"]["mean"] is None and summary["train_seconds_full"] is None
    # A reference the directory already holds is used.
    random_run = ["condense", "--method", "random", "--dataset", "MUTAG", "--seeds", "1", "--epochs", "1",
                  "--reference-dir", str(tmp_path / "reference")]
    assert main([*random_run, "--out", str(tmp_path / "trained")]) == 0
    assert main([*random_run, "--no-reference", "--out", str(tmp_path / "reused")]) == 0
    trained, reused = (json.loads((tmp_path / d / "seed0.json").read_text())["full"] for d in ("trained", "reused"))
    assert reused == trained and reused is not None
    capsys.readouterr()
    for method in ("herding", "kcenter"):
        assert main(["condense", "--method", method, "--dataset", "MUTAG", "--no-reference", "--out",
                     str(tmp_path / method)]) == 2
        assert f"--no-reference: {method} selects on the embeddings" in capsys.readouterr().err
    assert main(["condense", "--method", "kidd", "--dataset", "MUTAG", "--no-reference", "--out",
                 str(tmp_path / "kidd")]) == 2
    assert "(use --init random)" in capsys.readouterr().err


def _graph(num_nodes, label):
    import torch
    from torch_geometric.data import Data

    edges = torch.tensor([list(range(num_nodes - 1)), list(range(1, num_nodes))], dtype=torch.long)
    return Data(x=torch.arange(num_nodes * 3, dtype=torch.float).view(num_nodes, 3), edge_index=edges,
                y=torch.tensor([label]))


def test_fit_budget_keeps_the_most_graphs_per_class_that_fit():
    from graphkd.condense.run import _serialize, fit_budget

    pools = {0: [_graph(n, 0) for n in range(5, 25)], 1: [_graph(n, 1) for n in range(30, 50)]}

    def choose(k):
        return pools[0][:k] + pools[1][:k]

    sizes = [len(_serialize(choose(k))) for k in range(1, 21)]
    assert sizes == sorted(sizes)
    for k in (1, 4, 13):
        for budget in (sizes[k - 1], sizes[k] - 1):  # exactly the size of k per class, and just under k + 1's
            subset, per_class, over = fit_budget(choose, budget, 20)
            assert (per_class, over, len(subset)) == (k, False, 2 * k)
    # The whole pool when everything fits; one per class, flagged, when nothing does.
    assert fit_budget(choose, sizes[-1] * 2, 20)[1:] == (20, False)
    subset, per_class, over = fit_budget(choose, sizes[0] - 1, 20)
    assert (len(subset), per_class, over) == (2, 1, True)


def test_condense_random_at_a_byte_budget(tmp_path, capsys):
    from graphkd.condense.run import _random_subset, _serialize, split_indices
    from graphkd.datasets import get_dataset

    dataset = get_dataset("MUTAG")
    graphs = list(dataset)
    train_index, _, _ = split_indices(dataset, [int(g.y) for g in graphs], 0)
    train = [graphs[i] for i in train_index]
    budget = len(_serialize(_random_subset(train, 6, 0))) + 1
    out = tmp_path / "run"
    argv = ["condense", "--method", "random", "--dataset", "MUTAG", "--budget-bytes", str(budget), "--seeds", "1",
            "--epochs", "1", "--out", str(out), "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    record = json.loads((out / "seed0.json").read_text())
    k = record["graphs_per_class"]
    # The scan stops at the first k whose random subset does not fit.
    assert k >= 6 and not record["over_budget"] and record["graphs"] == 2 * k
    assert all(len(_serialize(_random_subset(train, j, 0))) <= budget for j in range(1, k + 1))
    assert len(_serialize(_random_subset(train, k + 1, 0))) > budget
    assert record["condensed_bytes"] == len(_serialize(_random_subset(train, k, 0))) <= budget
    assert printed["budget_bytes"] == budget and record["config"]["budget_bytes"] == budget
    assert (printed["summary"]["graphs_per_class"], printed["summary"]["graphs"]) == (k, 2 * k)
    assert printed["summary"]["over_budget_seeds"] == 0
    assert "graphs_per_class" not in record["config"]
    # Another budget is another run.
    assert main([*argv[:6], str(budget + 100), *argv[7:]]) == 2
    assert f"was run with budget_bytes={budget}, not budget_bytes={budget + 100}" in capsys.readouterr().err
    # Below one graph per class: one per class, flagged and logged.
    small = tmp_path / "small"
    assert main(["condense", "--method", "random", "--dataset", "MUTAG", "--budget-bytes", "10", "--seeds", "1",
                 "--epochs", "1", "--out", str(small)]) == 0
    record = json.loads((small / "seed0.json").read_text())
    assert (record["graphs"], record["graphs_per_class"], record["over_budget"]) == (2, 1, True)
    assert json.loads((small / "results.json").read_text())["summary"]["over_budget_seeds"] == 1
    assert "over --budget-bytes 10; keeping one per class" in (small / "log.txt").read_text()


def test_condense_herding_at_a_byte_budget(tmp_path, capsys):
    argv = ["condense", "--method", "herding", "--dataset", "MUTAG", "--seeds", "1", "--epochs", "1",
            "--reference-dir", str(tmp_path / "reference")]
    assert main([*argv, "--graphs-per-class", "3", "--out", str(tmp_path / "three")]) == 0
    three = json.loads((tmp_path / "three" / "seed0.json").read_text())
    assert main([*argv, "--budget-bytes", str(three["condensed_bytes"]), "--out", str(tmp_path / "budget")]) == 0
    budget = json.loads((tmp_path / "budget" / "seed0.json").read_text())
    # Herding's selections are nested (four per class hold the three), so the budget of three keeps those.
    assert (budget["graphs_per_class"], budget["over_budget"]) == (3, False)
    assert budget["condensed_bytes"] == three["condensed_bytes"] and budget["full"] == three["full"]


@pytest.mark.parametrize("extra,message", [
    (["--method", "mirage"], "--budget-bytes: mirage does not keep real graphs"),
    (["--method", "doscond"], "--budget-bytes: doscond does not keep real graphs"),
    (["--method", "random", "--graphs-per-class", "3"], "give --graphs-per-class or --budget-bytes, not both"),
])
def test_condense_bad_budget_exits_2(tmp_path, capsys, extra, message):
    assert main(["condense", "--dataset", "MUTAG", "--budget-bytes", "500", *extra, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert main(["condense", "--dataset", "MUTAG", "--method", "random", "--budget-bytes", "0", "--out",
                 str(tmp_path)]) == 2
    assert "--budget-bytes must be >= 1, got 0" in capsys.readouterr().err
    assert main(["condense", "--dataset", "MUTAG", "--method", "random", "--graphs-per-class", "0", "--out",
                 str(tmp_path)]) == 2
    assert "--graphs-per-class must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "seed0.json").exists()
