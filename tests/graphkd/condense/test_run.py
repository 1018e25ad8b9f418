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
        assert set(summary[key]) == {"mean", "std", "top5_by_val_mean"}
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


def test_condense_rejects_unknown_method(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["condense", "--method", "kidd", "--dataset", "MUTAG", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="--seeds must be >= 1"):
        main(["condense", "--method", "mirage", "--dataset", "MUTAG", "--seeds", "0", "--out", str(tmp_path)])
