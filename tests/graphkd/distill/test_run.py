import json

import pytest
import torch

from geokd.checkpoint import load_checkpoint
from graphkd.cli import main
from graphkd.distill.data import load_node_dataset, make_split
from graphkd.distill.teacher import cached_teacher


def test_distill_cli_production_setting_resumes_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["distill", "--dataset", "cora", "--method", "glnn", "--setting", "prod", "--seeds", "1", "--epochs", "80",
            "--teacher-epochs", "80", "--fan-out", "full", "--out", str(out), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = {row["model"]: row for row in summary["rows"]}
    assert set(rows) == {"sage", "mlp", "glnn"} and summary["metric"] == "prod"
    for row in rows.values():
        assert row["prod_mean"] == pytest.approx(0.8 * row["test_mean"] + 0.2 * row["test_ind_mean"])
        assert row["latency_ms"] > 0
    assert rows["glnn"]["accuracy"] > rows["mlp"]["accuracy"] + 10  # in %
    record = json.loads((out / "records" / "seed0.json").read_text())
    assert record["models"]["glnn"]["scores"]["test_ind"] > 0.5
    assert (out / "accuracy_latency.png").stat().st_size > 1000
    assert (out / "teachers" / "sage-ind-seed0.pt").is_file()

    # A rerun finds the seed done: same record, no training logged again.
    before = (out / "records" / "seed0.json").stat().st_mtime_ns
    log_lines = (out / "log.txt").read_text().count("teacher")
    assert main(argv) == 0
    assert (out / "records" / "seed0.json").stat().st_mtime_ns == before
    assert (out / "log.txt").read_text().count("teacher") == log_lines

    # Benchmarks read the cached teacher back through cached_teacher.
    data = load_node_dataset("cora")
    cached = cached_teacher(data, make_split(data, "ind", 0), 0, out / "teachers")
    state = load_checkpoint(out / "teachers" / "sage-ind-seed0.pt")
    assert torch.equal(cached.logits, state["logits"]) and torch.equal(cached.hidden, state["hidden"])
    assert cached.scores == state["scores"] and cached.best_epoch == state["best_epoch"]

    assert main(["export", "--ckpt", str(out / "students" / "glnn-seed0.pt"), "--out", str(tmp_path / "serve"),
                 "--formats", "torchscript"]) == 0
    assert (tmp_path / "serve" / "student.torchscript.pt").is_file()

    # The teacher cache records how its epoch was selected and refuses the other rule.
    fresh = tmp_path / "other"
    capsys.readouterr()
    assert main([*argv[:-3], "--out", str(fresh), "--teacher-dir", str(out / "teachers"),
                 "--teacher-select", "accuracy"]) == 2
    assert "selected on validation loss, not accuracy" in capsys.readouterr().err


def test_distill_cli_bad_arguments(tmp_path, capsys):
    assert main(["distill", "--dataset", "reddit", "--out", str(tmp_path)]) == 2
    assert "dataset must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["distill", "--method", "kd", "--out", str(tmp_path)])


def test_student_latency_feeds_wider_students_their_width():
    from graphkd.distill.data import load_node_dataset
    from graphkd.distill.run import student_latency
    from graphkd.nn import MLP

    data = load_node_dataset("cora")
    milliseconds, note = student_latency(MLP(data.num_features, 16, 7), data, repeat=2)
    assert milliseconds > 0 and note is None
    milliseconds, note = student_latency(MLP(data.num_features + 64, 16, 7), data, repeat=2)  # NOSMOG-style input
    assert milliseconds > 0 and "64 position features are not timed" in note
    with pytest.raises(ValueError, match="reads 10 features"):
        student_latency(MLP(10, 16, 7), data)
